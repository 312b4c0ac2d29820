//! The gateway's one clock: the time it stamps objects with (`Last-Modified`, an upload's
//! initiation) and judges their expiry by (OBS's `x-obs-expires`).
//!
//! By default it is the wall clock. With `--kms-clock` it follows the daemon's clock
//! (`kms.admin.v1.Admin/GetClock`), read once at the start of every request, so that a test that
//! moves the daemon's virtual clock (`kmsctl admin clock advance 2d`) moves the gateway's too and
//! sees objects expire. The signature check stays on the wall clock: clients sign with real time.

use kms_proto::admin::GetClockRequest;
use kms_proto::admin::admin_client::AdminClient;
use kms_proto::metadata::AUTHORIZATION;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use zeroize::Zeroizing;

/// Milliseconds since the Unix epoch on the wall clock.
pub fn wall_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The daemon's admin token (`--kms-admin-token`), for a daemon whose admin API asks for one.
/// Never printed.
#[derive(Clone)]
pub struct AdminToken(Zeroizing<String>);

impl AdminToken {
    /// Wraps the token.
    pub fn new(token: String) -> Self {
        Self(Zeroizing::new(token))
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// Why the daemon's clock could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the daemon's clock (kms.admin.v1 GetClock) could not be read: {0}")]
pub struct ClockError(String);

/// The gateway's clock.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The wall clock.
    Wall,
    /// The daemon's clock, through its admin API.
    Daemon {
        /// The admin client on the daemon's channel (boxed: the wall clock carries nothing).
        admin: Box<AdminClient<Channel>>,
        /// `Bearer <admin token>`, when the daemon's admin API asks for one. Never printed:
        /// tonic's `MetadataValue` is marked sensitive.
        bearer: Option<MetadataValue<Ascii>>,
    },
}

impl Clock {
    /// The daemon's clock over `channel`, presenting `admin_token` when given.
    pub fn daemon(channel: Channel, admin_token: Option<&AdminToken>) -> Result<Self, ClockError> {
        let bearer = admin_token
            .map(|t| {
                let mut v: MetadataValue<Ascii> = Zeroizing::new(format!("Bearer {}", *t.0))
                    .parse()
                    .map_err(|_| ClockError("the admin token is not ASCII text".into()))?;
                v.set_sensitive(true);
                Ok(v)
            })
            .transpose()?;
        Ok(Self::Daemon {
            admin: Box::new(AdminClient::new(channel)),
            bearer,
        })
    }

    /// How far this clock is ahead of the wall clock, in milliseconds (0 on the wall clock): the
    /// request's time is the wall clock plus this, read once per request.
    pub async fn offset_ms(&self) -> Result<i64, ClockError> {
        let Self::Daemon { admin, bearer } = self else {
            return Ok(0);
        };
        let mut req = tonic::Request::new(GetClockRequest {});
        if let Some(b) = bearer {
            req.metadata_mut().insert(AUTHORIZATION, b.clone());
        }
        let before = wall_ms();
        let now = admin
            .clone()
            .get_clock(req)
            .await
            .map_err(|s| ClockError(format!("{}: {}", s.code(), s.message())))?
            .into_inner()
            .now
            .ok_or_else(|| ClockError("the answer has no time".into()))?;
        let daemon_ms = now
            .seconds
            .checked_mul(1000)
            .and_then(|s| s.checked_add(i64::from(now.nanos / 1_000_000)))
            .ok_or_else(|| ClockError("the daemon's time is out of range".into()))?;
        Ok(daemon_ms.saturating_sub(before))
    }
}
