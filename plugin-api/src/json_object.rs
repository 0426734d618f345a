//! JSON objects read with every key kept, so a repeated key can be refused.
//!
//! `serde_json::Value` keeps the last of a repeated key: in
//! `{"amount":"10","amount":"1000"}` the 10 disappears without a trace.
//! Where money is read from input a person or a network writes (order files,
//! postback bodies), a repeated key is ambiguous and must be an error instead.
//!
//! - [`entries`] gives a top-level object's `(key, value)` pairs in order,
//!   repeats included, so the caller decides (postbacks accept the same
//!   value twice, order files refuse any repeat).
//! - Inside those values, an object with a repeated key is a parse error
//!   (`key `x` appears twice in an object`), with serde_json's line and column.
//! - [`raw_entries`] gives the same pairs with each value's text as written
//!   ([`RawValue`]), and [`number_literal`] a JSON number's literal. Money
//!   sent as a JSON number is read from that literal, never through `f64`
//!   (which would turn `12345678901234567.89` into `12345678901234568` and
//!   hide an exponent: `1e3`). The workspace does not enable serde_json's
//!   `arbitrary_precision`, which changes `Value`/`Number` everywhere.
//!
//! - [`LiteralNumbers`] is a `Value` for connectors that convert API rows
//!   from `Value`s (Shopify orders, the example plugin): a number with a
//!   fraction or exponent is kept as a string of its literal, so money read
//!   from it with [`crate::parse::decimal`] is exact.
//!
//! The `Value`s of [`entries`] hold numbers as serde_json gives them (an
//! `f64` for a fraction); no money is read from them: order files and
//! postbacks read a number's amount from [`raw_entries`].
//!
//! What it is not: not a JSON parser of its own (serde_json does the
//! parsing). Typed API pages use [`crate::lenient`] instead.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::fmt;

/// The `(key, value)` pairs of a JSON object text, in order, repeated keys
/// included. An error if the text is not one JSON object, or if an object
/// nested in a value repeats a key.
pub fn entries(text: &str) -> Result<Vec<(String, Value)>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let pairs = de.deserialize_map(EntriesVisitor)?;
    de.end()?;
    Ok(pairs)
}

/// The `(key, text as written)` pairs of a JSON object text, in order,
/// repeated keys included: the same pairs as [`entries`] (call that first
/// for its checks and error positions), with each value's JSON text instead
/// of a `Value`, borrowed from `text`.
pub fn raw_entries(text: &str) -> Result<Vec<(String, &RawValue)>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let pairs = de.deserialize_map(RawEntriesVisitor(std::marker::PhantomData))?;
    de.end()?;
    Ok(pairs)
}

/// The elements of a JSON array text as written; `None` if `raw` is not an array.
pub fn raw_elements(raw: &RawValue) -> Option<Vec<&RawValue>> {
    serde_json::from_str(raw.get()).ok()
}

/// A JSON number's literal exactly as written (`12345678901234567.89`,
/// `1e3`), for an exact or strict reading; `None` if `raw` is not a number.
pub fn number_literal(raw: &RawValue) -> Option<&str> {
    let t = raw.get().trim();
    t.starts_with(|c: char| c == '-' || c.is_ascii_digit())
        .then_some(t)
}

/// A JSON value read with every number that a `Value` cannot hold as
/// written (a fraction, an exponent, an integer beyond 64 bits) kept as a
/// JSON string of its literal: `{"amount": 12345678901234567.89}` becomes
/// `{"amount": "12345678901234567.89"}`, which [`crate::parse::decimal`]
/// reads exactly, where a `Value` would hold `12345678901234568.0`.
/// Integers that fit 64 bits stay numbers (ids, counts). Deserialized from
/// serde_json text only (each value is read as a borrowed [`RawValue`]);
/// each nesting level reads its text again, so keep it to the few fields
/// that carry money. Nesting deeper than [`MAX_LITERAL_DEPTH`] is an error:
/// each level is a fresh serde_json parser, whose own recursion limit does
/// not carry over, so without it 40 KB of `[[[…]]]` overflowed the stack
/// (security QA31-C F1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiteralNumbers(pub Value);

