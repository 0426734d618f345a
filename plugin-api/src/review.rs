//! What the host changes or warns about in plugin output it accepts, as
//! opposed to what it refuses ([`crate::validate`]). The daemon's session
//! driver and [`crate::testing::FakeHost`] both run every page through a
//! [`Review`], so a plugin's tests see the data the daemon stores and the
//! warnings it logs.
//!
//! - **A credential echoed into the data is masked.** Some platforms echo
//!   the request (its `Authorization` header, a URL with the API key) into a
//!   field the plugin maps, e.g. an order reference. Every text field of a
//!   record, and every string of a checkpoint's `state` (and its `covers`
//!   account), that contains the value of one of the connector's secrets
//!   gets that value replaced by `***` before anything stores, logs or shows
//!   it. Secrets shorter than [`MIN_MASKED_SECRET_CHARS`] characters are
//!   not looked for: masking a 4-digit PIN would mangle ordinary ids and
//!   amounts. Warning: "the platform echoed a credential; it was masked".
//! - **An amount with float noise is kept, with a warning.** An amount with
//!   more decimal places (trailing zeros aside) than the larger of its
//!   currency's minor unit and [`PLAUSIBLE_DECIMALS`] (ad platforms send
//!   micros, so 6 always passes) is what `0.1 + 0.2` in `f64` gives
//!   (`0.30000000000000004`). It is stored as sent (many decimals may be
//!   data, and data is never lost), and the warning says how to fix the
//!   plugin.
//!
//! - **A time in the future is kept, with a warning.** A conversion's,
//!   click's, order's or refund's time more than [`FUTURE_SLACK_HOURS`]
//!   after the session's clock, or a spend day after its date then, is a
//!   misread or placeholder (QA20 R20-4: a conversion of 2099 was stored
//!   without a word; it falls in no report or statement until then). So is
//!   a click after its own conversion (attribution compares click times).
//!
//! Each warning is given once per session, [`WarningKind`], stream and
//! field, naming the first record (or checkpoint) it was seen in, not once
//! per record.
//!
//! What this is not: no refusal (that is [`crate::validate`]), and no
//! masking of log lines and errors in the daemon, which its own redactor
//! does (also for shorter secrets, where they stand alone).

use crate::protocol::{Checkpoint, Money, Record, Utm};
use std::collections::BTreeSet;

/// Secrets shorter than this (in characters) are not masked in records and
/// checkpoints: a short value (a PIN, a test key) occurs inside ordinary
/// ids and amounts.
pub const MIN_MASKED_SECRET_CHARS: usize = 8;

/// Decimal places every amount may have without a warning, whatever its
/// currency's minor unit: ad platforms send micros (6 places).
pub const PLAUSIBLE_DECIMALS: u32 = 6;

/// How far after the session's clock a record's time may lie without a
/// warning: a day covers every timezone and clock skew.
pub const FUTURE_SLACK_HOURS: i64 = 24;

/// The advice given with a float-noise amount.
pub const FLOAT_ADVICE: &str =
    "looks like a float computation; build amounts from the platform's text with Decimal";

/// What a [`Warning`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WarningKind {
    /// A record's text field held a secret value; it was masked.
    EchoedSecret,
    /// A checkpoint's state (or `covers` account) held a secret value; it
    /// was masked.
    SecretInCheckpoint,
    /// An amount with more decimal places than plausible; it was kept.
    FloatAmount,
    /// A time after the session's clock (beyond [`FUTURE_SLACK_HOURS`]),
    /// or a click after its conversion; it was kept.
    ImplausibleTime,
    /// A key given twice in one page with different values; the later
    /// record is stored ([`crate::validate::conflicting_duplicates`]). Not
    /// a [`Review`] warning: [`crate::testing::FakeHost`] gives it, once per
    /// such record, as the daemon's sync logs it.
    ConflictingDuplicate,
}

