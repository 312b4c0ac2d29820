//! Key tags over the REST API: create-kms-tag (`POST {key_id}/tags`), the batch of
//! `POST {key_id}/tags/action`, delete-tag (`DELETE {key_id}/tags/{key}`), one key's tags
//! (`GET {key_id}/tags`), the project's (`GET tags`) and the keys a tag filter keeps
//! (`POST resource_instances/action`), over the keyring's [`TagEdit`] and [`TagFilter`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kms_proto::ErrorCode;

use super::error::HuaweiError;
use super::{
    Answer, Operation, Route, answer, bare, details, json, model, number, page_limit, parse,
    required, sequence, sign,
};
use crate::keyring::validate::{MAX_TAGS, validate_tag};
use crate::keyring::{Caller, Keyring, TagEdit, TagFilter};
use crate::store::{KeyRecord, Tags};

/// The only `matches` key of list-kms-by-tags: the key's alias.
const RESOURCE_NAME: &str = "resource_name";

/// The page size of list-kms-by-tags when the request names none.
const DEFAULT_LIMIT: u32 = 10;

/// Serves the tag operations ([`super::dispatch`] sends them here).
pub(super) async fn dispatch(
    keyring: &Arc<Keyring>,
    caller: &Caller,
    route: Route<'_>,
    body: &[u8],
) -> Result<Answer, HuaweiError> {
    let edit = match route.op {
        Operation::CreateKmsTag => {
            let b: model::CreateKmsTag = parse(body)?;
            sequence(b.sequence.as_deref())?;
            let tag = b.tag.ok_or_else(|| HuaweiError::missing("tag"))?;
            TagEdit::Set(tag_map(vec![tag])?)
        }
        Operation::BatchKmsTags => {
            let b: model::BatchKmsTags = parse(body)?;
            sequence(b.sequence.as_deref())?;
            let items = b.tags.ok_or_else(|| HuaweiError::missing("tags"))?;
            match required(b.action, "action")?.as_str() {
                "create" => TagEdit::Set(tag_map(items)?),
                "delete" => TagEdit::Remove(
                    items
                        .into_iter()
                        .map(|t| Ok((required(t.key, "tags.key")?, t.value)))
                        .collect::<Result<_, HuaweiError>>()?,
                ),
                other => {
                    return Err(HuaweiError::field(
                        "action",
                        format!("{:?}: create or delete", super::truncate(other, 32)),
                    ));
                }
            }
        }
        Operation::DeleteKmsTag => {
            let tag_key = String::from_utf8(sign::decode(route.tag_key))
                .map_err(|_| HuaweiError::field("key", "the tag key is not UTF-8"))?;
            TagEdit::Remove(BTreeMap::from([(tag_key, None)]))
        }
        Operation::ShowKmsTags => {
            let key = keyring.find(caller, &key_id(route)?)?;
            let body = model::KeyTags {
                tags: items(&key.tags),
                exist_tags_num: key.tags.len(),
            };
            return answer(&body, &key);
        }
        Operation::ListKmsTags => {
            let tags = keyring
                .tags_in_use(caller)
                .into_iter()
                .map(|(key, values)| model::TagValues {
                    key: Some(key),
                    values: Some(values.into_iter().collect()),
                })
                .collect::<Vec<_>>();
            return Ok(Answer {
                body: json(&serde_json::json!({ "tags": tags }))?,
                audit_key: String::new(),
            });
        }
        Operation::ListKmsByTags => return list_by_tags(keyring, caller, parse(body)?),
        other => {
            return Err(crate::error::KmsError::Internal(format!(
                "{other:?} is not a tag operation"
            ))
            .into());
        }
    };
    let key = Box::pin(keyring.edit_tags(caller, &key_id(route)?, edit)).await?;
    Ok(Answer {
        body: Vec::new(),
        audit_key: key.full_id_string(),
    })
}

/// The `{key_id}` of the path, decoded.
fn key_id(route: Route<'_>) -> Result<String, HuaweiError> {
    String::from_utf8(sign::decode(route.key_id))
        .map_err(|_| HuaweiError::new(ErrorCode::MalformedKeyId, "the key ID is not UTF-8"))
}

