//! The demo's seeded story, in canonical records, with its ground truth.
//!
//! One advertiser ("Northwind Outfitters", a USD shop in New York) sells for
//! `days` days. Orders come from Google, Meta and TikTok ads, from four
//! affiliate networks, or direct. The networks' claims are derived from the
//! orders with deliberate faults: duplicated claims across networks, refunded
//! and partly refunded orders, inflated amounts (not on CAKE, whose claims
//! carry no sale amount), network reversals and
//! rejections, and claims for orders that do not exist. Every claim is
//! generated with the outcome it *should* get, so a test can check Reckon's
//! decisions against the story instead of against Reckon itself.
//!
//! The story never overlaps faults on one order, so each claim's expected
//! outcome is unambiguous under DESIGN.md section 7.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use plugin_api::{Conversion, ConversionStatus, EventType, Money, Order, OrderStatus, Refund, Utm};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// The affiliate networks of the story, in source-priority order.
pub const NETWORKS: [&str; 4] = ["impact", "everflow", "cake", "partnerstack"];
/// The ad networks of the story (their spend comes from the ad fakes' own
/// seeded universes; orders point at their campaigns through UTM tags).
pub const AD_NETWORKS: [&str; 3] = ["google_ads", "meta_ads", "tiktok_ads"];
/// The shop's timezone.
pub const SHOP_TZ: Tz = chrono_tz::America::New_York;
/// Commission rate used by the demo config for every sale (10 %).
pub const DEMO_CPS_PERCENT: u32 = 10;
/// Return window of the demo program, days.
pub const DEMO_RETURN_WINDOW_DAYS: i64 = 7;
/// No-order grace period of the demo program, days.
pub const DEMO_GRACE_DAYS: i64 = 3;

/// What outcome the story intends a claim to get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Intended {
    Matched,
    AmountMismatch,
    Refunded,
    PartiallyRefunded,
    Duplicate,
    NetworkReversed,
    NetworkRejected,
    NoOrder,
    AwaitingOrder,
}

impl Intended {
    /// The outcome's snake_case name, as Reckon writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Intended::Matched => "matched",
            Intended::AmountMismatch => "amount_mismatch",
            Intended::Refunded => "refunded",
            Intended::PartiallyRefunded => "partially_refunded",
            Intended::Duplicate => "duplicate",
            Intended::NetworkReversed => "network_reversed",
            Intended::NetworkRejected => "network_rejected",
            Intended::NoOrder => "no_order",
            Intended::AwaitingOrder => "awaiting_order",
        }
    }
}

/// A claim with the outcome the story intends and the commission basis it
/// should earn (None when it earns nothing).
#[derive(Debug, Clone)]
pub struct StoryClaim {
    /// The claim as the network will report it.
    pub claim: Conversion,
    /// The outcome it should get.
    pub intended: Intended,
    /// The commission basis it should earn, in USD.
    pub basis: Option<Decimal>,
}

/// The whole story.
#[derive(Debug, Clone)]
pub struct Story {
    /// First day (shop timezone).
    pub from: NaiveDate,
    /// Last day (shop timezone), inclusive.
    pub to: NaiveDate,
    /// The shop's orders (source `shopify`), final state.
    pub orders: Vec<Order>,
    /// Claims by network.
    pub claims: BTreeMap<&'static str, Vec<StoryClaim>>,
    /// A simulated "now" after every lock date of the story.
    pub now: DateTime<Utc>,
}

impl Story {
    /// Expected commission per (network, partner id) under the demo's CPS
    /// rule: each line rounded half away from zero to cents, then summed.
    pub fn expected_commission(&self) -> BTreeMap<(String, String), Decimal> {
        let mut out: BTreeMap<(String, String), Decimal> = BTreeMap::new();
        for (net, claims) in &self.claims {
            for c in claims {
                if let Some(basis) = c.basis {
                    let line = (basis * Decimal::from(DEMO_CPS_PERCENT) / Decimal::from(100))
                        .round_dp_with_strategy(
                            2,
                            rust_decimal::RoundingStrategy::MidpointAwayFromZero,
                        );
                    *out.entry(((*net).to_owned(), c.claim.partner_id.clone()))
                        .or_default() += line;
                }
            }
        }
        out
    }