/// A warning about output the host accepted (masked or kept as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// What it is about.
    pub kind: WarningKind,
    /// The stream of the page.
    pub stream: String,
    /// The record's key (masked, control characters escaped); for a
    /// checkpoint, empty.
    pub key: String,
    /// The field: `order_id`, `utm.source`, `refunds[].amount`,
    /// `state.next[]`; empty for a whole record.
    pub field: String,
    /// The amount and currency, for [`WarningKind::FloatAmount`].
    pub value: Option<String>,
    /// The sentence to log: what happened and what to do.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stream `{}`, ", self.stream)?;
        if self.kind == WarningKind::SecretInCheckpoint {
            write!(f, "checkpoint")?;
        } else {
            write!(f, "record `{}`", self.key)?;
        }
        if !self.field.is_empty() {
            write!(f, ", field `{}`", self.field)?;
        }
        if let Some(v) = &self.value {
            write!(f, " ({v})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// One session's review of plugin output: the secret values to mask, and
/// the warnings already given. Its `Debug` shows how many secrets it holds,
/// never their values.
#[derive(Default)]
pub struct Review {
    /// Longest first, so a secret containing another is masked whole.
    secrets: Vec<String>,
    warned: BTreeSet<(WarningKind, String, String)>,
    /// The session's clock, for times in the future (none: not checked).
    now: Option<chrono::DateTime<chrono::Utc>>,
}

impl std::fmt::Debug for Review {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Review")
            .field("secrets", &self.secrets.len())
            .field("warned", &self.warned.len())
            .finish()
    }
}

impl Review {
    /// A review that masks nothing yet.
    pub fn new() -> Self {
        Review::default()
    }

    /// Compares record times with `now`, the session's clock.
    pub fn set_now(&mut self, now: chrono::DateTime<chrono::Utc>) {
        self.now = Some(now);
    }

    /// Adds a value to mask (a resolved secret, one of its encoded forms, an
    /// OAuth2 access token). One shorter than [`MIN_MASKED_SECRET_CHARS`]
    /// characters is ignored; adding a value twice changes nothing.
    pub fn add_secret(&mut self, value: &str) {
        if value.chars().count() < MIN_MASKED_SECRET_CHARS
            || self.secrets.iter().any(|s| s == value)
        {
            return;
        }
        self.secrets.push(value.to_owned());
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// `text` with every secret value replaced by `***`, or `None` when it
    /// holds none.
    pub fn mask(&self, text: &str) -> Option<String> {
        let mut out: Option<String> = None;
        for s in &self.secrets {
            let current = out.as_deref().unwrap_or(text);
            if current.contains(s.as_str()) {
                out = Some(current.replace(s.as_str(), "***"));
            }
        }
        out
    }

    /// Masks secret values in every text field of `r` (ids, names, coupons,
    /// UTM fields; not `source`, which the host sets, nor the currency and
    /// timezone, which validation holds to a fixed vocabulary) and looks for
    /// float noise in its amounts. Returns the warnings not given before in
    /// this session.
    pub fn record(&mut self, stream: &str, r: &mut Record) -> Vec<Warning> {
        let mut masked: Vec<&'static str> = Vec::new();
        if !self.secrets.is_empty() {
            text_fields(r, &mut |field, value| {
                if let Some(m) = self.mask(value) {
                    *value = m;
                    if !masked.contains(&field) {
                        masked.push(field);
                    }
                }
            });
        }
        // Made only for a warning: most records have none, and a spend
        // key is a `format!`.
        let mut key_of_r: Option<String> = None;
        let mut key = || {
            key_of_r
                .get_or_insert_with(|| crate::validate::escape_controls(&r.key()))
                .clone()
        };
        let mut out = Vec::new();
        for field in masked {
            if self.first(WarningKind::EchoedSecret, stream, field) {
                out.push(Warning {
                    kind: WarningKind::EchoedSecret,
                    stream: stream.to_owned(),
                    key: key(),
                    field: field.to_owned(),
                    value: None,
                    message: "the platform echoed a credential; it was masked".into(),
                });
            }
        }
        for (field, m) in amounts(r) {
            let Some((places, plausible)) = float_noise(m) else {
                continue;
            };
            if self.first(WarningKind::FloatAmount, stream, field) {
                out.push(Warning {
                    kind: WarningKind::FloatAmount,
                    stream: stream.to_owned(),
                    key: key(),
                    field: field.to_owned(),
                    value: Some(m.to_string()),
                    message: format!(
                        "the amount has {places} decimal places, more than plausible for {} (at most {plausible}): \
                         {FLOAT_ADVICE}; it is stored as sent",
                        m.currency
                    ),
                });
            }
        }
        for (field, what) in self.implausible_times(r) {
            if self.first(WarningKind::ImplausibleTime, stream, field) {
                out.push(Warning {
                    kind: WarningKind::ImplausibleTime,
                    stream: stream.to_owned(),
                    key: key(),
                    field: field.to_owned(),
                    value: None,
                    message: format!(
                        "{what}: a misread or placeholder time? it is stored as sent; fix the plugin or ask the platform"
                    ),
                });
            }
        }
        out
    }

    /// The times of `r` that cannot be right: after the session's clock
    /// (with [`FUTURE_SLACK_HOURS`]), or a click after its conversion.
    fn implausible_times(&self, r: &Record) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let Some(now) = self.now else {
            return out;
        };
        let latest = now + chrono::Duration::hours(FUTURE_SLACK_HOURS);
        let mut future = |field: &'static str, t: chrono::DateTime<chrono::Utc>| {
            if t > latest {
                out.push((
                    field,
                    format!(
                        "{} is more than {FUTURE_SLACK_HOURS} h after the clock ({})",
                        t.to_rfc3339(),
                        now.to_rfc3339()
                    ),
                ));
            }
        };
        match r {
            Record::Conversion(c) => {
                future("occurred_at", c.occurred_at);
                if let Some(t) = c.clicked_at {
                    future("clicked_at", t);
                }
            }
            Record::Order(o) => {
                future("created_at", o.created_at);
                for rf in &o.refunds {
                    future("refunds[].at", rf.at);
                }
            }
            Record::Spend(s) => {
                if s.day > latest.date_naive() {
                    out.push((
                        "day",
                        format!("day {} is after the clock's ({})", s.day, now.date_naive()),
                    ));
                }
            }
        }
        if let Record::Conversion(c) = r {
            if let Some(click) = c.clicked_at.filter(|t| *t > c.occurred_at) {
                out.push((
                    "clicked_at",
                    format!(
                        "the click ({}) is after its conversion ({}); attribution compares click times",
                        click.to_rfc3339(),
                        c.occurred_at.to_rfc3339()
                    ),
                ));
            }
        }
        out
    }

    /// Masks secret values in `cp`'s state (every string, object keys
    /// included) and its `covers` account. Returns the warnings not given
    /// before in this session. The watermark and stream are not text the
    /// platform chose.
    pub fn checkpoint(&mut self, cp: &mut Checkpoint) -> Vec<Warning> {
        if self.secrets.is_empty() {
            return Vec::new();
        }
        let mut masked: Vec<String> = Vec::new();
        self.mask_json(&mut cp.state, "state", &mut masked);
        if let Some(c) = cp.covers.as_mut() {
            if let Some(m) = self.mask(&c.account_id) {
                c.account_id = m;
                masked.push("covers.account_id".into());
            }
        }
        let mut out = Vec::new();
        for field in masked {
            if self.first(WarningKind::SecretInCheckpoint, &cp.stream, &field) {
                out.push(Warning {
                    kind: WarningKind::SecretInCheckpoint,
                    stream: cp.stream.clone(),
                    key: String::new(),
                    field,
                    value: None,
                    message: "the plugin's checkpoint held a credential (a next-page URL echoing the key?); \
                              it was masked: keep only the platform's cursor in the state"
                        .into(),
                });
            }
        }
        out
    }

    fn mask_json(&self, v: &mut serde_json::Value, path: &str, masked: &mut Vec<String>) {
        use serde_json::Value;
        let note = |masked: &mut Vec<String>| {
            if !masked.iter().any(|m| m == path) {
                masked.push(path.to_owned());
            }
        };
        match v {
            Value::String(s) => {
                if let Some(m) = self.mask(s) {
                    *s = m;
                    note(masked);
                }
            }
            Value::Array(items) => {
                let path = format!("{path}[]");
                for item in items {
                    self.mask_json(item, &path, masked);
                }
            }
            Value::Object(map) => {
                if map.keys().any(|k| self.mask(k).is_some()) {
                    note(masked);
                    *map = std::mem::take(map)
                        .into_iter()
                        .map(|(k, v)| (self.mask(&k).unwrap_or(k), v))
                        .collect();
                }
                for (k, item) in map.iter_mut() {
                    self.mask_json(item, &format!("{path}.{k}"), masked);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// True the first time (kind, stream, field) is seen this session.
    fn first(&mut self, kind: WarningKind, stream: &str, field: &str) -> bool {
        self.warned
            .insert((kind, stream.to_owned(), field.to_owned()))
    }
}

/// The decimal places of `m` (trailing zeros aside) and the most that are
/// plausible for its currency (the larger of its minor unit, 2 for an
/// unknown code, and [`PLAUSIBLE_DECIMALS`]), when it has more.
pub fn float_noise(m: &Money) -> Option<(u32, u32)> {
    let places = m.amount.normalize().scale();
    let plausible = crate::currency::minor_unit_digits(&m.currency)
        .unwrap_or(2)
        .max(PLAUSIBLE_DECIMALS);
    (places > plausible).then_some((places, plausible))
}

/// Calls `f` with each text field of `r` a platform's data fills, by name.
fn text_fields(r: &mut Record, f: &mut dyn FnMut(&'static str, &mut String)) {
    fn opt(
        f: &mut dyn FnMut(&'static str, &mut String),
        name: &'static str,
        v: &mut Option<String>,
    ) {
        if let Some(v) = v {
            f(name, v);
        }
    }
    fn utm(f: &mut dyn FnMut(&'static str, &mut String), u: &mut Utm) {
        opt(f, "utm.source", &mut u.source);
        opt(f, "utm.medium", &mut u.medium);
        opt(f, "utm.campaign", &mut u.campaign);
        opt(f, "utm.content", &mut u.content);
        opt(f, "utm.term", &mut u.term);
    }
    match r {
        Record::Spend(s) => {
            f("account_id", &mut s.account_id);
            f("campaign_id", &mut s.campaign_id);
            f("campaign_name", &mut s.campaign_name);
            opt(f, "ad_group_id", &mut s.ad_group_id);
            opt(f, "ad_group_name", &mut s.ad_group_name);
            opt(f, "ad_id", &mut s.ad_id);
        }
        Record::Conversion(c) => {
            f("external_id", &mut c.external_id);
            opt(f, "order_id", &mut c.order_id);
            opt(f, "click_id", &mut c.click_id);
            f("partner_id", &mut c.partner_id);
            opt(f, "partner_name", &mut c.partner_name);
            opt(f, "campaign_id", &mut c.campaign_id);
            opt(f, "coupon", &mut c.coupon);
            utm(f, &mut c.utm);
        }
        Record::Order(o) => {
            f("order_id", &mut o.order_id);
            for v in &mut o.alt_ids {
                f("alt_ids[]", v);
            }
            opt(f, "customer_id", &mut o.customer_id);
            opt(f, "coupon", &mut o.coupon);
            for v in &mut o.click_ids {
                f("click_ids[]", v);
            }
            utm(f, &mut o.utm);
        }
    }
}

/// Every amount of `r`, by field name.
fn amounts(r: &Record) -> Vec<(&'static str, &Money)> {
    let mut out = Vec::new();
    match r {
        Record::Spend(s) => {
            out.push(("spend", &s.spend));
            if let Some(v) = &s.platform_conversion_value {
                out.push(("platform_conversion_value", v));
            }
        }
        Record::Conversion(c) => {
            if let Some(v) = &c.sale_amount {
                out.push(("sale_amount", v));
            }
            if let Some(v) = &c.commission {
                out.push(("commission", v));
            }
        }
        Record::Order(o) => {
            out.push(("amount", &o.amount));
            for rf in &o.refunds {
                out.push(("refunds[].amount", &rf.amount));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Conversion, ConversionStatus, EventType, Order, OrderStatus, Refund};
    use rust_decimal::Decimal;

    const SECRET: &str = "s3cr3t-acme-token-123";

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn conversion(id: &str, order_id: &str, commission: &str) -> Record {
        Record::Conversion(Conversion {
            source: String::new(),
            external_id: id.into(),
            order_id: Some(order_id.into()),
            click_id: None,
            clicked_at: None,
            partner_id: "p1".into(),
            partner_name: None,
            campaign_id: None,
            event_type: EventType::Sale,
            occurred_at: "2026-11-10T12:00:00Z".parse().unwrap(),
            sale_amount: Some(Money::new(d("100.00"), "USD")),
            commission: Some(Money::new(d(commission), "USD")),
            status: ConversionStatus::Approved,
            status_changed_at: None,
            locked_at: None,
            coupon: None,
            utm: Utm::default(),
        })
    }

    fn review() -> Review {
        let mut r = Review::new();
        r.add_secret(SECRET);
        r
    }

    #[test]
    fn an_echoed_secret_is_masked_and_warned_once_per_field() {
        // QA7 F14: `order_ref` echoed `Bearer <token>` and was stored so.
        let mut rv = review();
        let mut a = conversion("A5", &format!("Bearer {SECRET}"), "1.50");
        let w = rv.record("conversions", &mut a);
        let Record::Conversion(c) = &a else {
            unreachable!()
        };
        assert_eq!(c.order_id.as_deref(), Some("Bearer ***"));
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].to_string(),
            "stream `conversions`, record `A5`, field `order_id`: the platform echoed a credential; it was masked"
        );
        // The next record with the same echo is masked, not warned again.
        let mut b = conversion("A6", &format!("x{SECRET}y"), "1.50");
        assert!(rv.record("conversions", &mut b).is_empty());
        assert_eq!(b, conversion("A6", "x***y", "1.50"));
        // Another field is warned once too; the key shown is masked.
        let mut c = conversion(&format!("id-{SECRET}"), "o1", "1.50");
        let w = rv.record("conversions", &mut c);
        assert_eq!(w.len(), 1);
        assert_eq!(
            (w[0].key.as_str(), w[0].field.as_str()),
            ("id-***", "external_id")
        );
    }

    #[test]
    fn ordinary_records_and_short_secrets_are_untouched() {
        let mut rv = review();
        rv.add_secret("1234"); // too short to look for
        for amount in ["1.50", "0.123456", "12.30000000", "7"] {
            let mut r = conversion("A1", "ORD-1234", amount);
            let before = r.clone();
            assert!(rv.record("conversions", &mut r).is_empty(), "{amount}");
            assert_eq!(r, before);
        }
        // Micros, as ad platforms send them, pass in a 2-decimal currency
        // and in one without decimals.
        for (amount, currency) in [("0.123456", "USD"), ("12.345678", "JPY")] {
            let m = Money::new(d(amount), currency);
            assert_eq!(float_noise(&m), None);
        }
        // Nothing to look for: a review without secrets masks nothing.
        assert_eq!(Review::new().mask(SECRET), None);
        assert!(format!("{rv:?}").contains("secrets: 1"));
        assert!(!format!("{rv:?}").contains(SECRET));
    }

    #[test]
    fn float_noise_in_an_amount_is_kept_and_warned_once_per_field() {
        // QA7 F9: 0.1 + 0.2 in f64 was stored without a word.
        let mut rv = Review::new();
        let mut a = conversion("A5", "o5", "0.30000000000000004");
        let w = rv.record("conversions", &mut a);
        assert_eq!(a, conversion("A5", "o5", "0.30000000000000004"));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].kind, WarningKind::FloatAmount);
        assert_eq!(
            w[0].to_string(),
            "stream `conversions`, record `A5`, field `commission` (0.30000000000000004 USD): \
             the amount has 17 decimal places, more than plausible for USD (at most 6): \
             looks like a float computation; build amounts from the platform's text with Decimal; \
             it is stored as sent"
        );
        let mut b = conversion("A6", "o6", "1.0000001");
        assert!(rv.record("conversions", &mut b).is_empty());
        // Another stream is another field.
        let mut c = conversion("A7", "o7", "1.0000001");
        assert_eq!(rv.record("reversals", &mut c).len(), 1);
        // Every amount of an order, refunds included.
        let mut o = Record::Order(Order {
            source: String::new(),
            order_id: "1001".into(),
            alt_ids: vec![],
            created_at: "2026-11-10T12:00:00Z".parse().unwrap(),
            amount: Money::new(d("19.99"), "EUR"),
            customer_id: None,
            new_customer: None,
            coupon: None,
            click_ids: vec![],
            utm: Utm::default(),
            refunds: vec![Refund {
                amount: Money::new(d("5.000000001"), "KWD"),
                at: "2026-11-11T12:00:00Z".parse().unwrap(),
            }],
            status: OrderStatus::Paid,
        });
        let w = rv.record("orders", &mut o);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].field, "refunds[].amount");
        assert!(w[0]
            .message
            .contains("9 decimal places, more than plausible for KWD (at most 6)"));
    }

    /// QA20 R20-4: a conversion dated 2099 was stored without a word.
    #[test]
    fn a_time_after_the_clock_or_a_click_after_its_conversion_is_kept_and_warned() {
        let mut rv = Review::new();
        let mut r = conversion("c1", "o1", "10.00");
        // Without a clock nothing is compared.
        if let Record::Conversion(c) = &mut r {
            c.occurred_at = "2099-01-01T00:00:00Z".parse().unwrap();
        }
        assert!(rv.record("actions", &mut r).is_empty());
        rv.set_now("2026-11-30T12:00:00Z".parse().unwrap());
        let w = rv.record("actions", &mut r);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(
            (w[0].kind, w[0].field.as_str()),
            (WarningKind::ImplausibleTime, "occurred_at")
        );
        assert_eq!(w[0].key, r.key());
        assert!(
            w[0].message.starts_with("2099-01-01T00:00:00+00:00 is more than 24 h after the clock (2026-11-30T12:00:00+00:00): a misread or placeholder time?"),
            "{}",
            w[0].message
        );
        // Once per session and field; the record is kept as sent.
        assert!(rv.record("actions", &mut r).is_empty());
        let Record::Conversion(c) = &mut r else {
            unreachable!()
        };
        assert_eq!(c.occurred_at.to_rfc3339(), "2099-01-01T00:00:00+00:00");
        // Within a day of the clock (another timezone's today) is fine; a
        // click after its conversion is not.
        let mut ok = conversion("c2", "o2", "10.00");
        if let Record::Conversion(c) = &mut ok {
            c.occurred_at = "2026-12-01T11:00:00Z".parse().unwrap();
        }
        assert!(rv.record("orders", &mut ok).is_empty());
        if let Record::Conversion(c) = &mut ok {
            c.clicked_at = Some("2026-12-01T11:30:00Z".parse().unwrap());
        }
        let w = rv.record("orders", &mut ok);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].message.contains("is after its conversion"),
            "{}",
            w[0].message
        );
    }

    #[test]
    fn a_secret_in_a_checkpoint_is_masked_and_warned_once() {
        let mut rv = review();
        let mut cp = Checkpoint {
            stream: "conversions".into(),
            watermark: "2026-11-10T00:00:00Z".parse().unwrap(),
            state: serde_json::json!({
                "next": format!("https://api.acme.example/c?api_key={SECRET}&cursor=2"),
                "pages": [SECRET, "ok"],
                SECRET: 1,
                "window": "2026-11-10",
            }),
            covers: None,
        };
        let w = rv.checkpoint(&mut cp);
        assert_eq!(
            cp.state,
            serde_json::json!({
                "next": "https://api.acme.example/c?api_key=***&cursor=2",
                "pages": ["***", "ok"],
                "***": 1,
                "window": "2026-11-10",
            })
        );
        let fields: Vec<&str> = w.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(fields, ["state", "state.next", "state.pages[]"]);
        assert!(w[0]
            .to_string()
            .starts_with("stream `conversions`, checkpoint, field `state`: the plugin's checkpoint held a credential"));
        let mut again = cp.clone();
        again.state = serde_json::json!({ "next": SECRET });
        assert!(rv.checkpoint(&mut again).is_empty());
        assert_eq!(again.state, serde_json::json!({ "next": "***" }));
    }

    #[test]
    fn the_longest_secret_is_masked_whole() {
        let mut rv = Review::new();
        rv.add_secret("abcdefgh");
        rv.add_secret("abcdefgh-and-more");
        assert_eq!(
            rv.mask("x abcdefgh-and-more y abcdefgh").as_deref(),
            Some("x *** y ***")
        );
    }
}
