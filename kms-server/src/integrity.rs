//! The key store's integrity under the root key (FORMATS.md §3): a record MAC per key, and the
//! store MAC over every key's record MAC.
//!
//! The record MAC binds every field of a key's row and of its versions' rows except the nonce
//! reservation: identity (UUID, domain, region), alias, description, state, creator, service,
//! creation and deletion dates, current version, and each version's wrap scheme and wrapped
//! material. Changing any of them without the root key fails it, naming the key. The store MAC binds
//! the store's ID and the set of keys with their record MACs: putting back a key's earlier row (its
//! record MAC was valid once), a purged key's rows, or removing a key, fails it. What is left is
//! putting back a whole earlier copy of the database, which nothing inside it can tell from the
//! present (SECURITY.md).
//!
//! No I/O here: the keyring ([`crate::keyring`]) and the offline commands ([`crate::admin`])
//! compute and check; the store keeps the MACs.

use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::crypto::{RootKey, len32, put_lp};
use crate::error::{KmsError, Result};
use crate::store::{Creator, KeyRecord, KeyState, Mac};

/// The first bytes of a record MAC's message.
const RECORD_LABEL: &[u8] = b"kmsbox.key-record.v1\0";
/// The first bytes of the store MAC's message.
const STORE_LABEL: &[u8] = b"kmsbox.store.v1\0";

/// A key state's byte in the record MAC (the store's integer).
fn state_byte(s: KeyState) -> u8 {
    match s {
        KeyState::Enabled => 1,
        KeyState::Disabled => 2,
        KeyState::PendingDeletion => 3,
    }
}

/// A creator's byte in the record MAC (the store's integer).
fn creator_byte(c: Creator) -> u8 {
    match c {
        Creator::Customer => 1,
        Creator::Service => 2,
    }
}

/// The record MAC of `rec` as it stands (its own `mac` field aside).
pub fn record_mac(root: &RootKey, rec: &KeyRecord) -> Result<Mac> {
    let mut m =
        Vec::with_capacity(160 + rec.alias.len() + rec.description.len() + 64 * rec.versions.len());
    m.extend_from_slice(RECORD_LABEL);
    m.extend_from_slice(rec.uuid.as_bytes());
    put_lp(&mut m, "domain", rec.domain.as_str().as_bytes())?;
    put_lp(&mut m, "region", rec.region.as_str().as_bytes())?;
    put_lp(&mut m, "alias", rec.alias.as_bytes())?;
    put_lp(&mut m, "description", rec.description.as_bytes())?;
    m.push(state_byte(rec.state));
    m.push(creator_byte(rec.creator));
    put_lp(&mut m, "service", rec.service.as_bytes())?;
    m.extend_from_slice(&rec.created_at_ms.to_be_bytes());
    match rec.deletion_date_ms {
        None => m.push(0),
        Some(d) => {
            m.push(1);
            m.extend_from_slice(&d.to_be_bytes());
        }
    }
    m.extend_from_slice(&rec.current_version.to_be_bytes());
    let mut versions: Vec<_> = rec.versions.iter().collect();
    versions.sort_by_key(|v| v.version);
    m.extend_from_slice(&len32("key versions", versions.len())?);
    for v in versions {
        m.extend_from_slice(&v.version.to_be_bytes());
        m.extend_from_slice(&v.scheme.to_be_bytes());
        put_lp(&mut m, "wrapped key material", &v.wrapped)?;
    }
    root.store_mac(&m)
}

/// Checks `rec`'s stored record MAC; the error names the key.
pub fn check_record(root: &RootKey, rec: &KeyRecord) -> Result<()> {
    let key = rec.full_id();
    let Some(stored) = rec.mac else {
        return Err(KmsError::StoreIntegrity(format!(
            "key {key} has no record MAC, though the key database has MACs: its row was changed \
             without the root key; restore the key database from a backup"
        )));
    };
    if bool::from(record_mac(root, rec)?.ct_eq(&stored)) {
        Ok(())
    } else {
        Err(KmsError::StoreIntegrity(format!(
            "key {key} fails its record MAC: its row in the key database (state, deletion date, \
             versions, wrapped material, identity or names) was changed without the root key; \
             restore the key database from a backup"
        )))
    }
}

