//! Lenient parsers for the shapes platforms send numbers and dates in.
//!
//! Platforms send numbers as JSON numbers, numeric strings, or placeholders
//! (`"-"`, `""`, `null`). These helpers turn any of them into exact decimals
//! or integers, and say what they got when they fail.
//!
//! Amounts a person or a spreadsheet wrote (order files, postbacks) go
//! through the strict [`plain_decimal_str`] instead: no exponent, no digit
//! separators. The lenient parsers stay for platform APIs, whose JSON
//! numbers may print with an exponent (`1e-7`). A JSON number is exact only
//! from its literal: see [`crate::lenient`] and
//! [`crate::json_object::LiteralNumbers`].

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use std::str::FromStr;

/// A decimal from a JSON number or numeric string. `Ok(None)` for null, `""`
/// and `"-"`. Integers and numeric strings are exact at any size. A `Value`
/// number with a fraction has passed through serde_json's `f64` (the
/// workspace does not enable `arbitrary_precision`, which breaks untagged
/// enums), so it is exact only up to ~15 significant digits: money is never
/// read from such a `Value`. Read the `Value` as
/// [`crate::json_object::LiteralNumbers`] (which keeps such a number as a
/// string of its literal), or read typed rows of [`crate::lenient::Scalar`].
pub fn decimal(v: &Value) -> Result<Option<Decimal>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => decimal_str(s),
        Value::Number(n) => {
            let text = n.to_string();
            Decimal::from_str(&text)
                .or_else(|_| Decimal::from_scientific(&text))
                .map(Some)
                .map_err(|_| format!("number {text} is not a decimal"))
        }
        other => Err(format!("expected a number, got {other}")),
    }
}

/// A decimal from text; `Ok(None)` for `""` and `"-"`.
pub fn decimal_str(s: &str) -> Result<Option<Decimal>, String> {
    let t = s.trim();
    if t.is_empty() || t == "-" || t == "--" {
        return Ok(None);
    }
    Decimal::from_str(t)
        .or_else(|_| Decimal::from_scientific(t))
        .map(Some)
        .map_err(|_| format!("{s:?} is not a decimal number"))
}

/// A decimal written in full: optional sign, digits, at most one `.`
/// (`12`, `12.50`, `.5`); `Ok(None)` for `""` and `"-"`. Unlike
/// [`decimal_str`] it refuses scientific notation (`1.23457E+05` is how a
/// spreadsheet shows 123456.78 in a narrow column, and is 123457 once saved)
/// and digit separators (`1_000`, which rust_decimal would accept), and an
/// amount with more digits than a decimal holds (which rust_decimal would
/// round or call "not a decimal").
///
/// Money sent as a JSON number goes through this too, from the number's
/// literal ([`crate::json_object::number_literal`]), never through `f64`.
pub fn plain_decimal_str(s: &str) -> Result<Option<Decimal>, String> {
    let t = s.trim();
    if t.is_empty() || t == "-" || t == "--" {
        return Ok(None);
    }
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    let plain = digits.bytes().any(|b| b.is_ascii_digit())
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|b| *b == b'.').count() <= 1;
    if !plain {
        let looks_scientific = digits.contains(['e', 'E'])
            && digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
            && digits
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
        return Err(if looks_scientific {
            format!(
                "{s:?} is in scientific notation: write the amount in full, e.g. 123456.78; a spreadsheet may have shortened it"
            )
        } else if digits.contains(['_', '\'', ' '])
            && digits.bytes().any(|b| b.is_ascii_digit())
            && digits
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'\'' | b' '))
        {
            format!(
                "{s:?} has a digit separator: write the amount with digits and a `.` decimal point only, e.g. 1000.00"
            )
        } else {
            format!("{s:?} is not a decimal number")
        });
    }
    // rust_decimal holds 28 significant digits (up to about 7.9e28) and
    // silently rounds extra fraction digits: an amount it cannot hold as
    // written is refused, never changed.
    let too_many = || {
        format!(
            "{s:?} has more digits than an amount can hold ({MAX_DIGITS} significant digits, below about 7.9e28): check the amount"
        )
    };
    let d = Decimal::from_str(t).map_err(|_| too_many())?;
    let fraction_digits = t.split_once('.').map_or(0, |(_, f)| f.len());
    if (d.scale() as usize) < fraction_digits {
        return Err(too_many());
    }
    Ok(Some(d))
}

/// Significant digits a [`Decimal`] always holds (some 29-digit values
/// below its maximum, about 7.9e28, fit too); [`plain_decimal_str`] refuses
/// what it cannot hold exactly.
pub const MAX_DIGITS: u32 = 28;

/// A non-negative integer from a JSON number or string; `Ok(None)` for placeholders.
pub fn count(v: &Value) -> Result<Option<u64>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{n} is not a non-negative integer")),
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() || t == "-" {
                return Ok(None);
            }
            t.parse::<u64>()
                .map(Some)
                .map_err(|_| format!("{s:?} is not a non-negative integer"))
        }
        other => Err(format!("expected an integer, got {other}")),
    }
}

