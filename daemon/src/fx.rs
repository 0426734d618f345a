//! Exchange rates: a table of (date, base, quote, rate) loaded from a CSV
//! file and/or inline config. Owned by the reconciliation work (issue 6);
//! payout and kpi read it. It is a lookup table, not a rate fetcher: Reckon
//! never downloads rates.
//!
//! CONTRACT: [`FxTable::rate`] is what other modules call;
//! [`FxTable::found_rate`] also gives the row (its date, and for an
//! inverse the row's own rate), which reconciliation records and shows.
//!
//! ## Lookup rule
//! `rate(base, quote, date)` converts 1 `base` into `quote`:
//! 1. `base == quote` → 1.
//! 2. The newest rate dated on or before `date` and at most `max_age_days`
//!    before it, taken from either the direct pair (base→quote) or the
//!    inverse pair (quote→base, inverted as 1/rate rounded to 12 decimals).
//!    When both pairs have a rate, the more recent date wins; on the same
//!    date the direct pair wins.
//! 3. Otherwise there is no rate (`None`): reconciliation reports the claim
//!    as `fx_missing` rather than guessing. Rates dated after `date` are
//!    never used.
//!
//! ```toml
//! [fx]
//! rates_csv = "rates/ecb.csv"     # header: date,base,quote,rate
//! max_age_days = 5                # weekends and holidays have no rate
//! [[fx.rates]]
//! date = "2026-11-02"
//! base = "EUR"
//! quote = "USD"
//! rate = "1.0841"
//! ```

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A rate [`FxTable::found_rate`] found, and the row it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundRate {
    /// 1 base in quote, as [`FxTable::rate`] gives it.
    pub rate: Decimal,
    /// The table's row; `None` when base and quote are one currency.
    pub row: Option<RateRow>,
}

/// The row of the rates table a rate was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateRow {
    /// The row's date: the day asked for, or up to `max_age_days` before.
    pub date: NaiveDate,
    /// For a rate taken from the inverse pair (quote→base), that row's own
    /// rate, of which the rate is 1/x rounded to 12 decimals.
    pub inverse_of: Option<Decimal>,
}

/// `[fx]`: where rates come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FxConfig {
    /// A CSV file with the header `date,base,quote,rate` (date as
    /// YYYY-MM-DD, ISO-4217 codes, rate as a decimal: 1 base = rate quote).
    /// A relative path is resolved against the config file's directory.
    #[serde(default)]
    pub rates_csv: Option<PathBuf>,
    /// The most days a rate may be older than the date it is used for
    /// (weekends and holidays have no fixing). 0 = exact date only.
    #[serde(default = "default_max_age_days")]
    pub max_age_days: u32,
    /// Inline rates (`[[fx.rates]]`), added to the CSV ones; an inline rate
    /// for the same date and pair replaces the CSV one. Each date and pair
    /// is given at most once inline (two entries are a config error, even
    /// with the same rate: which one prices the money must be unambiguous).
    #[serde(default)]
    pub rates: Vec<FxRateConfig>,
}

impl Default for FxConfig {
    fn default() -> Self {
        FxConfig {
            rates_csv: None,
            max_age_days: default_max_age_days(),
            rates: Vec::new(),
        }
    }
}

/// The longest `max_age_days`: ten years, the bound of the other day
/// counts in the config (a rate older than that prices nothing real).
pub const MAX_FX_AGE_DAYS: u32 = 3650;

/// Largest `[fx] rates_csv` read: a daily rate of 40 pairs over 30 years
/// is about 15 MiB.
pub const MAX_RATES_CSV_BYTES: u64 = 256 << 20;

fn check_max_age(days: u32) -> Result<(), String> {
    if days > MAX_FX_AGE_DAYS {
        return Err(format!(
            "{days} is more than {MAX_FX_AGE_DAYS} days (ten years): a rate that old prices nothing today; give a rate for the days you need instead"
        ));
    }
    Ok(())
}

fn default_max_age_days() -> u32 {
    7
}

/// One inline rate: 1 `base` = `rate` `quote` on `date`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FxRateConfig {
    /// The day the rate applies to: a TOML date (`2026-11-02`) or the same
    /// as a string.
    #[serde(deserialize_with = "toml_date")]
    pub date: NaiveDate,
    /// ISO-4217 code converted from.
    pub base: String,
    /// ISO-4217 code converted to.
    pub quote: String,
    /// The rate as a quoted decimal string, e.g. "1.0841".
    pub rate: String,
}

