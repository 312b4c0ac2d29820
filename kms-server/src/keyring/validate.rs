//! Request validation: the limits of the API and the checks of every request field, before any
//! key is looked up.

use std::collections::HashMap;

use uuid::Uuid;

use crate::blob;
use kms_proto::ErrorCode;

use crate::error::{KmsError, Result};

/// An encryption context as the requests carry it.
pub type Context = HashMap<String, String>;

/// Largest plaintext `Encrypt` takes.
pub const MAX_PLAINTEXT: usize = 4096;
/// Largest data key, in bytes.
pub const MAX_DATA_KEY: u32 = 1024;
/// Data key length when the request names none.
pub const DEFAULT_DATA_KEY: u32 = 32;
/// Largest ciphertext blob accepted.
pub const MAX_BLOB: usize = blob::HEADER_LEN + MAX_PLAINTEXT + blob::TAG_LEN;
/// Largest encryption context, in bytes of keys and values together.
pub const MAX_CONTEXT_BYTES: usize = 8192;

/// Bounds and default of the pending window of `ScheduleKeyDeletion`, in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletionWindow {
    /// The shortest window.
    pub min_days: u32,
    /// The longest window.
    pub max_days: u32,
    /// The window of a request that names none (0).
    pub default_days: u32,
}

/// The pending window of `ScheduleKeyDeletion`: 7 to 1096 days, 30 by default.
pub const DELETION_WINDOW: DeletionWindow = DeletionWindow {
    min_days: 7,
    max_days: 1096,
    default_days: 30,
};

/// The interval of a key's rotation schedule: 30 to 365 days.
pub const ROTATION_INTERVAL_DAYS: std::ops::RangeInclusive<u32> = 30..=365;

/// Checks a rotation interval.
pub fn validate_rotation_interval(days: u32) -> Result<()> {
    if !ROTATION_INTERVAL_DAYS.contains(&days) {
        return Err(KmsError::Invalid {
            code: ErrorCode::InvalidRotationInterval,
            field: "rotation_interval",
            reason: format!(
                "{days} days is out of range: it must be {} to {}",
                ROTATION_INTERVAL_DAYS.start(),
                ROTATION_INTERVAL_DAYS.end()
            ),
        });
    }
    Ok(())
}

impl DeletionWindow {
    /// The window a request's `pending_window_days` asks for (0 means the default).
    pub fn days(&self, requested: u32) -> Result<u32> {
        let days = if requested == 0 {
            self.default_days
        } else {
            requested
        };
        if !(self.min_days..=self.max_days).contains(&days) {
            return Err(KmsError::DeletionWindowOutOfRange(days));
        }
        Ok(days)
    }
}

/// Bounds and default of a `ListKeys` page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize {
    /// The largest page.
    pub max: u32,
    /// The page size of a request that names none (0).
    pub default: u32,
}

/// `ListKeys` pages: at most 1000 keys, 100 by default.
pub const PAGE_SIZE: PageSize = PageSize {
    max: 1000,
    default: 100,
};

impl PageSize {
    /// The page size a request's `page_size` asks for (0 means the default).
    pub fn size(&self, requested: u32) -> Result<usize> {
        let size = match requested {
            0 => self.default,
            n if n <= self.max => n,
            n => {
                return Err(KmsError::Invalid {
                    code: ErrorCode::InvalidLimit,
                    field: "page_size",
                    reason: format!("{n} is more than {}", self.max),
                });
            }
        };
        Ok(usize::try_from(size).unwrap_or(usize::MAX))
    }
}

/// Where a `ListKeys` page starts: after the key created at `created_at_ms` with `uuid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PageCursor {
    /// Creation time of the last key of the previous page.
    pub created_at_ms: i64,
    /// Its UUID.
    pub uuid: Uuid,
}

impl PageCursor {
    /// Parses a page token; an empty one is the first page.
    pub fn parse(token: &str) -> Result<Option<Self>> {
        if token.is_empty() {
            return Ok(None);
        }
        let bad = || KmsError::Invalid {
            code: ErrorCode::InvalidMarker,
            field: "page_token",
            reason: "not a token from a previous ListKeys page".into(),
        };
        let (ms, uuid) = token.split_once('.').ok_or_else(bad)?;
        Ok(Some(Self {
            created_at_ms: ms.parse().map_err(|_| bad())?,
            uuid: uuid.parse().map_err(|_| bad())?,
        }))
    }

    /// The page token that continues after this cursor.
    pub fn token(&self) -> String {
        format!("{}.{}", self.created_at_ms, self.uuid)
    }
}

