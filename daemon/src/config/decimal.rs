//! Decimals in config (tolerances, commission amounts and percents): quoted
//! strings written in full, or integers; never floats, so no binary
//! rounding reaches money, and never scientific notation or digit
//! separators (`"1e1"`, `"1_000"`), which read as something else than they
//! look. Used with `#[serde(deserialize_with = ...)]`.

use rust_decimal::Decimal;
use serde::Deserializer;

struct Visitor;

impl serde::de::Visitor<'_> for Visitor {
    type Value = Decimal;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a decimal written as a quoted string, e.g. \"0.50\"")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Decimal, E> {
        match plugin_api::parse::plain_decimal_str(v) {
            Ok(Some(d)) => Ok(d),
            Ok(None) => Err(E::custom(format!(
                "{v:?} is not a decimal; write e.g. \"0.50\""
            ))),
            Err(m) => Err(E::custom(format!(
                "{m}; write a plain decimal, e.g. \"0.50\" (the currency is the program's)"
            ))),
        }
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Decimal, E> {
        Err(E::custom(format!(
            "{v} is a float; write decimals as quoted strings, e.g. \"{v}\""
        )))
    }
}

/// A required decimal.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    d.deserialize_any(Visitor)
}

/// An optional decimal (with `#[serde(default)]`: absent is `None`).
pub fn string_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    d.deserialize_any(Visitor).map(Some)
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "super::string_option")]
        v: Option<rust_decimal::Decimal>,
    }

    fn parse(s: &str) -> Result<Option<rust_decimal::Decimal>, String> {
        toml::from_str::<T>(s)
            .map(|t| t.v)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn plain_strings_and_integers_only() {
        assert_eq!(
            parse("v = \"12.50\"").unwrap(),
            Some("12.50".parse().unwrap())
        );
        assert_eq!(parse("v = 8").unwrap(), Some(8.into()));
        assert_eq!(parse("").unwrap(), None);
        // QA findings: `minimum_payout = "50 USD"` said only "Failed to
        // parse"; `percent = "1e1"` was read as 10.
        let e = parse("v = \"50 USD\"").unwrap_err();
        assert!(
            e.contains("\"50 USD\" is not a decimal number; write a plain decimal"),
            "{e}"
        );
        let e = parse("v = \"1e1\"").unwrap_err();
        assert!(e.contains("scientific notation"), "{e}");
        let e = parse("v = 0.5").unwrap_err();
        assert!(
            e.contains("is a float; write decimals as quoted strings"),
            "{e}"
        );
    }
}