fn toml_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Date(toml::value::Datetime),
        Text(String),
    }
    let text = match Raw::deserialize(d)? {
        Raw::Date(dt) => dt.to_string(),
        Raw::Text(s) => s,
    };
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|e| serde::de::Error::custom(format!("date `{text}` is not YYYY-MM-DD: {e}")))
}

/// A rate table that could not be loaded: names the file/line or field.
#[derive(Debug, thiserror::Error)]
pub enum FxError {
    /// The CSV file could not be read.
    #[error("[fx] rates_csv {path}: cannot read: {message}")]
    Read { path: String, message: String },
    /// A row or inline rate is invalid.
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// Loaded rates. Cheap to clone relative to a run; immutable once built.
#[derive(Debug, Clone, Default)]
pub struct FxTable {
    /// (base, quote) → date → rate.
    pairs: BTreeMap<(String, String), BTreeMap<NaiveDate, Decimal>>,
    max_age_days: u32,
}

impl FxTable {
    /// An empty table (only same-currency conversions succeed).
    pub fn empty() -> FxTable {
        FxTable::default()
    }

    /// Builds a table from rates; later duplicates of a (date, pair) replace
    /// earlier ones. Rates must be positive.
    pub fn from_rates(
        rates: impl IntoIterator<Item = (NaiveDate, String, String, Decimal)>,
        max_age_days: u32,
    ) -> FxTable {
        let mut pairs: BTreeMap<(String, String), BTreeMap<NaiveDate, Decimal>> = BTreeMap::new();
        for (date, base, quote, rate) in rates {
            if rate > Decimal::ZERO && base != quote {
                pairs.entry((base, quote)).or_default().insert(date, rate);
            }
        }
        FxTable {
            pairs,
            max_age_days,
        }
    }

    /// Every problem [`FxTable::load`] would stop at, for `reckon config
    /// check` and config (re)loading: (config key, message) pairs, the
    /// CSV's (unreadable file, or its first bad row, by line) under
    /// `fx.rates_csv`, each bad inline rate under `fx.rates[i].rate`. A
    /// repeated inline date and pair is [`FxTable::repeated_rates`]'
    /// business (its message names both entries' lines).
    pub fn problems(config: &FxConfig, base_dir: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let csv_only = FxConfig {
            rates: Vec::new(),
            // Checked on its own below.
            max_age_days: 0,
            ..config.clone()
        };
        if let Err(e) = FxTable::load(&csv_only, base_dir) {
            out.push(("fx.rates_csv".to_owned(), e.to_string()));
        }
        if let Err(message) = check_max_age(config.max_age_days) {
            out.push(("fx.max_age_days".to_owned(), message));
        }
        for (i, r) in config.rates.iter().enumerate() {
            let origin = format!("{} {}/{}", r.date, r.base, r.quote);
            if let Err(e) = check_rate(r.date, &r.base, &r.quote, &r.rate, &origin) {
                out.push((format!("fx.rates[{i}].rate"), e.to_string()));
            }
        }
        out
    }

    /// Inline rates given twice for one date and pair (QA6 F11: the later
    /// silently won): `(first index, later index)`, each later entry once,
    /// paired with the first entry of its date and pair. Identical rates
    /// count too: one entry per date and pair keeps the table unambiguous,
    /// and a copied block whose date was not changed is a mistake.
    pub fn repeated_rates(config: &FxConfig) -> Vec<(usize, usize)> {
        let mut first: BTreeMap<(NaiveDate, &str, &str), usize> = BTreeMap::new();
        let mut out = Vec::new();
        for (i, r) in config.rates.iter().enumerate() {
            let key = (r.date, r.base.trim(), r.quote.trim());
            match first.get(&key) {
                Some(&f) => out.push((f, i)),
                None => {
                    first.insert(key, i);
                }
            }
        }
        out
    }

