//! Lenient scalar fields for fast, typed page parsing.
//!
//! Pages are deserialized straight into row structs whose fields are
//! [`Scalar`]s: any JSON scalar (a number, a numeric string, a placeholder,
//! a bool, null) is accepted and borrowed from the body where possible, and
//! the row converter then says which field was wrong. This avoids building a
//! `serde_json::Value` tree per row, which costs most of the parse time.
//! A JSON number is read through serde_json's `f64`/integer and turned into a
//! decimal from its shortest round-trip text, exactly like
//! [`crate::parse::decimal`] does.

use rust_decimal::Decimal;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
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
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// A number with a fraction or exponent.
    Float(f64),
    /// An object or array where a scalar was expected.
    Other(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
                Scalar::deserialize(d)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(if v >= 0 {
                    Scalar::UInt(v as u64)
                } else {
                    Scalar::Int(v)
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::UInt(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("an object"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("an array"))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl Scalar<'_> {
    /// Text of a non-empty string (trimmed) or of a number; `None` otherwise.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Scalar::Str(s) => {
                let t = s.trim();
                (!t.is_empty()).then_some(Cow::Borrowed(t))
            }
            Scalar::UInt(n) => Some(Cow::Owned(n.to_string())),
            Scalar::Int(n) => Some(Cow::Owned(n.to_string())),
            Scalar::Float(f) => Some(Cow::Owned(f.to_string())),
            _ => None,
        }
    }

    /// [`Scalar::text`] as an owned string.
    pub fn string(&self) -> Option<String> {
        self.text().map(Cow::into_owned)
    }

    /// A decimal from a number or numeric string; `None` for null, `""`, `"-"`.
    pub fn decimal(&self, field: &str) -> Result<Option<Decimal>, String> {
        let parse = |t: &str| {
            Decimal::from_str(t)
                .or_else(|_| Decimal::from_scientific(t))
                .map(Some)
                .map_err(|_| format!("field `{field}`: {t:?} is not a decimal number"))
        };
        match self {
            Scalar::Null => Ok(None),
            Scalar::UInt(n) => Ok(Some(Decimal::from(*n))),
            Scalar::Int(n) => Ok(Some(Decimal::from(*n))),
            Scalar::Float(f) => parse(&f.to_string()),
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
            Scalar::UInt(n) => i64::try_from(*n)
                .map(Some)
                .map_err(|_| format!("field `{field}`: {n} is too large")),
            Scalar::Int(n) => Ok(Some(*n)),
            Scalar::Str(s) if s.trim().is_empty() || s.trim() == "-" => Ok(None),
            Scalar::Str(s) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("field `{field}`: {s:?} is not an integer")),
            Scalar::Float(f) => Err(format!("field `{field}`: {f} is not an integer")),
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
            Scalar::UInt(0) => Some(false),
            Scalar::UInt(1) => Some(true),
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
/// number or a string, and converts exactly (a JSON float through its
/// shortest round-trip text, never a float sum).
#[derive(Debug, Clone, PartialEq)]
pub enum Num<'a> {
    /// A string such as `"1234567"`.
    Str(Cow<'a, str>),
    /// An unsigned JSON integer.
    U(u64),
    /// A negative JSON integer.
    I(i64),
    /// A JSON number with a fraction; its shortest round-trip text is used.
    F(f64),
}

impl<'de: 'a, 'a> Deserialize<'de> for Num<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Num<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number or a numeric string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Num<'a>, E> {
                Ok(Num::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Num<'a>, E> {
                Ok(Num::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num<'a>, E> {
                Ok(Num::U(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num<'a>, E> {
                Ok(Num::I(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num<'a>, E> {
                Ok(Num::F(v))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl Num<'_> {
    /// The value as written, for messages (a string quoted).
    pub fn text(&self) -> String {
        match self {
            Num::Str(s) => format!("{s:?}"),
            Num::U(v) => v.to_string(),
            Num::I(v) => v.to_string(),
            Num::F(v) => v.to_string(),
        }
    }
    /// An exact decimal (placeholders read as `None`).
    pub fn decimal(&self) -> Result<Option<Decimal>, String> {
        match self {
            Num::Str(s) => crate::parse::decimal_str(s),
            Num::U(v) => Ok(Some(Decimal::from(*v))),
            Num::I(v) => Ok(Some(Decimal::from(*v))),
            Num::F(v) => {
                if !v.is_finite() {
                    return Err(format!("{v} is not a finite number"));
                }
                let t = v.to_string();
                Decimal::from_str(&t)
                    .or_else(|_| Decimal::from_scientific(&t))
                    .map(Some)
                    .map_err(|_| format!("number {t} is not a decimal"))
            }
        }
    }
    /// A signed 64-bit integer.
    pub fn int(&self) -> Result<i64, String> {
        match self {
            Num::Str(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("{s:?} is not an integer")),
            Num::U(v) => i64::try_from(*v).map_err(|_| format!("{v} does not fit in int64")),
            Num::I(v) => Ok(*v),
            Num::F(_) => Err(format!("{} is not an integer", self.text())),
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
    }
}