    /// Expected outcome counts per network.
    pub fn expected_outcomes(&self) -> BTreeMap<(&'static str, Intended), usize> {
        let mut out = BTreeMap::new();
        for (net, claims) in &self.claims {
            for c in claims {
                *out.entry((*net, c.intended)).or_default() += 1;
            }
        }
        out
    }
}

fn money(amount: Decimal) -> Money {
    Money::new(amount, "USD")
}

fn cents(rng: &mut StdRng, lo: i64, hi: i64) -> Decimal {
    Decimal::new(rng.gen_range(lo * 100..hi * 100), 2)
}

/// Builds the story for `days` days ending on `end` (inclusive).
pub fn generate(seed: u64, days: u32, end: NaiveDate) -> Story {
    let mut rng = StdRng::seed_from_u64(seed);
    let from = end - Duration::days(i64::from(days.max(1)) - 1);
    let partners: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::from([
        (
            "impact",
            vec![
                ("1001", "CouponCabin"),
                ("1002", "RetailMeNot"),
                ("1003", "Wirecutter"),
            ],
        ),
        (
            "everflow",
            vec![("201", "DealSeekers"), ("202", "CashbackKing")],
        ),
        (
            "cake",
            vec![("31", "MediaBuyers LLC"), ("32", "PushTraffic")],
        ),
        (
            "partnerstack",
            vec![
                ("part_1", "Anna's Outdoor Blog"),
                ("part_2", "TrailTalk Podcast"),
            ],
        ),
    ]);
    let mut orders = Vec::new();
    let mut claims: BTreeMap<&'static str, Vec<StoryClaim>> =
        NETWORKS.iter().map(|n| (*n, Vec::new())).collect();
    let mut seq = 0u64;
    let mut claim_seq = 0u64;

    for day_idx in 0..i64::from(days.max(1)) {
        let day = from + Duration::days(day_idx);
        let n_orders = rng.gen_range(30..50);
        for _ in 0..n_orders {
            seq += 1;
            let number = 1000 + seq;
            let local = day.and_time(
                NaiveTime::from_num_seconds_from_midnight_opt(rng.gen_range(0..86_000), 0).unwrap(),
            );
            let created_at = SHOP_TZ
                .from_local_datetime(&local)
                .earliest()
                .unwrap_or_else(|| SHOP_TZ.from_utc_datetime(&local))
                .with_timezone(&Utc);
            let amount = cents(&mut rng, 20, 300);
            let mut order = Order {
                source: "shopify".into(),
                order_id: shopify_id(number).to_string(),
                alt_ids: vec![format!("#{number}"), number.to_string()],
                created_at,
                amount: money(amount),
                customer_id: Some(format!("cust-{}", rng.gen_range(1..800))),
                new_customer: Some(rng.gen_bool(0.6)),
                coupon: None,
                click_ids: Vec::new(),
                utm: Utm::default(),
                refunds: Vec::new(),
                status: OrderStatus::Paid,
            };
            // Refund faults first: they decide what the claims should get.
            let refund_roll: u32 = rng.gen_range(0..1000);
            let refund = if refund_roll < 50 {
                Some(amount)
            } else if refund_roll < 80 {
                Some((amount / Decimal::from(3)).round_dp(2))
            } else {
                None
            };
            if let Some(r) = refund {
                order.refunds.push(Refund {
                    amount: money(r),
                    at: created_at + Duration::days(2),
                });
                order.status = if r == amount {
                    OrderStatus::Refunded
                } else {
                    OrderStatus::PartiallyRefunded
                };
            }
            let channel_roll: u32 = rng.gen_range(0..1000);
            if channel_roll < 300 {
                order.click_ids.push(format!("gclid-{number}"));
                order.utm = utm(
                    "google",
                    "cpc",
                    &ad_campaign_id(rng.gen_range(0..AD_CAMPAIGNS[0])),
                );
            } else if channel_roll < 450 {
                order.click_ids.push(format!("fbclid-{number}"));
                order.utm = utm(
                    "facebook",
                    "paid_social",
                    &ad_campaign_id(rng.gen_range(0..AD_CAMPAIGNS[1])),
                );
            } else if channel_roll < 550 {
                order.click_ids.push(format!("ttclid-{number}"));
                order.utm = utm(
                    "tiktok",
                    "paid_social",
                    &ad_campaign_id(rng.gen_range(0..AD_CAMPAIGNS[2])),
                );
            } else if channel_roll < 900 {
                // Affiliate order: one network wins, maybe a second claims it too.
                let net_idx = weighted(&mut rng, &[40, 30, 15, 15]);
                let net = NETWORKS[net_idx];
                let (pid, pname) = partners[net][rng.gen_range(0..partners[net].len())];
                let click_at = created_at - Duration::minutes(rng.gen_range(5..600));
                let click_id = format!("{net}-clk-{number}");
                order.click_ids.push(click_id.clone());
                order.utm = utm(net, "affiliate", pid);
                let fault: u32 = rng.gen_range(0..1000);
                let mut intended = match order.status {
                    OrderStatus::Refunded => Intended::Refunded,
                    OrderStatus::PartiallyRefunded => Intended::PartiallyRefunded,
                    _ => Intended::Matched,
                };
                let mut claimed = amount;
                let mut status = if rng.gen_bool(0.7) {
                    ConversionStatus::Approved
                } else {
                    ConversionStatus::Pending
                };
                let mut duplicate_by: Option<&'static str> = None;
                if intended == Intended::Matched {
                    if fault < 40 {
                        // CAKE claims carry no sale amount (the reference's
                        // record has none), so there is nothing to inflate:
                        // a CAKE claim here stays an honest match.
                        if net != "cake" {
                            intended = Intended::AmountMismatch;
                            claimed = (amount * Decimal::new(125, 2)).round_dp(2);
                        }
                    } else if fault < 70 {
                        intended = Intended::NetworkReversed;
                        status = ConversionStatus::Reversed;
                    } else if fault < 90 && net != "impact" {
                        // Impact has no "rejected" state; the others do.
                        intended = Intended::NetworkRejected;
                        status = ConversionStatus::Rejected;
                    } else if fault < 190 && net != "partnerstack" {
                        // Duplicates among the networks that report click times.
                        let others: Vec<&'static str> = ["impact", "everflow", "cake"]
                            .into_iter()
                            .filter(|n| *n != net)
                            .collect();
                        duplicate_by = Some(others[rng.gen_range(0..others.len())]);
                    }
                }
                let basis = match intended {
                    Intended::Matched => Some(claimed),
                    Intended::AmountMismatch => Some(amount),
                    Intended::PartiallyRefunded => Some(amount - order.refunded()),
                    _ => None,
                };
                claim_seq += 1;
                claims.get_mut(net).unwrap().push(StoryClaim {
                    claim: claim(
                        net,
                        claim_seq,
                        &order,
                        quote_order_id(net, number, &mut rng),
                        &click_id,
                        click_at,
                        pid,
                        pname,
                        claimed,
                        status,
                        created_at,
                    ),
                    intended,
                    basis,
                });
                if let Some(other) = duplicate_by {
                    // The loser clicked (and reports its conversion) a day or
                    // more earlier, so last click picks the first network.
                    let (opid, opname) = partners[other][rng.gen_range(0..partners[other].len())];
                    let early = created_at - Duration::hours(rng.gen_range(26..72));
                    claim_seq += 1;
                    claims.get_mut(other).unwrap().push(StoryClaim {
                        claim: claim(
                            other,
                            claim_seq,
                            &order,
                            quote_order_id(other, number, &mut rng),
                            &format!("{other}-clk-{number}"),
                            early - Duration::minutes(30),
                            opid,
                            opname,
                            amount,
                            ConversionStatus::Approved,
                            early,
                        ),
                        intended: Intended::Duplicate,
                        basis: None,
                    });
                }
            }
            orders.push(order);
        }
        // Claims for orders that never existed.
        if rng.gen_bool(0.5) {
            let net = NETWORKS[rng.gen_range(0..4)];
            let (pid, pname) = partners[net][rng.gen_range(0..partners[net].len())];
            let at = SHOP_TZ
                .from_local_datetime(&day.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap()))
                .earliest()
                .unwrap()
                .with_timezone(&Utc);
            claim_seq += 1;
            let ghost = Order {
                order_id: format!("GHOST-{claim_seq}"),
                ..orders.last().cloned().expect("at least one order a day")
            };
            claims.get_mut(net).unwrap().push(StoryClaim {
                claim: claim(
                    net,
                    claim_seq,
                    &ghost,
                    format!("GHOST-{claim_seq}"),
                    &format!("{net}-ghost-{claim_seq}"),
                    at - Duration::minutes(30),
                    pid,
                    pname,
                    cents(&mut rng, 20, 200),
                    ConversionStatus::Pending,
                    at,
                ),
                intended: Intended::NoOrder,
                basis: None,
            });
        }
    }
    let now = (to_utc_midnight(end)
        + Duration::days(DEMO_RETURN_WINDOW_DAYS.max(14) + DEMO_GRACE_DAYS + 1))
    .max(to_utc_midnight(end));
    Story {
        from,
        to: end,
        orders,
        claims,
        now,
    }
}