/// A signed integer from a JSON number or string.
pub fn integer(v: &Value) -> Result<Option<i64>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{n} is not an integer")),
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() || t == "-" {
                return Ok(None);
            }
            t.parse::<i64>()
                .map(Some)
                .map_err(|_| format!("{s:?} is not an integer"))
        }
        other => Err(format!("expected an integer, got {other}")),
    }
}

/// An RFC 3339 timestamp with any offset, to UTC. Also accepts a naive
/// `YYYY-MM-DD HH:MM:SS` / `YYYY-MM-DDTHH:MM:SS(.fff)` as UTC.
pub fn timestamp(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(n.and_utc());
        }
    }
    Err(format!("{s:?} is not an RFC 3339 timestamp"))
}

/// Seconds since the epoch to UTC.
pub fn epoch_seconds(secs: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp(secs, 0).ok_or_else(|| format!("{secs} is not a valid epoch second"))
}

/// Milliseconds since the epoch to UTC.
pub fn epoch_millis(ms: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| format!("{ms} is not a valid epoch millisecond"))
}

/// A `YYYY-MM-DD` date (a trailing time part such as ` 00:00:00` is ignored).
pub fn date(s: &str) -> Result<NaiveDate, String> {
    let t = s.trim();
    let d = t.get(..10).unwrap_or(t);
    NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| format!("{s:?} is not a YYYY-MM-DD date"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_from_every_shape() {
        assert_eq!(
            decimal(&json!("12.50")).unwrap(),
            Some(Decimal::new(1250, 2))
        );
        assert_eq!(decimal(&json!(12.5)).unwrap(), Some(Decimal::new(125, 1)));
        assert_eq!(decimal(&json!(0.1)).unwrap(), Some(Decimal::new(1, 1)));
        assert_eq!(decimal(&json!("-")).unwrap(), None);
        assert_eq!(decimal(&json!(null)).unwrap(), None);
        assert!(decimal(&json!("abc")).is_err());
        assert!(decimal(&json!([1])).is_err());
    }

    #[test]
    fn json_numbers_with_cents_come_back_exactly_up_to_15_digits() {
        // Parsed from JSON text, as a connector gets them.
        for text in [
            "0.07",
            "19.99",
            "1234567.89",
            "9999999999999.99",
            "0.000001",
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(decimal(&v).unwrap().unwrap().to_string(), text, "{text}");
        }
    }

    #[test]
    fn plain_decimals_refuse_exponents_and_separators() {
        assert_eq!(
            plain_decimal_str(" 123456.78 ").unwrap(),
            Some(Decimal::new(12345678, 2))
        );
        assert_eq!(plain_decimal_str(".5").unwrap(), Some(Decimal::new(5, 1)));
        assert_eq!(plain_decimal_str("-10").unwrap(), Some(Decimal::from(-10)));
        assert_eq!(plain_decimal_str("-").unwrap(), None);
        let e = plain_decimal_str("1.23457E+05").unwrap_err();
        assert!(
            e.contains("scientific notation") && e.contains("in full"),
            "{e}"
        );
        assert!(plain_decimal_str("1e3").unwrap_err().contains("scientific"));
        assert!(plain_decimal_str("1_000")
            .unwrap_err()
            .contains("digit separator"));
        assert!(plain_decimal_str("1 000")
            .unwrap_err()
            .contains("digit separator"));
        for bad in ["abc", "1.2.3", "1-2", "e5", "--1", "."] {
            assert!(
                plain_decimal_str(bad)
                    .unwrap_err()
                    .contains("is not a decimal number"),
                "{bad}"
            );
        }
        // QA6 F4: more digits than a decimal holds is refused, not rounded.
        assert_eq!(
            plain_decimal_str("12345678901234567.89").unwrap(),
            Some(Decimal::from_str("12345678901234567.89").unwrap())
        );
        for long in [
            "99999999999999999999999999999999",
            "1.00000000000000000000000000001",
        ] {
            let e = plain_decimal_str(long).unwrap_err();
            assert!(
                e.contains("more digits than an amount can hold"),
                "{long}: {e}"
            );
        }
        // The lenient parser, for platform APIs, is unchanged.
        assert_eq!(decimal_str("1e3").unwrap(), Some(Decimal::from(1000)));
    }

    #[test]
    fn counts_and_times() {
        assert_eq!(count(&json!("91839")).unwrap(), Some(91839));
        assert!(count(&json!(-1)).is_err());
        assert_eq!(
            timestamp("2022-06-07T04:33:50-05:00").unwrap().to_rfc3339(),
            "2022-06-07T09:33:50+00:00"
        );
        assert_eq!(
            date("2025-11-12 00:00:00").unwrap(),
            NaiveDate::from_ymd_opt(2025, 11, 12).unwrap()
        );
    }
}