/// Tags to set, by tag key; a tag key given twice is refused, a missing value is empty.
fn tag_map(items: Vec<model::TagItem>) -> Result<Tags, HuaweiError> {
    let mut tags = Tags::new();
    for t in items {
        let key = required(t.key, "tags.key")?;
        if tags.contains_key(&key) {
            return Err(HuaweiError::field(
                "tags",
                format!("tag key {:?} is given twice", super::truncate(&key, 64)),
            ));
        }
        tags.insert(key, t.value.unwrap_or_default());
    }
    Ok(tags)
}

/// A key's tags as `TagItem`s, by tag key.
fn items(tags: &Tags) -> Vec<model::TagItem> {
    tags.iter()
        .map(|(k, v)| model::TagItem {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

/// list-kms-by-tags: the caller's keys that every named tag (with one of its values, when any are
/// given) and the alias match keep, oldest first, from `offset`, at most `limit` of them; or, for
/// `count`, how many.
fn list_by_tags(
    keyring: &Keyring,
    caller: &Caller,
    b: model::ListKmsByTags,
) -> Result<Answer, HuaweiError> {
    sequence(b.sequence.as_deref())?;
    let count_only = match required(b.action, "action")?.as_str() {
        "filter" => false,
        "count" => true,
        other => {
            return Err(HuaweiError::field(
                "action",
                format!("{:?}: filter or count", super::truncate(other, 32)),
            ));
        }
    };
    let limit = page_limit(b.limit.as_deref(), DEFAULT_LIMIT)?;
    let offset = b.offset.as_deref().map_or(Ok(0), |o| number(o, "offset"))?;
    let filter = TagFilter {
        tags: tag_filter(b.tags.unwrap_or_default())?,
        alias_contains: alias_match(b.matches.unwrap_or_default())?,
    };
    let keys = keyring.keys_tagged(caller, &filter);
    let resources = (!count_only).then(|| {
        keys.iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|k| tagged(k))
            .collect()
    });
    Ok(Answer {
        body: json(&model::TaggedKeys {
            resources,
            total_count: keys.len(),
        })?,
        audit_key: String::new(),
    })
}

fn tagged(k: &KeyRecord) -> model::TaggedKey {
    model::TaggedKey {
        resource_id: bare(k),
        resource_detail: details(k),
        resource_name: k.alias.clone(),
        tags: items(&k.tags),
    }
}

/// The filter's tags: at most [`MAX_TAGS`] tag keys, each once, each with at most as many values.
fn tag_filter(
    given: Vec<model::TagValues>,
) -> Result<BTreeMap<String, BTreeSet<String>>, HuaweiError> {
    if given.len() > MAX_TAGS {
        return Err(HuaweiError::field(
            "tags",
            format!("at most {MAX_TAGS} tag keys; {} given", given.len()),
        ));
    }
    let mut out = BTreeMap::new();
    for t in given {
        let key = required(t.key, "tags.key")?;
        let values = t.values.unwrap_or_default();
        if values.len() > MAX_TAGS {
            return Err(HuaweiError::field(
                "tags.values",
                format!(
                    "at most {MAX_TAGS} values of one tag key; {} given",
                    values.len()
                ),
            ));
        }
        for v in &values {
            validate_tag(&key, v)?;
        }
        if values.is_empty() {
            validate_tag(&key, "")?;
        }
        if out.insert(key, values.into_iter().collect()).is_some() {
            return Err(HuaweiError::field("tags", "a tag key is given twice"));
        }
    }
    Ok(out)
}

/// The alias match: at most one, keyed `resource_name`.
fn alias_match(matches: Vec<model::TagItem>) -> Result<Option<String>, HuaweiError> {
    let mut out = None;
    for m in matches {
        let key = required(m.key, "matches.key")?;
        if key != RESOURCE_NAME {
            return Err(HuaweiError::field(
                "matches.key",
                format!(
                    "{:?}: only {RESOURCE_NAME} is supported",
                    super::truncate(&key, 32)
                ),
            ));
        }
        if out.replace(m.value.unwrap_or_default()).is_some() {
            return Err(HuaweiError::field(
                "matches",
                format!("{RESOURCE_NAME} is given twice"),
            ));
        }
    }
    Ok(out)
}
