//! Loopback fake of PartnerStack's vendor API v2 (`/api/v2`).
//!
//! Faithful to what the connector relies on: HTTP Basic auth with the
//! public/private key pair (401 `{"message", "status"}` otherwise);
//! `GET /api/v2/rewards` and `/api/v2/transactions` filtered by
//! `min_created`/`max_created` (epoch milliseconds), newest first, with
//! `limit` 1..=250 and `starting_after`/`ending_before` cursors (mutually
//! exclusive; an unknown cursor key is a 400); answers
//! `{"data": {"items", "has_more"}, "message", "status"}`; amounts in integer
//! cents, a transaction's `amount_usd` converted at fixed rates
//! ([`amount_usd`]: EUR 1.085, GBP 1.27); 429s (with `Retry-After`) on
//! demand.
//!
//! Data comes from a seed ([`Params`]): every reward pays on a transaction;
//! most rewards embed the transaction whole, every fourth only its key (the
//! connector then needs the transactions list). The reference's Reward has
//! no `currency` (only the Transaction has one): the fake puts one on every
//! third reward (an instance may send it) and otherwise only on the
//! transaction. A transaction may be created before its reward
//! ([`Reward::txn_created_at`]), so the transactions list of the reward's
//! window does not have it. [`PartnerStackFake::truth`]
//! is the ground truth of a window. Tests change the world between pulls
//! with [`PartnerStackFake::set_status`], [`PartnerStackFake::set_amount`],
//! [`PartnerStackFake::refund`] (paid → `paid_and_refunded`) and
//! [`PartnerStackFake::corrupt`], and empty one page of a list while it
//! still says more follow with [`PartnerStackFake::empty_page`].
//!
//! API drift (QA35d): [`PartnerStackFake::set_field`] serves any field of a
//! reward, nested ones included (`/transaction/amount` as `""`, a
//! `/partnership/partner_key` as a number), as any value.

use super::affiliate::{self, param, split_url, FakeApi, Shared, Throttle, Truth};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use plugin_api::protocol::HttpRequest;
use plugin_api::rust_decimal::Decimal;
use plugin_api::testing::Reply;
use plugin_api::ConversionStatus;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Params {
    /// RNG seed.
    pub seed: u64,
    /// Number of rewards (one transaction each).
    pub rewards: usize,
    /// Number of partners.
    pub partners: u64,
    /// First creation day (UTC).
    pub from: NaiveDate,
    /// Last creation day (UTC).
    pub to: NaiveDate,
    /// The public key (Basic user name).
    pub public_key: String,
    /// The private key (Basic password).
    pub private_key: String,
}

impl Params {
    /// A small world in October–November 2026.
    pub fn small(seed: u64, rewards: usize) -> Params {
        Params {
            seed,
            rewards,
            partners: 8,
            from: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
            public_key: "pk_live_fake".into(),
            private_key: "sk_live_fake".into(),
        }
    }
}

/// One reward (and its transaction) as the fake stores it.
#[derive(Debug, Clone)]
pub struct Reward {
    pub key: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub partner: u64,
    pub status: &'static str,
    pub payment_status: &'static str,
    /// Commission in cents.
    pub amount: i64,
    /// The currency of the reward's transaction (and commission).
    pub currency: &'static str,
    /// Also send `currency` on the reward itself (not in the reference's
    /// Reward); otherwise it is only on the transaction.
    pub currency_on_reward: bool,
    pub txn_key: String,
    /// Sale in cents.
    pub txn_amount: i64,
    pub embed_txn: bool,
    /// When the transaction was created, if not with the reward.
    pub txn_created_at: Option<DateTime<Utc>>,
}

