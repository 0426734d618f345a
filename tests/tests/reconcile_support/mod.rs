//! Builders shared by the reconcile test suites: claims, orders, a program,
//! and golden-file comparison.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use plugin_api::{Conversion, ConversionStatus, EventType, Money, Order, OrderStatus, Refund, Utm};
use reckon::reconcile::config::ProgramConfig;
use reckon::reconcile::engine::{ClaimInput, OrderInput};
use rust_decimal::Decimal;
use std::path::PathBuf;

/// A UTC instant from RFC 3339 text.
pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&Utc)
}

/// Money from a decimal string and a code.
pub fn m(amount: &str, currency: &str) -> Money {
    Money::new(amount.parse::<Decimal>().expect("test amount"), currency)
}

/// An approved sale claim quoting `order_id`, 100.00 USD, 2026-11-02 10:00Z.
pub fn claim(source: &str, id: &str, order_id: Option<&str>) -> Conversion {
    Conversion {
        source: source.into(),
        external_id: id.into(),
        order_id: order_id.map(Into::into),
        click_id: None,
        clicked_at: None,
        partner_id: "p1".into(),
        partner_name: Some("Partner One".into()),
        campaign_id: None,
        event_type: EventType::Sale,
        occurred_at: t("2026-11-02T10:05:00Z"),
        sale_amount: Some(m("100.00", "USD")),
        commission: Some(m("10.00", "USD")),
        status: ConversionStatus::Approved,
        status_changed_at: None,
        locked_at: None,
        coupon: None,
        utm: Utm::default(),
    }
}

/// A paid 100.00 USD order created 2026-11-02 10:00Z in source `shop`.
pub fn order(id: &str) -> Order {
    Order {
        source: "shop".into(),
        order_id: id.into(),
        alt_ids: vec![],
        created_at: t("2026-11-02T10:00:00Z"),
        amount: m("100.00", "USD"),
        customer_id: None,
        new_customer: None,
        coupon: None,
        click_ids: vec![],
        utm: Utm::default(),
        refunds: vec![],
        status: OrderStatus::Paid,
    }
}

/// A refund of `amount` USD at `at`.
pub fn refund(amount: &str, at: &str) -> Refund {
    Refund {
        amount: m(amount, "USD"),
        at: t(at),
    }
}

/// The test program: USD, claims from impact and everflow, orders from shop,
/// 30-day return window, 7-day grace, tolerance max(0.50, 1 %), coupon
/// matching within 24 h.
pub fn program() -> ProgramConfig {
    program_from(
        r#"
id = "shop-us"
currency = "USD"
claims = ["impact", "everflow", "awin"]
orders = ["shop"]
return_window_days = 30
no_order_grace_days = 7
attribution = "last_click"
source_priority = ["impact", "everflow"]
[match]
amount_tolerance_abs = "0.50"
amount_tolerance_pct = "1"
fuzzy_window_hours = 24
coupon_matching = true
"#,
    )
}

/// Parses one `[[programs]]` entry body.
pub fn program_from(toml_text: &str) -> ProgramConfig {
    let p: ProgramConfig = toml::from_str(toml_text).expect("test program");
    p.validate().expect("valid test program");
    p
}

/// Wraps claims as revision-1 inputs.
pub fn claims(cs: Vec<Conversion>) -> Vec<ClaimInput> {
    cs.into_iter()
        .map(|claim| ClaimInput { claim, revision: 1 })
        .collect()
}

/// Wraps orders as revision-1 inputs.
pub fn orders(os: Vec<Order>) -> Vec<OrderInput> {
    os.into_iter()
        .map(|order| OrderInput { order, revision: 1 })
        .collect()
}

/// `tests/golden/reconcile/<name>.json`.
pub fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden/reconcile")
        .join(format!("{name}.json"))
}

/// Compares `value` with its golden file. `UPDATE_GOLDEN=1` rewrites the
/// file instead (then review the diff like code).
pub fn assert_golden<T: serde::Serialize>(name: &str, value: &T) {
    let path = golden_path(name);
    let actual = serde_json::to_string_pretty(value).expect("serialise") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden file {} missing ({e}); run with UPDATE_GOLDEN=1 and review it",
            path.display()
        )
    });
    assert_eq!(
        expected,
        actual,
        "{} differs; if the change is intended, rerun with UPDATE_GOLDEN=1 and review",
        path.display()
    );
}
