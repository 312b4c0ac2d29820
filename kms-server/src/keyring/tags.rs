//! Key tags: labels a caller sets on its keys and lists or filters them by (Huawei's key tags).
//! They are written like any other change of a key's attributes; they grant nothing, and the data
//! path never reads them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kms_proto::ErrorCode;

use super::lifecycle::{Change, not_pending, refuse_default};
use super::validate::validate_tags;
use super::{Caller, Keyring};
use crate::error::{KmsError, Result};
use crate::store::{KeyRecord, Tags};

/// How a call changes a key's tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagEdit {
    /// Adds these tags; a tag key the key already has takes the new value.
    Set(Tags),
    /// Removes the tags with these tag keys, each only if its value is the one given when one is
    /// given; a tag the key does not have is no error.
    Remove(BTreeMap<String, Option<String>>),
}

/// Which keys a tag filter keeps (Huawei's `resource_instances/action`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagFilter {
    /// Every tag key named must be on the key, with one of its values when any are given.
    pub tags: BTreeMap<String, BTreeSet<String>>,
    /// When given, the key's alias must contain this text.
    pub alias_contains: Option<String>,
}

impl TagFilter {
    /// Whether the filter keeps `rec`.
    pub fn keeps(&self, rec: &KeyRecord) -> bool {
        self.alias_contains
            .as_deref()
            .is_none_or(|a| rec.alias.contains(a))
            && self.tags.iter().all(|(k, values)| {
                rec.tags
                    .get(k)
                    .is_some_and(|v| values.is_empty() || values.contains(v))
            })
    }
}

impl Keyring {
    /// Adds or removes a key's tags in one write. A key keeps at most
    /// [`MAX_TAGS`](super::validate::MAX_TAGS); default keys
    /// have none, and a key pending deletion is not changed.
    pub async fn edit_tags(
        &self,
        caller: &Caller,
        key_id: &str,
        edit: TagEdit,
    ) -> Result<Arc<KeyRecord>> {
        let empty = match &edit {
            TagEdit::Set(tags) => tags.is_empty(),
            TagEdit::Remove(keys) => keys.is_empty(),
        };
        if empty {
            return Err(KmsError::Invalid {
                code: ErrorCode::EmptyTagList,
                field: "tags",
                reason: "no tag is named".into(),
            });
        }
        if let TagEdit::Set(tags) = &edit {
            validate_tags(tags)?;
        }
        self.change(caller, key_id, |r| {
            refuse_default(r, "tagged")?;
            not_pending(r)?;
            let mut next = r.attributes();
            match &edit {
                TagEdit::Set(tags) => next
                    .tags
                    .extend(tags.iter().map(|(k, v)| (k.clone(), v.clone()))),
                TagEdit::Remove(gone) => next.tags.retain(|k, v| {
                    gone.get(k)
                        .is_none_or(|value| value.as_ref().is_some_and(|g| g != v))
                }),
            }
            validate_tags(&next.tags)?;
            if next.tags == r.tags {
                return Ok(Change::None);
            }
            Ok(Change::Attributes(next))
        })
        .await
    }

    /// Every tag key on the caller's keys in the caller's region, with the values it has.
    pub fn tags_in_use(&self, caller: &Caller) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for rec in self.read_cache().values().filter(|r| caller.owns(r)) {
            for (k, v) in &rec.tags {
                out.entry(k.clone()).or_default().insert(v.clone());
            }
        }
        out
    }

    /// The caller's keys in the caller's region that `filter` keeps, oldest first.
    pub fn keys_tagged(&self, caller: &Caller, filter: &TagFilter) -> Vec<Arc<KeyRecord>> {
        let mut keys: Vec<Arc<KeyRecord>> = self
            .read_cache()
            .values()
            .filter(|r| caller.owns(r) && filter.keeps(r))
            .cloned()
            .collect();
        keys.sort_by_key(|r| (r.created_at_ms, r.uuid));
        keys
    }
}
