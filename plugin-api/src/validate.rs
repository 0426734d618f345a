//! The host's checks of a plugin's records, shared by the daemon and
//! [`crate::testing::FakeHost`], so a plugin's tests refuse what the daemon
//! refuses: the record kind of the stream, non-empty ids, ISO-4217
//! currencies, amounts that must not be negative, IANA timezones, and times
//! and days within [`EARLIEST`, `LATEST`).

use crate::protocol::{Record, RecordKind};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

/// The first day a record may be of (inclusive): an earlier time is a
/// platform's "no value" (0 or -1 as a Unix time) or a misread field.
pub const EARLIEST: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => panic!("a valid date"),
};

/// The first day a record may no longer be of: a later time is a misread
/// field (milliseconds read as seconds give years past 50,000), and would
/// take date arithmetic out of range downstream.
pub const LATEST: NaiveDate = match NaiveDate::from_ymd_opt(2100, 1, 1) {
    Some(d) => d,
    None => panic!("a valid date"),
};

fn check_day(field: &str, day: NaiveDate) -> Result<(), String> {
    if (EARLIEST..LATEST).contains(&day) {
        Ok(())
    } else {
        Err(format!(
            "field `{field}`: {day} is outside {EARLIEST} .. {LATEST} (a misread or placeholder time?)"
        ))
    }
}

fn check_time(field: &str, t: DateTime<Utc>) -> Result<(), String> {
    check_day(field, t.date_naive()).map_err(|_| {
        format!(
            "field `{field}`: {} is outside {EARLIEST} .. {LATEST} (a misread or placeholder time?)",
            t.to_rfc3339()
        )
    })
}

fn check_money(field: &str, m: &crate::Money, non_negative: bool) -> Result<(), String> {
    if !crate::currency::is_known(&m.currency) {
        return Err(format!(
            "field `{field}`: currency `{}` is not an ISO-4217 code",
            m.currency
        ));
    }
    if non_negative && m.amount < Decimal::ZERO {
        return Err(format!("field `{field}`: amount {} is negative", m.amount));
    }
    Ok(())
}

/// An id: not empty, and no control characters (a NUL or newline in a key
/// cannot be typed into `records history --key`, and breaks CSV exports).
fn non_empty(field: &str, v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        Err(format!("field `{field}` is empty"))
    } else if v.chars().any(char::is_control) {
        Err(format!("field `{field}`: {v:?} holds a control character"))
    } else {
        Ok(())
    }
}

/// A matching key that may be absent: no control characters (a newline in
/// an order or click id would never match the order's, and breaks exports).
fn no_control(field: &str, v: &str) -> Result<(), String> {
    if v.chars().any(char::is_control) {
        Err(format!("field `{field}`: {v:?} holds a control character"))
    } else {
        Ok(())
    }
}

