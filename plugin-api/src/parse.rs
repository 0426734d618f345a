//! Lenient parsers for the shapes platforms send numbers and dates in.
//!
//! Platforms send numbers as JSON numbers, numeric strings, or placeholders
//! (`"-"`, `""`, `null`). These helpers turn any of them into exact decimals
//! or integers, and say what they got when they fail.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use std::str::FromStr;

/// A decimal from a JSON number or numeric string. `Ok(None)` for null, `""`
/// and `"-"`. A JSON number with a fraction has passed through serde_json's
/// f64 (the workspace does not enable `arbitrary_precision`, which breaks
/// untagged enums); its shortest round-trip text is parsed, which gives the
/// literal back exactly for up to 15 significant digits (any amount below
/// 10^13 with cents). Integers and numeric strings are exact at any size.
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