/// The deepest nesting of objects and arrays [`LiteralNumbers`] reads: as
/// serde_json's own limit for a `Value`.
pub const MAX_LITERAL_DEPTH: usize = 128;

impl<'de> de::Deserialize<'de> for LiteralNumbers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Literal(MAX_LITERAL_DEPTH)
            .deserialize(d)
            .map(LiteralNumbers)
    }
}

/// A [`LiteralNumbers`] value with `.0` more levels of objects and arrays
/// allowed below it.
#[derive(Clone, Copy)]
struct Literal(usize);

impl<'de> DeserializeSeed<'de> for Literal {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        let raw: &'de RawValue = de::Deserialize::deserialize(d)?;
        let text = raw.get();
        let nested = matches!(text.as_bytes().first(), Some(b'{' | b'['));
        if nested && self.0 == 0 {
            return Err(de::Error::custom(format_args!(
                "JSON nested more than {MAX_LITERAL_DEPTH} levels deep"
            )));
        }
        let below = Literal(self.0.saturating_sub(1));
        let value = match text.as_bytes().first() {
            Some(b'{') => serde_json::Deserializer::from_str(text).deserialize_map(below),
            Some(b'[') => serde_json::Deserializer::from_str(text).deserialize_seq(below),
            // Fast path for the common case, a string without escapes.
            Some(b'"') if !text.as_bytes().contains(&b'\\') => {
                Ok(Value::String(text[1..text.len() - 1].to_owned()))
            }
            _ => match number_literal(raw) {
                Some(n) => Ok(n
                    .parse::<u64>()
                    .map(Value::from)
                    .or_else(|_| n.parse::<i64>().map(Value::from))
                    .unwrap_or_else(|_| Value::String(n.to_owned()))),
                None => serde_json::from_str::<Value>(text),
            },
        };
        value.map_err(de::Error::custom)
    }
}

/// The object or array of a [`Literal`] one level up, its values read as
/// [`Literal`]s (in an object the last of a repeated key wins, as in a
/// `Value`).
impl<'de> Visitor<'de> for Literal {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object or array")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(self)?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
}

/// The first key that appears more than once in `pairs`, with the indexes
/// of its first and second occurrence.
pub fn first_repeat(pairs: &[(String, Value)]) -> Option<(&str, usize, usize)> {
    let mut seen = std::collections::HashMap::new();
    for (i, (k, _)) in pairs.iter().enumerate() {
        if let Some(first) = seen.insert(k.as_str(), i) {
            return Some((k.as_str(), first, i));
        }
    }
    None
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Vec<(String, Value)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(UniqueKeys)?;
            out.push((key, value));
        }
        Ok(out)
    }
}

struct RawEntriesVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for RawEntriesVisitor<'a> {
    type Value = Vec<(String, &'a RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: &'de RawValue = map.next_value()?;
            out.push((key, value));
        }
        Ok(out)
    }
}

