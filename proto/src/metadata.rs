//! Names of the request and response metadata that carry tenancy and errors.

/// Request metadata: the caller's domain (tenant) ID.
pub const DOMAIN_ID: &str = "x-kms-domain-id";
/// Request metadata: the caller's region ID; the daemon's `--region` when absent.
pub const REGION: &str = "x-kms-region";
/// Request metadata: `Bearer <token>`, required when the daemon runs with a tenants file.
pub const AUTHORIZATION: &str = "authorization";
/// Request metadata: an optional caller-chosen request ID, echoed in the audit log.
pub const REQUEST_ID: &str = "x-kms-request-id";
/// Response metadata (trailer) on errors: a stable error code such as `KMS.0207`.
pub const ERROR_CODE: &str = "x-kms-error-code";