    /// The message for a rate given twice ([`FxTable::repeated_rates`]);
    /// `first_at` says where the first entry is (e.g. `line 12`).
    pub fn repeated_rate_message(
        config: &FxConfig,
        first: usize,
        later: usize,
        first_at: &str,
    ) -> String {
        let (a, b) = (&config.rates[first], &config.rates[later]);
        let same = match (
            a.rate.trim().parse::<Decimal>(),
            b.rate.trim().parse::<Decimal>(),
        ) {
            (Ok(x), Ok(y)) => x == y,
            _ => a.rate.trim() == b.rate.trim(),
        };
        let what = if same {
            "with the same rate: give it once".to_owned()
        } else {
            "with different rates: which one prices the money is unknown; keep the right one"
                .to_owned()
        };
        format!(
            "{}/{} on {} is given twice, in fx.rates[{first}] ({first_at}, rate \"{}\") and fx.rates[{later}] (rate \"{}\"), {what}",
            a.base,
            a.quote,
            a.date,
            a.rate.trim(),
            b.rate.trim(),
        )
    }

    /// Loads `[fx]`: the CSV (relative to `base_dir`) then the inline rates.
    /// An inline date and pair given twice is an error (config loading
    /// reports it first, with both lines).
    pub fn load(config: &FxConfig, base_dir: &Path) -> Result<FxTable, FxError> {
        if let Some((first, later)) = FxTable::repeated_rates(config).first() {
            return Err(FxError::Invalid {
                origin: format!("[fx] rates[{later}]"),
                message: FxTable::repeated_rate_message(config, *first, *later, "above"),
            });
        }
        check_max_age(config.max_age_days).map_err(|message| FxError::Invalid {
            origin: "[fx] max_age_days".to_owned(),
            message,
        })?;
        let mut rates = Vec::new();
        if let Some(csv_path) = &config.rates_csv {
            let path = if csv_path.is_relative() {
                base_dir.join(csv_path)
            } else {
                csv_path.clone()
            };
            let read = |message: String| FxError::Read {
                path: path.display().to_string(),
                message,
            };
            let text = crate::config::read_regular_text(
                &path,
                MAX_RATES_CSV_BYTES,
                "the rates CSV file",
                "a rates table",
            )
            .map_err(|e| read(e.to_string()))?
            .map_err(read)?;
            rates.extend(parse_csv(&text, &path.display().to_string())?);
        }
        for (i, r) in config.rates.iter().enumerate() {
            let origin = format!("[fx] rates[{i}] ({} {}/{})", r.date, r.base, r.quote);
            rates.push(check_rate(r.date, &r.base, &r.quote, &r.rate, &origin)?);
        }
        Ok(FxTable::from_rates(rates, config.max_age_days))
    }

    /// How old a rate may be, in days, relative to the date asked for.
    pub fn max_age_days(&self) -> u32 {
        self.max_age_days
    }

    /// The rate converting 1 `base` into `quote` valid on `date`, if any
    /// (see the module docs for the lookup rule).
    pub fn rate(&self, base: &str, quote: &str, date: NaiveDate) -> Option<Decimal> {
        self.found_rate(base, quote, date).map(|f| f.rate)
    }

    /// [`FxTable::rate`] with the row it came from: its date (a weekend's
    /// rate is the Friday's, up to `max_age_days` old) and, for an inverse,
    /// the row's own rate (QA33-B L1: only the value was shown, so the row
    /// that priced a claim had to be found again by hand).
    pub fn found_rate(&self, base: &str, quote: &str, date: NaiveDate) -> Option<FoundRate> {
        if base == quote {
            return Some(FoundRate {
                rate: Decimal::ONE,
                row: None,
            });
        }
        let oldest = date
            .checked_sub_days(chrono::Days::new(u64::from(self.max_age_days)))
            .unwrap_or(NaiveDate::MIN);
        let newest = |b: &str, q: &str| {
            self.pairs
                .get(&(b.to_owned(), q.to_owned()))
                .and_then(|m| m.range(oldest..=date).next_back())
                .map(|(d, r)| (*d, *r))
        };
        let direct = newest(base, quote);
        let inverse = newest(quote, base);
        let row = |rate, date, inverse_of| {
            Some(FoundRate {
                rate,
                row: Some(RateRow { date, inverse_of }),
            })
        };
        match (direct, inverse) {
            (Some((dd, r)), Some((di, _))) if dd >= di => row(r, dd, None),
            (_, Some((di, r))) => row((Decimal::ONE / r).round_dp(12), di, Some(r)),
            (Some((dd, r)), None) => row(r, dd, None),
            (None, None) => None,
        }
    }