/// The fake's state.
#[derive(Debug)]
pub struct PartnerStackFake {
    params: Params,
    rewards: Vec<Reward>,
    /// The clock changes are stamped with.
    pub now: DateTime<Utc>,
    /// 429 injection for list requests.
    pub throttle: Throttle,
    /// `Retry-After` seconds sent with a 429.
    pub retry_after_secs: u64,
    corrupt: Option<(String, &'static str)>,
    /// `(reward key, JSON pointer, value)` served instead of what the
    /// reward has ([`PartnerStackFake::set_field`]).
    fields: Vec<(String, String, Value)>,
    /// List requests answered so far: rewards, transactions (429s not
    /// counted).
    served: [u64; 2],
    /// `(resource index, request number)` of the list answers to empty
    /// ([`PartnerStackFake::empty_page`]).
    empty: Vec<(usize, u64)>,
}

/// The index of a list resource in [`PartnerStackFake`]'s request counts.
fn resource_index(rewards: bool) -> usize {
    usize::from(!rewards)
}

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

fn cents(c: i64) -> Decimal {
    Decimal::new(c, 2)
}

/// The fake's rates to USD (fixed: the fake has no dates of rates).
const USD_RATES: &[(&str, i64)] = &[("USD", 10_000), ("EUR", 10_850), ("GBP", 12_700)];

/// `cents` of `currency` in US cents, as PartnerStack's `amount_usd` (REF:
/// transactions carry `amount` in their own currency plus `amount_usd`);
/// QA20 F4: the fake sent `amount` unchanged for EUR transactions.
pub fn amount_usd(cents: i64, currency: &str) -> i64 {
    let rate = USD_RATES
        .iter()
        .find(|(c, _)| *c == currency)
        .map_or(10_000, |(_, r)| *r);
    (Decimal::from(cents) * Decimal::new(rate, 4))
        .round()
        .try_into()
        .unwrap_or(i64::MAX)
}

impl PartnerStackFake {
    /// A fake serving exactly these rewards (the demo's story).
    pub fn from_rewards(params: Params, rewards: Vec<Reward>) -> PartnerStackFake {
        let mut fake = PartnerStackFake::new(Params {
            rewards: 0,
            ..params
        });
        fake.rewards = rewards;
        fake
    }

    /// Generates the world.
    pub fn new(params: Params) -> PartnerStackFake {
        let mut rng = rand::rngs::StdRng::seed_from_u64(params.seed);
        let span = (day_start(params.to) + Duration::days(1) - day_start(params.from))
            .num_milliseconds()
            .max(1);
        let statuses = ["new", "approved", "approved", "declined", "hold", "paid"];
        let rewards = (0..params.rewards)
            .map(|i| {
                let created_at =
                    day_start(params.from) + Duration::milliseconds(rng.gen_range(0..span));
                let txn_amount = rng.gen_range(1_000..200_000);
                Reward {
                    key: format!("rew_{:06}{}", i, params.seed % 100),
                    created_at,
                    updated_at: created_at + Duration::minutes(1),
                    partner: rng.gen_range(0..params.partners),
                    status: statuses[rng.gen_range(0..statuses.len())],
                    payment_status: "available",
                    amount: txn_amount * rng.gen_range(5..25) / 100,
                    currency: if i % 9 == 8 { "EUR" } else { "USD" },
                    currency_on_reward: i % 3 == 0,
                    txn_key: format!("txn_{:06}", i),
                    txn_amount,
                    embed_txn: i % 4 != 3,
                    txn_created_at: None,
                }
            })
            .collect();
        PartnerStackFake {
            now: day_start(params.to) + Duration::hours(22),
            params,
            rewards,
            throttle: Throttle::default(),
            retry_after_secs: 1,
            corrupt: None,
            fields: Vec::new(),
            served: [0; 2],
            empty: Vec::new(),
        }
    }

    /// All rewards.
    pub fn rewards(&self) -> &[Reward] {
        &self.rewards
    }

    /// All rewards, to change what the fake serves (e.g. a transaction's
    /// creation time); unlike the setters, this stamps no `updated_at`.
    pub fn rewards_mut(&mut self) -> &mut [Reward] {
        &mut self.rewards
    }

    /// The canonical status, as the connector documents it.
    pub fn canonical(r: &Reward) -> ConversionStatus {
        if r.payment_status == "paid_and_refunded" {
            return ConversionStatus::Reversed;
        }
        match r.status {
            "approved" | "paid" => ConversionStatus::Approved,
            "declined" => ConversionStatus::Rejected,
            _ => ConversionStatus::Pending,
        }
    }

    /// Ground truth of the rewards created in the UTC days `from..=to`.
    pub fn truth(&self, from: NaiveDate, to: NaiveDate) -> Truth {
        let (s, e) = (day_start(from), day_start(to) + Duration::days(1));
        let mut t = Truth::default();
        for r in self
            .rewards
            .iter()
            .filter(|r| r.created_at >= s && r.created_at < e)
        {
            t.add(
                &format!("part_{}", r.partner),
                Self::canonical(r),
                Some(cents(r.amount)),
                Some(cents(r.txn_amount)),
            );
        }
        t
    }