/// The store MAC of store `store_id` holding the keys `keys` (UUID and record MAC, any order).
pub fn store_mac<'a>(
    root: &RootKey,
    store_id: Uuid,
    keys: impl IntoIterator<Item = (Uuid, &'a Mac)>,
) -> Result<Mac> {
    let mut keys: Vec<(Uuid, &Mac)> = keys.into_iter().collect();
    keys.sort_unstable_by_key(|(uuid, _)| *uuid);
    let mut m = Vec::with_capacity(STORE_LABEL.len() + 24 + 48 * keys.len());
    m.extend_from_slice(STORE_LABEL);
    m.extend_from_slice(store_id.as_bytes());
    let n = u64::try_from(keys.len()).map_err(|_| KmsError::Internal("key count".into()))?;
    m.extend_from_slice(&n.to_be_bytes());
    for (uuid, mac) in keys {
        m.extend_from_slice(uuid.as_bytes());
        m.extend_from_slice(mac);
    }
    root.store_mac(&m)
}

/// Whether every key of `records` lacks a record MAC and the store has no store MAC: a key
/// database written by a daemon from before record MACs (with at least one key).
pub fn is_without_macs(records: &[KeyRecord], stored: Option<&Mac>) -> bool {
    !records.is_empty() && stored.is_none() && records.iter().all(|r| r.mac.is_none())
}

