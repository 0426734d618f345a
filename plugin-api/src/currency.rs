//! ISO-4217 currency codes and their minor units.
//!
//! The table holds the active codes of ISO-4217 (2024 list). A record whose
//! currency is not here is invalid; an amount is rounded to the number of
//! decimals given here.

/// Active ISO-4217 codes with the number of digits after the decimal point.
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHF", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// Digits after the decimal point for an ISO-4217 code, or `None` if the code
/// is not an active currency.
pub fn minor_unit_digits(code: &str) -> Option<u32> {
    CURRENCIES
        .binary_search_by(|(c, _)| (*c).cmp(code))
        .ok()
        .map(|i| CURRENCIES[i].1)
}

/// `amount` written with at least `code`'s minor-unit digits (`200` USD →
/// `200.00`, `5.045` stays `5.045`): the same value, never rounded, for
/// statements and reports. Unknown codes get 2.
pub fn at_minor_scale(amount: rust_decimal::Decimal, code: &str) -> rust_decimal::Decimal {
    let dp = minor_unit_digits(code).unwrap_or(2);
    let mut a = amount;
    if a.scale() < dp {
        a.rescale(dp);
    }
    a
}

/// True for an active ISO-4217 code (upper case).
pub fn is_known(code: &str) -> bool {
    minor_unit_digits(code).is_some()
}

impl crate::protocol::Money {
    /// Integer minor units (cents) of an ISO-4217 code, with its exponent
    /// (`1234` JPY is `1234`, `1234` EUR is `12.34`), or an error naming
    /// a code this table does not know, where [`Money::from_minor`]
    /// assumes 2 decimals: a platform's lower-case `"jpy"` would become
    /// `12.34`. Upper-case the platform's code first if it sends lower case
    /// (the host refuses a lower-case code either way).
    ///
    /// [`Money::from_minor`]: crate::protocol::Money::from_minor
    pub fn try_from_minor(minor: i64, currency: &str) -> Result<Self, String> {
        let digits = minor_unit_digits(currency).ok_or_else(|| {
            let upper = currency.to_ascii_uppercase();
            if upper != currency && is_known(&upper) {
                format!(
                    "currency `{currency}` must be upper case (`{upper}`) to know its minor unit"
                )
            } else {
                format!(
                    "currency `{currency}` is not an ISO-4217 code, so its minor unit is unknown"
                )
            }
        })?;
        Ok(Self::new(
            rust_decimal::Decimal::new(minor, digits),
            currency,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn pads_to_the_minor_unit_without_rounding() {
        let d = |s: &str| s.parse::<rust_decimal::Decimal>().unwrap();
        assert_eq!(at_minor_scale(d("200"), "USD").to_string(), "200.00");
        assert_eq!(at_minor_scale(d("9.5"), "EUR").to_string(), "9.50");
        assert_eq!(at_minor_scale(d("5.045"), "USD").to_string(), "5.045");
        assert_eq!(at_minor_scale(d("7"), "JPY").to_string(), "7");
        assert_eq!(at_minor_scale(d("1.5"), "KWD").to_string(), "1.500");
    }

    /// QA13 F11: `from_minor` assumes 2 decimals for a code it does not
    /// know; `try_from_minor` says so instead.
    #[test]
    fn minor_units_of_an_unknown_code_are_an_error() {
        use crate::protocol::Money;
        let d = |s: &str| s.parse::<rust_decimal::Decimal>().unwrap();
        assert_eq!(
            Money::try_from_minor(1234, "JPY").unwrap().amount,
            d("1234")
        );
        assert_eq!(
            Money::try_from_minor(1234, "EUR").unwrap().amount,
            d("12.34")
        );
        assert_eq!(
            Money::try_from_minor(1234, "KWD").unwrap().amount,
            d("1.234")
        );
        assert_eq!(
            Money::try_from_minor(1234, "jpy").unwrap_err(),
            "currency `jpy` must be upper case (`JPY`) to know its minor unit"
        );
        assert_eq!(
            Money::try_from_minor(1234, "XYZ").unwrap_err(),
            "currency `XYZ` is not an ISO-4217 code, so its minor unit is unknown"
        );
        // `from_minor` keeps its documented fallback.
        assert_eq!(Money::from_minor(1234, "jpy").amount, d("12.34"));
    }

    #[test]
    fn knows_exponents() {
        assert_eq!(minor_unit_digits("USD"), Some(2));
        assert_eq!(minor_unit_digits("JPY"), Some(0));
        assert_eq!(minor_unit_digits("KWD"), Some(3));
        assert_eq!(minor_unit_digits("usd"), None);
        assert_eq!(minor_unit_digits("XXX"), None);
    }
}
