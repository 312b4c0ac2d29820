//! The Huawei REST API's JSON bodies, field for field as the official SDK's model classes
//! (`huaweicloudsdkkms` 3.1.219, `huaweicloudsdkkms.v2.model`) name them. Numbers travel as
//! strings; a field the daemon does not support is absent from responses, never invented.
//! Requests refuse unknown fields, so that a misspelt field is an error rather than ignored.
//! The data-path answers (create-datakey, encrypt/decrypt-datakey, encrypt/decrypt-data) are
//! written field by field with [`crate::json::Object`] where they are made, each naming its
//! model class.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// `CreateKeyRequestBody`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKey {
    pub(super) key_alias: Option<String>,
    pub(super) key_spec: Option<String>,
    pub(super) key_usage: Option<String>,
    pub(super) key_description: Option<String>,
    pub(super) origin: Option<String>,
    pub(super) enterprise_project_id: Option<String>,
    pub(super) sequence: Option<String>,
}

/// `OperateKeyRequestBody` (describe-key, enable-key, disable-key, cancel-key-deletion).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OperateKey {
    pub(super) key_id: Option<String>,
    pub(super) sequence: Option<String>,
}

/// `ListKeysRequestBody`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListKeys {
    pub(super) limit: Option<String>,
    pub(super) marker: Option<String>,
    pub(super) key_state: Option<String>,
    pub(super) key_spec: Option<String>,
    pub(super) enterprise_project_id: Option<String>,
    pub(super) sequence: Option<String>,
}

/// `ScheduleKeyDeletionRequestBody`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScheduleKeyDeletion {
    pub(super) key_id: Option<String>,
    pub(super) pending_days: Option<String>,
    pub(super) sequence: Option<String>,
}

/// `CreateDatakeyRequestBody` (create-datakey and create-datakey-without-plaintext). Its strings
/// borrow from the body where they hold no escape: it is the data path's most frequent request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateDatakey<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed")]
    pub(super) key_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    pub(super) key_spec: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    pub(super) datakey_length: Option<Cow<'a, str>>,
    pub(super) additional_authenticated_data: Option<String>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    pub(super) sequence: Option<Cow<'a, str>>,
}

impl<'a> CreateDatakey<'a> {
    /// The body as SDKs send it, read without serde ([`super::flat`]); `None` for any other
    /// shape, which serde reads.
    pub(super) fn plain(body: &'a [u8]) -> Option<Self> {
        let [key_id, key_spec, datakey_length, aad, sequence] = super::flat::members(
            body,
            [
                "key_id",
                "key_spec",
                "datakey_length",
                "additional_authenticated_data",
                "sequence",
            ],
        )?;
        let text = |v: Option<Option<&'a str>>| v.flatten().map(Cow::Borrowed);
        Some(Self {
            key_id: text(key_id),
            key_spec: text(key_spec),
            datakey_length: text(datakey_length),
            additional_authenticated_data: aad.flatten().map(str::to_owned),
            sequence: text(sequence),
        })
    }
}

/// An optional string borrowed from the body unless it holds an escape. serde's own
/// `Option<Cow<str>>` always copies; a `Cow` inside a newtype borrows.
fn borrowed<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Text<'de>>::deserialize(d)?.map(|t| t.0))
}

/// `EncryptDatakeyRequestBody`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EncryptDatakey {
    pub(super) key_id: Option<String>,
    pub(super) plain_text: Option<String>,
    pub(super) datakey_plain_length: Option<String>,
    pub(super) additional_authenticated_data: Option<String>,
    pub(super) sequence: Option<String>,
}

/// `DecryptDatakeyRequestBody`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DecryptDatakey {
    pub(super) key_id: Option<String>,
    pub(super) cipher_text: Option<String>,
    pub(super) datakey_cipher_length: Option<String>,
    pub(super) additional_authenticated_data: Option<String>,
    pub(super) sequence: Option<String>,
}

/// `EncryptDataRequestBody`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EncryptData {
    pub(super) key_id: Option<String>,
    pub(super) plain_text: Option<String>,
    pub(super) encryption_algorithm: Option<String>,
    pub(super) additional_authenticated_data: Option<String>,
    pub(super) sequence: Option<String>,
}

