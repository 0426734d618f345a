//! Lenient scalar fields for fast, typed page parsing.
//!
//! Pages are deserialized straight into row structs whose fields are
//! [`Scalar`]s: any JSON scalar (a number, a numeric string, a placeholder,
//! a bool, null) is accepted and borrowed from the body where possible, and
//! the row converter then says which field was wrong. This avoids building a
//! `serde_json::Value` tree per row, which costs most of the parse time.
//!
//! A JSON number is kept as its literal, exactly as written
//! (`12345678901234567.89`, `-0.10`, `1.5e2`), and converted from that text:
//! never through `f64`, which rounds beyond ~15 significant digits. Each
//! field is read as serde_json's borrowed [`RawValue`] and classified by its
//! first byte: a string is borrowed without its quotes (unescaped into an
//! owned string only when it has a backslash), a number keeps its literal,
//! `true`/`false`/`null` are themselves, and an object or array is only
//! named. serde_json's `arbitrary_precision` feature, which would keep
//! literals in `Number`, stays off: it changes `Value`/`Number` for every
//! crate of the workspace (`untagged`/`flatten` stop working with numbers).
//!
//! Number literals with an exponent (`1.5e2`, `1E-7`) are accepted and read
//! exactly ([`Decimal::from_scientific`]); a literal whose value a
//! [`Decimal`] cannot hold exactly (more than 28 significant digits, an
//! exponent out of range) is an error naming it, never rounded.
//!
//! What it is not: [`Scalar`] and [`Num`] are read by serde_json from text
//! only (`from_slice`/`from_str`, which can lend a `RawValue`), not from a
//! `serde_json::Value` (whose numbers have already passed through `f64`) or
//! from serde's buffered content (`untagged`/`flatten`). To find which record
//! of a page a typed parse refused, re-read that record's text with
//! [`record_error`].

use rust_decimal::Decimal;
use serde::de::{Deserialize, Deserializer, Error as _};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::str::FromStr;

/// Any JSON value, kept cheaply; objects and arrays are only named.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Scalar<'a> {
    /// `null` or absent.
    #[default]
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A string (borrowed from the body unless it had escapes).
    Str(Cow<'a, str>),
    /// A JSON number: its literal as written (`42`, `-3`, `12.50`, `1e3`).
    Number(Cow<'a, str>),
    /// An object or array where a scalar was expected.
    Other(&'static str),
}

/// One JSON value of the body, classified by its first byte.
fn classify<'a>(raw: &'a RawValue) -> Result<Scalar<'a>, serde_json::Error> {
    let text = raw.get();
    Ok(match text.as_bytes().first() {
        Some(b'"') => {
            let inner = &text[1..text.len() - 1];
            if inner.as_bytes().contains(&b'\\') {
                Scalar::Str(Cow::Owned(serde_json::from_str::<String>(text)?))
            } else {
                Scalar::Str(Cow::Borrowed(inner))
            }
        }
        Some(b'-' | b'0'..=b'9') => Scalar::Number(Cow::Borrowed(text)),
        Some(b't') => Scalar::Bool(true),
        Some(b'f') => Scalar::Bool(false),
        Some(b'{') => Scalar::Other("an object"),
        Some(b'[') => Scalar::Other("an array"),
        _ => Scalar::Null,
    })
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &'de RawValue = Deserialize::deserialize(d)?;
        classify(raw).map_err(D::Error::custom)
    }
}

