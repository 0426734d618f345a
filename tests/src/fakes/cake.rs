//! Loopback fake of a CAKE admin instance's classic `.asmx` API.
//!
//! Faithful to what the connector relies on: `api_key` in the query string
//! (or the body), a refused key answered HTTP 200 with `{"d": {"success":
//! false, "message": ...}}`; POST with a JSON body answers `{"d": {...}}`
//! while GET answers XML; every parameter of a method must be present or
//! ASP.NET answers 500 naming it; `EventConversions` filters on the
//! conversion date (`end_date` excluded), `EventConversionChanges` on
//! `last_updated` since `changes_since` (a date only: `YYYY-mm-dd` or
//! `dd-mm-YYYY`), every date read in the instance's time zone
//! ([`CakeFake::timezone`]); `EventConversions` paged by `start_at_row`
//! (counting rows from 1, `0` read as 1; from 0 with
//! [`CakeFake::zero_based_rows`]) + `row_limit` (`0`: every row, as CAKE
//! clients send by default) with the total in `row_count`;
//! `EventConversionChanges`, for which the reference documents no paging
//! and no `row_count`, answers **without** `row_count`, and pages by
//! `start_at_row`/`row_limit` when they are sent (neither is required) or,
//! with [`CakeFake::changes_ignore_paging`], answers the whole set whatever
//! is sent; `/Date(ms)/` dates, or ISO date-times in instance time with or
//! without an offset ([`CakeFake::dates`]); numeric `currency_id`s resolved
//! by `/api/1/get.asmx/Currencies`; 429s on demand.
//!
//! Money as the reference lists it: `paid{currency_id, amount}` (affiliate
//! payout) and `received{currency_id, amount}` (advertiser revenue), and no
//! sale amount. An `order_total` field (not in the reference) is sent only
//! when a test sets [`CakeFake::send_order_total`].
//!
//! Order: `EventConversions` honours its documented `sort_field`
//! (`event_conversion_id`, `event_conversion_date`) and `sort_descending`.
//! `EventConversionChanges` documents no sort: the fake accepts and ignores
//! those parameters and answers in change order (`last_updated`, then id).
//! CAKE does not say what order it uses; change order is the pessimistic
//! choice, in which a conversion changed again moves to the end of the set.
//!
//! Data comes from a seed ([`Params`]); [`CakeFake::truth`] is the ground
//! truth of a window. Tests restate between pulls with
//! [`CakeFake::set_disposition`], [`CakeFake::set_paid`],
//! [`CakeFake::reverse`] (a `Returned` disposition) and [`CakeFake::corrupt`],
//! take a conversion out of every report with [`CakeFake::remove`],
//! change the result set *between two pages* with [`CakeFake::after_reports`],
//! and empty one answer while its `row_count` says rows remain with
//! [`CakeFake::empty_report`], and serve API drift (a renamed key, an id as
//! a float, an amount sent empty or as a number) with [`CakeFake::drift`]
//! (QA35d).

use super::affiliate::{self, param, split_url, FakeApi, Shared, Throttle, Truth};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use plugin_api::protocol::HttpRequest;
use plugin_api::rust_decimal::prelude::ToPrimitive;
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
    /// Number of conversions.
    pub conversions: usize,
    /// Number of affiliates.
    pub affiliates: u64,
    /// First conversion day (UTC).
    pub from: NaiveDate,
    /// Last conversion day (UTC).
    pub to: NaiveDate,
    /// The API key accepted.
    pub api_key: String,
}

impl Params {
    /// A small world in November 2026.
    pub fn small(seed: u64, conversions: usize) -> Params {
        Params {
            seed,
            conversions,
            affiliates: 6,
            from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
            api_key: "cake-key".into(),
        }
    }
}

/// How the fake writes date-times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DateStyle {
    /// `/Date(1425337200000)/` (epoch milliseconds), the reference's reading.
    #[default]
    AspNet,
    /// ISO text in the instance's time zone without an offset, as CAKE's
    /// `#sourcetime#` token shows (`2013-11-12T13:04:27.5670000`): with a
    /// fraction on even ids, without on odd ones.
    IsoLocal,
    /// ISO text in the instance's time zone with its offset
    /// (`2015-03-02T13:04:27.567-05:00`).
    IsoOffset,
}

