//! A request whose handler panics is answered, in its API's shape, as an internal error
//! instead of the stream being reset or the connection closed without an answer. A panic is a
//! bug; this keeps the client's answer and the daemon's log clear about it.
//!
//! The OBS gateway answers its handlers' panics through it too, as it accepts its connections
//! through [`crate::listener`]. Each of the daemon's front-ends catches twice: around the keyring's part of a call (its `dispatch`), where a
//! panic becomes the API's internal error and is audited and answered as every refusal is; and
//! around the whole call, for a panic before the caller is known (body, framing,
//! authentication), which is answered but, without a caller, not audited.
//!
//! Catching changes the answer only: tokio already keeps a panic inside the task serving the
//! connection, so the daemon serves on either way. Store transactions roll back when dropped,
//! and the daemon's locks are taken again after a panic.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;

/// `served`'s answer, or if it panicked, `internal()` (the API's internal-error answer), with
/// the panic logged as an error naming `api`.
pub fn caught<F: Future>(
    api: &'static str,
    served: F,
    internal: fn() -> F::Output,
) -> impl Future<Output = F::Output> {
    AssertUnwindSafe(served).catch_unwind().map(move |outcome| {
        outcome.unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(not a message)");
            tracing::error!(api, panic = what, "a request's handler panicked");
            internal()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    async fn panics() -> u32 {
        panic!("a bug in a handler")
    }

    #[test]
    fn a_panicking_handler_gets_the_internal_answer_and_others_their_own() {
        assert_eq!(block_on(caught("test", panics(), || 500)), 500);
        assert_eq!(block_on(caught("test", async { 200 }, || 500)), 200);
    }

    fn json(response: axum::response::Response) -> (u16, serde_json::Value) {
        let status = response.status().as_u16();
        let body = block_on(axum::body::to_bytes(response.into_body(), 1 << 16)).unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    /// Each API answers a panic as it answers its own internal errors.
    #[test]
    fn each_api_answers_a_panic_in_its_own_shape() {
        assert_eq!(
            json(crate::http::huawei::internal()),
            (
                500,
                serde_json::json!({"error": {"error_code": "KMSBOX.0500", "error_msg": "internal error"}})
            )
        );
        assert_eq!(
            json(crate::http::vault::internal()),
            (500, serde_json::json!({"errors": ["internal error"]}))
        );
        let grpc =
            tonic::Status::from_header_map(crate::grpc::service::internal().unwrap().headers())
                .unwrap();
        assert_eq!(grpc.code(), tonic::Code::Internal);
        assert_eq!(
            kms_proto::ErrorCode::of_status(&grpc),
            Some(kms_proto::ErrorCode::Internal)
        );
    }
}