/// True for a JSON number literal with a fraction or an exponent.
fn has_fraction_or_exponent(literal: &str) -> bool {
    literal.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

/// The exact decimal of a JSON number literal (`12.50`, `-3`, `1.5e2`), or
/// an error naming it when a [`Decimal`] cannot hold it as written.
pub fn number_decimal(literal: &str) -> Result<Decimal, String> {
    let cannot = || {
        format!(
            "number {literal} cannot be held exactly as a decimal (at most 28 significant digits)"
        )
    };
    if literal.contains(['e', 'E']) {
        return Decimal::from_scientific(literal).map_err(|_| cannot());
    }
    let d = Decimal::from_str(literal).map_err(|_| cannot())?;
    // rust_decimal rounds fraction digits beyond what it holds: refuse.
    let fraction_digits = literal.split_once('.').map_or(0, |(_, f)| f.len());
    if (d.scale() as usize) < fraction_digits {
        return Err(cannot());
    }
    Ok(d)
}

/// Reads an object field as `T` (`#[serde(deserialize_with =
/// "plugin_api::lenient::object")]`): `None` for null (or, with
/// `#[serde(default)]`, absent), an error for any shape but an object.
/// serde reads a struct from an array too, element by element in field
/// order, so `relationship.affiliate: [7, "Aff"]` would be affiliate 7, and
/// names only the type it expected for a number (QA35d L1).
pub fn object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    use serde::de::{MapAccess, Visitor};
    struct Obj<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Obj<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    d.deserialize_any(Obj(std::marker::PhantomData))
}

/// A key of an object a hand-written `Deserialize` reads: one of the keys
/// it knows (by index into its list), or another (by name, allocated only
/// then), so a parser can tell an answer's documented keys from a drifted
/// one (QA35d, QA36: a renamed rows or paging key must not read as "no
/// rows").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// `known[i]`.
    Known(usize),
    /// Any other key.
    Other(String),
}

/// Reads an object key as a [`Key`] among `known`
/// (`map.next_key_seed(KeySeed(&KNOWN))`).
#[derive(Debug, Clone, Copy)]
pub struct KeySeed(pub &'static [&'static str]);

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeySeed {
    type Value = Key;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(match self.0.iter().position(|k| *k == v) {
            Some(i) => Key::Known(i),
            None => Key::Other(v.to_owned()),
        })
    }
}

/// What a JSON value is, for an error about a field of the wrong shape:
/// `null`, `true`, `a number (6.5)`, `a string ("x")`, `an array`, `an
/// object`.
pub fn shape(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) => format!("a string ({s:?})"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Why serde_json could not read one record's JSON `text` as `T`, without
/// serde_json's "at line 1 column N" (a position inside the record, not the
/// page); `None` when it reads. For the error path of typed page parsers:
/// the page is re-read as a `Value` to find the record, whose text
/// (`value.to_string()`) is then read again, since [`Scalar`] and [`Num`]
/// need text.
pub fn record_error<'de, T: Deserialize<'de>>(text: &'de str) -> Option<String> {
    let e = serde_json::from_str::<T>(text).err()?;
    let full = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    Some(full.strip_suffix(&position).unwrap_or(&full).to_owned())
}

/// The id a JSON number's literal names (see [`Scalar::id`]): `101` and
/// `101.0` name `"101"`; `Err` says why one names none: "has a fraction"
/// (`101.5`) or "has an exponent" (`1.0e2`, how a double may print).
pub fn whole_id(n: &str) -> Result<&str, &'static str> {
    if n.contains(['e', 'E']) {
        return Err("has an exponent");
    }
    match n.split_once('.') {
        None => Ok(n),
        Some((w, f)) if f.bytes().all(|b| b == b'0') => Ok(w),
        Some(_) => Err("has a fraction"),
    }
}

fn number_id(n: &str, field: &str) -> Result<String, String> {
    whole_id(n).map(str::to_owned).map_err(|why| {
        format!("field `{field}`: {n} {why}, and an id sent as a number must be a whole number written in full")
    })
}

