//! The host's checks of a plugin's records, shared by the daemon and
//! [`crate::testing::FakeHost`], so a plugin's tests refuse what the daemon
//! refuses: the record kind of the stream, non-empty ids, ISO-4217
//! currencies, amounts that must not be negative, IANA timezones.

use crate::protocol::{Record, RecordKind};
use rust_decimal::Decimal;

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

fn non_empty(field: &str, v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        Err(format!("field `{field}` is empty"))
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
            if let Some(m) = &c.sale_amount {
                check_money("sale_amount", m, false)?;
            }
            if let Some(m) = &c.commission {
                check_money("commission", m, false)?;
            }
        }
        Record::Order(o) => {
            non_empty("order_id", &o.order_id)?;
            check_money("amount", &o.amount, true)?;
            for (i, rf) in o.refunds.iter().enumerate() {
                check_money(&format!("refunds[{i}].amount"), &rf.amount, true)?;
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