/// Checks a customer alias. Empty means none. Otherwise the grammar is
///
/// ```text
/// alias   = segment *( "/" segment )      ; 1 to 255 characters in all
/// segment = 1*( ALPHA / DIGIT / "_" / "-" / "." )
/// ```
///
/// so a leading, trailing or doubled `/` is refused rather than normalised (`obs/default/` is
/// not an alias), and an alias whose last segment is `default` in any case (`obs/default`,
/// `OBS/DEFAULT`, `x/Default`) is refused: that suffix is reserved for service default keys.
pub fn validate_alias(alias: &str) -> Result<()> {
    let bad = |reason: &str| KmsError::Invalid {
        code: ErrorCode::InvalidKeyAlias,
        field: "alias",
        reason: format!("{alias:?}: {reason}"),
    };
    if alias.is_empty() {
        return Ok(());
    }
    if alias.len() > 255 {
        return Err(bad("longer than 255 characters"));
    }
    if !alias
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'/' | b'-' | b'.'))
    {
        return Err(bad(
            "only letters, digits, '_', '-', '.' and '/' are allowed",
        ));
    }
    if alias.split('/').any(str::is_empty) {
        return Err(bad(
            "'/' separates non-empty segments: no leading, trailing or doubled '/'",
        ));
    }
    if alias.contains('/')
        && alias
            .rsplit('/')
            .next()
            .is_some_and(|last| last.eq_ignore_ascii_case("default"))
    {
        return Err(bad(
            "aliases ending in /default (in any case) are reserved for default keys",
        ));
    }
    Ok(())
}

/// The most tags one key carries (Huawei's limit).
pub const MAX_TAGS: usize = 10;
/// The longest tag key, in characters.
pub const MAX_TAG_KEY_CHARS: usize = 36;
/// The longest tag value, in characters.
pub const MAX_TAG_VALUE_CHARS: usize = 43;

/// Checks a key's tags: at most [`MAX_TAGS`], each by [`validate_tag`].
pub fn validate_tags(tags: &crate::store::Tags) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(KmsError::Invalid {
            code: ErrorCode::InvalidArgument,
            field: "tags",
            reason: format!("a key has at most {MAX_TAGS} tags, not {}", tags.len()),
        });
    }
    tags.iter().try_for_each(|(k, v)| validate_tag(k, v))
}

/// Checks one tag by Huawei's rules: a key of 1 to 36 characters and a value of at most 43 (it
/// may be empty), neither holding a control character (U+0000 to U+001F) nor any of `*<>\=`.
pub fn validate_tag(key: &str, value: &str) -> Result<()> {
    fn bad_char(c: char) -> bool {
        c < ' ' || matches!(c, '*' | '<' | '>' | '\\' | '=')
    }
    let bad = |what: &str, text: &str, reason: String| KmsError::Invalid {
        code: ErrorCode::InvalidArgument,
        field: "tags",
        reason: format!(
            "tag {what} {:?}: {reason}",
            text.chars().take(64).collect::<String>()
        ),
    };
    if key.is_empty() {
        return Err(bad("key", key, "empty".into()));
    }
    for (what, text, max) in [
        ("key", key, MAX_TAG_KEY_CHARS),
        ("value", value, MAX_TAG_VALUE_CHARS),
    ] {
        if text.chars().count() > max {
            return Err(bad(what, text, format!("longer than {max} characters")));
        }
        if text.chars().any(bad_char) {
            return Err(bad(
                what,
                text,
                "control characters and *<>\\= are not allowed".into(),
            ));
        }
    }
    Ok(())
}

/// Checks a key description: at most 255 characters.
pub fn validate_description(d: &str) -> Result<()> {
    if d.chars().count() > 255 {
        return Err(KmsError::Invalid {
            code: ErrorCode::InvalidKeyDescription,
            field: "description",
            reason: "longer than 255 characters".into(),
        });
    }
    Ok(())
}

/// Checks a service name: 1 to 32 characters of `[a-z0-9-]`.
pub fn validate_service(service: &str) -> Result<()> {
    if service.is_empty()
        || service.len() > 32
        || !service
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(KmsError::InvalidArgument {
            field: "service",
            reason: format!("{service:?}: 1 to 32 characters of a-z, 0-9 and '-'"),
        });
    }
    Ok(())
}

/// Checks an encryption context's size; `field` names it in the error.
pub fn validate_context(field: &'static str, c: &Context) -> Result<()> {
    let len: usize = c.iter().map(|(k, v)| k.len() + v.len()).sum();
    if len > MAX_CONTEXT_BYTES {
        return Err(KmsError::Invalid {
            code: ErrorCode::InvalidEncryptionContext,
            field,
            reason: format!(
                "its keys and values are {len} bytes, more than the limit of {MAX_CONTEXT_BYTES}"
            ),
        });
    }
    Ok(())
}

