//! The codec of every service in this crate: prost, with small starting buffers.
//!
//! tonic's default codec starts each call's decode and encode buffer at 8 KiB. That is past
//! glibc's per-thread cache of small blocks, so each buffer costs a slow `malloc` and `free` per
//! call. The messages of these services are small (a data key, a blob, at most 4 KiB of plaintext):
//! buffers start at [`BUFFER_SIZE`] and grow when a message needs it.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// The starting size of a call's decode and encode buffers: the largest block glibc serves from
/// its per-thread cache (1,032 bytes) less the allocator's bookkeeping.
pub const BUFFER_SIZE: usize = 1024;

/// How many bytes a streaming call encodes before it yields: tonic's default.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// prost encoding of `T` and decoding of `U`, with [`BUFFER_SIZE`] buffers (the generated
/// clients and servers of this crate name it as their codec).
#[derive(Debug, Clone)]
pub struct SmallMessages<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallMessages<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_SIZE, YIELD_THRESHOLD)
}

impl<T, U> Codec for SmallMessages<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(settings())
    }
}
