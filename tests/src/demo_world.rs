//! The demo's world: the [`crate::story`] served by every platform's loopback
//! fake, each in its own native shape.
//!
//! Orders go to the fake Shopify; each network's claims to its fake (Impact
//! actions, Everflow conversions, CAKE event conversions, PartnerStack
//! rewards); ad spend comes from the ad fakes' own seeded universes, whose
//! campaign ids the story's orders carry in their UTM tags. Everflow serves
//! the story's rejections both ways it reports them (scrubbed at tracking
//! time, and invalid), and Google restates one day between two pulls. (No
//! fake throttles in the demo: 429s are exercised by the tests.)

use crate::fakes::server::FakeServer;
use crate::fakes::{
    affiliate, cake, everflow, google_ads, impact, meta_ads, partnerstack, shopify, tiktok_ads,
};
use crate::story::{self, Story, AD_CAMPAIGNS};
use chrono::{Duration, NaiveDate, NaiveTime};
use plugin_api::{Conversion, ConversionStatus};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Credentials every demo fake accepts (they are only ever used on loopback).
pub mod creds {
    /// Shopify access token.
    pub const SHOPIFY_TOKEN: &str = "shpat_demo_token";
    /// Impact account SID (not secret) and auth token.
    pub const IMPACT_SID: &str = "IRdemoSID";
    /// Impact auth token.
    pub const IMPACT_TOKEN: &str = "demo-impact-token";
    /// Everflow network API key.
    pub const EVERFLOW_KEY: &str = "demo-everflow-key";
    /// CAKE API key.
    pub const CAKE_KEY: &str = "demo-cake-key";
    /// PartnerStack public key.
    pub const PARTNERSTACK_PUBLIC: &str = "pk_demo";
    /// PartnerStack private key.
    pub const PARTNERSTACK_PRIVATE: &str = "sk_demo";
    /// Meta access token.
    pub const META_TOKEN: &str = "demo-meta-token";
    /// TikTok access token.
    pub const TIKTOK_TOKEN: &str = "demo-tiktok-token";
}

/// The Impact campaign (program) id of the demo.
pub const IMPACT_CAMPAIGN: u64 = 4242;
/// Ad groups per campaign in the ad fakes.
pub const AD_GROUPS: u32 = 2;

/// Fakes of the demo, running on loopback.
#[derive(Debug)]
pub struct World {
    /// The story the fakes serve.
    pub story: Story,
    /// Base URL per platform (`shopify`, `impact`, ..., `google_ads`, ...).
    pub urls: BTreeMap<&'static str, String>,
    /// The Google fake (for its credentials and ground truth).
    pub google: Arc<google_ads::GoogleFake>,
    /// The Meta fake.
    pub meta: Arc<meta_ads::MetaFake>,
    /// The TikTok fake.
    pub tiktok: Arc<tiktok_ads::TiktokFake>,
    /// The affiliate fakes, for [`World::throttle`].
    impact: affiliate::Shared<impact::ImpactFake>,
    everflow: affiliate::Shared<everflow::EverflowFake>,
    cake: affiliate::Shared<cake::CakeFake>,
    partnerstack: affiliate::Shared<partnerstack::PartnerStackFake>,
    servers: Vec<FakeServer>,
}

impl World {
    /// Builds the story and starts every fake.
    pub fn start(seed: u64, days: u32, end: NaiveDate) -> World {
        let story = story::generate(seed, days, end);
        let mut urls = BTreeMap::new();
        let mut servers = Vec::new();
        let mut serve = |name: &'static str, router: axum::Router| {
            let s = FakeServer::start(router);
            urls.insert(name, s.base_url.clone());
            servers.push(s);
        };
        serve("shopify", shopify::router(shop(&story)));
        let impact_state = affiliate::shared(impact_fake(&story));
        serve("impact", impact::router(impact_state.clone()));
        let everflow_state = affiliate::shared(everflow_fake(&story));
        serve("everflow", everflow::router(everflow_state.clone()));
        let cake_state = affiliate::shared(cake_fake(&story));
        serve("cake", cake::router(cake_state.clone()));
        let partnerstack_state = affiliate::shared(partnerstack_fake(&story));
        serve(
            "partnerstack",
            partnerstack::router(partnerstack_state.clone()),
        );