/// Validates one record for a stream of `kind` and stamps its source
/// (`connector`): what the host checks before it stores anything.
pub fn record(r: &mut Record, kind: RecordKind, connector: &str) -> Result<(), String> {
    if r.kind() != kind {
        return Err(format!(
            "record is of kind `{}` but the stream holds `{}`",
            r.kind().as_str(),
            kind.as_str()
        ));
    }
    r.set_source(connector);
    match r {
        Record::Spend(s) => {
            non_empty("account_id", &s.account_id)?;
            non_empty("campaign_id", &s.campaign_id)?;
            check_day("day", s.day)?;
            if s.timezone.parse::<chrono_tz::Tz>().is_err() {
                return Err(format!(
                    "field `timezone`: `{}` is not an IANA timezone",
                    s.timezone
                ));
            }
            check_money("spend", &s.spend, true)?;
            if let Some(c) = s.platform_conversions {
                if c < Decimal::ZERO {
                    return Err(format!("field `platform_conversions`: {c} is negative"));
                }
            }
            if let Some(v) = &s.platform_conversion_value {
                check_money("platform_conversion_value", v, true)?;
            }
        }
        Record::Conversion(c) => {
            non_empty("external_id", &c.external_id)?;
            non_empty("partner_id", &c.partner_id)?;
            for (field, v) in [
                ("order_id", &c.order_id),
                ("click_id", &c.click_id),
                ("coupon", &c.coupon),
            ] {
                if let Some(v) = v {
                    no_control(field, v)?;
                }
            }
            check_time("occurred_at", c.occurred_at)?;
            for (field, t) in [
                ("clicked_at", c.clicked_at),
                ("status_changed_at", c.status_changed_at),
                ("locked_at", c.locked_at),
            ] {
                if let Some(t) = t {
                    check_time(field, t)?;
                }
            }
            if let Some(m) = &c.sale_amount {
                check_money("sale_amount", m, false)?;
            }
            if let Some(m) = &c.commission {
                check_money("commission", m, false)?;
            }
        }
        Record::Order(o) => {
            non_empty("order_id", &o.order_id)?;
            for (i, v) in o.alt_ids.iter().enumerate() {
                no_control(&format!("alt_ids[{i}]"), v)?;
            }
            for (i, v) in o.click_ids.iter().enumerate() {
                no_control(&format!("click_ids[{i}]"), v)?;
            }
            if let Some(v) = &o.coupon {
                no_control("coupon", v)?;
            }
            check_time("created_at", o.created_at)?;
            check_money("amount", &o.amount, true)?;
            for (i, rf) in o.refunds.iter().enumerate() {
                check_money(&format!("refunds[{i}].amount"), &rf.amount, true)?;
                check_time(&format!("refunds[{i}].at"), rf.at)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Money, Order, OrderStatus, Refund, Utm};
    use chrono::Utc;

    fn order() -> Record {
        Record::Order(Order {
            source: String::new(),
            order_id: "1001".into(),
            alt_ids: vec![],
            created_at: Utc::now(),
            amount: Money::new(Decimal::new(1999, 2), "EUR"),
            customer_id: None,
            new_customer: None,
            coupon: None,
            click_ids: vec![],
            utm: Utm::default(),
            refunds: vec![],
            status: OrderStatus::Paid,
        })
    }

    #[test]
    fn valid_records_get_their_source_stamped() {
        let mut r = order();
        record(&mut r, RecordKind::Order, "shop").unwrap();
        assert_eq!(r.source(), "shop");
    }

    #[test]
    fn times_outside_2000_to_2100_are_refused_naming_the_field() {
        // QA findings: milliseconds read as seconds (year 58879) and a year
        // of +262142 were stored, and the latter panicked every reconcile.
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let mut r = order();
        if let Record::Order(o) = &mut r {
            o.created_at = at("+58879-01-01T00:00:00Z");
        }
        let e = record(&mut r, RecordKind::Order, "shop").unwrap_err();
        assert!(e.starts_with("field `created_at`: +58879-01-01"), "{e}");
        for (t, ok) in [
            ("1999-12-31T23:59:59Z", false),
            ("2000-01-01T00:00:00Z", true),
            ("2099-12-31T23:59:59Z", true),
            ("2100-01-01T00:00:00Z", false),
        ] {
            let mut r = order();
            if let Record::Order(o) = &mut r {
                o.refunds.push(Refund {
                    amount: Money::new(Decimal::ONE, "EUR"),
                    at: at(t),
                });
            }
            let got = record(&mut r, RecordKind::Order, "shop");
            assert_eq!(got.is_ok(), ok, "{t}: {got:?}");
            if let Err(e) = got {
                assert!(e.contains("refunds[0].at"), "{e}");
            }
        }
    }

    #[test]
    fn ids_with_control_characters_are_refused() {
        let mut r = order();
        if let Record::Order(o) = &mut r {
            o.order_id = "A\0-1".into();
        }
        let e = record(&mut r, RecordKind::Order, "shop").unwrap_err();
        assert_eq!(e, "field `order_id`: \"A\\0-1\" holds a control character");
        let mut r = order();
        if let Record::Order(o) = &mut r {
            o.click_ids = vec!["k1".into(), "k\n2".into()];
        }
        let e = record(&mut r, RecordKind::Order, "shop").unwrap_err();
        assert_eq!(
            e,
            "field `click_ids[1]`: \"k\\n2\" holds a control character"
        );
    }

    #[test]
    fn negative_amounts_and_unknown_currencies_are_named() {
        let mut r = order();
        if let Record::Order(o) = &mut r {
            o.refunds.push(Refund {
                amount: Money::new(Decimal::new(-5, 0), "EUR"),
                at: Utc::now(),
            });
        }
        let e = record(&mut r, RecordKind::Order, "shop").unwrap_err();
        assert!(e.contains("refunds[0].amount"), "{e}");
        let mut r = order();
        if let Record::Order(o) = &mut r {
            o.amount.currency = "EURO".into();
        }
        let e = record(&mut r, RecordKind::Order, "shop").unwrap_err();
        assert!(e.contains("currency `EURO`"), "{e}");
        // Platforms send doubles as JSON numbers (Google's
        // `conversionsValue` 12.999999999999998): many decimals are data,
        // not a plugin's float arithmetic, and are stored as sent.
        let mut r = order();
        if let Record::Order(o) = &mut r {
            o.amount.amount = "12.999999999999998".parse().unwrap();
        }
        record(&mut r, RecordKind::Order, "shop").unwrap();
        let e = record(&mut order(), RecordKind::Spend, "shop").unwrap_err();
        assert!(
            e.contains("record is of kind `orders` but the stream holds `spend`"),
            "{e}"
        );
    }
}