    /// A fingerprint of the whole table: reconciliation re-runs in full when
    /// it changes.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(self.max_age_days.to_le_bytes());
        for ((b, q), m) in &self.pairs {
            for (d, r) in m {
                h.update(format!("{d},{b},{q},{}\n", r.normalize()).as_bytes());
            }
        }
        hex::encode(h.finalize())
    }
}

fn check_rate(
    date: NaiveDate,
    base: &str,
    quote: &str,
    rate: &str,
    origin: &str,
) -> Result<(NaiveDate, String, String, Decimal), FxError> {
    let invalid = |message: String| FxError::Invalid {
        origin: origin.to_owned(),
        message,
    };
    for (field, code) in [("base", base), ("quote", quote)] {
        if !plugin_api::currency::is_known(code) {
            return Err(invalid(format!(
                "{field} `{code}` is not an ISO-4217 code (upper case, e.g. USD)"
            )));
        }
    }
    // Written in full, as money is (QA29-D M3: `1e3` and `1_000` passed).
    let r = match plugin_api::parse::plain_decimal_str(rate) {
        Ok(Some(r)) => r,
        Ok(None) => return Err(invalid(format!("rate `{rate}` is empty"))),
        Err(m) => return Err(invalid(format!("rate: {m}"))),
    };
    if r <= Decimal::ZERO {
        return Err(invalid(format!("rate `{rate}` must be positive")));
    }
    // Real rates between active currencies are within 10^±7 of each other;
    // a rate (or its inverse) beyond 10^9 is a misread figure, and would
    // take converted sums out of `Decimal`'s range (QA20 R20-1).
    let limit = Decimal::from(1_000_000_000);
    if r >= limit || r <= Decimal::ONE / limit {
        return Err(invalid(format!(
            "rate `{rate}` is out of range: a rate must be between 0.000000001 and 1000000000 exclusive"
        )));
    }
    if base == quote {
        return Err(invalid("base and quote are the same currency".into()));
    }
    Ok((date, base.to_owned(), quote.to_owned(), r))
}