        let google = google_ads::GoogleFake::new(
            google_ads::Config {
                currency: "USD".into(),
                timezone: "America/New_York".into(),
                ..google_ads::Config::default()
            },
            google_ads::wire::Universe::new(seed ^ 0x6001, AD_CAMPAIGNS[0], AD_GROUPS),
        );
        let meta = meta_ads::MetaFake::new(
            meta_ads::Config {
                access_token: creds::META_TOKEN.into(),
                currency: "USD".into(),
                timezone: "Europe/London".into(),
                ..meta_ads::Config::default()
            },
            google_ads::wire::Universe::new(seed ^ 0x3e7a, AD_CAMPAIGNS[1], AD_GROUPS),
        );
        let tiktok = tiktok_ads::TiktokFake::new(
            tiktok_ads::Config {
                access_token: creds::TIKTOK_TOKEN.into(),
                currency: "USD".into(),
                timezone: "UTC".into(),
                ..tiktok_ads::Config::default()
            },
            google_ads::wire::Universe::new(seed ^ 0x7171, AD_CAMPAIGNS[2], AD_GROUPS),
        );
        serve("google_ads", google_ads::router(google.clone()));
        serve("meta_ads", meta_ads::router(meta.clone()));
        serve("tiktok_ads", tiktok_ads::router(tiktok.clone()));
        World {
            story,
            urls,
            google,
            meta,
            tiktok,
            impact: impact_state,
            everflow: everflow_state,
            cake: cake_state,
            partnerstack: partnerstack_state,
            servers,
        }
    }

    /// Restates the story's second-to-last day on Google (figures change on
    /// the next pull).
    pub fn restate_google(&self) -> NaiveDate {
        let day = self.story.to - Duration::days(1);
        self.google.restate(day);
        day
    }

    /// Restates the story's second-to-last day (a day of the platform's
    /// account timezone) on an ad fake: `google_ads`, `meta_ads` or
    /// `tiktok_ads`; `None` for another name. Each call is one more
    /// revision: the figures of that day change on the next pull.
    pub fn restate(&self, platform: &str) -> Option<NaiveDate> {
        let day = self.story.to - Duration::days(1);
        match platform {
            "google_ads" => self.google.restate(day),
            "meta_ads" => self.meta.restate(day),
            "tiktok_ads" => self.tiktok.restate(day),
            _ => return None,
        }
        Some(day)
    }

    /// Makes a fake answer its next `count` data requests with the
    /// platform's rate-limit error, to rehearse throttling (soak QA18 F1):
    /// the affiliate fakes (`impact`, `everflow`, `cake`, `partnerstack`)
    /// a 429, `google_ads` its 429 `RESOURCE_EXHAUSTED`, `meta_ads` its
    /// throttling error codes (80000, 17, 613, 4), `tiktok_ads` code 40100;
    /// `false` for another name.
    pub fn throttle(&self, platform: &str, count: u32) -> bool {
        let throttle = affiliate::Throttle::new(0, count);
        match platform {
            "google_ads" => self.google.throttle.set(count.into()),
            "meta_ads" => self.meta.throttle.set(count.into()),
            "tiktok_ads" => self.tiktok.throttle.set(count.into()),
            "impact" => lock(&self.impact).throttle = throttle,
            "everflow" => lock(&self.everflow).throttle = throttle,
            "cake" => lock(&self.cake).throttle = throttle,
            "partnerstack" => lock(&self.partnerstack).throttle = throttle,
            _ => return false,
        }
        true
    }

    /// Number of running fake servers.
    pub fn servers(&self) -> usize {
        self.servers.len()
    }
}

/// A fake's state, also after a handler panicked holding it.
fn lock<F>(f: &affiliate::Shared<F>) -> std::sync::MutexGuard<'_, F> {
    f.lock().unwrap_or_else(|p| p.into_inner())
}

fn number_of(order_id: &str) -> u64 {
    order_id
        .parse::<u64>()
        .unwrap_or(0)
        .saturating_sub(story::shopify_id(0))
}

fn cents(d: Decimal) -> i64 {
    (d * Decimal::from(100)).round().try_into().unwrap_or(0)
}

