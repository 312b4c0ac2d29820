//! Flat JSON objects of plain strings, read without serde: what SDKs send on the data path
//! (`{"key_id":"…","datakey_length":"256"}`). serde's derived reader costs about four times
//! this on the most frequent request. Anything this reader does not take whole (an escape, a
//! number, a nested value, an unknown or repeated member, trailing text) it leaves to serde,
//! which reads it the same way or refuses it with its own message.

/// The members of `body`, a JSON object, by the position of their name in `names`: `None` for a
/// member absent, `Some(None)` for `null`, `Some(Some(text))` for a string. `None` unless `body`
/// is one object whose members all have a name in `names`, at most once each, and a string
/// value with no escape and no control character, or `null`.
pub(super) fn members<'a, const N: usize>(
    body: &'a [u8],
    names: [&str; N],
) -> Option<[Option<Option<&'a str>>; N]> {
    // Checked once, whole: the text's quotes and structure are ASCII, so every string found in it
    // lies on character boundaries.
    let body = std::str::from_utf8(body).ok()?;
    let mut r = Reader { body, at: 0 };
    let mut out = [None; N];
    r.skip_space();
    r.expect(b'{')?;
    r.skip_space();
    if !r.eat(b'}') {
        loop {
            let name = r.string()?;
            let slot = out.get_mut(names.iter().position(|n| *n == name)?)?;
            r.skip_space();
            r.expect(b':')?;
            r.skip_space();
            let value = if r.eat_word("null") {
                None
            } else {
                Some(r.string()?)
            };
            if slot.replace(value).is_some() {
                return None;
            }
            r.skip_space();
            if r.eat(b',') {
                r.skip_space();
                continue;
            }
            r.expect(b'}')?;
            break;
        }
    }
    r.skip_space();
    (r.at == body.len()).then_some(out)
}

struct Reader<'a> {
    body: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn skip_space(&mut self) {
        while matches!(
            self.body.as_bytes().get(self.at),
            Some(b' ' | b'\t' | b'\n' | b'\r')
        ) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.body.as_bytes().get(self.at) == Some(&b);
        self.at += usize::from(hit);
        hit
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        self.eat(b).then_some(())
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let hit = self
            .body
            .get(self.at..)
            .is_some_and(|r| r.starts_with(word));
        if hit {
            self.at += word.len();
        }
        hit
    }

    /// A string with no escape and no control character, its quotes taken.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let rest = self.body.get(self.at..)?;
        let text = rest.get(..memchr::memchr(b'"', rest.as_bytes())?)?;
        if crate::json::needs_escape(text.as_bytes()) {
            return None;
        }
        self.at += text.len() + 1;
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 3] = ["a", "bb", "c"];

    #[test]
    fn plain_objects_are_read_and_all_else_is_left_to_serde() {
        // (rule, body, what is read: None when left to serde)
        type Read = Option<[Option<Option<&'static str>>; 3]>;
        let cases: &[(&str, &str, Read)] = &[
            ("an empty object", "{}", Some([None, None, None])),
            (
                "space around everything",
                " \t\r\n{ \"a\" :\n\"x\" , \"c\":\"\" }\n",
                Some([Some(Some("x")), None, Some(Some(""))]),
            ),
            (
                "null is read as null",
                r#"{"bb":null}"#,
                Some([None, Some(None), None]),
            ),
            (
                "UTF-8 text",
                r#"{"a":"é✓🔑"}"#,
                Some([Some(Some("é✓🔑")), None, None]),
            ),
            ("an escape", r#"{"a":"x\"y"}"#, None),
            ("a unicode escape", r#"{"a":"\u0041"}"#, None),
            ("a control character", "{\"a\":\"x\ty\"}", None),
            ("an escape in a name", r#"{"\u0061":"x"}"#, None),
            ("an unknown member", r#"{"d":"x"}"#, None),
            ("a repeated member", r#"{"a":"x","a":"y"}"#, None),
            ("a repeated null", r#"{"a":null,"a":null}"#, None),
            ("a number", r#"{"a":1}"#, None),
            ("true", r#"{"a":true}"#, None),
            ("a nested object", r#"{"a":{}}"#, None),
            ("a word after null", r#"{"a":nullx}"#, None),
            ("a trailing comma", r#"{"a":"x",}"#, None),
            ("text after the object", r#"{"a":"x"} x"#, None),
            ("two objects", r#"{}{}"#, None),
            ("no closing brace", r#"{"a":"x""#, None),
            ("an unclosed string", r#"{"a":"x"#, None),
            ("not an object", r#"["a"]"#, None),
            ("an empty body", "", None),
            (
                "the replacement character, text like any other",
                "{\"a\":\"\u{fffd}\"}",
                Some([Some(Some("\u{fffd}")), None, None]),
            ),
        ];
        for (rule, body, want) in cases {
            assert_eq!(members(body.as_bytes(), NAMES), *want, "{rule}");
        }
        assert_eq!(
            members(b"{\"a\":\"\xff\"}", NAMES),
            None,
            "bytes that are not UTF-8"
        );
    }

    /// Whatever the reader takes, serde reads the same: bodies made of JSON's pieces at random.
    #[test]
    fn what_is_read_is_what_serde_reads() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        #[serde(deny_unknown_fields)]
        struct Model {
            a: Option<String>,
            bb: Option<String>,
            c: Option<String>,
        }
        let names = ["\"a\"", "\"bb\"", "\"c\"", "\"d\""];
        let values = ["\"x\"", "\"\"", "null", "1", "\"\\n\"", "{}", "\"é\""];
        let spaces = ["", " ", "\n\t"];
        let glue = [",", ",", ",", "", ",,"];
        // Objects of members drawn at random (a few malformed by their glue), so that many are
        // read; each member is a name, a value and the space and glue around them.
        let member = (
            0..names.len(),
            0..values.len(),
            0..spaces.len(),
            0..glue.len(),
        );
        let read = std::cell::Cell::new(0);
        proptest::proptest!(|(picks in proptest::collection::vec(member, 0..5))| {
            let mut body = String::from("{");
            for (i, (n, v, s, g)) in picks.iter().enumerate() {
                if i > 0 {
                    body.push_str(glue[*g]);
                }
                body.push_str(&format!("{}{}{}:{}{}", spaces[*s], names[*n], spaces[*s], spaces[*s], values[*v]));
            }
            body.push('}');
            if let Some([a, bb, c]) = members(body.as_bytes(), NAMES) {
                read.set(read.get() + 1);
                let serde: Model = serde_json::from_str(&body).expect("serde reads what the reader read");
                let own = |v: Option<Option<&str>>| v.flatten().map(str::to_owned);
                proptest::prop_assert_eq!(serde, Model { a: own(a), bb: own(bb), c: own(c) }, "{}", body);
            }
        });
        assert!(
            read.get() > 20,
            "only {} of the bodies were read",
            read.get()
        );
    }
}
