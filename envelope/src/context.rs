//! The caller-supplied object context and its canonical encoding.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// Application context bound into every object: for example tenant, bucket, object key, upload
/// ID. Decryption under any other context fails at the commitment check.
///
/// The context is the only thing that ties an object to its place and version (FORMAT.md
/// section 7). An empty context, which is allowed, or one that does not tell objects apart (only a
/// tenant or bucket) lets anyone who can write the storage move or swap objects, and they open
/// without complaint; and an old version stored again under the same context opens too. Storage
/// engines should bind at least the bucket, the object name, and a version or generation number
/// kept in their own metadata.
///
/// Keys are distinct UTF-8 strings; the encoding sorts them, so insertion order does not matter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectContext {
    pairs: BTreeMap<String, String>,
}

impl ObjectContext {
    /// An empty context. It binds an object to nothing: see the type's documentation before
    /// sealing under it.
    pub fn new() -> ObjectContext {
        ObjectContext::default()
    }

    /// Add a pair; a key given twice is an error rather than a silent overwrite, and so is a key
    /// or value longer than its 32-bit length prefix ([`Error::LengthPrefixOverflow`]).
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Result<()> {
        let key = key.into();
        let value = value.into();
        if self.pairs.contains_key(&key) {
            return Err(Error::DuplicateContextKey);
        }
        len32("context key", key.len())?;
        len32("context value", value.len())?;
        len32("number of context pairs", self.pairs.len() + 1)?;
        self.pairs.insert(key, value);
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
    ///
    /// [`Error::LengthPrefixOverflow`] for a field longer than 2^32 - 1 bytes (which
    /// [`ObjectContext::insert`] already refuses): a length prefix never saturates.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        out.extend_from_slice(&len32("number of context pairs", self.pairs.len())?);
        // BTreeMap<String, _> iterates in bytewise order of the UTF-8 keys.
        for (k, v) in &self.pairs {
            out.extend_from_slice(&len32("context key", k.len())?);
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&len32("context value", v.len())?);
            out.extend_from_slice(v.as_bytes());
        }
        Ok(out)
    }
}

/// The 32-bit big-endian length prefix of a field of `len` bytes (or items);
/// [`Error::LengthPrefixOverflow`] past 2^32 - 1 rather than a prefix that lies.
pub(crate) fn len32(field: &'static str, len: usize) -> Result<[u8; 4]> {
    u32::try_from(len)
        .map(u32::to_be_bytes)
        .map_err(|_| Error::LengthPrefixOverflow { field, len })
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
pub(crate) fn body_context(
    header: &[u8],
    object_ctx: &ObjectContext,
    role: BodyRole,
) -> Result<Vec<u8>> {
    const LABEL: &[u8] = b"kmsbox.org/envelope@v1 body\0";
    let header_len = len32("header", header.len())?;
    let enc = object_ctx.encode()?;
    let mut out = Vec::with_capacity(LABEL.len() + 4 + header.len() + enc.len() + 5);
    out.extend_from_slice(LABEL);
    out.extend_from_slice(&header_len);
    out.extend_from_slice(header);
    out.extend_from_slice(&enc);
    match role {
        BodyRole::Single => out.push(0),
        BodyRole::Part(n) => {
            out.push(1);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_canonical_and_unambiguous() {
        let a = ObjectContext::from_pairs([("bucket", "b"), ("tenant", "t")]).expect("ctx");
        let b = ObjectContext::from_pairs([("tenant", "t"), ("bucket", "b")]).expect("ctx");
        assert_eq!(a.encode().expect("enc"), b.encode().expect("enc"));
        // Moving bytes between key and value, or between pairs, changes the encoding.
        let c = ObjectContext::from_pairs([("bucketb", ""), ("tenant", "t")]).expect("ctx");
        let d = ObjectContext::from_pairs([("bucket", "bt"), ("enant", "t")]).expect("ctx");
        assert_ne!(a.encode().expect("enc"), c.encode().expect("enc"));
        assert_ne!(a.encode().expect("enc"), d.encode().expect("enc"));
        assert_eq!(
            ObjectContext::new().encode().expect("enc"),
            vec![0, 0, 0, 0]
        );
        let one = ObjectContext::new().with("k", "v").expect("ctx");
        assert_eq!(
            one.encode().expect("enc"),
            b"\0\0\0\x01\0\0\0\x01k\0\0\0\x01v".to_vec()
        );
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
        let body = |h: &[u8], role| body_context(h, &ctx, role).expect("context");
        let s = body(b"h", BodyRole::Single);
        let p1 = body(b"h", BodyRole::Part(1));
        let p2 = body(b"h", BodyRole::Part(2));
        assert_ne!(s, p1);
        assert_ne!(p1, p2);
        assert_ne!(s, body(b"i", BodyRole::Single));
    }

    /// The boundary of every length prefix: 2^32 - 1 is encoded, 2^32 is a typed error (checked
    /// on the length alone, so the test allocates nothing large).
    #[test]
    fn length_prefixes_fail_past_u32_max_instead_of_saturating() {
        let max = usize::try_from(u32::MAX).expect("64-bit target");
        assert_eq!(len32("f", 0).expect("0"), [0, 0, 0, 0]);
        assert_eq!(len32("f", max).expect("max"), [0xff; 4]);
        assert!(matches!(
            len32("context value", max + 1),
            Err(Error::LengthPrefixOverflow {
                field: "context value",
                len
            }) if len == max + 1
        ));
        assert!(matches!(
            len32("f", usize::MAX),
            Err(Error::LengthPrefixOverflow { .. })
        ));
    }
}
