//! Key material types, the root key, and the wrapping of CMK material under it (FORMATS.md §2).
//!
//! No I/O here except reading and creating the root key file.

use std::io::Write;
use std::path::Path;

use aes_kw::KeyInit;
use aes_kw::KwAes256;
use hkdf::Hkdf;
use sha2::Sha256;
use uuid::Uuid;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{ConfigError, KmsError, Result, StartupError};

mod drbg;

/// Length of CMK material, of the root key, and of derived KEKs.
pub const KEY_LEN: usize = 32;
/// Length of wrapped CMK material (RFC 3394 adds 8 bytes).
pub const WRAPPED_LEN: usize = KEY_LEN + 8;
/// The value of `key_versions.wrap_scheme` for FORMATS.md §2.
pub const WRAP_SCHEME_V1: u32 = 1;

/// 32 bytes of secret key material. Wiped on drop; never printed; not `Clone`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// Fresh key material from the OS random number generator.
    pub fn generate() -> Result<Self> {
        let mut k = [0u8; KEY_LEN];
        fill_random_os(&mut k)?;
        Ok(Self(k))
    }

    /// Takes ownership of the given bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The secret bytes, for handing to a cipher.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// A CMK version's material keyed into AES-256-GCM (ring's): the expanded AES key schedule and the
/// GHASH key; never printed; not `Clone`. Keeping it saves the root-key derivation, the unwrap and
/// the key expansion on every call that uses the version.
pub struct GcmKey(ring::aead::LessSafeKey);

/// ring's AES-256-GCM keyed with `key`.
fn gcm_keyed(key: &[u8; KEY_LEN]) -> ring::aead::LessSafeKey {
    use ring::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
    // ring refuses only a key of the wrong length, and `key` has AES-256's.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256-GCM key"))
}

impl GcmKey {
    /// Keys the cipher with `key`, which the caller then drops (and so wipes).
    pub fn new(key: &SecretKey) -> Self {
        Self(gcm_keyed(key.expose()))
    }
}

/// ring neither zeroizes its key schedules nor exposes them. A schedule is plain data stored
/// inline, so assigning an all-zero key's overwrites the old one where it lies (the same layout:
/// ring picks its implementation from the CPU, which does not change); `black_box` keeps the
/// compiler from dropping that store as dead before the free. `tests/key_wipe.rs` checks that no
/// freed block still holds the material.
impl Drop for GcmKey {
    fn drop(&mut self) {
        self.0 = gcm_keyed(&[0; KEY_LEN]);
        std::hint::black_box(&self.0);
    }
}

impl std::fmt::Debug for GcmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GcmKey(..)")
    }
}

/// Fills `buf` with random bytes for the data path (data keys, nonces, GenerateRandom): from a
/// per-thread ChaCha20 generator keyed by the OS, with fast key erasure (`crypto/drbg.rs`).
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    drbg::fill(buf).map_err(|e| KmsError::Internal(format!("OS random number generator: {e}")))
}

/// Fills `buf` straight from the OS random number generator, for key material that lives on
/// (CMK versions, the root key).
pub fn fill_random_os(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| KmsError::Internal(format!("OS random number generator: {e}")))
}

/// `n` random bytes, wiped when dropped.
pub fn random_bytes(n: usize) -> Result<Zeroizing<Vec<u8>>> {
    // Not `vec![0; n]`: that is `calloc`, which glibc (2.36, Debian 12's) serves past the
    // per-thread cache that `malloc` takes small blocks from (189 instructions against 41 for a
    // data key's 44 bytes).
    let mut v = Zeroizing::new(Vec::with_capacity(n));
    v.resize(n, 0);
    fill_random(&mut v)?;
    Ok(v)
}

/// The identity a CMK version's material is bound to when wrapped.
#[derive(Debug, Clone, Copy)]
pub struct WrapContext<'a> {
    /// The key's UUID.
    pub uuid: Uuid,
    /// The key version.
    pub version: u32,
    /// The owning domain.
    pub domain: &'a str,
    /// The key's region.
    pub region: &'a str,
}

