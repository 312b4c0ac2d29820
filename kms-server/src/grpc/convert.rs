//! Conversions between the keyring's types and the `kms.v1` wire types.

use kms_proto::v1 as pb;
use tonic::Status;

use crate::error::KmsError;
use crate::store::{Creator, KeyRecord, KeyState};

impl From<KmsError> for Status {
    /// The error's code decides the gRPC status code and goes in the `x-kms-error-code` trailer.
    fn from(e: KmsError) -> Status {
        e.code().status(e.to_string())
    }
}

/// A key's metadata as the API returns it.
pub fn metadata(rec: &KeyRecord) -> pb::KeyMetadata {
    pb::KeyMetadata {
        key_id: rec.full_id_string(),
        region: rec.region.as_str().to_owned(),
        domain_id: rec.domain.as_str().to_owned(),
        alias: rec.alias.clone(),
        description: rec.description.clone(),
        state: key_state(rec.state).into(),
        creator: creator(rec.creator).into(),
        created_at: Some(timestamp(rec.created_at_ms)),
        deletion_date: rec.deletion_date_ms.map(timestamp),
        current_version: rec.current_version,
        service: rec.service.clone(),
        key_uuid: rec.uuid.hyphenated().to_string(),
        rotation_enabled: rec.rotation.enabled,
        rotation_interval_days: rec.rotation.interval_days,
        next_rotation_time: rec.next_rotation_ms().map(timestamp),
        context_required: rec.policy.context_required,
        tags: rec
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// A key's rotation schedule and history.
pub fn rotation_status(rec: &KeyRecord) -> pb::GetKeyRotationStatusResponse {
    pb::GetKeyRotationStatusResponse {
        key_id: rec.full_id().to_string(),
        rotation_enabled: rec.rotation.enabled,
        rotation_interval_days: rec.rotation.interval_days,
        last_rotation_time: (rec.current_version > 1)
            .then(|| timestamp(rec.current_version_made_ms())),
        number_of_rotations: rec.current_version.saturating_sub(1),
        next_rotation_time: rec.next_rotation_ms().map(timestamp),
    }
}

fn key_state(s: KeyState) -> pb::KeyState {
    match s {
        KeyState::Enabled => pb::KeyState::Enabled,
        KeyState::Disabled => pb::KeyState::Disabled,
        KeyState::PendingDeletion => pb::KeyState::PendingDeletion,
    }
}

fn creator(c: Creator) -> pb::KeyCreator {
    match c {
        Creator::Customer => pb::KeyCreator::Customer,
        Creator::Service => pb::KeyCreator::Service,
    }
}

pub(crate) fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}