fn to_utc_midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

fn utm(source: &str, medium: &str, campaign: &str) -> Utm {
    Utm {
        source: Some(source.into()),
        medium: Some(medium.into()),
        campaign: Some(campaign.into()),
        content: None,
        term: None,
    }
}

fn weighted(rng: &mut StdRng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut pick = rng.gen_range(0..total);
    for (i, w) in weights.iter().enumerate() {
        if pick < *w {
            return i;
        }
        pick -= w;
    }
    weights.len() - 1
}

/// How each network quotes the shop's order: Impact the order name (with
/// whitespace noise), Everflow the numeric id, CAKE the order name,
/// PartnerStack the order number.
fn quote_order_id(net: &str, number: u64, rng: &mut StdRng) -> String {
    match net {
        "impact" if rng.gen_bool(0.2) => format!(" #{number} "),
        "impact" | "cake" => format!("#{number}"),
        "everflow" => shopify_id(number).to_string(),
        _ => number.to_string(),
    }
}

/// The shop's numeric order id for order number `number`.
pub fn shopify_id(number: u64) -> u64 {
    5_000_000 + number
}

/// Campaigns per ad network in the demo (Google, Meta, TikTok).
pub const AD_CAMPAIGNS: [u32; 3] = [3, 3, 2];