/// Parses `date,base,quote,rate` CSV text; errors name the file and line.
pub fn parse_csv(
    text: &str,
    file: &str,
) -> Result<Vec<(NaiveDate, String, String, Decimal)>, FxError> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| FxError::Invalid {
            origin: file.to_owned(),
            message: format!("cannot read the header: {e}"),
        })?
        .clone();
    let want = ["date", "base", "quote", "rate"];
    let cols: Vec<usize> = want
        .iter()
        .map(|w| {
            headers
                .iter()
                .position(|h| h == *w)
                .ok_or(FxError::Invalid {
                    origin: file.to_owned(),
                    message: format!("header lacks column `{w}`; expected date,base,quote,rate"),
                })
        })
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (i, row) in rdr.records().enumerate() {
        let line = i + 2;
        let origin = format!("{file}:{line}");
        let row = row.map_err(|e| FxError::Invalid {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        let get = |c: usize| row.get(cols[c]).unwrap_or("");
        let date = NaiveDate::parse_from_str(get(0), "%Y-%m-%d").map_err(|e| FxError::Invalid {
            origin: origin.clone(),
            message: format!("date `{}` is not YYYY-MM-DD: {e}", get(0)),
        })?;
        out.push(check_rate(date, get(1), get(2), get(3), &origin)?);
    }
    Ok(out)
}

/// What is missing when no rate prices `base` in `quote` on `date`, for a
/// reason or warning: one wording for reconciliation's `fx_missing` and
/// statements' held-back lines (QA33-B L2), with the window a lookup
/// searches (`max_age_days`, 0: the day alone).
pub fn missing_rate(base: &str, quote: &str, date: chrono::NaiveDate, max_age_days: u32) -> String {
    let age = match max_age_days {
        0 => String::new(),
        n => format!(" or the {n} days before"),
    };
    format!("no {base}→{quote} rate for {date}{age}; add it to [fx]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn table() -> FxTable {
        let rows = parse_csv(
            "date,base,quote,rate\n2026-11-02,EUR,USD,1.10\n2026-11-05,EUR,USD,1.20\n2026-11-04,USD,GBP,0.80\n",
            "rates.csv",
        )
        .unwrap();
        FxTable::from_rates(rows, 3)
    }

    #[test]
    fn exact_then_latest_earlier_within_max_age() {
        let t = table();
        assert_eq!(
            t.rate("EUR", "USD", d("2026-11-02")),
            Some(Decimal::new(110, 2))
        );
        assert_eq!(
            t.rate("EUR", "USD", d("2026-11-04")),
            Some(Decimal::new(110, 2))
        );
        assert_eq!(
            t.rate("EUR", "USD", d("2026-11-05")),
            Some(Decimal::new(120, 2))
        );
        // older than max_age_days (3): none
        assert_eq!(t.rate("EUR", "USD", d("2026-11-09")), None);
        // never a rate from the future
        assert_eq!(t.rate("EUR", "USD", d("2026-11-01")), None);
        assert_eq!(t.rate("USD", "USD", d("2000-01-01")), Some(Decimal::ONE));
    }

    /// QA33-B L1: a Saturday's rate is Friday's row, and says so; an
    /// inverse names the row it inverts.
    #[test]
    fn a_found_rate_names_the_row_it_came_from() {
        let t = table();
        let row = |date, inverse_of| Some(RateRow { date, inverse_of });
        assert_eq!(
            t.found_rate("EUR", "USD", d("2026-11-04")),
            Some(FoundRate {
                rate: Decimal::new(110, 2),
                row: row(d("2026-11-02"), None),
            })
        );
        assert_eq!(
            t.found_rate("USD", "EUR", d("2026-11-06")),
            Some(FoundRate {
                rate: Decimal::new(833_333_333_333, 12),
                row: row(d("2026-11-05"), Some(Decimal::new(120, 2))),
            })
        );
        assert_eq!(
            t.found_rate("USD", "USD", d("2026-11-06")),
            Some(FoundRate {
                rate: Decimal::ONE,
                row: None
            })
        );
        assert_eq!(t.found_rate("EUR", "USD", d("2026-11-01")), None);
    }

    /// QA24 F1: `max_age_days = 100000000` passed `config check`, then
    /// every lookup panicked (`NaiveDate - TimeDelta` overflowed).
    #[test]
    fn max_age_days_is_bounded_and_a_huge_age_never_panics_a_lookup() {
        let cfg = FxConfig {
            max_age_days: 100_000_000,
            ..FxConfig::default()
        };
        let problems = FxTable::problems(&cfg, Path::new("."));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "fx.max_age_days");
        assert!(
            problems[0].1.contains("more than 3650 days"),
            "{problems:?}"
        );
        assert!(FxTable::load(&cfg, Path::new(".")).is_err());
        let ten_years = FxConfig {
            max_age_days: MAX_FX_AGE_DAYS,
            ..FxConfig::default()
        };
        assert!(FxTable::problems(&ten_years, Path::new(".")).is_empty());
        // A table built directly (tests, benches) takes any age.
        let rows = vec![(
            d("2026-11-02"),
            "EUR".to_owned(),
            "USD".to_owned(),
            Decimal::ONE,
        )];
        let t = FxTable::from_rates(rows, u32::MAX);
        assert_eq!(t.rate("EUR", "USD", d("2026-11-30")), Some(Decimal::ONE));
        assert_eq!(t.rate("EUR", "USD", NaiveDate::MIN), None);
    }

    #[test]
    fn inverse_when_only_the_other_direction_exists() {
        let t = table();
        assert_eq!(
            t.rate("USD", "EUR", d("2026-11-05")),
            Some((Decimal::ONE / Decimal::new(120, 2)).round_dp(12))
        );
        assert_eq!(
            t.rate("GBP", "USD", d("2026-11-04")),
            Some(Decimal::new(125, 2))
        );
        assert_eq!(t.rate("GBP", "EUR", d("2026-11-04")), None);
    }

    /// QA6 F11: two inline rates for one date and pair were accepted and
    /// the later silently won.
    #[test]
    fn an_inline_rate_given_twice_is_an_error_naming_both_entries() {
        let cfg = |second: &str| -> FxConfig {
            toml::from_str(&format!(
                "[[rates]]\ndate = 2026-11-02\nbase = 'EUR'\nquote = 'USD'\nrate = '1.1'\n\
                 [[rates]]\ndate = 2026-11-03\nbase = 'EUR'\nquote = 'USD'\nrate = '1.3'\n\
                 [[rates]]\ndate = 2026-11-02\nbase = 'USD'\nquote = 'EUR'\nrate = '0.9'\n\
                 [[rates]]\ndate = 2026-11-02\nbase = 'EUR'\nquote = 'USD'\nrate = '{second}'\n"
            ))
            .unwrap()
        };
        let different = cfg("1.2");
        assert_eq!(FxTable::repeated_rates(&different), [(0, 3)]);
        let e = FxTable::load(&different, Path::new("."))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "[fx] rates[3]: EUR/USD on 2026-11-02 is given twice, in fx.rates[0] (above, rate \"1.1\") \
             and fx.rates[3] (rate \"1.2\"), with different rates: which one prices the money is \
             unknown; keep the right one"
        );
        let same = cfg("1.10");
        let e = FxTable::load(&same, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("with the same rate: give it once"), "{e}");
        // Other dates and the inverse pair are not repeats.
        let mut ok = cfg("1.2");
        ok.rates.pop();
        assert!(FxTable::repeated_rates(&ok).is_empty());
        FxTable::load(&ok, Path::new(".")).unwrap();
    }

    #[test]
    fn csv_errors_name_file_and_line() {
        let e = parse_csv("date,base,quote,rate\n2026-11-02,EUR,usd,1.1\n", "r.csv").unwrap_err();
        assert!(e.to_string().starts_with("r.csv:2:"), "{e}");
        let e = parse_csv("date,base,rate\n", "r.csv").unwrap_err();
        assert!(e.to_string().contains("`quote`"), "{e}");
        let e = parse_csv("date,base,quote,rate\n2026-11-02,EUR,USD,-1\n", "r.csv").unwrap_err();
        assert!(e.to_string().contains("positive"), "{e}");
        // QA20 R20-1: a rate (or its inverse) beyond 10^9 is a misread.
        for rate in ["1000000000", "0.000000001", "1e30"] {
            let text = format!("date,base,quote,rate\n2026-11-02,EUR,USD,{rate}\n");
            assert!(parse_csv(&text, "r.csv").is_err(), "{rate}");
        }
        let e = parse_csv(
            "date,base,quote,rate\n2026-11-02,EUR,USD,1000000000\n",
            "r.csv",
        )
        .unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        parse_csv(
            "date,base,quote,rate\n2026-11-02,USD,IRR,42000.5\n",
            "r.csv",
        )
        .unwrap();
    }

    /// QA29-D M3: rates in scientific notation or with digit separators
    /// passed; every other figure of money refuses them.
    #[test]
    fn rates_are_written_in_full() {
        for (rate, want) in [
            ("1e3", "scientific notation"),
            ("1_000", "digit separator"),
            ("0x10", "not a decimal number"),
            ("", "is empty"),
        ] {
            let e = parse_csv(
                &format!("date,base,quote,rate\n2026-11-02,EUR,USD,{rate}\n"),
                "r.csv",
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(want), "{rate}: {e}");
        }
    }

    /// QA29-D H2: `rates_csv = "/dev/zero"` read without end (4.6 GB in
    /// 16 s), and a FIFO blocked `config check` for ever.
    #[test]
    fn a_rates_csv_that_is_not_a_regular_file_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.csv");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        for path in ["/dev/zero", fifo.to_str().unwrap()] {
            let cfg: FxConfig = toml::from_str(&format!("rates_csv = '{path}'")).unwrap();
            let e = FxTable::load(&cfg, dir.path()).unwrap_err().to_string();
            assert!(
                e.contains("is not a regular file (a device, pipe or socket is not read); name the rates CSV file"),
                "{path}: {e}"
            );
        }
    }

    #[test]
    fn inline_rates_override_csv_and_load_resolves_relative_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("r.csv"),
            "date,base,quote,rate\n2026-11-02,EUR,USD,1.10\n",
        )
        .unwrap();
        let cfg: FxConfig = toml::from_str(
            "rates_csv = 'r.csv'\nmax_age_days = 0\n[[rates]]\ndate = 2026-11-02\nbase = 'EUR'\nquote = 'USD'\nrate = '1.15'\n",
        )
        .unwrap();
        let t = FxTable::load(&cfg, dir.path()).unwrap();
        assert_eq!(
            t.rate("EUR", "USD", d("2026-11-02")),
            Some(Decimal::new(115, 2))
        );
        assert_eq!(t.rate("EUR", "USD", d("2026-11-03")), None);
    }
}