/// The story's orders as the fake Shopify serves them.
pub fn shop(story: &Story) -> shopify::ShopifyFake {
    let mut next_refund = 900_000_000u64;
    let orders = story
        .orders
        .iter()
        .map(|o| {
            let number = number_of(&o.order_id);
            let click = o.click_ids.first().cloned();
            let src = o.utm.source.clone();
            let affiliate = o.utm.medium.as_deref() == Some("affiliate");
            let mut overrides = Vec::new();
            if !affiliate {
                if let (Some(s), Some(c)) = (&o.utm.source, &click) {
                    let param = c.split('-').next().unwrap_or("gclid");
                    overrides.push((
                        "landing_site".to_owned(),
                        serde_json::Value::from(format!(
                            "/products/p{}?utm_source={s}&utm_medium={}&utm_campaign={}&{param}={c}",
                            number % 97,
                            o.utm.medium.as_deref().unwrap_or(""),
                            o.utm.campaign.as_deref().unwrap_or(""),
                        )),
                    ));
                }
            }
            let refunds = o
                .refunds
                .iter()
                .map(|r| {
                    next_refund += 10;
                    shopify::FakeRefund {
                        id: next_refund,
                        at: r.at,
                        net: r.amount.amount,
                        tax: (r.amount.amount * Decimal::new(8, 2)).round_dp(2),
                    }
                })
                .collect::<Vec<_>>();
            shopify::FakeOrder {
                id: story::shopify_id(number),
                number,
                created_at: o.created_at,
                updated_at: refunds.last().map(|r| r.at).unwrap_or(o.created_at),
                net: o.amount.amount,
                items_tax: (o.amount.amount * Decimal::new(8, 2)).round_dp(2),
                shipping: Decimal::new(500, 2),
                shipping_tax: Decimal::ZERO,
                taxes_included: false,
                coupon: o.coupon.clone(),
                customer: o
                    .customer_id
                    .as_deref()
                    .and_then(|c| c.trim_start_matches("cust-").parse::<u64>().ok())
                    .map(|id| (id, if o.new_customer == Some(true) { 1 } else { 3 })),
                landing_click: if affiliate && src.as_deref() == Some("impact") { click.clone() } else { None },
                note_click: if affiliate && src.as_deref() == Some("everflow") { click.clone() } else { None },
                utm_source: if affiliate { src } else { None },
                base_financial: "paid",
                fulfilled: true,
                cancelled_at: None,
                refunds,
                overrides,
            }
        })
        .collect();
    shopify::ShopifyFake::from_orders(
        shopify::ShopifyConfig {
            seed: 1,
            orders: 0,
            token: creds::SHOPIFY_TOKEN.into(),
            start: story.from.and_time(NaiveTime::MIN).and_utc(),
            days: 1,
            currency: "USD".into(),
        },
        orders,
    )
}

fn claims<'a>(story: &'a Story, net: &str) -> impl Iterator<Item = &'a Conversion> {
    story.claims[net].iter().map(|c| &c.claim)
}

fn sale(c: &Conversion) -> Decimal {
    c.sale_amount.as_ref().map(|m| m.amount).unwrap_or_default()
}

fn commission(c: &Conversion) -> Decimal {
    c.commission.as_ref().map(|m| m.amount).unwrap_or_default()
}

fn numeric(id: &str) -> u64 {
    id.trim_start_matches("part_").parse().unwrap_or(0)
}

/// Impact actions.
pub fn impact_fake(story: &Story) -> impact::ImpactFake {
    let actions = claims(story, "impact")
        .map(|c| impact::Action {
            id: c.external_id.clone(),
            campaign_id: IMPACT_CAMPAIGN,
            partner_id: numeric(&c.partner_id),
            tracker: "Online Sale",
            state: match c.status {
                ConversionStatus::Pending => "PENDING",
                ConversionStatus::Approved => "APPROVED",
                ConversionStatus::Reversed | ConversionStatus::Rejected => "REVERSED",
            },
            amount: sale(c),
            payout: commission(c),
            currency: "USD",
            event_date: c.occurred_at,
            locking_date: c.locked_at.unwrap_or(c.occurred_at + Duration::days(14)),
            oid: c.order_id.clone().unwrap_or_default(),
            promo: c.coupon.clone(),
        })
        .collect();
    impact::ImpactFake::from_actions(
        impact::Params {
            seed: 1,
            actions: 0,
            campaigns: vec![IMPACT_CAMPAIGN],
            partners: 3,
            from: story.from,
            to: story.to,
            account_sid: creds::IMPACT_SID.into(),
            auth_token: creds::IMPACT_TOKEN.into(),
        },
        actions,
    )
}

/// Everflow conversions.
///
/// A claim the story has the network reject (never accepted) is served the
/// two ways Everflow reports one, alternately: scrubbed at tracking time
/// (`rejected` with `is_scrub`, the first of them) and `invalid`. A manual
/// `rejected` without the flag is a reversal.
pub fn everflow_fake(story: &Story) -> everflow::EverflowFake {
    let mut rejections = 0usize;
    let rows = claims(story, "everflow")
        .map(|c| {
            let (status, is_scrub) = match c.status {
                ConversionStatus::Pending => ("pending", false),
                ConversionStatus::Approved => ("approved", false),
                ConversionStatus::Reversed => ("rejected", false),
                ConversionStatus::Rejected => {
                    rejections += 1;
                    if rejections % 2 == 1 {
                        ("rejected", true)
                    } else {
                        ("invalid", false)
                    }
                }
            };
            everflow::Row {
                id: c.external_id.clone(),
                at: c.occurred_at,
                affiliate: numeric(&c.partner_id),
                offer: 10,
                status,
                is_scrub,
                payout: commission(c),
                revenue: (commission(c) * Decimal::new(15, 1)).round_dp(2),
                sale_amount: sale(c),
                currency: "USD",
                order_id: c.order_id.clone().unwrap_or_default(),
                click_id: c.click_id.clone().unwrap_or_default(),
                clicked_at: c.clicked_at.unwrap_or(c.occurred_at),
                event: None,
            }
        })
        .collect();
    everflow::EverflowFake::from_rows(
        everflow::Params {
            seed: 1,
            conversions: 0,
            affiliates: 2,
            from: story.from,
            to: story.to,
            api_key: creds::EVERFLOW_KEY.into(),
        },
        rows,
    )
}

