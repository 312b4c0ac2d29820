//! The caller-supplied object context and its canonical encoding.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// Application context bound into every object: for example tenant, bucket, object key, upload
/// ID. Decryption under any other context fails at the commitment check.
///
/// Keys are distinct UTF-8 strings; the encoding sorts them, so insertion order does not matter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectContext {
    pairs: BTreeMap<String, String>,
}

impl ObjectContext {
    /// An empty context.
    pub fn new() -> ObjectContext {
        ObjectContext::default()
    }

    /// Add a pair; a key given twice is an error rather than a silent overwrite.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Result<()> {
        let key = key.into();
        if self.pairs.contains_key(&key) {
            return Err(Error::DuplicateContextKey);
        }
        self.pairs.insert(key, value.into());
        Ok(())
    }

    /// Builder form of [`ObjectContext::insert`].
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Result<Self> {
        self.insert(key, value)?;
        Ok(self)
    }

    /// Build from pairs; duplicate keys are an error.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self> {
        let mut ctx = ObjectContext::new();
        for (k, v) in pairs {
            ctx.insert(k, v)?;
        }
        Ok(ctx)
    }

    /// The pairs in ascending key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The pairs as a map (for a KMS encryption context).
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.pairs
    }

    /// The canonical encoding of FORMAT.md section 4:
    /// `len32(n) || (len32(k) || k || len32(v) || v)*` in ascending bytewise key order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_len32(&mut out, self.pairs.len());
        // BTreeMap<String, _> iterates in bytewise order of the UTF-8 keys.
        for (k, v) in &self.pairs {
            put_len32(&mut out, k.len());
            out.extend_from_slice(k.as_bytes());
            put_len32(&mut out, v.len());
            out.extend_from_slice(v.as_bytes());
        }
        out
    }
}

fn put_len32(out: &mut Vec<u8>, len: usize) {
    // Contexts are small; a 4 GiB key or value is a caller bug.
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
}

/// Which body of an object a context is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyRole {
    /// The body of a single object.
    Single,
    /// Part `n` of a multipart object.
    Part(u32),
}

/// The C2SP context of a body (FORMAT.md section 4).
pub(crate) fn body_context(header: &[u8], object_ctx: &ObjectContext, role: BodyRole) -> Vec<u8> {
    const LABEL: &[u8] = b"kmsbox.org/envelope@v1 body\0";
    let enc = object_ctx.encode();
    let mut out = Vec::with_capacity(LABEL.len() + 4 + header.len() + enc.len() + 5);
    out.extend_from_slice(LABEL);
    put_len32(&mut out, header.len());
    out.extend_from_slice(header);
    out.extend_from_slice(&enc);
    match role {
        BodyRole::Single => out.push(0),
        BodyRole::Part(n) => {
            out.push(1);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_canonical_and_unambiguous() {
        let a = ObjectContext::from_pairs([("bucket", "b"), ("tenant", "t")]).expect("ctx");
        let b = ObjectContext::from_pairs([("tenant", "t"), ("bucket", "b")]).expect("ctx");
        assert_eq!(a.encode(), b.encode());
        // Moving bytes between key and value, or between pairs, changes the encoding.
        let c = ObjectContext::from_pairs([("bucketb", ""), ("tenant", "t")]).expect("ctx");
        let d = ObjectContext::from_pairs([("bucket", "bt"), ("enant", "t")]).expect("ctx");
        assert_ne!(a.encode(), c.encode());
        assert_ne!(a.encode(), d.encode());
        assert_eq!(ObjectContext::new().encode(), vec![0, 0, 0, 0]);
        let one = ObjectContext::new().with("k", "v").expect("ctx");
        assert_eq!(one.encode(), b"\0\0\0\x01\0\0\0\x01k\0\0\0\x01v".to_vec());
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        assert!(matches!(
            ObjectContext::from_pairs([("a", "1"), ("a", "2")]),
            Err(Error::DuplicateContextKey)
        ));
    }

    #[test]
    fn roles_differ() {
        let ctx = ObjectContext::new();
        let s = body_context(b"h", &ctx, BodyRole::Single);
        let p1 = body_context(b"h", &ctx, BodyRole::Part(1));
        let p2 = body_context(b"h", &ctx, BodyRole::Part(2));
        assert_ne!(s, p1);
        assert_ne!(p1, p2);
        assert_ne!(s, body_context(b"i", &ctx, BodyRole::Single));
    }
}
