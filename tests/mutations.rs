//! Bad input made from good input, for the tests that send each wire API every shape of it: a
//! valid body cut and rotated, and a JSON body with each field given other values.

use serde_json::{Value, json};

/// `whole` cut at about `places` places (every prefix at a step) and rotated at as many (the
/// part after a point moved before it).
pub fn cut_and_rotated(whole: &[u8], places: usize) -> Vec<Vec<u8>> {
    let step = (whole.len() / places).max(1);
    let mut out: Vec<Vec<u8>> = (0..whole.len())
        .step_by(step)
        .map(|at| whole[..at].to_vec())
        .collect();
    out.extend(
        (1..whole.len())
            .step_by(step)
            .map(|at| [&whole[at..], &whole[..at]].concat()),
    );
    out
}

/// Values of every JSON type, and strings past every limit: multibyte text over 255 bytes, NUL,
/// empty, a small and a huge number, a negative, null, an array, an object.
pub fn other_json_values() -> [Value; 9] {
    [
        json!("\u{e9}".repeat(300)),
        json!("a\u{0}b"),
        json!(""),
        json!(7),
        json!(1e300),
        json!(-1),
        Value::Null,
        json!(["a"]),
        json!({"a": 1}),
    ]
}

/// The JSON object `valid` with each of its fields in turn given each of
/// [`other_json_values`], encoded.
///
/// # Panics
/// When `valid` is not a JSON object.
pub fn retyped(valid: &Value) -> Vec<Vec<u8>> {
    let fields = valid.as_object().expect("a JSON object");
    let mut out = Vec::new();
    for field in fields.keys() {
        for other in other_json_values() {
            let mut body = valid.clone();
            body[field] = other;
            out.push(body.to_string().into_bytes());
        }
    }
    out
}

/// Every body [`cut_and_rotated`] (at about 30 places) and [`retyped`] makes of `valid`.
pub fn bad_json_bodies(valid: &Value) -> Vec<Vec<u8>> {
    let mut out = cut_and_rotated(valid.to_string().as_bytes(), 30);
    out.extend(retyped(valid));
    out
}
