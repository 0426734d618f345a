//! Seeded synthetic claims and orders with known, injected discrepancies,
//! for benchmarks, end-to-end tests and demos. Not used by reconciliation
//! itself. The same seed always gives the same data (a SplitMix64 stream,
//! independent of `rand`'s versions), and every injected claim comes with
//! the outcome reconciliation must give it.

use super::model::Outcome;
use chrono::{DateTime, Duration, Utc};
use plugin_api::{Conversion, ConversionStatus, EventType, Money, Order, OrderStatus, Refund, Utm};

/// SplitMix64: tiny, fast, and stable across versions and platforms.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n`.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    /// Number of orders; each gets one claim, plus injected extras.
    pub orders: usize,
    /// Seed.
    pub seed: u64,
    /// Percent of orders claimed a second time by another network (the
    /// extra claim clicks earlier and loses: `duplicate`).
    pub duplicate_pct: u64,
    /// Percent of orders fully refunded (`refunded`).
    pub refund_pct: u64,
    /// Percent of claims whose amount is 20 % above the order's
    /// (`amount_mismatch`).
    pub mismatch_pct: u64,
    /// Percent of claims the network reversed (`network_reversed`).
    pub reversed_pct: u64,
    /// Percent of orders with an extra claim quoting an order id that does
    /// not exist (`no_order`).
    pub no_order_pct: u64,
    /// Start of the month the conversions fall in.
    pub start: DateTime<Utc>,
}

impl SynthSpec {
    /// The benchmark mix: 10 % duplicates, 5 % refunds, 3 % mismatches,
    /// 1 % reversals, 1 % claims without an order, in November 2026.
    pub fn benchmark(orders: usize, seed: u64) -> SynthSpec {
        SynthSpec {
            orders,
            seed,
            duplicate_pct: 10,
            refund_pct: 5,
            mismatch_pct: 3,
            reversed_pct: 1,
            no_order_pct: 1,
            start: DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
        }
    }
    /// A `now` at which every lock date has passed and every grace period ended.
    pub fn settled_now(&self) -> DateTime<Utc> {
        self.start + Duration::days(90)
    }
}

/// Claim connector ids used by the generator.
pub const NETWORKS: [&str; 3] = ["impact", "everflow", "awin"];
/// Order connector id used by the generator.
pub const SHOP: &str = "shop";

/// Generated data with the expected outcome of every claim.
#[derive(Debug, Clone, Default)]
pub struct Synth {
    /// Claims (sources from [`NETWORKS`]).
    pub claims: Vec<Conversion>,
    /// Orders (source [`SHOP`]).
    pub orders: Vec<Order>,
    /// (claim source, external id, expected outcome), one per claim.
    pub expected: Vec<(String, String, Outcome)>,
}

/// An order id as the shop writes it.
pub fn order_id(i: usize) -> String {
    format!("ORD-{i:08}")
}

/// An order id as a network quotes it: same id, sometimes lower-cased or
/// padded with spaces.
pub fn quoted_order_id(i: usize, r: u64) -> String {
    match r % 8 {
        0 => format!(" ord-{i:08}"),
        1 => format!("Ord-{i:08} "),
        _ => order_id(i),
    }
}

/// Generates the data set of `spec`.
pub fn generate(spec: &SynthSpec) -> Synth {
    let mut rng = SplitMix64(spec.seed);
    let mut out = Synth {
        claims: Vec::with_capacity(spec.orders * 112 / 100),
        orders: Vec::with_capacity(spec.orders),
        expected: Vec::with_capacity(spec.orders * 112 / 100),
    };
    let month_secs = 30 * 24 * 3600;
    let mut claim_no = 0u64;
    let mut next_claim_id = |net: usize| {
        claim_no += 1;
        format!("{}-{claim_no:09}", &NETWORKS[net][..2])
    };
    for i in 0..spec.orders {
        let created = spec.start + Duration::seconds(rng.below(month_secs) as i64);
        let cents = 1_000 + rng.below(49_000) as i64;
        let amount = Money::from_minor(cents, "USD");
        let net = (rng.below(3)) as usize;
        let roll = rng.below(100);
        let refunded = roll < spec.refund_pct;
        let mut order = Order {
            source: SHOP.into(),
            order_id: order_id(i),
            alt_ids: vec![],
            created_at: created,
            amount: amount.clone(),
            customer_id: None,
            new_customer: None,
            coupon: None,
            click_ids: vec![],
            utm: Utm::default(),
            refunds: vec![],
            status: OrderStatus::Paid,
        };
        if refunded {
            order.refunds = vec![Refund {
                amount: amount.clone(),
                at: created + Duration::days(3),
            }];
            order.status = OrderStatus::Refunded;
        }
        let roll2 = rng.below(100);
        let mismatch = !refunded && roll2 < spec.mismatch_pct;
        let reversed = !refunded && !mismatch && roll2 >= 100 - spec.reversed_pct;
        let claimed = if mismatch {
            Money::from_minor(cents * 6 / 5, "USD")
        } else {
            amount.clone()
        };
        let clicked = created - Duration::minutes(5 + rng.below(600) as i64);
        let claim = Conversion {
            source: NETWORKS[net].into(),
            external_id: next_claim_id(net),
            order_id: Some(quoted_order_id(i, rng.next_u64())),
            click_id: None,
            clicked_at: Some(clicked),
            partner_id: format!("partner-{}", rng.below(50)),
            partner_name: None,
            campaign_id: None,
            event_type: EventType::Sale,
            occurred_at: created + Duration::seconds(30),
            sale_amount: Some(claimed),
            commission: Some(Money::from_minor(cents / 10, "USD")),
            status: if reversed {
                ConversionStatus::Reversed
            } else {
                ConversionStatus::Approved
            },
            status_changed_at: None,
            locked_at: None,
            coupon: None,
            utm: Utm::default(),
        };
        let outcome = if reversed {
            Outcome::NetworkReversed
        } else if refunded {
            Outcome::Refunded
        } else if mismatch {
            Outcome::AmountMismatch
        } else {
            Outcome::Matched
        };
        out.expected
            .push((claim.source.clone(), claim.external_id.clone(), outcome));
        let roll3 = rng.below(100);
        if roll3 < spec.duplicate_pct && !reversed {
            // Another network claims the same order with an earlier click.
            let other = (net + 1 + rng.below(2) as usize) % 3;
            let mut dup = claim.clone();
            dup.source = NETWORKS[other].into();
            dup.external_id = next_claim_id(other);
            dup.clicked_at = Some(clicked - Duration::hours(1));
            dup.sale_amount = Some(amount.clone());
            dup.partner_id = format!("partner-{}", rng.below(50));
            out.expected.push((
                dup.source.clone(),
                dup.external_id.clone(),
                Outcome::Duplicate,
            ));
            out.claims.push(dup);
        } else if roll3 >= 100 - spec.no_order_pct {
            let mut ghost = claim.clone();
            ghost.external_id = next_claim_id(net);
            ghost.order_id = Some(format!("GHOST-{i:08}"));
            ghost.status = ConversionStatus::Approved;
            out.expected.push((
                ghost.source.clone(),
                ghost.external_id.clone(),
                Outcome::NoOrder,
            ));
            out.claims.push(ghost);
        }
        out.claims.push(claim);
        out.orders.push(order);
    }
    out
}