impl Scalar<'_> {
    /// Text of a non-empty string (trimmed) or of a number; `None` otherwise.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Scalar::Str(s) => {
                let t = s.trim();
                (!t.is_empty()).then_some(Cow::Borrowed(t))
            }
            Scalar::Number(n) => Some(Cow::Borrowed(n)),
            _ => None,
        }
    }

    /// [`Scalar::text`] as an owned string.
    pub fn string(&self) -> Option<String> {
        self.text().map(Cow::into_owned)
    }

    /// An id (a partner's, a record's): a non-empty string (trimmed) or a
    /// whole number, the same id whichever the platform sends: `101`,
    /// `"101"` and `101.0` are `"101"`. A number with a fraction or an
    /// exponent is refused, as no id has one (QA35d M3: a platform that
    /// began sending `101.0` re-keyed every stored claim to a new payee
    /// "101.0"). `None` for null and `""`; `Err` for `true`, an object...
    pub fn id(&self, field: &str) -> Result<Option<String>, String> {
        match self {
            Scalar::Null => Ok(None),
            Scalar::Str(s) => Ok(Some(s.trim()).filter(|t| !t.is_empty()).map(str::to_owned)),
            Scalar::Number(n) => number_id(n, field).map(Some),
            Scalar::Bool(b) => Err(format!("field `{field}`: expected an id, got {b}")),
            Scalar::Other(what) => Err(format!("field `{field}`: expected an id, got {what}")),
        }
    }

    /// A decimal from a number (exactly, from its literal: see
    /// [`number_decimal`]) or numeric string; `None` for null, `""`, `"-"`.
    pub fn decimal(&self, field: &str) -> Result<Option<Decimal>, String> {
        let parse = |t: &str| {
            Decimal::from_str(t)
                .or_else(|_| Decimal::from_scientific(t))
                .map(Some)
                .map_err(|_| format!("field `{field}`: {t:?} is not a decimal number"))
        };
        match self {
            Scalar::Null => Ok(None),
            Scalar::Number(n) => number_decimal(n)
                .map(Some)
                .map_err(|e| format!("field `{field}`: {e}")),
            Scalar::Str(s) => {
                let t = s.trim();
                if t.is_empty() || t == "-" || t == "--" {
                    Ok(None)
                } else {
                    parse(t)
                }
            }
            Scalar::Bool(b) => Err(format!("field `{field}`: expected a number, got {b}")),
            Scalar::Other(what) => Err(format!("field `{field}`: expected a number, got {what}")),
        }
    }

    /// An integer from a number or numeric string; `None` for null or `""`.
    pub fn integer(&self, field: &str) -> Result<Option<i64>, String> {
        match self {
            Scalar::Null => Ok(None),
            Scalar::Number(n) if has_fraction_or_exponent(n) => {
                Err(format!("field `{field}`: {n} is not an integer"))
            }
            Scalar::Number(n) => n
                .parse()
                .map(Some)
                .map_err(|_| format!("field `{field}`: {n} is too large")),
            Scalar::Str(s) if s.trim().is_empty() || s.trim() == "-" => Ok(None),
            Scalar::Str(s) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("field `{field}`: {s:?} is not an integer")),
            Scalar::Bool(b) => Err(format!("field `{field}`: expected an integer, got {b}")),
            Scalar::Other(what) => Err(format!("field `{field}`: expected an integer, got {what}")),
        }
    }

    /// A bool as platforms send flags: `true`/`false`, the numbers `1`/`0`,
    /// or those as strings (`"true"`, `"False"`, `"1"`, `"0"`); `None`
    /// for anything else (null, another number, other text). Platforms that
    /// do not type a flag send either shape, and reading `1` as "not a bool"
    /// would silently turn every set flag into `false`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Scalar::Bool(b) => Some(*b),
            Scalar::Number(n) if n == "0" => Some(false),
            Scalar::Number(n) if n == "1" => Some(true),
            Scalar::Str(s) => {
                let t = s.trim();
                if t == "1" || t.eq_ignore_ascii_case("true") {
                    Some(true)
                } else if t == "0" || t.eq_ignore_ascii_case("false") {
                    Some(false)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// A flag field: [`Scalar::as_bool`]'s shapes, `None` when absent
    /// (null or `""`), and an error naming the field for any other value,
    /// so a flag sent in a shape nobody expected is never read as `false`.
    pub fn flag(&self, field: &str) -> Result<Option<bool>, String> {
        match self {
            Scalar::Null => Ok(None),
            Scalar::Str(s) if s.trim().is_empty() => Ok(None),
            other => other.as_bool().map(Some).ok_or_else(|| {
                let got = match other {
                    Scalar::Str(s) => format!("{s:?}"),
                    Scalar::Other(what) => (*what).to_owned(),
                    v => v.text().map(|t| t.into_owned()).unwrap_or_default(),
                };
                format!("field `{field}`: expected a flag (true/false or 1/0), got {got}")
            }),
        }
    }
}

/// A metric as ad networks send it: a JSON string (Google's int64, every
/// Meta metric, TikTok's `"-"` for missing) or a JSON number, borrowed from
/// the body. Unlike [`Scalar`], which takes any value, a `Num` must be a
/// number or a string, and converts exactly (a JSON number from its literal,
/// never through `f64` or a float sum).
#[derive(Debug, Clone, PartialEq)]
pub enum Num<'a> {
    /// A string such as `"1234567"`.
    Str(Cow<'a, str>),
    /// A JSON number: its literal as written (`42`, `-3`, `0.1`, `1e-7`).
    Number(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Num<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &'de RawValue = Deserialize::deserialize(d)?;
        match classify(raw).map_err(D::Error::custom)? {
            Scalar::Str(s) => Ok(Num::Str(s)),
            Scalar::Number(n) => Ok(Num::Number(n)),
            _ => Err(D::Error::custom(format_args!(
                "invalid type: {}, expected a number or a numeric string",
                raw.get()
            ))),
        }
    }
}

impl Num<'_> {
    /// An id, read as [`Scalar::id`] reads one: `"101"`, `101` and `101.0`
    /// are `"101"`; `None` for `""`.
    pub fn id(&self, field: &str) -> Result<Option<String>, String> {
        match self {
            Num::Str(s) => Ok(Some(s.trim()).filter(|t| !t.is_empty()).map(str::to_owned)),
            Num::Number(n) => number_id(n, field).map(Some),
        }
    }

    /// The value as written, for messages (a string quoted).
    pub fn text(&self) -> String {
        match self {
            Num::Str(s) => format!("{s:?}"),
            Num::Number(n) => n.to_string(),
        }
    }
    /// An exact decimal (placeholders read as `None`).
    pub fn decimal(&self) -> Result<Option<Decimal>, String> {
        match self {
            Num::Str(s) => crate::parse::decimal_str(s),
            Num::Number(n) => number_decimal(n).map(Some),
        }
    }
    /// A signed 64-bit integer.
    pub fn int(&self) -> Result<i64, String> {
        match self {
            Num::Str(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("{s:?} is not an integer")),
            Num::Number(n) if has_fraction_or_exponent(n) => Err(format!("{n} is not an integer")),
            Num::Number(n) => n
                .parse::<i64>()
                .map_err(|_| format!("{n} does not fit in int64")),
        }
    }
    /// A non-negative integer.
    pub fn count(&self) -> Result<u64, String> {
        let v = self.int()?;
        u64::try_from(v).map_err(|_| format!("{v} is negative"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(json: &str) -> Num<'_> {
        serde_json::from_str(json).unwrap()
    }

    fn scalar(json: &str) -> Scalar<'_> {
        serde_json::from_str(json).unwrap()
    }

    /// Regression (QA M2): Everflow's untyped `is_event`/`is_scrub` sent as
    /// `1` were read as "not a bool", then as `false`.
    #[test]
    fn flags_read_bools_and_ones_and_zeros_and_refuse_other_values() {
        for (json, want) in [
            ("true", true),
            ("false", false),
            ("1", true),
            ("0", false),
            (r#""1""#, true),
            (r#"" 0 ""#, false),
            (r#""true""#, true),
            (r#""False""#, false),
        ] {
            assert_eq!(scalar(json).as_bool(), Some(want), "{json}");
            assert_eq!(scalar(json).flag("f"), Ok(Some(want)), "{json}");
        }
        assert_eq!(scalar("null").flag("f"), Ok(None));
        assert_eq!(scalar(r#""""#).flag("f"), Ok(None));
        for json in ["2", "-1", "1.0", r#""yes""#, "{}", "[]"] {
            assert_eq!(scalar(json).as_bool(), None, "{json}");
            let e = scalar(json).flag("is_event").unwrap_err();
            assert!(e.contains("field `is_event`"), "{json}: {e}");
        }
    }

    #[test]
    fn num_reads_strings_and_numbers_exactly() {
        assert_eq!(num(r#""1234567""#).int(), Ok(1_234_567));
        assert_eq!(num("42").count(), Ok(42));
        assert_eq!(num("-3").int(), Ok(-3));
        assert!(num("-3").count().unwrap_err().contains("negative"));
        assert_eq!(
            num("0.1").decimal(),
            Ok(Some(Decimal::from_str("0.1").unwrap()))
        );
        assert_eq!(
            num(r#"" 12.50 ""#).decimal(),
            Ok(Some(Decimal::from_str("12.50").unwrap()))
        );
        assert_eq!(num(r#""-""#).decimal(), Ok(None));
        assert!(num("1.5").int().unwrap_err().contains("not an integer"));
        assert!(num(r#""12x""#).int().unwrap_err().contains("\"12x\""));
        assert!(serde_json::from_str::<Num>("true").is_err());
        assert!(serde_json::from_str::<Num>("{}").is_err());
        assert!(num("1e3")
            .int()
            .unwrap_err()
            .contains("1e3 is not an integer"));
        assert!(num("9223372036854775808")
            .int()
            .unwrap_err()
            .contains("does not fit in int64"));
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    /// Money from a JSON number is read from its literal: through `f64`
    /// `12345678901234567.89` was `12345678901234568`.
    #[test]
    fn numbers_are_read_exactly_from_their_literal() {
        for (json, want) in [
            ("12345678901234567.89", "12345678901234567.89"),
            ("-12345678901234567.89", "-12345678901234567.89"),
            (
                "1234567890123456789012345.678",
                "1234567890123456789012345.678",
            ),
            ("0.1", "0.1"),
            ("12.50", "12.50"),
            ("-0.10", "-0.10"),
            ("18446744073709551616", "18446744073709551616"),
            ("-42", "-42"),
        ] {
            let d = scalar(json).decimal("amount").unwrap().unwrap();
            assert_eq!(d, dec(want), "{json}");
            assert_eq!(d.to_string(), want, "{json}: scale kept");
            assert_eq!(num(json).decimal(), Ok(Some(dec(want))), "{json}");
            assert_eq!(scalar(json).text().as_deref(), Some(json));
            assert_eq!(num(json).text(), json);
        }
        // Inside a row, with whitespace around, as pages send them.
        #[derive(serde::Deserialize)]
        struct Row<'a> {
            #[serde(borrow)]
            amount: Scalar<'a>,
            #[serde(borrow)]
            spend: Option<Num<'a>>,
        }
        let row: Row = serde_json::from_slice(
            b"{ \"amount\" :  99999999999999999.99 , \"spend\": -0.000000000000000001 }",
        )
        .unwrap();
        assert_eq!(
            row.amount.decimal("amount"),
            Ok(Some(dec("99999999999999999.99")))
        );
        assert_eq!(
            row.spend.unwrap().decimal(),
            Ok(Some(dec("-0.000000000000000001")))
        );
    }

    /// Exponents are accepted and read exactly; what a decimal cannot hold
    /// as written is an error naming the literal, never rounded.
    #[test]
    fn exponents_are_exact_and_unholdable_numbers_are_refused() {
        for (json, want) in [
            ("1e3", "1000"),
            ("1.5E2", "150"),
            ("-2.5e-3", "-0.0025"),
            ("12345678901234567.89e0", "12345678901234567.89"),
        ] {
            assert_eq!(scalar(json).decimal("v"), Ok(Some(dec(want))), "{json}");
            assert_eq!(num(json).decimal(), Ok(Some(dec(want))), "{json}");
        }
        for json in ["0.12345678901234567890123456789", "1e-40", "1e40"] {
            let e = scalar(json).decimal("amount").unwrap_err();
            assert!(
                e.starts_with(&format!(
                    "field `amount`: number {json} cannot be held exactly"
                )),
                "{json}: {e}"
            );
            assert!(num(json).decimal().is_err(), "{json}");
        }
        assert!(scalar("1.5")
            .integer("n")
            .unwrap_err()
            .contains("1.5 is not an integer"));
        assert!(scalar("1e2")
            .integer("n")
            .unwrap_err()
            .contains("1e2 is not an integer"));
        assert!(scalar("9223372036854775808")
            .integer("n")
            .unwrap_err()
            .contains("too large"));
        assert_eq!(scalar("-7").integer("n"), Ok(Some(-7)));
    }

    /// Strings, placeholders and the other shapes behave as before the
    /// literal reading.
    /// QA35d M3: a partner id drifting from `101` to `101.0` made a new
    /// payee "101.0".
    #[test]
    fn ids_are_the_same_whichever_shape_they_come_in() {
        for json in ["101", r#""101""#, r#"" 101 ""#, "101.0", "101.000"] {
            assert_eq!(
                scalar(json).id("MediaPartnerId"),
                Ok(Some("101".into())),
                "{json}"
            );
        }
        assert_eq!(scalar(r#""p-7""#).id("a"), Ok(Some("p-7".into())));
        assert_eq!(scalar("null").id("a"), Ok(None));
        assert_eq!(scalar(r#""""#).id("a"), Ok(None));
        for json in ["101.5", "1e2", "1.0e2", "true", "{}"] {
            let e = scalar(json).id("MediaPartnerId").unwrap_err();
            assert!(e.starts_with("field `MediaPartnerId`: "), "{json}: {e}");
        }
    }

    #[test]
    fn strings_placeholders_and_other_values() {
        assert_eq!(scalar(r#""12.50""#).decimal("a"), Ok(Some(dec("12.50"))));
        assert_eq!(scalar(r#"" -3 ""#).decimal("a"), Ok(Some(dec("-3"))));
        assert_eq!(scalar(r#""1e3""#).decimal("a"), Ok(Some(dec("1000"))));
        assert_eq!(
            scalar(r#""12345678901234567.89""#).decimal("a"),
            Ok(Some(dec("12345678901234567.89")))
        );
        for placeholder in [r#""-""#, r#""--""#, r#""""#, r#""  ""#, "null"] {
            assert_eq!(scalar(placeholder).decimal("a"), Ok(None), "{placeholder}");
        }
        assert_eq!(scalar(r#""-""#).integer("n"), Ok(None));
        assert_eq!(scalar(r#"" 12 ""#).integer("n"), Ok(Some(12)));
        assert!(scalar(r#""1,50""#)
            .decimal("Payout")
            .unwrap_err()
            .contains(r#"field `Payout`: "1,50" is not a decimal number"#));
        assert!(scalar("true")
            .decimal("a")
            .unwrap_err()
            .contains("got true"));
        assert!(scalar("{\"x\":1}")
            .decimal("a")
            .unwrap_err()
            .contains("got an object"));
        assert!(scalar("[1,2]")
            .integer("a")
            .unwrap_err()
            .contains("got an array"));
        // Borrowed unless escaped; escapes are decoded.
        assert!(matches!(
            scalar(r#""plain""#),
            Scalar::Str(Cow::Borrowed("plain"))
        ));
        let escaped = scalar(r#""a\"b\u00e9\\""#);
        assert_eq!(escaped, Scalar::Str(Cow::Owned("a\"b\u{e9}\\".into())));
        assert_eq!(scalar("false"), Scalar::Bool(false));
        assert_eq!(scalar(" null "), Scalar::Null);
        assert_eq!(scalar(r#""x""#).string().as_deref(), Some("x"));
        assert_eq!(scalar("null").string(), None);
        // Only serde_json text lends literals; a `Value` has none.
        let v = serde_json::json!(1.5);
        assert!(Scalar::deserialize(&v).is_err());
    }

    #[test]
    fn record_error_drops_the_position_inside_the_record() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Row<'a> {
            #[serde(borrow)]
            spend: Num<'a>,
        }
        assert_eq!(record_error::<Row>(r#"{"spend":"1"}"#), None);
        let e = record_error::<Row>(r#"{"spend":true}"#).unwrap();
        assert_eq!(
            e,
            "invalid type: true, expected a number or a numeric string"
        );
        let e = record_error::<Row>(r#"{}"#).unwrap();
        assert_eq!(e, "missing field `spend`");
    }
}
