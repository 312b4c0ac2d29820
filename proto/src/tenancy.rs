//! Who a client speaks for: the one way every client in the workspace puts its domain, region,
//! bearer token and request ID on a call.
//!
//! ```
//! use kms_proto::tenancy::Tenancy;
//! let tenancy = Tenancy::for_domain("783fc6652cf246c096ea836694f71855")?
//!     .with_region("region")?
//!     .with_token("a long random secret")?;
//! let req = tenancy.request(());
//! assert_eq!(req.metadata().get("x-kms-region").unwrap(), "region");
//! # Ok::<(), kms_proto::tenancy::TenancyError>(())
//! ```
//!
//! As a tonic interceptor it tags every call of a client:
//! `KeyManagementServiceClient::with_interceptor(channel, tenancy)`.

use std::fmt;

use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::metadata::{AUTHORIZATION, DOMAIN_ID, REGION, REQUEST_ID};

/// The caller's tenancy metadata. Each part is optional: a daemon with a tenants file takes the
/// domain from the token, and one without a `x-kms-region` uses its `--region`.
#[derive(Clone, Default)]
pub struct Tenancy {
    domain: Option<AsciiMetadataValue>,
    region: Option<AsciiMetadataValue>,
    authorization: Option<AsciiMetadataValue>,
    request_id: Option<AsciiMetadataValue>,
}

/// A tenancy value that cannot travel as gRPC metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} must be visible ASCII")]
pub struct TenancyError(pub &'static str);

fn value(what: &'static str, s: &str) -> Result<AsciiMetadataValue, TenancyError> {
    // http accepts bytes over 0x7f in a header value; the daemon reads metadata as ASCII text.
    if !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(TenancyError(what));
    }
    AsciiMetadataValue::try_from(s).map_err(|_| TenancyError(what))
}

impl Tenancy {
    /// No metadata at all (the daemon answers such a call as unauthenticated).
    pub fn none() -> Self {
        Self::default()
    }

    /// Speaks for `domain` (`x-kms-domain-id`).
    pub fn for_domain(domain: &str) -> Result<Self, TenancyError> {
        Self::none().with_domain(domain)
    }

    /// Sets the domain (`x-kms-domain-id`).
    pub fn with_domain(mut self, domain: &str) -> Result<Self, TenancyError> {
        self.domain = Some(value("domain ID", domain)?);
        Ok(self)
    }

    /// Sets the region (`x-kms-region`); without it the daemon uses its `--region`.
    pub fn with_region(mut self, region: &str) -> Result<Self, TenancyError> {
        self.region = Some(value("region", region)?);
        Ok(self)
    }

    /// Sends `authorization: Bearer <token>`, for daemons that run with a tenants file.
    pub fn with_token(mut self, token: &str) -> Result<Self, TenancyError> {
        let mut v = value("bearer token", &format!("Bearer {token}"))?;
        v.set_sensitive(true);
        self.authorization = Some(v);
        Ok(self)
    }

    /// Sends `x-kms-request-id`, which the daemon writes to the audit log instead of making one.
    pub fn with_request_id(mut self, id: &str) -> Result<Self, TenancyError> {
        self.request_id = Some(value("request ID", id)?);
        Ok(self)
    }

    /// Puts this tenancy's metadata on `md`, replacing what was there under the same names.
    pub fn apply(&self, md: &mut MetadataMap) {
        for (name, v) in [
            (DOMAIN_ID, &self.domain),
            (REGION, &self.region),
            (AUTHORIZATION, &self.authorization),
            (REQUEST_ID, &self.request_id),
        ] {
            if let Some(v) = v {
                md.insert(name, v.clone());
            }
        }
    }

    /// `message` as a request that carries this tenancy.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut req = Request::new(message);
        self.apply(req.metadata_mut());
        req
    }
}

impl Interceptor for Tenancy {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        self.apply(req.metadata_mut());
        Ok(req)
    }
}

impl fmt::Debug for Tenancy {
    /// The token never prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenancy")
            .field("domain", &self.domain)
            .field("region", &self.region)
            .field("token", &self.authorization.as_ref().map(|_| "<redacted>"))
            .field("request_id", &self.request_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_lands_under_its_metadata_name() {
        let t = Tenancy::for_domain("d1")
            .and_then(|t| t.with_region("r1"))
            .and_then(|t| t.with_token("tok"))
            .and_then(|t| t.with_request_id("req-1"))
            .unwrap();
        let req = t.request(());
        let md = req.metadata();
        assert_eq!(md.get(DOMAIN_ID).unwrap(), "d1");
        assert_eq!(md.get(REGION).unwrap(), "r1");
        assert_eq!(md.get(AUTHORIZATION).unwrap(), "Bearer tok");
        assert_eq!(md.get(REQUEST_ID).unwrap(), "req-1");
    }

    #[test]
    fn absent_parts_send_nothing() {
        let req = Tenancy::for_domain("d1").unwrap().request(());
        assert_eq!(req.metadata().len(), 1);
        assert!(Tenancy::none().request(()).metadata().is_empty());
    }

    #[test]
    fn the_interceptor_replaces_rather_than_repeats() {
        let mut t = Tenancy::for_domain("d1").unwrap();
        let mut req = Request::new(());
        req.metadata_mut()
            .insert(DOMAIN_ID, AsciiMetadataValue::from_static("other"));
        let req = t.call(req).unwrap();
        let all: Vec<_> = req.metadata().get_all(DOMAIN_ID).iter().collect();
        assert_eq!(all, ["d1"]);
    }

    #[test]
    fn values_that_are_not_metadata_are_refused_by_name() {
        assert_eq!(
            Tenancy::for_domain("d\n1").unwrap_err(),
            TenancyError("domain ID")
        );
        assert_eq!(
            Tenancy::none().with_token("é").unwrap_err(),
            TenancyError("bearer token")
        );
    }

    #[test]
    fn debug_never_prints_the_token() {
        let t = Tenancy::for_domain("d1")
            .unwrap()
            .with_token("s3cret-token")
            .unwrap();
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