/// One conversion as the fake stores it.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: u64,
    pub at: DateTime<Utc>,
    pub last_updated: DateTime<Utc>,
    pub affiliate: u64,
    pub offer: u64,
    /// Disposition type name, `None` for none.
    pub disposition: Option<&'static str>,
    pub paid: Decimal,
    pub received: Decimal,
    /// A sale amount the fake keeps for tests that opt into sending it
    /// ([`CakeFake::send_order_total`]); CAKE's record has none.
    pub order_total: Decimal,
    /// CAKE currency id (1 USD, 2 EUR, 3 GBP).
    pub currency_id: u32,
    /// The advertiser's order id (`transaction_id`); `T-<id>` when absent.
    pub transaction_id: Option<String>,
}

/// Ways CAKE's answers could drift from the reference, served on demand so
/// that tests see the connector notice them (QA35d). The default serves
/// none.
#[derive(Debug, Clone, Default)]
pub struct Drift {
    /// `(method, key)`: that method's rows (`EventConversions`,
    /// `EventConversionChanges`) under `key` instead of `event_conversions`.
    pub records_key: Option<(&'static str, &'static str)>,
    /// The affiliate's and the offer's ids as JSON floats (`201.0`) instead
    /// of integers.
    pub float_ids: bool,
    /// Fields of one conversion sent as another value: `(event conversion
    /// id, dotted path, value)`, e.g. `paid.amount` as `""`, or `paid` as a
    /// number. A path that does not exist is added.
    pub fields: Vec<(u64, &'static str, Value)>,
}

/// The fake's state.
#[derive(Debug)]
pub struct CakeFake {
    params: Params,
    rows: Vec<Row>,
    /// The clock restatements are stamped with.
    pub now: DateTime<Utc>,
    /// 429 injection for report requests.
    pub throttle: Throttle,
    /// `Retry-After` seconds sent with a 429.
    pub retry_after_secs: u64,
    /// The instance's time zone: report dates and `changes_since` are read
    /// in it (UTC unless a test sets another).
    pub timezone: chrono_tz::Tz,
    /// How date-times are written (`/Date(ms)/` unless a test sets another).
    pub dates: DateStyle,
    /// Sends `order_total` (a field the reference does not list) with every
    /// conversion; off by default, as CAKE's record has no sale amount.
    pub send_order_total: bool,
    /// `EventConversionChanges` answers every change whatever
    /// `start_at_row`/`row_limit` say (the reference documents no paging for
    /// it); off by default (they are honoured when sent).
    pub changes_ignore_paging: bool,
    /// `start_at_row` counts rows from 0 (CAKE's newer docs: "Pagination
    /// offset. Default 0") instead of 1 (third-party code, the default):
    /// whichever the real API does is unverified (QA20 F3).
    pub zero_based_rows: bool,
    corrupt: Option<(u64, &'static str)>,
    /// Report requests answered (429s not counted).
    reports: u64,
    /// Changes to apply once `reports` reaches their count.
    pending: Vec<PendingChange>,
    /// The numbers of the report requests to answer with no rows
    /// ([`CakeFake::empty_report`]).
    empty: Vec<u64>,
    /// API drift served (none by default).
    pub drift: Drift,
}

/// A change [`CakeFake::after_reports`] applies between two pages.
struct PendingChange {
    after: u64,
    change: Box<dyn FnOnce(&mut CakeFake) + Send>,
}

impl std::fmt::Debug for PendingChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingChange")
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

const CURRENCIES: [(u32, &str); 3] = [(1, "USD"), (2, "EUR"), (3, "GBP")];

const EVENT_CONVERSIONS_PARAMS: &[&str] = &[
    "start_date",
    "end_date",
    "event_type",
    "event_id",
    "channel_id",
    "source_affiliate_id",
    "brand_advertiser_id",
    "site_offer_id",
    "site_offer_contract_id",
    "campaign_id",
    "creative_id",
    "source_affiliate_tag_id",
    "brand_advertiser_tag_id",
    "site_offer_tag_id",
    "price_format_id",
    "source_type",
    "payment_percentage_filter",
    "disposition_type",
    "disposition_id",
    "source_affiliate_billing_status",
    "brand_advertiser_billing_status",
    "test_filter",
    "start_at_row",
    "row_limit",
    "sort_field",
    "sort_descending",
];

const CHANGES_PARAMS: &[&str] = &[
    "changes_since",
    "include_new_event_conversions",
    "source_affiliate_id",
    "brand_advertiser_id",
    "site_offer_id",
    "campaign_id",
];

impl CakeFake {
    /// A fake serving exactly these conversions (the demo's story).
    pub fn from_rows(params: Params, rows: Vec<Row>) -> CakeFake {
        let mut fake = CakeFake::new(Params {
            conversions: 0,
            ..params
        });
        fake.rows = rows;
        fake
    }