/// The root key: wraps every CMK's material and keys the key store's MACs. Loaded once at
/// start-up.
///
/// Holds only the HKDF pseudo-random key extracted from the root key once (RFC 5869 §2.2), so that
/// each per-key KEK costs only an HKDF-Expand, and the key of the store's MACs expanded from it
/// (FORMATS.md §3); both wiped on drop.
pub struct RootKey {
    prk: SecretKey,
    mac_key: SecretKey,
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey(..)")
    }
}

impl RootKey {
    /// A second copy of the same key, for the fleet's store, which computes the store MAC inside
    /// its write transactions ([`crate::store::postgres`]).
    pub(crate) fn duplicate(&self) -> Self {
        Self {
            prk: SecretKey::from_bytes(*self.prk.expose()),
            mac_key: SecretKey::from_bytes(*self.mac_key.expose()),
        }
    }

    /// Builds a root key from its bytes (tests and known-answer files).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self::from_key(SecretKey::from_bytes(bytes))
    }

    fn from_key(key: SecretKey) -> Self {
        let (prk, hkdf) = Hkdf::<Sha256>::extract(Some(b"kmsbox.cmk-wrap.v1"), key.expose());
        let mut bytes = [0u8; KEY_LEN];
        bytes.copy_from_slice(&prk);
        let mut prk = prk;
        prk.zeroize();
        // The label is 19 bytes, shorter than any KEK's `info` (see `store_check_value`). HKDF
        // refuses only outputs over 255 hash lengths, so 32 bytes always expand.
        let mut mac_key = [0u8; KEY_LEN];
        let expanded = hkdf.expand(b"kmsbox.store-mac.v1", &mut mac_key);
        debug_assert!(expanded.is_ok(), "HKDF-Expand of 32 bytes");
        Self {
            prk: SecretKey::from_bytes(bytes),
            mac_key: SecretKey::from_bytes(mac_key),
        }
    }

    /// Reads the root key file, or creates it (mode 0600, 32 random bytes) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, StartupError> {
        match Self::load(path) {
            Err(StartupError::Config(ConfigError::Io { source, .. }))
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Self::create(path)
            }
            other => other,
        }
    }

    /// Creates a root key file that must not exist yet (mode 0600, 32 random bytes, synced, and
    /// its folder synced), and returns the key.
    pub fn create(path: &Path) -> Result<Self, StartupError> {
        let key = SecretKey::generate()?;
        write_new_secret_file(path, key.expose()).map_err(|source| ConfigError::Io {
            action: "creating",
            what: "root key file",
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::from_key(key))
    }

    /// Reads an existing root key file: exactly 32 bytes, not accessible by group or others.
    pub fn load(path: &Path) -> Result<Self, StartupError> {
        const WHAT: &str = "root key file";
        let io = |action, source| ConfigError::Io {
            action,
            what: WHAT,
            path: path.to_owned(),
            source,
        };
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                // As ssh does with a private key: a key others can read is not secret any more.
                return Err(ConfigError::Invalid {
                    what: WHAT,
                    path: path.to_owned(),
                    reason: format!(
                        "its mode is {mode:04o}: it must not be accessible by group or others \
                         (chmod 600 {})",
                        path.display()
                    ),
                }
                .into());
            }
        }
        match std::fs::read(path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let arr: [u8; KEY_LEN] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| ConfigError::Invalid {
                            what: WHAT,
                            path: path.to_owned(),
                            reason: format!(
                                "it must hold exactly {KEY_LEN} bytes, it holds {}",
                                bytes.len()
                            ),
                        })?;
                Ok(Self::from_bytes(arr))
            }
            Err(e) => Err(io("reading", e).into()),
        }
    }

    /// HMAC-SHA-256 of `message` under the key of the store's MACs (FORMATS.md §3); `message`
    /// starts with its own label.
    pub(crate) fn store_mac(&self, message: &[u8]) -> Result<[u8; KEY_LEN]> {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.mac_key.expose())
            .map_err(|_| KmsError::Internal("HMAC key length".into()))?;
        mac.update(message);
        Ok(mac.finalize().into_bytes().into())
    }

    /// The value the key store keeps to know which root key its keys are wrapped under:
    /// HMAC-SHA256 under the extracted key of a fixed label (HKDF-Expand, RFC 5869 §2.3, with the
    /// label as `info`). It reveals nothing of the key. The label is 21 bytes (and the MAC key's 19);
    /// every KEK's `info` is at least 28 (UUID, version, two length-prefixed strings), so no KEK
    /// equals either.
    pub fn store_check_value(&self) -> Result<[u8; KEY_LEN]> {
        let mut out = [0u8; KEY_LEN];
        Hkdf::<Sha256>::from_prk(self.prk.expose())
            .map_err(|_| KmsError::Internal("HKDF PRK length".into()))?
            .expand(b"kmsbox.store-check.v1", &mut out)
            .map_err(|_| KmsError::Internal("HKDF output length".into()))?;
        Ok(out)
    }

    fn kek(&self, ctx: &WrapContext<'_>) -> Result<Zeroizing<[u8; KEY_LEN]>> {
        let mut info = Vec::with_capacity(16 + 4 + 8 + ctx.domain.len() + ctx.region.len());
        info.extend_from_slice(ctx.uuid.as_bytes());
        info.extend_from_slice(&ctx.version.to_be_bytes());
        put_lp(&mut info, "domain", ctx.domain.as_bytes())?;
        put_lp(&mut info, "region", ctx.region.as_bytes())?;
        let mut kek = Zeroizing::new([0u8; KEY_LEN]);
        Hkdf::<Sha256>::from_prk(self.prk.expose())
            .map_err(|_| KmsError::Internal("HKDF PRK length".into()))?
            .expand(&info, kek.as_mut())
            .map_err(|_| KmsError::Internal("HKDF output length".into()))?;
        Ok(kek)
    }

    /// Wraps one CMK version's material (FORMATS.md §2).
    pub fn wrap(&self, ctx: &WrapContext<'_>, material: &SecretKey) -> Result<[u8; WRAPPED_LEN]> {
        let wrapped = kw_wrap(&*self.kek(ctx)?, material.expose())
            .ok_or_else(|| KmsError::Internal("AES key wrap failed".into()))?;
        wrapped
            .try_into()
            .map_err(|_| KmsError::Internal("AES key wrap length".into()))
    }

    /// Unwraps one CMK version's material; fails when the wrapped bytes were altered or belong to
    /// another key, version, domain or region.
    pub fn unwrap(&self, ctx: &WrapContext<'_>, wrapped: &[u8]) -> Result<SecretKey> {
        let unwrapped = kw_unwrap(&*self.kek(ctx)?, wrapped);
        match unwrapped
            .as_deref()
            .map(|v| <[u8; KEY_LEN]>::try_from(v.as_slice()))
        {
            Some(Ok(bytes)) => Ok(SecretKey::from_bytes(bytes)),
            _ => Err(KmsError::Internal(format!(
                "stored material of key {} version {} failed its integrity check (wrong root key, or altered key store)",
                ctx.uuid, ctx.version
            ))),
        }
    }
}