    fn reward_mut(&mut self, key: &str) -> &mut Reward {
        let now = self.now;
        let r = self
            .rewards
            .iter_mut()
            .find(|r| r.key == key)
            .unwrap_or_else(|| panic!("no reward {key}"));
        r.updated_at = now;
        r
    }

    /// Sets `reward_status` (`new`, `approved`, `declined`, `hold`, `paid`).
    pub fn set_status(&mut self, key: &str, status: &'static str) {
        self.reward_mut(key).status = status;
    }

    /// Sets the reward amount (cents).
    pub fn set_amount(&mut self, key: &str, cents: i64) {
        self.reward_mut(key).amount = cents;
    }

    /// Pays and then refunds a reward: a reversal after approval.
    pub fn refund(&mut self, key: &str) {
        let r = self.reward_mut(key);
        r.status = "paid";
        r.payment_status = "paid_and_refunded";
    }

    /// Serves `field` of reward `key` as garbage from now on.
    pub fn corrupt(&mut self, key: &str, field: &'static str) {
        self.corrupt = Some((key.to_owned(), field));
    }

    /// Serves the field at `pointer` (a JSON pointer into the reward as
    /// rendered: `/transaction/amount`, `/partnership/partner_key`) of
    /// reward `key` as `value` from now on, replacing an earlier value set
    /// there; the field's object must be in the answer (a reward that
    /// embeds its transaction whole, for `/transaction/...`). The world
    /// itself is unchanged ([`PartnerStackFake::truth`]).
    pub fn set_field(&mut self, key: &str, pointer: &str, value: Value) {
        assert!(self.rewards.iter().any(|r| r.key == key), "no reward {key}");
        self.fields.retain(|(k, p, _)| !(k == key && p == pointer));
        self.fields
            .push((key.to_owned(), pointer.to_owned(), value));
    }

    /// Answers the list request of `resource` (`rewards` or
    /// `transactions`) that comes after `n` more of them (`n = 0`: the next
    /// one) with no items, yet `has_more` as the full page would have said:
    /// a page emptied on the way (a proxy or cache) while paging goes on
    /// (QA34-D H1).
    pub fn empty_page(&mut self, resource: &str, n: u64) {
        let i = match resource {
            "rewards" => resource_index(true),
            "transactions" => resource_index(false),
            other => panic!("no list {other}"),
        };
        self.empty.push((i, self.served[i] + n));
    }

    fn txn_created_at(r: &Reward) -> DateTime<Utc> {
        r.txn_created_at.unwrap_or(r.created_at)
    }

    fn transaction(&self, r: &Reward) -> Value {
        let at = Self::txn_created_at(r).timestamp_millis();
        json!({
            "key": r.txn_key, "amount": r.txn_amount, "amount_usd": amount_usd(r.txn_amount, r.currency),
            "currency": r.currency, "approved": true, "category_key": "cat_1",
            "product_key": "prod_1", "customer_key": format!("cust_{}", r.txn_key),
            "created_at": at, "updated_at": at,
        })
    }

    fn render(&self, r: &Reward) -> Value {
        let mut v = json!({
            "key": r.key,
            "amount": r.amount,
            "reward_status": r.status,
            "payment_status": r.payment_status,
            "description": "20% of payment",
            "created_at": r.created_at.timestamp_millis(),
            "updated_at": r.updated_at.timestamp_millis(),
            "partnership": {"key": format!("pshp_{}", r.partner), "partner_key": format!("part_{}", r.partner),
                            "first_name": "Partner", "last_name": r.partner.to_string(),
                            "email": format!("p{}@partners.test", r.partner)},
            "customer": {"key": format!("cust_{}", r.txn_key), "partner_key": format!("part_{}", r.partner)},
            "transaction": if r.embed_txn { self.transaction(r) } else { json!({"key": r.txn_key}) },
            "offer": {"key": "offr_main"},
            "trigger": {"key": "trg_pay", "name": "Payment"},
            "action": null,
            "invoice": null,
        });
        if r.currency_on_reward {
            v["currency"] = json!(r.currency);
        }
        if let Some((key, field)) = &self.corrupt {
            if *key == r.key {
                v[*field] = json!("12.34");
            }
        }
        for (key, pointer, value) in &self.fields {
            if *key == r.key {
                let (parent, field) = pointer.rsplit_once('/').expect("a JSON pointer");
                let at = v
                    .pointer_mut(parent)
                    .and_then(Value::as_object_mut)
                    .unwrap_or_else(|| panic!("reward {key} has no object at {parent:?}"));
                at.insert(field.to_owned(), value.clone());
            }
        }
        v
    }