    /// Generates the world.
    pub fn new(params: Params) -> CakeFake {
        let mut rng = rand::rngs::StdRng::seed_from_u64(params.seed);
        let span = (day_start(params.to) + Duration::days(1) - day_start(params.from))
            .num_seconds()
            .max(1);
        let dispositions = [
            None,
            None,
            Some("Approved"),
            Some("Pending"),
            Some("Rejected"),
            Some("Returned"),
        ];
        let rows = (0..params.conversions)
            .map(|i| {
                let at = day_start(params.from) + Duration::seconds(rng.gen_range(0..span));
                let total = Decimal::new(rng.gen_range(2_000..90_000), 2);
                let paid = (total * Decimal::new(rng.gen_range(4..16), 2)).round_dp(2);
                Row {
                    id: 5_000_000 + i as u64,
                    at,
                    last_updated: at + Duration::minutes(5),
                    affiliate: 200 + rng.gen_range(0..params.affiliates),
                    offer: 30 + rng.gen_range(0..3),
                    disposition: dispositions[rng.gen_range(0..dispositions.len())],
                    paid,
                    received: (paid * Decimal::new(13, 1)).round_dp(2),
                    order_total: total,
                    currency_id: CURRENCIES[i % 5 % 3].0,
                    transaction_id: None,
                }
            })
            .collect();
        CakeFake {
            now: day_start(params.to) + Duration::hours(20),
            params,
            rows,
            throttle: Throttle::default(),
            retry_after_secs: 1,
            timezone: chrono_tz::UTC,
            dates: DateStyle::AspNet,
            send_order_total: false,
            changes_ignore_paging: false,
            zero_based_rows: false,
            corrupt: None,
            reports: 0,
            pending: Vec::new(),
            empty: Vec::new(),
            drift: Drift::default(),
        }
    }

    /// All rows.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Canonical status (undispositioned counts as approved, the default).
    pub fn canonical(r: &Row) -> ConversionStatus {
        match r.disposition {
            None | Some("Approved") => ConversionStatus::Approved,
            Some("Pending") => ConversionStatus::Pending,
            Some("Returned") => ConversionStatus::Reversed,
            _ => ConversionStatus::Rejected,
        }
    }

    /// Ground truth of the conversions in the instance's days `from..=to`.
    pub fn truth(&self, from: NaiveDate, to: NaiveDate) -> Truth {
        let local = |d: NaiveDate| {
            self.timezone
                .from_local_datetime(&d.and_time(NaiveTime::MIN))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| day_start(d))
        };
        let (s, e) = (local(from), local(to + Duration::days(1)));
        let mut t = Truth::default();
        for r in self.rows.iter().filter(|r| r.at >= s && r.at < e) {
            t.add(
                &r.affiliate.to_string(),
                Self::canonical(r),
                Some(r.paid),
                self.send_order_total.then_some(r.order_total),
            );
        }
        t
    }