/// AES-256 key wrap (RFC 3394 §2.2.1, default IV) of `key` under `kek`; `None` for a `key` whose
/// length is not a multiple of 8 of at least 16 (RFC 3394 §2: n >= 2 blocks).
pub(crate) fn kw_wrap(kek: &[u8; KEY_LEN], key: &[u8]) -> Option<Vec<u8>> {
    if key.len() < 16 || !key.len().is_multiple_of(8) {
        return None;
    }
    let kw = KwAes256::new_from_slice(kek).ok()?;
    let mut out = vec![0u8; key.len() + 8];
    kw.wrap_key(key, &mut out).ok()?;
    Some(out)
}

/// AES-256 key unwrap (RFC 3394 §2.2.2); `None` when the integrity check fails.
///
/// The length check comes first because `aes-kw` 0.3 itself unwraps an 8-byte input (an "empty
/// key"), which RFC 3394 does not define; Wycheproof tcId 108 caught it.
pub(crate) fn kw_unwrap(kek: &[u8; KEY_LEN], wrapped: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if wrapped.len() < 24 || !wrapped.len().is_multiple_of(8) {
        return None;
    }
    let kw = KwAes256::new_from_slice(kek).ok()?;
    let mut out = Zeroizing::new(vec![0u8; wrapped.len().checked_sub(8)?]);
    kw.unwrap_key(wrapped, &mut out).ok()?;
    Some(out)
}

