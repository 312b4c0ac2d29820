//! `kmsctl`'s one error type. `main` prints it once, as `kmsctl: <message>`, and exits 1.

use std::fmt;
use std::io;
use std::path::PathBuf;

use kms_proto::ErrorCode;

/// Everything a `kmsctl` command can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The command line asks for something that cannot be done (a missing or conflicting flag).
    #[error("{0}")]
    Usage(&'static str),
    /// A flag's value is malformed.
    #[error("{flag}: {reason}")]
    Argument {
        /// The flag, or what the value is (`ciphertext blob is not base64`).
        flag: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A file named on the command line could not be read, written or renamed into place.
    #[error("{flag} {}: {source}", path.display())]
    Io {
        /// The flag that named the file (`--in`, `--out`, `--local-kek`).
        flag: &'static str,
        /// The file (`-` for standard input or output).
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The key-encryption key file holds neither 32 raw bytes nor 64 hex digits.
    #[error("--local-kek {}: expected 32 raw bytes or 64 hex digits", path.display())]
    KekFormat {
        /// The file.
        path: PathBuf,
    },
    /// `--endpoint` is not a URI tonic accepts.
    #[error("--endpoint {endpoint}: {source}")]
    Endpoint {
        /// The value given.
        endpoint: String,
        /// Why tonic refused it.
        #[source]
        source: tonic::transport::Error,
    },
    /// The daemon could not be reached (the message carries the transport error's causes, as
    /// tonic's own says only `transport error`).
    #[error("cannot reach {endpoint}: {}", with_causes(source))]
    Connect {
        /// The daemon's address.
        endpoint: String,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The daemon refused the call.
    #[error("{0}")]
    Refused(Refusal),
    /// Sealing or opening failed (wrong key or context, a tampered, truncated or foreign object,
    /// or the daemon's refusal through the envelope key provider).
    #[error(transparent)]
    Envelope(#[from] envelope::Error),
    /// A blocking step of `seal` or `open` could not be run to its end.
    #[error("internal error: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl CliError {
    /// An I/O error on the file that `flag` names.
    pub(crate) fn io(flag: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        CliError::Io {
            flag,
            path: path.into(),
            source,
        }
    }

    /// A malformed value of `flag`.
    pub(crate) fn argument(flag: &'static str, reason: impl fmt::Display) -> Self {
        CliError::Argument {
            flag,
            reason: reason.to_string(),
        }
    }
}

/// `e: its cause: its cause's cause ...`, each message once.
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut last = text.clone();
    let mut cause = e.source();
    while let Some(c) = cause {
        let msg = c.to_string();
        if msg != last {
            text.push_str(": ");
            text.push_str(&msg);
        }
        last = msg;
        cause = c.source();
    }
    text
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        CliError::Refused(Refusal::of(&status))
    }
}

/// The daemon's refusal of a call: its gRPC code, its stable `x-kms-error-code` when it sent one
/// that kmsbox knows, and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The gRPC status code.
    pub(crate) grpc: tonic::Code,
    /// The `x-kms-error-code` trailer.
    pub(crate) code: Option<ErrorCode>,
    /// The daemon's message.
    pub(crate) message: String,
}

impl Refusal {
    /// The refusal that `status` carries.
    pub(crate) fn of(status: &tonic::Status) -> Self {
        Refusal {
            grpc: status.code(),
            code: ErrorCode::of_status(status),
            message: status.message().to_owned(),
        }
    }
}

impl fmt::Display for Refusal {
    /// `KMS.0207 (NotFound): key not found`, or `Unavailable: ...` without a code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "{code} ({:?}): {}", self.grpc, self.message),
            None => write!(f, "{:?}: {}", self.grpc, self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_its_stable_code_then_its_grpc_code() {
        let status = ErrorCode::KeyNotFound.status("key not found");
        assert_eq!(
            CliError::from(status).to_string(),
            "KMS.0207 (NotFound): key not found"
        );
        let bare = tonic::Status::unavailable("down");
        assert_eq!(CliError::from(bare).to_string(), "Unavailable: down");
    }

    #[test]
    fn causes_are_chained_once_each() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] Middle);
        #[derive(Debug, thiserror::Error)]
        #[error("middle")]
        struct Middle(#[source] io::Error);
        let e = Outer(Middle(io::Error::other("middle")));
        assert_eq!(with_causes(&e), "outer: middle");
    }

    #[test]
    fn io_errors_name_the_flag_and_the_path() {
        let e = CliError::io(
            "--in",
            "/nope",
            io::Error::new(io::ErrorKind::NotFound, "gone"),
        );
        assert_eq!(e.to_string(), "--in /nope: gone");
    }
}