    fn row_mut(&mut self, id: u64) -> &mut Row {
        let now = self.now;
        let r = self
            .rows
            .iter_mut()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no conversion {id}"));
        r.last_updated = now;
        r
    }

    /// Sets a disposition type (`Approved`, `Pending`, `Rejected`, `Returned`).
    pub fn set_disposition(&mut self, id: u64, d: Option<&'static str>) {
        self.row_mut(id).disposition = d;
    }

    /// Changes the paid (payout) amount.
    pub fn set_paid(&mut self, id: u64, paid: Decimal) {
        self.row_mut(id).paid = paid;
    }

    /// Returns a conversion (a reversal after approval).
    pub fn reverse(&mut self, id: u64) {
        self.row_mut(id).disposition = Some("Returned");
    }

    /// Takes conversion `id` out of every report (deleted, or flagged as a
    /// test conversion, which `test_filter = non_tests` leaves out).
    pub fn remove(&mut self, id: u64) {
        let before = self.rows.len();
        self.rows.retain(|r| r.id != id);
        assert!(self.rows.len() < before, "no conversion {id}");
    }

    /// Applies `change` once `n` more report requests have been answered,
    /// before the next one: a test's way to change the result set between two
    /// pages of one session (`n = 1`: after the next page).
    pub fn after_reports(&mut self, n: u64, change: impl FnOnce(&mut CakeFake) + Send + 'static) {
        self.pending.push(PendingChange {
            after: self.reports + n,
            change: Box::new(change),
        });
    }

    /// Answers the report request that comes after `n` more (`n = 0`: the
    /// next one; the connector's request for row 0 alone counts) with no
    /// rows, `row_count` still that of the whole set: a page emptied on the
    /// way (a proxy or cache) while paging goes on (QA34-D H2).
    pub fn empty_report(&mut self, n: u64) {
        self.empty.push(self.reports + n);
    }

    /// Report requests answered so far (429s not counted).
    pub fn reports(&self) -> u64 {
        self.reports
    }

    /// Serves `field` of conversion `id` as garbage from now on.
    pub fn corrupt(&mut self, id: u64, field: &'static str) {
        self.corrupt = Some((id, field));
    }

    fn render(&self, r: &Row) -> Value {
        let date = |t: DateTime<Utc>| {
            let local = t.with_timezone(&self.timezone);
            match self.dates {
                DateStyle::AspNet => format!("/Date({})/", t.timestamp_millis()),
                DateStyle::IsoLocal if r.id.is_multiple_of(2) => format!(
                    "{}.{:07}",
                    local.format("%Y-%m-%dT%H:%M:%S"),
                    local.timestamp_subsec_nanos() / 100
                ),
                DateStyle::IsoLocal => local.format("%Y-%m-%dT%H:%M:%S").to_string(),
                DateStyle::IsoOffset => local.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
            }
        };
        let num = |d: Decimal| json!(d.to_f64().unwrap_or_default());
        let id = |n: u64| {
            if self.drift.float_ids {
                json!(n as f64)
            } else {
                json!(n)
            }
        };
        let mut v = json!({
            "event_conversion_id": r.id,
            "event_conversion_date": date(r.at),
            "last_updated": date(r.last_updated),
            "click_date": date(r.at - Duration::minutes(17)),
            "source_affiliate": {"source_affiliate_id": id(r.affiliate), "source_affiliate_name": format!("Affiliate {}", r.affiliate)},
            "brand_advertiser": {"brand_advertiser_id": 3, "brand_advertiser_name": "Shop"},
            "site_offer": {"site_offer_id": id(r.offer), "site_offer_name": format!("Offer {}", r.offer)},
            "creative": {"creative_id": 1},
            "sub_id_1": "s1", "sub_id_2": "", "sub_id_3": "", "sub_id_4": "", "sub_id_5": "",
            "source_type": "Affiliate",
            "paid": {"currency_id": r.currency_id, "amount": num(r.paid)},
            "received": {"currency_id": r.currency_id, "amount": num(r.received)},
            "paid_unbilled": {"amount": 0}, "received_unbilled": {"amount": 0},
            "transaction_id": r.transaction_id.clone().unwrap_or_else(|| format!("T-{}", r.id)),
            "click_request_session_id": format!("rs{}", r.id),
            "tracking_id": "", "udid": "", "pixel_dropped": false,
            "event_conversion_ip_address": "10.0.0.1",
            "current_disposition": r.disposition.map(|d| json!({
                "disposition_id": 4, "disposition_name": d,
                "disposition_type": {"disposition_type_id": 2, "disposition_type_name": d}
            })),
            "event_info": {"event_id": 1, "event_name": "Sale"},
            "price_format": {"price_format_name": "CPA"},
            "event_conversion_score": 0,
        });
        if self.send_order_total {
            v["order_total"] = num(r.order_total);
        }
        if let Some((id, field)) = &self.corrupt {
            if *id == r.id {
                if *field == "paid" {
                    v["paid"] = json!({"currency_id": r.currency_id, "amount": "n/a"});
                } else {
                    v[*field] = json!("garbage");
                }
            }
        }
        for (id, path, value) in &self.drift.fields {
            if *id == r.id {
                super::everflow::set_path(&mut v, path, value.clone());
            }
        }
        v
    }