    fn error(status: u16, message: &str) -> Reply {
        Reply::json(status, &json!({"message": message, "status": status}))
    }

    fn list(&mut self, q: &[(String, String)], rewards: bool) -> Reply {
        let i = resource_index(rewards);
        let number = self.served[i];
        self.served[i] += 1;
        let empty = self.empty.contains(&(i, number));
        let ms = |k: &str| -> Result<Option<DateTime<Utc>>, Reply> {
            match param(q, k) {
                None => Ok(None),
                Some(v) => v
                    .parse::<i64>()
                    .ok()
                    .and_then(DateTime::from_timestamp_millis)
                    .map(Some)
                    .ok_or_else(|| {
                        Self::error(
                            400,
                            &format!("{k} must be an epoch timestamp in milliseconds"),
                        )
                    }),
            }
        };
        let (min, max) = match (ms("min_created"), ms("max_created")) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(r), _) | (_, Err(r)) => return r,
        };
        let limit = match param(q, "limit").map(str::parse::<usize>) {
            None => 10,
            Some(Ok(n)) if (1..=250).contains(&n) => n,
            Some(_) => return Self::error(400, "limit must be between 1 and 250"),
        };
        let (after, before) = (param(q, "starting_after"), param(q, "ending_before"));
        if after.is_some() && before.is_some() {
            return Self::error(
                400,
                "starting_after and ending_before are mutually exclusive",
            );
        }
        let mut rows: Vec<&Reward> = self
            .rewards
            .iter()
            .filter(|r| {
                let at = if rewards {
                    r.created_at
                } else {
                    Self::txn_created_at(r)
                };
                min.is_none_or(|m| at >= m) && max.is_none_or(|m| at <= m)
            })
            .collect();
        let at = |r: &Reward| {
            if rewards {
                r.created_at
            } else {
                Self::txn_created_at(r)
            }
        };
        rows.sort_by(|a, b| at(b).cmp(&at(a)).then(b.key.cmp(&a.key)));
        let key_of = |r: &Reward| {
            if rewards {
                r.key.clone()
            } else {
                r.txn_key.clone()
            }
        };
        let start = match after {
            None => 0,
            Some(k) => match rows.iter().position(|r| key_of(r) == k) {
                Some(p) => p + 1,
                None => return Self::error(400, &format!("starting_after: no item with key {k}")),
            },
        };
        let items: Vec<Value> = rows
            .iter()
            .skip(start)
            .take(limit)
            .map(|r| {
                if rewards {
                    self.render(r)
                } else {
                    self.transaction(r)
                }
            })
            .collect();
        let has_more = start + items.len() < rows.len();
        let items = if empty { Vec::new() } else { items };
        Reply::json(
            200,
            &json!({"data": {"has_more": has_more, "items": items},
                    "message": if rewards { "Rewards returned successfully" } else { "Transactions returned successfully" },
                    "status": 200}),
        )
    }
}

impl FakeApi for PartnerStackFake {
    fn handle(&mut self, req: &HttpRequest) -> Reply {
        let (path, q) = split_url(&req.url);
        let expected = affiliate::basic_auth(&self.params.public_key, &self.params.private_key);
        if req.headers.get("authorization") != Some(&expected) {
            return Self::error(401, "Authentication credentials were missing or incorrect");
        }
        if req.method != "GET" {
            return Self::error(405, "Method not allowed");
        }
        let rewards = match path.as_str() {
            "/api/v2/rewards" => true,
            "/api/v2/transactions" => false,
            _ => return Self::error(404, "Not found"),
        };
        if self.throttle.refuse() {
            return affiliate::json(
                429,
                &json!({"message": "Too many requests", "status": 429}),
                &[("retry-after", self.retry_after_secs.to_string())],
            );
        }
        self.list(&q, rewards)
    }
}

/// Serves the fake over HTTP.
pub fn router(state: Shared<PartnerStackFake>) -> axum::Router {
    affiliate::router(state)
}