/// `DecryptDataRequestBody`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DecryptData {
    pub(super) cipher_text: Option<String>,
    pub(super) encryption_algorithm: Option<String>,
    pub(super) key_id: Option<String>,
    pub(super) additional_authenticated_data: Option<String>,
    pub(super) sequence: Option<String>,
}

/// `ReEncryptRequestBody`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReEncrypt {
    pub(super) source_key_id: Option<String>,
    pub(super) source_additional_authenticated_data: Option<String>,
    pub(super) source_encryption_algorithm: Option<String>,
    pub(super) destination_key_id: Option<String>,
    pub(super) destination_additional_authenticated_data: Option<String>,
    pub(super) destination_encryption_algorithm: Option<String>,
    pub(super) datakey_cipher_length: Option<String>,
    pub(super) cipher_text: Option<String>,
}

/// `GenRandomRequestBody`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GenRandom {
    pub(super) random_data_length: Option<String>,
    pub(super) sequence: Option<String>,
}

/// `UpdateKeyAliasRequestBody`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateKeyAlias {
    pub(super) key_id: Option<String>,
    pub(super) key_alias: Option<String>,
    pub(super) sequence: Option<String>,
}

/// `UpdateKeyDescriptionRequestBody`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateKeyDescription {
    pub(super) key_id: Option<String>,
    pub(super) key_description: Option<String>,
    pub(super) sequence: Option<String>,
}

/// `UpdateKeyRotationIntervalRequestBody`: the SDK sends `rotation_interval` as a JSON number.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateKeyRotationInterval {
    pub(super) key_id: Option<String>,
    pub(super) rotation_interval: Option<u32>,
    pub(super) sequence: Option<String>,
}

/// `KeyAliasInfo`, the `key_info` of update-key-alias.
#[derive(Debug, Serialize)]
pub(super) struct KeyAliasInfo {
    pub(super) key_id: String,
    pub(super) key_alias: String,
}

/// `KeyDescriptionInfo`, the `key_info` of update-key-description.
#[derive(Debug, Serialize)]
pub(super) struct KeyDescriptionInfo {
    pub(super) key_id: String,
    pub(super) key_description: String,
}

/// `ShowKeyRotationStatusResponse` (get-key-rotation-status).
#[derive(Debug, Serialize)]
pub(super) struct RotationStatus {
    pub(super) key_rotation_enabled: bool,
    pub(super) rotation_interval: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) last_rotation_time: Option<String>,
    pub(super) number_of_rotations: u32,
}

/// `RotateOnDemandResponse`.
#[derive(Debug, Serialize)]
pub(super) struct Rotated {
    pub(super) key_id: String,
}

/// `KeKInfo`, the `key_info` of create-key.
#[derive(Debug, Serialize)]
pub(super) struct KekInfo {
    pub(super) key_id: String,
    pub(super) domain_id: String,
    pub(super) region_id: String,
}

/// `KeyDetails`, the `key_info` of describe-key and the `key_details` of list-keys.
#[derive(Debug, Serialize)]
pub(super) struct KeyDetails {
    pub(super) key_id: String,
    pub(super) domain_id: String,
    pub(super) key_alias: String,
    pub(super) realm: String,
    pub(super) key_spec: &'static str,
    pub(super) key_usage: &'static str,
    pub(super) key_description: String,
    pub(super) creation_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) scheduled_deletion_date: Option<String>,
    pub(super) key_state: &'static str,
    pub(super) default_key_flag: &'static str,
    pub(super) origin: &'static str,
    pub(super) key_rotation_enabled: &'static str,
}

/// `KeyStatusInfo` (enable-key, disable-key), and the body of schedule-key-deletion and
/// cancel-key-deletion.
#[derive(Debug, Serialize)]
pub(super) struct KeyStatus {
    pub(super) key_id: String,
    pub(super) key_state: &'static str,
}

