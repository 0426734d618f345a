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

    /// A bool (also `"true"`/`"false"` strings); `None` otherwise.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Scalar::Bool(b) => Some(*b),
            Scalar::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}