/// AES-256-GCM encryption with a 96-bit nonce: returns `prefix || ciphertext || 16-byte tag`.
pub(crate) fn gcm_seal(
    key: &GcmKey,
    nonce: &[u8; 12],
    aad: &[u8],
    prefix: &[u8],
    pt: &[u8],
) -> Result<Vec<u8>> {
    use ring::aead::{AES_256_GCM, Aad, Nonce};
    // Sealed in place in a block sized for the prefix and the tag up front: the ciphertext
    // overwrites the plaintext copy, and on failure that copy is wiped before it is freed.
    let mut buf = Vec::with_capacity(prefix.len() + pt.len() + AES_256_GCM.tag_len());
    buf.extend_from_slice(prefix);
    buf.extend_from_slice(pt);
    match key.0.seal_in_place_separate_tag(
        Nonce::assume_unique_for_key(*nonce),
        Aad::from(aad),
        &mut buf[prefix.len()..],
    ) {
        Ok(tag) => {
            buf.extend_from_slice(tag.as_ref());
            Ok(buf)
        }
        Err(_) => {
            buf.zeroize();
            Err(KmsError::Internal("AES-GCM encryption failed".into()))
        }
    }
}

/// AES-256-GCM decryption of `ciphertext || tag`; `None` when authentication fails.
pub(crate) fn gcm_open(
    key: &GcmKey,
    nonce: &[u8; 12],
    aad: &[u8],
    ct: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    use ring::aead::{Aad, Nonce};
    // ring decrypts before it compares the tag, so a refused input may leave plaintext behind in
    // the buffer: `Zeroizing` wipes it either way.
    let mut buf = Zeroizing::new(ct.to_vec());
    let len = key
        .0
        .open_in_place(
            Nonce::assume_unique_for_key(*nonce),
            Aad::from(aad),
            &mut buf,
        )
        .ok()?
        .len();
    buf.truncate(len);
    Some(buf)
}

/// Appends `u32be(len) || bytes`; [`KmsError::PayloadTooLarge`] for a `field` longer than a
/// 32-bit length prefix states (2^32 - 1 bytes), rather than a prefix that saturates.
pub fn put_lp(out: &mut Vec<u8>, field: &'static str, bytes: &[u8]) -> Result<()> {
    out.extend_from_slice(&len32(field, bytes.len())?);
    out.extend_from_slice(bytes);
    Ok(())
}

/// The 32-bit big-endian length prefix of a `field` of `len` bytes (or items);
/// [`KmsError::PayloadTooLarge`] past 2^32 - 1.
pub fn len32(field: &'static str, len: usize) -> Result<[u8; 4]> {
    u32::try_from(len)
        .map(u32::to_be_bytes)
        .map_err(|_| KmsError::PayloadTooLarge {
            field,
            len,
            max: usize::try_from(u32::MAX).unwrap_or(usize::MAX),
        })
}