    fn asmx_error(name: &str) -> Reply {
        affiliate::json(
            500,
            &json!({"Message": format!("Invalid web service call, missing value for parameter: '{name}'."),
                    "StackTrace": "", "ExceptionType": "System.InvalidOperationException"}),
            &[],
        )
    }

    fn report(&self, method: &str, body: &Value) -> Result<Value, Reply> {
        let required = if method == "EventConversions" {
            EVENT_CONVERSIONS_PARAMS
        } else {
            CHANGES_PARAMS
        };
        if let Some(missing) = required.iter().find(|p| body.get(**p).is_none()) {
            return Err(Self::asmx_error(missing));
        }
        let changes = method != "EventConversions";
        let fail = |m: &str| json!({"d": {"success": false, "message": m, "row_count": 0, "event_conversions": []}});
        // EventConversionChanges documents no paging: without the
        // parameters (or ignoring them) it answers every row.
        let paged = !(changes
            && (self.changes_ignore_paging
                || (body.get("start_at_row").is_none() && body.get("row_limit").is_none())));
        // Rows skipped before the page, and its length: `row_limit = 0` is
        // every row (what CAKE clients send by default, with
        // `start_at_row = 0`); rows count from 1 (`start_at_row = 0` reads
        // as 1) or, with `zero_based_rows`, from 0.
        let (skip, limit) = if paged {
            let number = |k: &str| match body.get(k) {
                Some(v) => v.as_u64().ok_or(()),
                None => Ok(0),
            };
            let (Ok(start), Ok(limit)) = (number("start_at_row"), number("row_limit")) else {
                return Ok(fail(
                    "start_at_row and row_limit must be non-negative integers",
                ));
            };
            let skip = if self.zero_based_rows {
                start
            } else {
                start.saturating_sub(1)
            };
            (skip, if limit == 0 { u64::MAX } else { limit })
        } else {
            (0, u64::MAX)
        };
        // Every date is read in the instance's time zone. `start_date` and
        // `end_date` take a time too; `changes_since` is a date only.
        let local = |n: NaiveDateTime| -> Option<DateTime<Utc>> {
            self.timezone
                .from_local_datetime(&n)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        };
        let day = |s: &str| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .or_else(|_| NaiveDate::parse_from_str(s, "%d-%m-%Y"))
                .ok()
                .map(|d| d.and_time(NaiveTime::MIN))
        };
        let date = |k: &str| -> Option<DateTime<Utc>> {
            let s = body[k].as_str()?;
            day(s)
                .or_else(|| NaiveDateTime::parse_from_str(s, "%m/%d/%Y %H:%M:%S").ok())
                .and_then(local)
        };
        let mut rows: Vec<&Row> = if method == "EventConversions" {
            let (Some(s), Some(e)) = (date("start_date"), date("end_date")) else {
                return Ok(fail("Invalid start_date or end_date"));
            };
            self.rows.iter().filter(|r| r.at >= s && r.at < e).collect()
        } else {
            let Some(since) = body["changes_since"].as_str().and_then(day).and_then(local) else {
                return Ok(fail(
                    "Invalid changes_since: expected YYYY-mm-dd or dd-mm-YYYY",
                ));
            };
            self.rows
                .iter()
                .filter(|r| r.last_updated > r.at + Duration::minutes(5) && r.last_updated >= since)
                .collect()
        };
        if method == "EventConversions" {
            match body["sort_field"].as_str() {
                Some("event_conversion_date") => rows.sort_by_key(|r| (r.at, r.id)),
                _ => rows.sort_by_key(|r| r.id),
            }
            if body["sort_descending"].as_str() == Some("TRUE") {
                rows.reverse();
            }
        } else {
            // No documented sort: change order, whatever was asked.
            rows.sort_by_key(|r| (r.last_updated, r.id));
        }
        let total = rows.len();
        let page: Vec<Value> = rows
            .into_iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|r| self.render(r))
            .collect();
        let mut d = json!({"__type": format!("Cake.Reports.{method}Response"), "success": true, "message": "",
                           "event_conversions": page});
        if let Some((_, key)) = self.drift.records_key.filter(|(m, _)| *m == method) {
            let rows = d["event_conversions"].take();
            let o = d.as_object_mut().expect("an object");
            o.remove("event_conversions");
            o.insert(key.to_owned(), rows);
        }
        // `row_count` is documented (third-party code only) for
        // EventConversions; the Changes method's page documents none.
        if !changes {
            d["row_count"] = json!(total);
        }
        Ok(json!({ "d": d }))
    }
}

