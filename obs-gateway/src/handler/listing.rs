//! One page of a listing that rolls keys up into common prefixes, as S3's object and upload
//! listings do: entries (items and common prefixes) after a marker, at most a page's worth, and
//! whether more follow.

use super::{ApiError, Target};
use crate::auth;

/// How a listing writes keys, prefixes and markers: URL-encoded when the request asks for it
/// (`encoding-type=url`, which boto3 always sends), as they are otherwise.
pub(super) fn key_encoding(t: &Target) -> impl Fn(&str) -> String + use<> {
    let url = t.get("encoding-type") == Some("url");
    move |s: &str| {
        if url {
            auth::aws_encode(s, true)
        } else {
            s.to_owned()
        }
    }
}

/// The most entries a page holds, S3's and OBS's limit.
const MAX_PAGE: usize = 1000;

/// A listing's page size from its `param` (`max-keys`, `max-uploads`): [`MAX_PAGE`] when absent,
/// at most that.
pub(super) fn page_size(t: &Target, param: &str) -> Result<usize, ApiError> {
    match t.get(param) {
        None => Ok(MAX_PAGE),
        Some(v) => v
            .parse::<usize>()
            .map(|n| n.min(MAX_PAGE))
            .map_err(|_| ApiError::bad(format!("{param} must be a non-negative integer"))),
    }
}

/// A page being filled from items offered in key order.
pub(super) struct Page<'a, T> {
    prefix: &'a str,
    delimiter: Option<&'a str>,
    marker: &'a str,
    max: usize,
    /// The items listed, in order.
    pub items: Vec<T>,
    /// The common prefixes listed, in order.
    pub prefixes: Vec<String>,
    /// Whether an entry after the page exists.
    pub truncated: bool,
    /// The last entry listed (an item's key or a common prefix): where the next page resumes.
    pub last: String,
    /// Whether that last entry is an item (the last of `items`).
    pub last_is_item: bool,
}

impl<'a, T> Page<'a, T> {
    /// An empty page of at most `max` entries under `prefix`, after `marker`.
    pub(super) fn new(
        prefix: &'a str,
        delimiter: Option<&'a str>,
        marker: &'a str,
        max: usize,
    ) -> Self {
        Self {
            prefix,
            delimiter,
            marker,
            max,
            items: Vec::new(),
            prefixes: Vec::new(),
            truncated: false,
            last: String::new(),
            last_is_item: false,
        }
    }

    /// Whether the page can take no entry at all (`max` 0): it lists nothing and is not
    /// truncated, since a truncated page needs a marker to resume from.
    pub(super) fn takes_nothing(&self) -> bool {
        self.max == 0
    }

    /// Offers the next item, whose `key` starts with the prefix, in key order. `false` once an
    /// entry beyond the page is seen (the page is then truncated): stop offering.
    pub(super) fn offer(&mut self, key: &str, item: T) -> bool {
        let rest = &key[self.prefix.len()..];
        let entry = self.delimiter.and_then(|d| {
            rest.find(d)
                .map(|i| format!("{}{}", self.prefix, &rest[..i + d.len()]))
        });
        // A page that ended on a common prefix resumes after it (the marker is that prefix):
        // its keys were rolled up there, and are not listed again.
        if entry.as_ref().is_some_and(|p| p.as_str() <= self.marker) {
            return true;
        }
        if self.items.len() + self.prefixes.len() >= self.max {
            // One more entry exists: only a new one (not the last prefix again) truncates.
            if entry
                .as_ref()
                .is_none_or(|p| self.prefixes.last() != Some(p))
            {
                self.truncated = true;
                return false;
            }
            return true;
        }
        match entry {
            Some(p) => {
                if self.prefixes.last() != Some(&p) {
                    self.last.clone_from(&p);
                    self.last_is_item = false;
                    self.prefixes.push(p);
                }
            }
            None => {
                key.clone_into(&mut self.last);
                self.last_is_item = true;
                self.items.push(item);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entries of one page of `keys` (sorted), prefixes with a trailing `/`.
    fn page(keys: &[&str], prefix: &str, marker: &str, max: usize) -> (Vec<String>, bool, String) {
        let mut p = Page::new(prefix, Some("/"), marker, max);
        if !p.takes_nothing() {
            for k in keys
                .iter()
                .filter(|k| k.starts_with(prefix) && **k > marker)
            {
                if !p.offer(k, (*k).to_owned()) {
                    break;
                }
            }
        }
        let mut entries = p.prefixes.clone();
        entries.extend(p.items);
        entries.sort();
        (entries, p.truncated, p.last)
    }

    #[test]
    fn pages_roll_keys_up_and_resume_after_their_last_entry() {
        let keys = ["a/1", "a/2", "a/b/3", "b/1", "c", "d/1"];
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        for (prefix, marker, max, want, truncated, last) in [
            ("", "", 1000, &["a/", "b/", "c", "d/"][..], false, "d/"),
            ("", "", 1, &["a/"][..], true, "a/"),
            // Resuming after a common prefix skips every key rolled up there.
            ("", "a/", 1, &["b/"][..], true, "b/"),
            ("", "b/", 1, &["c"][..], true, "c"),
            ("", "c", 1, &["d/"][..], false, "d/"),
            ("a/", "", 2, &["a/1", "a/2"][..], true, "a/2"),
            ("a/", "a/2", 2, &["a/b/"][..], false, "a/b/"),
            // A page that takes nothing is empty and not truncated.
            ("", "", 0, &[][..], false, ""),
        ] {
            assert_eq!(
                page(&keys, prefix, marker, max),
                (s(want), truncated, last.to_owned()),
                "prefix {prefix:?} marker {marker:?} max {max}"
            );
        }
    }
}