/// `ListKeysResponse`.
#[derive(Debug, Serialize)]
pub(super) struct KeyList {
    pub(super) keys: Vec<String>,
    pub(super) key_details: Vec<KeyDetails>,
    pub(super) next_marker: String,
    pub(super) truncated: &'static str,
    /// Every key the filter keeps, over all pages (the SDK types it `int`).
    pub(super) total: usize,
}

/// `ReEncryptResponse`.
#[derive(Debug, Serialize)]
pub(super) struct ReEncrypted {
    pub(super) key_id: String,
    pub(super) source_key_id: String,
    pub(super) source_encryption_algorithm: &'static str,
    pub(super) destination_encryption_algorithm: &'static str,
    pub(super) cipher_text: String,
}

/// `CreateRandomResponse`.
#[derive(Debug, Serialize)]
pub(super) struct Random {
    pub(super) random_data: String,
}

/// `TagItem`: one tag, in requests and in answers.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TagItem {
    pub(super) key: Option<String>,
    pub(super) value: Option<String>,
}

/// `CreateKmsTagRequestBody`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKmsTag {
    pub(super) tag: Option<TagItem>,
    pub(super) sequence: Option<String>,
}

/// `BatchCreateKmsTagsRequestBody` (its `action` is `create` or `delete`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BatchKmsTags {
    pub(super) tags: Option<Vec<TagItem>>,
    pub(super) action: Option<String>,
    pub(super) sequence: Option<String>,
}

/// `Tag`: a tag key with its values (project tags; the filter of list-kms-by-tags).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TagValues {
    pub(super) key: Option<String>,
    pub(super) values: Option<Vec<String>>,
}

/// `ListKmsByTagsRequestBody`; `matches` are `TagItem`s whose key is `resource_name`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListKmsByTags {
    pub(super) limit: Option<String>,
    pub(super) offset: Option<String>,
    pub(super) action: Option<String>,
    pub(super) tags: Option<Vec<TagValues>>,
    pub(super) matches: Option<Vec<TagItem>>,
    pub(super) sequence: Option<String>,
}

/// `ShowKmsTagsResponse`.
#[derive(Debug, Serialize)]
pub(super) struct KeyTags {
    pub(super) tags: Vec<TagItem>,
    #[serde(rename = "existTagsNum")]
    pub(super) exist_tags_num: usize,
}

/// `ActionResources`: one key of list-kms-by-tags.
#[derive(Debug, Serialize)]
pub(super) struct TaggedKey {
    pub(super) resource_id: String,
    pub(super) resource_detail: KeyDetails,
    pub(super) resource_name: String,
    pub(super) tags: Vec<TagItem>,
}

/// `ListKmsByTagsResponse`: `resources` for `filter`, absent for `count`.
#[derive(Debug, Serialize)]
pub(super) struct TaggedKeys {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) resources: Option<Vec<TaggedKey>>,
    pub(super) total_count: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_datakey_strings_borrow_from_the_body_unless_escaped() {
        // (rule, body, key_id as read, borrowed)
        let cases: [(&str, &str, Option<&str>, bool); 4] = [
            (
                "plain text borrows",
                r#"{"key_id":"k-1"}"#,
                Some("k-1"),
                true,
            ),
            (
                "an escape is copied",
                r#"{"key_id":"k\u002d1"}"#,
                Some("k-1"),
                false,
            ),
            ("absent is none", r#"{}"#, None, false),
            ("null is none", r#"{"key_id":null}"#, None, false),
        ];
        for (rule, body, want, borrows) in cases {
            let b: CreateDatakey<'_> = serde_json::from_str(body).expect(rule);
            // The reader without serde reads what serde reads, or leaves the body to it.
            if let Some(plain) = CreateDatakey::plain(body.as_bytes()) {
                assert_eq!(format!("{plain:?}"), format!("{b:?}"), "{rule}");
            }
            assert_eq!(b.key_id.as_deref(), want, "{rule}");
            assert_eq!(
                matches!(b.key_id, Some(Cow::Borrowed(_))),
                borrows,
                "{rule}"
            );
        }
        assert!(
            serde_json::from_str::<CreateDatakey<'_>>(r#"{"key_id":7}"#).is_err(),
            "a number is no key ID"
        );
    }
}