impl FakeApi for CakeFake {
    fn handle(&mut self, req: &HttpRequest) -> Reply {
        let (path, q) = split_url(&req.url);
        let body: Value = req
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        let key = param(&q, "api_key").or_else(|| body.get("api_key").and_then(Value::as_str));
        let denied =
            json!({"d": {"success": false, "message": "API Key is not valid", "row_count": 0}});
        if key != Some(self.params.api_key.as_str()) {
            return Reply::json(200, &denied);
        }
        if req.method == "GET" {
            let mut r = Reply::json(200, &json!({}));
            r.headers
                .insert("content-type".into(), "text/xml; charset=utf-8".into());
            r.body = b"<?xml version=\"1.0\" encoding=\"utf-8\"?><response><success>true</success><row_count>0</row_count></response>".to_vec();
            return r;
        }
        if path == "/api/1/get.asmx/Currencies" {
            let list: Vec<Value> = CURRENCIES
                .iter()
                .map(|(id, abbr)| json!({"currency_id": id, "currency_name": abbr, "currency_symbol": "", "currency_abbr": abbr}))
                .collect();
            return Reply::json(
                200,
                &json!({"d": {"success": true, "message": "", "currencies": list}}),
            );
        }
        let method = path.rsplit('/').next().unwrap_or_default().to_owned();
        if !path.contains("/reports.asmx/")
            || !matches!(
                method.as_str(),
                "EventConversions" | "EventConversionChanges"
            )
        {
            return affiliate::json(404, &json!({"Message": "Unknown web method"}), &[]);
        }
        if self.throttle.refuse() {
            return affiliate::json(
                429,
                &json!({"Message": "Too many requests"}),
                &[("retry-after", self.retry_after_secs.to_string())],
            );
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.after <= self.reports);
        self.pending = later;
        for p in due {
            (p.change)(self);
        }
        let empty = self.empty.contains(&self.reports);
        self.reports += 1;
        match self.report(&method, &body) {
            Ok(mut v) => {
                if empty {
                    v["d"]["event_conversions"] = json!([]);
                }
                Reply::json(200, &v)
            }
            Err(r) => r,
        }
    }
}

/// Serves the fake over HTTP.
pub fn router(state: Shared<CakeFake>) -> axum::Router {
    affiliate::router(state)
}