/// Checks every key's record MAC, then the store MAC over them all. A store with neither keys nor
/// a store MAC is a new one.
pub fn check_store(
    root: &RootKey,
    store_id: Uuid,
    records: &[KeyRecord],
    stored: Option<&Mac>,
) -> Result<()> {
    if is_without_macs(records, stored) {
        return Err(KmsError::StoreIntegrity(format!(
            "the key database's {} keys carry no record MACs: it was written by a kms-server from \
             before them. If nobody but kms-server can have changed it since, add them, trusting \
             its rows as they are, with `kms-server add-store-macs` (once, daemon stopped)",
            records.len()
        )));
    }
    for rec in records {
        check_record(root, rec)?;
    }
    let n = records.len();
    let Some(stored) = stored else {
        if n == 0 {
            return Ok(());
        }
        return Err(KmsError::StoreIntegrity(format!(
            "the key database holds {n} keys with record MACs but no store MAC: it was removed \
             without the root key; restore the key database from a backup"
        )));
    };
    let want = store_mac(
        root,
        store_id,
        records
            .iter()
            .filter_map(|r| r.mac.as_ref().map(|m| (r.uuid, m))),
    )?;
    if bool::from(want.ct_eq(stored)) {
        Ok(())
    } else {
        Err(KmsError::StoreIntegrity(format!(
            "the key database's store MAC does not match the {n} keys it holds (each of which \
             passes its own record MAC): keys were deleted, or an earlier copy of a key's rows (a \
             purged key's, or a key's from before a change) was put back, without the root key; \
             restore the key database from a backup"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WrappedVersion;
    use kms_proto::key_id::{DomainId, RegionId};

    fn rec() -> KeyRecord {
        KeyRecord {
            uuid: Uuid::from_u128(0x4f1cd4de_ab64_4807_920a_47fc42e7f0d0),
            domain: DomainId::parse("d1").unwrap(),
            region: RegionId::parse("r1").unwrap(),
            alias: "app".into(),
            description: "desc".into(),
            state: KeyState::Enabled,
            creator: Creator::Customer,
            service: String::new(),
            created_at_ms: 1_700_000_000_000,
            deletion_date_ms: None,
            current_version: 2,
            versions: vec![
                WrappedVersion {
                    version: 1,
                    scheme: 1,
                    wrapped: vec![1; 40],
                    nonces_reserved: 0,
                    created_at_ms: 0,
                },
                WrappedVersion {
                    version: 2,
                    scheme: 1,
                    wrapped: vec![2; 40],
                    nonces_reserved: 0,
                    created_at_ms: 0,
                },
            ],
            mac: None,
            rotation: crate::store::Rotation::default(),
            policy: crate::store::KeyPolicy::default(),
            tags: crate::store::Tags::new(),
        }
    }

    /// Pins FORMATS.md §3: the record MACs and the store MAC an independent generator computed.
    #[test]
    fn record_and_store_macs_v1_known_answer() {
        let kat: serde_json::Value =
            serde_json::from_str(include_str!("../tests/kat/store_mac_v1.json")).unwrap();
        let hexf = |v: &serde_json::Value| hex::decode(v.as_str().unwrap()).unwrap();
        let root = RootKey::from_bytes(hexf(&kat["root_key"]).try_into().unwrap());
        let int = |v: &serde_json::Value| v.as_i64().unwrap();
        let small = |v: &serde_json::Value| u32::try_from(v.as_u64().unwrap()).unwrap();
        let mut records = Vec::new();
        for r in kat["records"].as_array().unwrap() {
            let text = |f: &str| r[f].as_str().unwrap().to_owned();
            let mut rec = KeyRecord {
                uuid: text("uuid").parse().unwrap(),
                domain: DomainId::parse(&text("domain")).unwrap(),
                region: RegionId::parse(&text("region")).unwrap(),
                alias: text("alias"),
                description: text("description"),
                state: KeyState::from_i64(int(&r["state"])).unwrap(),
                creator: Creator::from_i64(int(&r["creator"])).unwrap(),
                service: text("service"),
                created_at_ms: int(&r["created_at_ms"]),
                deletion_date_ms: r["deletion_date_ms"].as_i64(),
                current_version: small(&r["current_version"]),
                versions: r["versions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| WrappedVersion {
                        version: small(&v["version"]),
                        scheme: small(&v["scheme"]),
                        wrapped: hexf(&v["wrapped"]),
                        nonces_reserved: 0,
                        created_at_ms: 0,
                    })
                    .collect(),
                mac: None,
                rotation: crate::store::Rotation::default(),
                policy: crate::store::KeyPolicy::default(),
                tags: crate::store::Tags::new(),
            };
            let mac = record_mac(&root, &rec).unwrap();
            assert_eq!(mac.to_vec(), hexf(&r["record_mac"]), "key {}", rec.uuid);
            rec.mac = Some(mac);
            records.push(rec);
        }
        let store_id: Uuid = kat["store_id"].as_str().unwrap().parse().unwrap();
        let want: Mac = hexf(&kat["store_mac"]).try_into().unwrap();
        check_store(&root, store_id, &records, Some(&want)).unwrap();
    }

    /// Every bound field changes the record MAC; the nonce reservation and the MAC field do not.
    #[test]
    fn the_record_mac_binds_every_field_but_the_nonce_reservation() {
        let root = RootKey::from_bytes([7; 32]);
        let base = record_mac(&root, &rec()).unwrap();
        type Edit = Box<dyn Fn(&mut KeyRecord)>;
        let edits: Vec<(&str, Edit)> = vec![
            ("uuid", Box::new(|r| r.uuid = Uuid::from_u128(1))),
            (
                "domain",
                Box::new(|r| r.domain = DomainId::parse("d2").unwrap()),
            ),
            (
                "region",
                Box::new(|r| r.region = RegionId::parse("r2").unwrap()),
            ),
            ("alias", Box::new(|r| r.alias = "other".into())),
            ("description", Box::new(|r| r.description.clear())),
            ("state", Box::new(|r| r.state = KeyState::Disabled)),
            ("creator", Box::new(|r| r.creator = Creator::Service)),
            ("service", Box::new(|r| r.service = "obs".into())),
            ("created", Box::new(|r| r.created_at_ms += 1)),
            ("deletion date", Box::new(|r| r.deletion_date_ms = Some(0))),
            ("current version", Box::new(|r| r.current_version = 1)),
            ("a version dropped", Box::new(|r| drop(r.versions.pop()))),
            ("wrap scheme", Box::new(|r| r.versions[0].scheme = 2)),
            ("material", Box::new(|r| r.versions[1].wrapped[0] ^= 1)),
            ("version number", Box::new(|r| r.versions[1].version = 3)),
            // Field boundaries: moving a byte from one string to the next is a change.
            (
                "alias/description boundary",
                Box::new(|r| {
                    r.alias = "ap".into();
                    r.description = "pdesc".into();
                }),
            ),
        ];
        for (what, edit) in &edits {
            let mut r = rec();
            edit(&mut r);
            assert_ne!(record_mac(&root, &r).unwrap(), base, "{what}");
        }
        let mut r = rec();
        r.versions[0].nonces_reserved = 1 << 20;
        r.mac = Some([9; 32]);
        r.versions.reverse();
        assert_eq!(
            record_mac(&root, &r).unwrap(),
            base,
            "order and unbound fields"
        );
        assert_ne!(
            record_mac(&RootKey::from_bytes([8; 32]), &rec()).unwrap(),
            base,
            "another root key"
        );
    }

    #[test]
    fn the_store_mac_binds_the_store_the_keys_and_their_record_macs() {
        let root = RootKey::from_bytes([7; 32]);
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let (ma, mb) = ([1u8; 32], [2u8; 32]);
        let id = Uuid::from_u128(99);
        let both = store_mac(&root, id, [(a, &ma), (b, &mb)]).unwrap();
        assert_eq!(
            store_mac(&root, id, [(b, &mb), (a, &ma)]).unwrap(),
            both,
            "order"
        );
        for other in [
            store_mac(&root, id, [(a, &ma)]).unwrap(),
            store_mac(&root, id, [(a, &ma), (b, &ma)]).unwrap(),
            store_mac(&root, Uuid::from_u128(98), [(a, &ma), (b, &mb)]).unwrap(),
            store_mac(&root, id, []).unwrap(),
        ] {
            assert_ne!(other, both);
        }
    }

    #[test]
    fn a_store_is_checked_key_by_key_then_as_a_whole() {
        let root = RootKey::from_bytes([7; 32]);
        let id = Uuid::from_u128(5);
        let mut r = rec();
        r.mac = Some(record_mac(&root, &r).unwrap());
        let good = store_mac(&root, id, [(r.uuid, r.mac.as_ref().unwrap())]).unwrap();
        check_store(&root, id, std::slice::from_ref(&r), Some(&good)).unwrap();
        check_store(&root, id, &[], None).unwrap();

        let err = |recs: &[KeyRecord], stored: Option<&Mac>| {
            check_store(&root, id, recs, stored)
                .unwrap_err()
                .to_string()
        };
        // A changed field: named by the key.
        let mut changed = r.clone();
        changed.state = KeyState::Disabled;
        let e = err(std::slice::from_ref(&changed), Some(&good));
        assert!(
            e.contains(&r.full_id().to_string()) && e.contains("record MAC"),
            "{e}"
        );
        // An earlier, once valid record: only the store MAC notices.
        let mut earlier = changed.clone();
        earlier.mac = Some(record_mac(&root, &earlier).unwrap());
        let e = err(std::slice::from_ref(&earlier), Some(&good));
        assert!(e.contains("store MAC does not match the 1 keys"), "{e}");
        // Removed keys, a removed store MAC, a row without a MAC among rows with one.
        assert!(err(&[], Some(&good)).contains("does not match the 0 keys"));
        assert!(err(std::slice::from_ref(&r), None).contains("no store MAC"));
        let mut bare = rec();
        bare.uuid = Uuid::from_u128(77);
        let e = err(&[r.clone(), bare.clone()], Some(&good));
        assert!(
            e.contains(&bare.full_id().to_string()) && e.contains("no record MAC"),
            "{e}"
        );
        // Nothing has a MAC: a store from before them.
        let e = err(&[bare], None);
        assert!(e.contains("add-store-macs"), "{e}");
    }
}