/// The data key length a request's `number_of_bytes` asks for (0 means 32).
pub fn data_key_len(number_of_bytes: u32) -> Result<usize> {
    let n = if number_of_bytes == 0 {
        DEFAULT_DATA_KEY
    } else {
        number_of_bytes
    };
    if n > MAX_DATA_KEY {
        return Err(KmsError::Invalid {
            code: ErrorCode::InvalidDatakeyLength,
            field: "number_of_bytes",
            reason: format!("{n} is out of range: it must be 1 to {MAX_DATA_KEY}"),
        });
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Checks the plaintext of `Encrypt`: 1 to 4096 bytes.
pub fn validate_plaintext(plaintext: &[u8]) -> Result<()> {
    if plaintext.is_empty() {
        return Err(KmsError::InvalidArgument {
            field: "plaintext",
            reason: "empty; it must be 1 to 4096 bytes".into(),
        });
    }
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(KmsError::PayloadTooLarge {
            field: "plaintext",
            len: plaintext.len(),
            max: MAX_PLAINTEXT,
        });
    }
    Ok(())
}

/// Checks the size of a ciphertext blob.
pub fn validate_blob_len(blob: &[u8]) -> Result<()> {
    if blob.len() > MAX_BLOB {
        return Err(KmsError::PayloadTooLarge {
            field: "ciphertext_blob",
            len: blob.len(),
            max: MAX_BLOB,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_rules() {
        // (rule, alias, allowed)
        let cases = [
            ("empty means no alias", "", true),
            ("letters, digits, '-' and '_'", "my-key_1", true),
            ("'/' separates segments", "team/app_1", true),
            ("a plain 'default' is no service default", "default", true),
            ("'default' inside is fine", "obs/default/x", true),
            ("default suffix is reserved", "obs/default", false),
            (
                "default suffix is reserved whatever the service",
                "x/default",
                false,
            ),
            (
                "default suffix is reserved whatever its case",
                "OBS/DEFAULT",
                false,
            ),
            (
                "default suffix is reserved in mixed case",
                "obs/Default",
                false,
            ),
            (
                "trailing '/' is refused, not normalised",
                "obs/default/",
                false,
            ),
            ("trailing '/' is refused anywhere", "team/app/", false),
            ("leading '/' is refused", "/obs/default", false),
            ("leading '/' is refused anywhere", "/app", false),
            ("doubled '/' is refused", "obs//default", false),
            ("doubled '/' is refused anywhere", "team//app", false),
            ("a lone '/' is refused", "/", false),
            ("spaces are refused", "has space", false),
            ("':' is refused", "a:b", false),
            (
                "'.' is taken, as in Vault's names (Ceph RGW's bucket IDs)",
                "7a1d1f0f-f2d4-4f5f-9f42-8d6b1a2a6c3e.4137.1",
                true,
            ),
            ("non-ASCII is refused", "ünïcode", false),
        ];
        for (rule, alias, ok) in cases {
            assert_eq!(validate_alias(alias).is_ok(), ok, "{rule}: {alias:?}");
        }
        assert!(validate_alias(&"a".repeat(255)).is_ok(), "255 characters");
        assert!(validate_alias(&"a".repeat(256)).is_err(), "256 characters");
    }

    #[test]
    fn service_name_rules() {
        for (s, ok) in [
            ("obs", true),
            ("evs-2", true),
            ("", false),
            ("OBS", false),
            ("a/b", false),
        ] {
            assert_eq!(validate_service(s).is_ok(), ok, "{s:?}");
        }
    }

    #[test]
    fn deletion_window_is_7_to_1096_days_and_30_by_default() {
        // (requested, resolved or None when refused)
        for (asked, want) in [
            (0, Some(30)),
            (6, None),
            (7, Some(7)),
            (1096, Some(1096)),
            (1097, None),
        ] {
            assert_eq!(DELETION_WINDOW.days(asked).ok(), want, "{asked}");
        }
    }

    #[test]
    fn page_size_is_at_most_1000_and_100_by_default() {
        for (asked, want) in [
            (0, Some(100)),
            (1, Some(1)),
            (1000, Some(1000)),
            (1001, None),
        ] {
            assert_eq!(PAGE_SIZE.size(asked).ok(), want, "{asked}");
        }
    }

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        let c = PageCursor {
            created_at_ms: 42,
            uuid: Uuid::from_u128(7),
        };
        assert_eq!(PageCursor::parse(&c.token()).unwrap(), Some(c));
        assert_eq!(PageCursor::parse("").unwrap(), None);
        for bad in ["garbage", "1.x", "x.00000000-0000-0000-0000-000000000007"] {
            assert!(PageCursor::parse(bad).is_err(), "{bad}");
        }
    }
}
