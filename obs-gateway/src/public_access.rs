//! A bucket's public access block (S3's `PublicAccessBlockConfiguration`, which OBS shares): the
//! four switches, and its document. No I/O.
//!
//! What each switch does here: ACLs are never public in the gateway (an ACL other than the
//! owner's full control is refused, `handler/acl.rs`), so `BlockPublicAcls` and
//! `IgnorePublicAcls` hold whatever they say; `BlockPublicPolicy` refuses a public bucket policy
//! when one is set; `RestrictPublicBuckets` makes a public policy grant other tenants nothing
//! (obs-adapter's rule 8).

use serde::{Deserialize, Serialize};

use crate::xml;

/// The four switches; absent ones are `false`, as in S3.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    /// `BlockPublicAcls`.
    pub block_public_acls: bool,
    /// `IgnorePublicAcls`.
    pub ignore_public_acls: bool,
    /// `BlockPublicPolicy`: a public bucket policy is refused when set.
    pub block_public_policy: bool,
    /// `RestrictPublicBuckets`: a public policy grants other tenants nothing.
    pub restrict_public_buckets: bool,
}

/// The element names, in the document's order.
const NAMES: [&str; 4] = [
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
];

impl PublicAccessBlock {
    fn switches(&self) -> [bool; 4] {
        [
            self.block_public_acls,
            self.ignore_public_acls,
            self.block_public_policy,
            self.restrict_public_buckets,
        ]
    }

    /// Reads a `PublicAccessBlockConfiguration` document; `Err` says why it is malformed.
    pub fn parse(doc: &str) -> Result<Self, String> {
        if !doc.contains("<PublicAccessBlockConfiguration") {
            return Err("the body is not a PublicAccessBlockConfiguration document".into());
        }
        let mut got = [false; 4];
        for (slot, name) in got.iter_mut().zip(NAMES) {
            *slot = match xml::element(doc, name, 0).map(|(v, _)| v) {
                None => false,
                Some(v) if v.eq_ignore_ascii_case("true") => true,
                Some(v) if v.eq_ignore_ascii_case("false") => false,
                Some(v) => return Err(format!("{name} is true or false, not {v:?}")),
            };
        }
        let [
            block_public_acls,
            ignore_public_acls,
            block_public_policy,
            restrict_public_buckets,
        ] = got;
        Ok(Self {
            block_public_acls,
            ignore_public_acls,
            block_public_policy,
            restrict_public_buckets,
        })
    }

    /// The document GetPublicAccessBlock answers.
    pub fn document(&self) -> String {
        let mut s = format!(
            "{}<PublicAccessBlockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
            xml::DECL
        );
        for (name, on) in NAMES.iter().zip(self.switches()) {
            s.push_str(&format!("<{name}>{on}</{name}>"));
        }
        s.push_str("</PublicAccessBlockConfiguration>");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_read_back_and_absent_ones_are_off() {
        let all = PublicAccessBlock {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: true,
            restrict_public_buckets: true,
        };
        assert_eq!(PublicAccessBlock::parse(&all.document()), Ok(all));
        let one = PublicAccessBlock::parse(
            "<PublicAccessBlockConfiguration><RestrictPublicBuckets>TRUE</RestrictPublicBuckets></PublicAccessBlockConfiguration>",
        )
        .unwrap();
        assert_eq!(
            one,
            PublicAccessBlock {
                restrict_public_buckets: true,
                ..PublicAccessBlock::default()
            }
        );
        for bad in [
            "<Tagging/>",
            "<PublicAccessBlockConfiguration><BlockPublicAcls>yes</BlockPublicAcls></PublicAccessBlockConfiguration>",
        ] {
            assert!(PublicAccessBlock::parse(bad).is_err(), "{bad}");
        }
    }
}