/// CAKE event conversions.
pub fn cake_fake(story: &Story) -> cake::CakeFake {
    let rows = claims(story, "cake")
        .map(|c| cake::Row {
            id: c.external_id.parse().unwrap_or(0),
            at: c.occurred_at,
            last_updated: c.status_changed_at.unwrap_or(c.occurred_at),
            affiliate: numeric(&c.partner_id),
            offer: 30,
            disposition: Some(match c.status {
                ConversionStatus::Pending => "Pending",
                ConversionStatus::Approved => "Approved",
                ConversionStatus::Reversed => "Returned",
                ConversionStatus::Rejected => "Rejected",
            }),
            paid: commission(c),
            received: (commission(c) * Decimal::new(13, 1)).round_dp(2),
            // Never sent: CAKE's record has no sale amount (the story's
            // CAKE claims have none either).
            order_total: sale(c),
            currency_id: 1,
            transaction_id: c.order_id.clone(),
        })
        .collect();
    cake::CakeFake::from_rows(
        cake::Params {
            seed: 1,
            conversions: 0,
            affiliates: 2,
            from: story.from,
            to: story.to,
            api_key: creds::CAKE_KEY.into(),
        },
        rows,
    )
}

/// PartnerStack rewards.
pub fn partnerstack_fake(story: &Story) -> partnerstack::PartnerStackFake {
    let rewards = claims(story, "partnerstack")
        .map(|c| {
            let (status, payment_status) = match c.status {
                ConversionStatus::Pending => ("pending", "available"),
                ConversionStatus::Approved => ("approved", "available"),
                ConversionStatus::Reversed => ("paid", "paid_and_refunded"),
                ConversionStatus::Rejected => ("declined", "available"),
            };
            partnerstack::Reward {
                key: c.external_id.clone(),
                created_at: c.occurred_at,
                updated_at: c.status_changed_at.unwrap_or(c.occurred_at),
                partner: numeric(&c.partner_id),
                status,
                payment_status,
                amount: cents(commission(c)),
                currency: "USD",
                currency_on_reward: false,
                txn_key: c.order_id.clone().unwrap_or_default(),
                txn_amount: cents(sale(c)),
                embed_txn: true,
                txn_created_at: None,
            }
        })
        .collect();
    partnerstack::PartnerStackFake::from_rewards(
        partnerstack::Params {
            seed: 1,
            rewards: 0,
            partners: 2,
            from: story.from,
            to: story.to,
            public_key: creds::PARTNERSTACK_PUBLIC.into(),
            private_key: creds::PARTNERSTACK_PRIVATE.into(),
        },
        rewards,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo world served every Everflow rejection as `invalid`, never as
    /// a scrub (`rejected` with `is_scrub`), a case the reference documents.
    /// Now both, and each row's canonical status (as the connector maps it)
    /// is still the story's.
    #[test]
    fn everflow_serves_the_storys_rejections_as_scrubs_and_as_invalid() {
        for (seed, days, end) in [(7, 30, (2026, 10, 20)), (42, 45, (2026, 11, 8))] {
            let end = NaiveDate::from_ymd_opt(end.0, end.1, end.2).unwrap();
            let story = story::generate(seed, days, end);
            let fake = everflow_fake(&story);
            let rows = fake.rows();
            assert!(
                rows.iter().any(|r| r.is_scrub && r.status == "rejected"),
                "seed {seed}"
            );
            assert!(rows.iter().any(|r| r.status == "invalid"), "seed {seed}");
            assert!(
                rows.iter().all(|r| !r.is_scrub || r.status == "rejected"),
                "only a rejected conversion is scrubbed"
            );
            for (row, claim) in rows.iter().zip(claims(&story, "everflow")) {
                assert_eq!(row.id, claim.external_id);
                assert_eq!(
                    everflow::EverflowFake::canonical(row),
                    claim.status,
                    "{}",
                    row.id
                );
            }
        }
    }
}