/// Creates `path` with mode 0600 and writes `bytes`, failing if it exists; syncs the file and
/// its folder.
pub(crate) fn write_new_secret_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    // The file's name is durable too: a root key that vanished after a crash would orphan every
    // key wrapped under it.
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(version: u32, domain: &str) -> WrapContext<'_> {
        WrapContext {
            uuid: Uuid::from_u128(0x4f1cd4de_ab64_4807_920a_47fc42e7f0d0),
            version,
            domain,
            region: "region",
        }
    }

    /// The boundary of the length prefixes of the KEK info and the blob AAD: 2^32 - 1 is encoded,
    /// 2^32 is a typed error (checked on the length alone: nothing large is allocated).
    #[test]
    fn length_prefixes_fail_past_u32_max_instead_of_saturating() {
        let max = usize::try_from(u32::MAX).unwrap();
        assert_eq!(len32("f", max).unwrap(), [0xff; 4]);
        assert!(matches!(
            len32("encryption context value", max + 1),
            Err(KmsError::PayloadTooLarge {
                field: "encryption context value",
                len,
                max: m,
            }) if len == max + 1 && m == max
        ));
        let mut out = Vec::new();
        put_lp(&mut out, "f", b"ab").unwrap();
        assert_eq!(out, b"\0\0\0\x02ab");
    }

    fn wycheproof(file: &str) -> serde_json::Value {
        let path = format!(
            "{}/../testdata/wycheproof/testvectors_v1/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn h(v: &serde_json::Value) -> Vec<u8> {
        hex::decode(v.as_str().unwrap()).unwrap()
    }

    /// The AES-256-GCM calls the ciphertext blobs make (96-bit nonce, 128-bit tag), against every
    /// matching Wycheproof vector.
    #[test]
    fn the_store_check_value_is_stable_per_root_key_and_holds_no_key_bytes() {
        let a = RootKey::from_bytes([1; KEY_LEN]);
        let check = a.store_check_value().unwrap();
        assert_eq!(
            check,
            RootKey::from_bytes([1; KEY_LEN])
                .store_check_value()
                .unwrap()
        );
        assert_ne!(
            check,
            RootKey::from_bytes([2; KEY_LEN])
                .store_check_value()
                .unwrap()
        );
        assert_ne!(check, [1; KEY_LEN]);
        assert_ne!(&check[..], a.prk.expose());
    }

    #[test]
    fn wycheproof_aes_256_gcm_as_blobs_call_it() {
        let doc = wycheproof("aes_gcm_test.json");
        let mut checked = 0;
        for g in doc["testGroups"].as_array().unwrap() {
            if g["keySize"] != 256 || g["ivSize"] != 96 || g["tagSize"] != 128 {
                continue;
            }
            for t in g["tests"].as_array().unwrap() {
                let id = &t["tcId"];
                let key = GcmKey::new(&SecretKey::from_bytes(h(&t["key"]).try_into().unwrap()));
                let nonce: [u8; 12] = h(&t["iv"]).try_into().unwrap();
                let (aad, msg) = (h(&t["aad"]), h(&t["msg"]));
                let mut ct = h(&t["ct"]);
                ct.extend(h(&t["tag"]));
                let opened = gcm_open(&key, &nonce, &aad, &ct);
                match t["result"].as_str().unwrap() {
                    "valid" => {
                        assert_eq!(
                            gcm_seal(&key, &nonce, &aad, &[], &msg).unwrap(),
                            ct,
                            "tcId {id}"
                        );
                        assert_eq!(
                            opened.as_deref().map(Vec::as_slice),
                            Some(&msg[..]),
                            "tcId {id}"
                        );
                    }
                    "invalid" => assert!(opened.is_none(), "tcId {id} must not decrypt"),
                    _ => {}
                }
                checked += 1;
            }
        }
        assert!(checked > 20, "only {checked} vectors matched");
    }

    /// The AES-256 key wrap that protects CMK material, against every 256-bit-KEK Wycheproof vector.
    #[test]
    fn wycheproof_aes_256_key_wrap_as_the_store_calls_it() {
        let doc = wycheproof("aes_wrap_test.json");
        let mut checked = 0;
        for g in doc["testGroups"].as_array().unwrap() {
            if g["keySize"] != 256 {
                continue;
            }
            for t in g["tests"].as_array().unwrap() {
                let id = &t["tcId"];
                let kek: [u8; 32] = h(&t["key"]).try_into().unwrap();
                let (msg, ct) = (h(&t["msg"]), h(&t["ct"]));
                let unwrapped = kw_unwrap(&kek, &ct);
                match t["result"].as_str().unwrap() {
                    "valid" => {
                        assert_eq!(kw_wrap(&kek, &msg), Some(ct.clone()), "tcId {id}");
                        assert_eq!(
                            unwrapped.as_deref().map(Vec::as_slice),
                            Some(&msg[..]),
                            "tcId {id}"
                        );
                    }
                    "invalid" => assert!(unwrapped.is_none(), "tcId {id} must not unwrap"),
                    _ => {}
                }
                checked += 1;
            }
        }
        assert!(checked > 20, "only {checked} vectors matched");
    }

    #[test]
    fn wrap_round_trips_and_binds_identity() {
        let root = RootKey::from_bytes([7u8; 32]);
        let material = SecretKey::from_bytes([9u8; 32]);
        let w = root.wrap(&ctx(1, "d1"), &material).unwrap();
        assert_eq!(root.unwrap(&ctx(1, "d1"), &w).unwrap().expose(), &[9u8; 32]);
        // Another version, tenant or root key cannot unwrap it.
        assert!(root.unwrap(&ctx(2, "d1"), &w).is_err());
        assert!(root.unwrap(&ctx(1, "d2"), &w).is_err());
        assert!(
            RootKey::from_bytes([8u8; 32])
                .unwrap(&ctx(1, "d1"), &w)
                .is_err()
        );
        let mut flipped = w;
        flipped[5] ^= 1;
        assert!(root.unwrap(&ctx(1, "d1"), &flipped).is_err());
        assert!(root.unwrap(&ctx(1, "d1"), &w[..39]).is_err());
    }

    /// Pins FORMATS.md §2: a later version must still unwrap what version 1 wrapped.
    #[test]
    fn wrap_v1_known_answer() {
        let kat: serde_json::Value =
            serde_json::from_str(include_str!("../tests/kat/cmk_wrap_v1.json")).unwrap();
        let hexf = |k: &str| hex::decode(kat[k].as_str().unwrap()).unwrap();
        let root = RootKey::from_bytes(hexf("root_key").try_into().unwrap());
        let c = WrapContext {
            uuid: kat["uuid"].as_str().unwrap().parse().unwrap(),
            version: u32::try_from(kat["version"].as_u64().unwrap()).unwrap(),
            domain: kat["domain"].as_str().unwrap(),
            region: kat["region"].as_str().unwrap(),
        };
        let material: [u8; 32] = hexf("material").try_into().unwrap();
        let wrapped = hexf("wrapped");
        assert_eq!(root.unwrap(&c, &wrapped).unwrap().expose(), &material);
        assert_eq!(
            root.wrap(&c, &SecretKey::from_bytes(material))
                .unwrap()
                .to_vec(),
            wrapped,
            "AES-KW is deterministic: version 1 must wrap to the pinned bytes"
        );
    }

    #[test]
    fn root_key_file_is_created_with_mode_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("root.key");
        let a = RootKey::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let b = RootKey::load_or_create(&path).unwrap();
        assert_eq!(a.prk.expose(), b.prk.expose());
        std::fs::write(&path, [1u8; 5]).unwrap();
        let err = RootKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("exactly 32 bytes"), "{err}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = SecretKey::from_bytes([0xAB; 32]);
        assert_eq!(format!("{s:?}"), "SecretKey(..)");
        let r = RootKey::from_bytes([0xAB; 32]);
        assert!(!format!("{r:?}").contains("ab"));
    }
}
