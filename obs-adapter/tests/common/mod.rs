//! Shared fixtures: the seed document's tenant, region and bucket, and request helpers.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use kms_proto::key_id::{DomainId, FullKeyId, RegionId};
use obs_adapter::{
    AdapterConfig, AdapterError, BucketFacts, Caller, Decision, FakeKeyService, KeyScope,
    ObsAdapter, ObsRequest, Operation, StoredObject,
};

/// The seed's region.
pub(crate) const REGION: &str = "region";
/// Another region.
pub(crate) const OTHER_REGION: &str = "cn-north-4";
/// The seed's tenant (the domain in its sample responses).
pub(crate) const OWNER: &str = "783fc6652cf246c096ea836694f71855";
/// Another tenant (the domain in the seed's key-ID examples).
pub(crate) const OTHER: &str = "domainiddomainiddomainiddoma0001";
/// The seed's bucket.
pub(crate) const BUCKET: &str = "examplebucket";
/// The key UUID of the seed's sample responses 1, 3 and 4.
pub(crate) const SEED_KEY_UUID: &str = "522d6070-5ad3-4765-9737-9312ddc72cdb";

pub(crate) fn domain(s: &str) -> DomainId {
    DomainId::parse(s).unwrap()
}

pub(crate) fn region(s: &str) -> RegionId {
    RegionId::parse(s).unwrap()
}

pub(crate) fn scope(d: &str, r: &str) -> KeyScope {
    KeyScope::new(domain(d), region(r))
}

pub(crate) fn caller(d: &str) -> Caller {
    Caller::new(domain(d))
}

pub(crate) fn bucket() -> BucketFacts {
    BucketFacts::new(BUCKET, region(REGION), domain(OWNER))
}

pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

pub(crate) fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub(crate) struct Env {
    pub(crate) fake: Arc<FakeKeyService>,
    pub(crate) adapter: ObsAdapter<Arc<FakeKeyService>>,
}

impl Env {
    pub(crate) fn new() -> Self {
        Self::with_config(AdapterConfig::default())
    }

    pub(crate) fn with_config(config: AdapterConfig) -> Self {
        Self::from_fake(FakeKeyService::new(), config)
    }

    pub(crate) fn from_fake(fake: FakeKeyService, config: AdapterConfig) -> Self {
        let fake = Arc::new(fake);
        let adapter = ObsAdapter::with_config(Arc::clone(&fake), config);
        Self { fake, adapter }
    }

    /// The owner's OBS default key in the seed region, imported with the seed's UUID.
    pub(crate) fn seed_default_key(&self) -> FullKeyId {
        self.fake
            .import_default_key(&scope(OWNER, REGION), "obs", SEED_KEY_UUID.parse().unwrap())
            .unwrap()
    }

    /// Decides a request of `op` by `who` on bucket `b` with the given headers.
    pub(crate) async fn decide(
        &self,
        op: Operation,
        who: &str,
        b: &BucketFacts,
        h: &HeaderMap,
        stored: Option<&StoredObject>,
    ) -> Result<Decision, AdapterError> {
        let c = caller(who);
        let mut req = ObsRequest::new(op, &c, b, "obj", h);
        if let Some(s) = stored {
            req = req.with_stored(s);
        }
        self.adapter.decide(&req).await
    }

    /// A PutObject by the owner on the seed bucket.
    pub(crate) async fn put(&self, h: &[(&str, &str)]) -> Result<Decision, AdapterError> {
        self.decide(Operation::PutObject, OWNER, &bucket(), &headers(h), None)
            .await
    }
}

/// HTTP status and OBS code of an error.
pub(crate) fn code(e: &AdapterError) -> (u16, &'static str) {
    let (s, c) = e.status_and_code();
    (s.as_u16(), c)
}

/// The key ID in a decision's response headers.
pub(crate) fn header_key_id(d: &Decision) -> Option<String> {
    d.response_headers
        .get("x-obs-server-side-encryption-kms-key-id")
        .map(|v| v.to_str().unwrap().to_owned())
}