/// The ad fakes' id of campaign `c` (they share one id scheme).
pub fn ad_campaign_id(c: u32) -> String {
    crate::fakes::google_ads::wire::campaign_id(c)
}

#[allow(clippy::too_many_arguments)]
fn claim(
    net: &str,
    seq: u64,
    order: &Order,
    quoted_order_id: String,
    click_id: &str,
    clicked_at: DateTime<Utc>,
    partner_id: &str,
    partner_name: &str,
    sale: Decimal,
    status: ConversionStatus,
    occurred_at: DateTime<Utc>,
) -> Conversion {
    let external_id = match net {
        "impact" => format!("3641.{}.{}", 1000 + seq % 97, 180_000 + seq),
        "everflow" => format!("{:032x}", 0x9e6e_4d83_0000_0000u64 + seq),
        "cake" => format!("{}", 770_000 + seq),
        _ => format!("rew_{seq:08}"),
    };
    let _ = order;
    Conversion {
        source: net.into(),
        external_id,
        order_id: Some(quoted_order_id),
        click_id: Some(click_id.into()),
        clicked_at: Some(clicked_at),
        partner_id: partner_id.into(),
        partner_name: Some(partner_name.into()),
        campaign_id: Some("northwind".into()),
        event_type: EventType::Sale,
        occurred_at,
        // CAKE reports no sale amount (connector-apis.md section 3: `paid`
        // and `received`, no order total); reconciliation then takes the
        // order's amount as the basis.
        sale_amount: (net != "cake").then(|| money(sale)),
        commission: Some(money((sale * Decimal::new(10, 2)).round_dp(2))),
        status,
        status_changed_at: Some(occurred_at + Duration::days(1)),
        locked_at: if net == "impact" {
            Some(occurred_at + Duration::days(14))
        } else {
            None
        },
        coupon: None,
        utm: Utm::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn story_is_deterministic_and_covers_every_fault() {
        let end = NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
        let a = generate(7, 30, end);
        let b = generate(7, 30, end);
        assert_eq!(a.orders, b.orders);
        let outcomes = a.expected_outcomes();
        for intended in [
            Intended::Matched,
            Intended::AmountMismatch,
            Intended::Refunded,
            Intended::PartiallyRefunded,
            Intended::Duplicate,
            Intended::NetworkReversed,
            Intended::NoOrder,
        ] {
            let n: usize = outcomes
                .iter()
                .filter(|((_, i), _)| *i == intended)
                .map(|(_, n)| n)
                .sum();
            assert!(n > 0, "story has no {intended:?} claim");
        }
        assert!(a.now > a.to.and_time(NaiveTime::MIN).and_utc() + Duration::days(14));
    }
}