/// A `Value` whose objects (at any depth) have no repeated key.
struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // serde_json never yields a non-finite number.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(UniqueKeys)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(UniqueKeys)?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "key `{key}` appears twice in an object"
                )));
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn repeated_keys_are_kept_in_order() {
        let pairs = entries(r#"{"a":"1","b":2,"a":"3"}"#).unwrap();
        assert_eq!(
            pairs,
            [
                ("a".to_string(), json!("1")),
                ("b".to_string(), json!(2)),
                ("a".to_string(), json!("3"))
            ]
        );
        assert_eq!(first_repeat(&pairs), Some(("a", 0, 2)));
        assert_eq!(first_repeat(&pairs[..2]), None);
    }

    #[test]
    fn values_are_those_serde_json_gives() {
        let text = r#"{"n":-1,"u":18446744073709551615,"f":12.5,"s":"x","t":true,"z":null,"l":[1,{"k":"v"}],"o":{"p":{"q":[]}}}"#;
        let pairs = entries(text).unwrap();
        let via_value: Value = serde_json::from_str(text).unwrap();
        let rebuilt: Map<String, Value> = pairs.into_iter().collect();
        assert_eq!(Value::Object(rebuilt), via_value);
    }

    /// QA6 F4: a JSON number's literal is kept as written, for money.
    #[test]
    fn raw_entries_keep_number_literals_as_written() {
        let text = r#"{"a":12345678901234567.89,"b":"1e3","c":1e3,"r":[{"amount":5e0}],"a":-0.10}"#;
        let raw = raw_entries(text).unwrap();
        let keys: Vec<&str> = raw.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c", "r", "a"]);
        let lit: Vec<Option<&str>> = raw.iter().map(|(_, v)| number_literal(v)).collect();
        assert_eq!(
            lit,
            [
                Some("12345678901234567.89"),
                None,
                Some("1e3"),
                None,
                Some("-0.10")
            ]
        );
        let refunds = raw_elements(raw[3].1).unwrap();
        let first = raw_entries(refunds[0].get()).unwrap();
        assert_eq!(number_literal(first[0].1), Some("5e0"));
        assert!(raw_elements(raw[0].1).is_none());
    }

    /// Money in a `Value` read with `LiteralNumbers` is exact; ids stay numbers.
    #[test]
    fn literal_numbers_keep_what_a_value_cannot_hold() {
        let text = r#"{"id": 450000000123, "n": -3, "amount": 12345678901234567.89,
            "lines": [{"price": -0.10, "tax": [1e3, "2.5"]}], "big": 18446744073709551616,
            "s": "x\"y", "t": true, "z": null, "o": {}}"#;
        let v: LiteralNumbers = serde_json::from_str(text).unwrap();
        assert_eq!(
            v.0,
            json!({"id": 450000000123u64, "n": -3, "amount": "12345678901234567.89",
                "lines": [{"price": "-0.10", "tax": ["1e3", "2.5"]}], "big": "18446744073709551616",
                "s": "x\"y", "t": true, "z": null, "o": {}})
        );
        let amount = crate::parse::decimal(&v.0["amount"]).unwrap().unwrap();
        assert_eq!(amount.to_string(), "12345678901234567.89");
        #[derive(serde::Deserialize)]
        struct Page {
            data: Vec<LiteralNumbers>,
        }
        let page: Page = serde_json::from_slice(br#"{"data":[{"a":0.3},7]}"#).unwrap();
        assert_eq!(page.data[0].0, json!({"a": "0.3"}));
        assert_eq!(page.data[1].0, json!(7));
    }

    /// Security QA31-C F1: 20,000 levels of `[` in one row overflowed the
    /// stack (each level a fresh parser); past the limit it is an error.
    #[test]
    fn literal_numbers_refuse_nesting_past_the_limit() {
        let deep = |n: usize| format!("{}1.5{}", "[".repeat(n), "]".repeat(n));
        let ok: LiteralNumbers = serde_json::from_str(&deep(MAX_LITERAL_DEPTH)).unwrap();
        let mut v = &ok.0;
        for _ in 0..MAX_LITERAL_DEPTH {
            v = &v[0];
        }
        assert_eq!(v, &Value::String("1.5".into()));
        let e = serde_json::from_str::<LiteralNumbers>(&deep(MAX_LITERAL_DEPTH + 1)).unwrap_err();
        assert!(e.to_string().contains("nested more than 128 levels"), "{e}");
        let objects = format!("{}0{}", r#"{"a":"#.repeat(20_000), "}".repeat(20_000));
        let row = format!(r#"{{"data":[{{"x":{objects}}}]}}"#);
        #[derive(serde::Deserialize)]
        struct Page {
            #[allow(dead_code)]
            data: Vec<LiteralNumbers>,
        }
        let e = serde_json::from_str::<Page>(&row).err().expect("refused");
        assert!(e.to_string().contains("nested more than"), "{e}");
    }

    #[test]
    fn a_nested_repeat_a_non_object_and_trailing_text_are_errors() {
        let e = entries(r#"{"utm":{"source":"a","source":"b"}}"#).unwrap_err();
        assert!(e.to_string().contains("key `source` appears twice"), "{e}");
        let e = entries(r#"{"refunds":[{"amount":"1","amount":"2"}]}"#).unwrap_err();
        assert!(e.to_string().contains("key `amount` appears twice"), "{e}");
        assert!(entries("[1]").is_err());
        assert!(entries(r#"{"a":1} x"#).is_err());
        assert!(entries(r#"{"a":1,}"#).is_err());
    }
}
