//! Loopback fake of the Meta Marketing API (ad account insights).
//!
//! Faithful to the reference (connector-apis.md section 6): the token is the
//! `access_token` query parameter (or form field, or a Bearer header); a wrong
//! one is HTTP 401 with an `OAuthException` code 190. Insights are read
//! directly (`GET /{v}/act_{id}/insights`, cursor paging with
//! `paging.cursors.after` and an absolute `paging.next` that carries the
//! token) or through async report runs (`POST` → `report_run_id`, a status
//! that moves through `Job Not Started` → `Job Started` → `Job Running` →
//! `Job Completed` over several polls, then `/{run_id}/insights`). Every
//! metric is a string; `actions` / `action_values` list the overlapping
//! purchase types. Purchases follow each ad set's attribution setting only
//! with `use_unified_attribution_setting=true`; without it the fake reports
//! one more purchase worth 1.00 per row with purchases in `value`, its
//! stand-in for "wrong windows" (reference §10, airbyte #29894). With
//! `action_attribution_windows`, each action also carries one key per
//! requested window (reference §6): a view window holds the view-through
//! share (half a purchase worth 1.00 on a row with at least one purchase),
//! a click window the rest, so one click and one view window add up to the
//! truth while `value` stays the account default. Every
//! response carries the usage headers; throttling is an error body with code
//! 80000, 17, 613 or 4 (in turn), HTTP 400 unless [`Config::throttle_status`]
//! says otherwise; [`Config::regain_minutes_at`] makes the business use
//! case header say when access is regained.
//!
//! Objects have an `effective_status`, fixed by their ids and changed with
//! [`MetaFake::set_status`]: a few campaigns, ad sets and ads are ARCHIVED
//! or DELETED. As on Meta, insights leave those out unless the request's
//! `filtering` names `<level>.effective_status` with their status; a
//! filtering value the level does not document is error code 100. Rows
//! carry only the asked `fields` (plus `date_start` / `date_stop`, which
//! Meta always sends); a field the fake does not know is code 100.
//! `clicks` are all clicks; `inline_link_clicks` ([`link_clicks`]) about
//! four in five of them.
//!
//! Data come from a seeded [`Universe`]; [`MetaFake::truth`] is the ground
//! truth, archived and deleted objects included (conversions are
//! `omni_purchase`).
//!
//! [`MetaFake::set_drift`] serves a changed API instead ([`Drift`], QA36):
//! `paging` renamed or without `next`, figures sent as null or `""`, window
//! keys renamed, ids as JSON numbers or padded, a report run that says
//! `Job Completed` early, a row repeated with other figures, a row in
//! another currency.

use super::google_ads::wire::{self, json_str, FakeRequest, FakeResponse, Handle, Level, Universe};
use base64::Engine;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Ad account id (digits).
    pub account_id: String,
    /// The accepted access token.
    pub access_token: String,
    /// Account currency.
    pub currency: String,
    /// `timezone_name` (non-UTC by default).
    pub timezone: String,
    /// Largest `limit` honoured.
    pub max_page_size: usize,
    /// Polls a report run takes to finish.
    pub async_polls: u32,
    /// Report runs (1-based, in creation order) that end `Job Failed`.
    pub fail_jobs: BTreeSet<u64>,
    /// API requests (1-based, all counted) answered with a throttling error
    /// (code 80000 for odd ordinals, 17 for even ones).
    pub throttle_errors_at: BTreeSet<u64>,
    /// HTTP status of those throttling answers (400 by default; the
    /// reference warns they are not reliably 4xx, so a test may use 200).
    pub throttle_status: u16,
    /// API requests whose usage headers report 90 %.
    pub high_usage_at: BTreeSet<u64>,
    /// API requests whose business-use-case header says access is regained
    /// in this many minutes (`estimated_time_to_regain_access`).
    pub regain_minutes_at: BTreeMap<u64, u32>,
    /// Real-time limit of requests per second (code 17 beyond).
    pub max_requests_per_sec: Option<u32>,
    /// A day whose first row has a malformed `spend`.
    pub corrupt_day: Option<NaiveDate>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            account_id: "4242".into(),
            access_token: "EAAB-fake-meta-token".into(),
            currency: "USD".into(),
            timezone: "America/Los_Angeles".into(),
            max_page_size: 5000,
            async_polls: 3,
            fail_jobs: BTreeSet::new(),
            throttle_errors_at: BTreeSet::new(),
            throttle_status: 400,
            high_usage_at: BTreeSet::new(),
            regain_minutes_at: BTreeMap::new(),
            max_requests_per_sec: None,
            corrupt_day: None,
        }
    }
}

/// An API drift the fake serves instead of the reference's answer (QA36),
/// set while it runs ([`MetaFake::set_drift`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Drift {
    /// The reference's answers.
    #[default]
    None,
    /// Pages carry `pagination` instead of `paging` (same content).
    PagingRenamed,
    /// `paging` has its `cursors` but never `next`.
    NextDropped,
    /// The first row of each page has `"spend": null`.
    SpendNull,
    /// The first row of each page has `"impressions": ""`.
    ImpressionsEmpty,
    /// Every `action_values` entry has `"value": null`.
    ValueNull,
    /// Window keys are renamed `<window>_v2`.
    WindowsRenamed,
    /// `campaign_id` is a JSON number written `<id>.0`, and `adset_id` a
    /// string with a leading space.
    IdsReshaped,
    /// Report runs say `Job Completed` at 40 % on their first poll, when
    /// their insights hold the first 40 % of the rows; 100 % after.
    CompletedEarly,
    /// Every page after the first starts with the previous page's last row
    /// again, its spend 1.00 higher.
    RowRepeated,
    /// The first row of each page has `account_currency` `"EUR"` (the
    /// account's is not).
    CurrencyOther,
}

/// Which attribution a report was asked for.
#[derive(Debug, Clone, PartialEq)]
enum Attribution {
    /// Neither parameter: the account default (`value` off by one).
    AccountDefault,
    /// `use_unified_attribution_setting=true`: the truth in `value`.
    Unified,
    /// `action_attribution_windows`: `value` the account default, plus one
    /// key per window.
    Windows(Vec<String>),
}

/// The documented `effective_status` values of a level's object (Meta's
/// public SDK enums for Campaign, AdSet and Ad).
pub fn effective_statuses(level: Level) -> &'static [&'static str] {
    match level {
        Level::Campaign => &[
            "ACTIVE",
            "PAUSED",
            "DELETED",
            "ARCHIVED",
            "IN_PROCESS",
            "WITH_ISSUES",
        ],
        Level::AdGroup => &[
            "ACTIVE",
            "PAUSED",
            "DELETED",
            "CAMPAIGN_PAUSED",
            "ARCHIVED",
            "IN_PROCESS",
            "WITH_ISSUES",
        ],
        Level::Ad => &[
            "ACTIVE",
            "PAUSED",
            "DELETED",
            "PENDING_REVIEW",
            "DISAPPROVED",
            "PREAPPROVED",
            "PENDING_BILLING_INFO",
            "CAMPAIGN_PAUSED",
            "ARCHIVED",
            "ADSET_PAUSED",
            "IN_PROCESS",
            "WITH_ISSUES",
        ],
    }
}

/// Meta's name of a level.
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Campaign => "campaign",
        Level::AdGroup => "adset",
        Level::Ad => "ad",
    }
}

/// The insights fields the fake serves.
pub const FIELDS: [&str; 17] = [
    "account_id",
    "account_name",
    "account_currency",
    "campaign_id",
    "campaign_name",
    "adset_id",
    "adset_name",
    "ad_id",
    "ad_name",
    "impressions",
    "clicks",
    "inline_link_clicks",
    "spend",
    "actions",
    "action_values",
    "date_start",
    "date_stop",
];

/// Link clicks (`inline_link_clicks`, and the `link_click` action) of a
/// row: about four in five of its clicks (`clicks` counts all clicks).
pub fn link_clicks(m: &wire::Metrics) -> u64 {
    m.clicks - m.clicks / 5
}

/// The statuses ARCHIVED and DELETED, which insights leave out by default.
fn hidden_by_default(status: &str) -> bool {
    matches!(status, "ARCHIVED" | "DELETED")
}

/// What a report asks for besides its level and days.
#[derive(Debug, Clone)]
struct Ask {
    attribution: Attribution,
    /// `fields`; `None` (not sent) for all.
    fields: Option<BTreeSet<String>>,
    /// `filtering` on effective statuses: the level filtered and the
    /// statuses asked.
    filters: Vec<(Level, BTreeSet<String>)>,
}

impl Ask {
    fn wants(&self, field: &str) -> bool {
        self.fields.as_ref().is_none_or(|f| f.contains(field))
    }
}

#[derive(Debug, Clone)]
struct Job {
    level: Level,
    ask: Ask,
    from: NaiveDate,
    to: NaiveDate,
    polls: u32,
    fails: bool,
}

/// The rows of one report after its status filters, cached for paging.
type FilteredKey = (
    Level,
    NaiveDate,
    NaiveDate,
    Vec<(Level, BTreeSet<String>)>,
    u64,
);
/// The cached report: its key, the universe's rows it came from, and the
/// rows left after the filters.
type Filtered = (FilteredKey, Arc<Vec<wire::Row>>, Arc<Vec<wire::Row>>);

/// The fake.
#[derive(Debug)]
pub struct MetaFake {
    /// Behaviour.
    pub config: Config,
    /// The data.
    pub universe: Universe,
    requests: AtomicU64,
    jobs: Mutex<BTreeMap<String, Job>>,
    job_counter: AtomicU64,
    /// Throttling errors sent so far.
    pub throttle_errors_sent: AtomicU64,
    limiter: Option<wire::PerSecond>,
    /// API requests to answer with a throttling error, set at run time.
    pub throttle: wire::Countdown,
    /// Statuses set with [`MetaFake::set_status`], by object id.
    statuses: Mutex<BTreeMap<String, String>>,
    /// Bumped by every [`MetaFake::set_status`].
    status_generation: AtomicU64,
    filtered: Mutex<Option<Filtered>>,
    drift: Mutex<Drift>,
}

fn b64(n: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("offset:{n}"))
}

fn unb64(s: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

impl MetaFake {
    /// A fake over `universe` (cents, whole conversions).
    pub fn new(config: Config, mut universe: Universe) -> Arc<MetaFake> {
        universe.cents = true;
        universe.whole_conversions = true;
        Arc::new(MetaFake {
            limiter: config.max_requests_per_sec.map(wire::PerSecond::new),
            config,
            universe,
            requests: AtomicU64::new(0),
            jobs: Mutex::new(BTreeMap::new()),
            job_counter: AtomicU64::new(0),
            throttle_errors_sent: AtomicU64::new(0),
            throttle: wire::Countdown::default(),
            statuses: Mutex::new(BTreeMap::new()),
            status_generation: AtomicU64::new(0),
            filtered: Mutex::new(None),
            drift: Mutex::new(Drift::None),
        })
    }

    /// Serves `drift` from the next request on.
    pub fn set_drift(&self, drift: Drift) {
        *self.drift.lock().unwrap() = drift;
    }

    fn drift(&self) -> Drift {
        *self.drift.lock().unwrap()
    }

    /// Sets the own status of the object with platform id `id` (a campaign,
    /// ad set or ad of the universe), e.g. `ARCHIVED`: later reports see it.
    /// Panics on a status the object's level does not document.
    pub fn set_status(&self, level: Level, id: &str, status: &str) {
        assert!(
            effective_statuses(level).contains(&status),
            "{status} is not a {} status",
            level_name(level)
        );
        self.statuses
            .lock()
            .unwrap()
            .insert(id.to_owned(), status.to_owned());
        self.status_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The `effective_status` at `level` of the object a row belongs to
    /// (`level` no finer than the row's).
    pub fn effective_status(&self, level: Level, row: &wire::Row) -> String {
        let set = self.statuses.lock().unwrap();
        Self::status_in(&set, level, row)
    }

    fn status_in(set: &BTreeMap<String, String>, level: Level, r: &wire::Row) -> String {
        let own = |id: String, default: &str| set.get(&id).cloned().unwrap_or(default.to_owned());
        let c = r.campaign;
        let campaign = own(
            wire::campaign_id(c),
            match c % 10 {
                7 => "ARCHIVED",
                9 => "DELETED",
                5 => "PAUSED",
                _ => "ACTIVE",
            },
        );
        if level == Level::Campaign {
            return campaign;
        }
        let Some(g) = r.ad_group else {
            return campaign;
        };
        // Archiving or deleting a parent does the same to its children.
        let adset = if hidden_by_default(&campaign) {
            campaign
        } else {
            match own(
                wire::ad_group_id(c, g),
                match (c * 7 + g * 3) % 16 {
                    5 => "ARCHIVED",
                    11 => "DELETED",
                    2 => "PAUSED",
                    _ => "ACTIVE",
                },
            ) {
                s if s == "ACTIVE" && campaign == "PAUSED" => "CAMPAIGN_PAUSED".to_owned(),
                s => s,
            }
        };
        if level == Level::AdGroup {
            return adset;
        }
        let Some(a) = r.ad else {
            return adset;
        };
        if hidden_by_default(&adset) {
            return adset;
        }
        match own(
            wire::ad_id(c, g, a),
            match (c * 5 + g * 11 + a * 3) % 16 {
                7 => "ARCHIVED",
                13 => "DELETED",
                4 => "WITH_ISSUES",
                _ => "ACTIVE",
            },
        ) {
            s if s == "ACTIVE" && adset == "PAUSED" => "ADSET_PAUSED".to_owned(),
            s if s == "ACTIVE" && adset == "CAMPAIGN_PAUSED" => "CAMPAIGN_PAUSED".to_owned(),
            s => s,
        }
    }

    /// The rows a report of `level` over `from..=to` returns under the
    /// status `filters`: without a filter on the level's own status,
    /// archived and deleted objects are left out.
    fn report_rows(
        &self,
        level: Level,
        from: NaiveDate,
        to: NaiveDate,
        filters: &[(Level, BTreeSet<String>)],
    ) -> Arc<Vec<wire::Row>> {
        let all = self.universe.rows(level, from, to);
        let key = (
            level,
            from,
            to,
            filters.to_vec(),
            self.status_generation.load(Ordering::SeqCst),
        );
        if let Some((k, src, rows)) = self.filtered.lock().unwrap().as_ref() {
            if *k == key && Arc::ptr_eq(src, &all) {
                return rows.clone();
            }
        }
        let own_filter = filters.iter().any(|(l, _)| *l == level);
        let set = self.statuses.lock().unwrap();
        let rows: Vec<wire::Row> = all
            .iter()
            .filter(|r| {
                (own_filter || !hidden_by_default(&Self::status_in(&set, level, r)))
                    && filters
                        .iter()
                        .all(|(l, want)| want.contains(&Self::status_in(&set, *l, r)))
            })
            .cloned()
            .collect();
        drop(set);
        let rows = Arc::new(rows);
        *self.filtered.lock().unwrap() = Some((key, all, rows.clone()));
        rows
    }

    /// The rows a sync of `level` over `from..=to` must store.
    pub fn truth(&self, level: Level, from: NaiveDate, to: NaiveDate) -> Arc<Vec<wire::Row>> {
        self.universe.rows(level, from, to)
    }

    /// Restates a day.
    pub fn restate(&self, day: NaiveDate) {
        self.universe.restate(day);
    }

    /// Report runs created so far.
    pub fn jobs_created(&self) -> u64 {
        self.job_counter.load(Ordering::SeqCst)
    }

    /// API requests served so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    fn error(status: u16, code: i64, subcode: Option<i64>, message: &str) -> FakeResponse {
        let sub = subcode
            .map(|s| format!(r#","error_subcode":{s}"#))
            .unwrap_or_default();
        FakeResponse::json(
            status,
            format!(
                r#"{{"error":{{"message":{},"type":"OAuthException","code":{code}{sub},"is_transient":{},"fbtrace_id":"AbCdEfFake"}}}}"#,
                json_str(message),
                matches!(code, 4 | 17 | 613 | 80000..=80014)
            ),
        )
    }

    fn usage_headers(&self, resp: FakeResponse, n: u64) -> FakeResponse {
        let pct = if self.config.high_usage_at.contains(&n) {
            90
        } else {
            n % 10
        };
        let id = &self.config.account_id;
        let regain = self.config.regain_minutes_at.get(&n).copied().unwrap_or(0);
        resp.with_header(
            "x-app-usage",
            format!(r#"{{"call_count":{pct},"total_cputime":{},"total_time":{}}}"#, pct / 2, pct / 2),
        )
        .with_header(
            "x-business-use-case-usage",
            format!(
                r#"{{"1000000001":[{{"type":"ads_insights","call_count":{pct},"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":{regain}}}]}}"#
            ),
        )
        .with_header("x-ad-account-usage", format!(r#"{{"acc_id_util_pct":{pct},"reset_time_duration":0,"ads_api_access_tier":"standard_access"}}"#))
        .with_header(
            "x-fb-ads-insights-throttle",
            format!(r#"{{"app_id_util_pct":{pct},"acc_id_util_pct":{},"ads_api_access_tier":"standard_access"}}"#, pct / 3),
        )
        .with_header("x-fb-trace-id", format!("fake{id}{n}"))
    }

    fn params(req: &FakeRequest) -> Vec<(String, String)> {
        let mut p = req.query.clone();
        if req.method == "POST" {
            p.extend(req.form());
        }
        p
    }

    fn report_args(
        params: &[(String, String)],
    ) -> Result<(Level, NaiveDate, NaiveDate, Ask), FakeResponse> {
        let get = |k: &str| params.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        let level = match get("level") {
            Some("campaign") => Level::Campaign,
            Some("adset") => Level::AdGroup,
            Some("ad") => Level::Ad,
            other => {
                return Err(Self::error(
                    400,
                    100,
                    None,
                    &format!("(#100) The fake supports level campaign, adset or ad, not {other:?}"),
                ))
            }
        };
        if get("time_increment") != Some("1") {
            return Err(Self::error(
                400,
                100,
                None,
                "(#100) The fake serves daily rows only: time_increment=1",
            ));
        }
        let range: Option<serde_json::Value> =
            get("time_range").and_then(|t| serde_json::from_str(t).ok());
        let since = range
            .as_ref()
            .and_then(|r| r["since"].as_str())
            .and_then(wire::date);
        let until = range
            .as_ref()
            .and_then(|r| r["until"].as_str())
            .and_then(wire::date);
        let (from, to) = match (since, until) {
            (Some(a), Some(b)) if a <= b => (a, b),
            _ => {
                return Err(Self::error(
                    400,
                    100,
                    None,
                    "(#100) Param time_range must be a JSON object {since, until}",
                ))
            }
        };
        let fields = match get("fields") {
            None => None,
            Some(f) => {
                let set: BTreeSet<String> = f
                    .split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect();
                if let Some(bad) = set.iter().find(|x| !FIELDS.contains(&x.as_str())) {
                    return Err(Self::error(
                        400,
                        100,
                        None,
                        &format!(
                            "(#100) Tried accessing nonexisting field ({bad}) on node type (AdsInsights) [the fake serves {}]",
                            FIELDS.join(", ")
                        ),
                    ));
                }
                Some(set)
            }
        };
        let filters = match get("filtering") {
            None => Vec::new(),
            Some(f) => Self::filters(f, level)?,
        };
        Ok((
            level,
            from,
            to,
            Ask {
                attribution: Self::attribution(params),
                fields,
                filters,
            },
        ))
    }

    /// Parses `filtering`: effective-status filters of the report's level
    /// or a coarser one, operator `IN`, every value documented for its
    /// level (else code 100, as Meta).
    fn filters(text: &str, level: Level) -> Result<Vec<(Level, BTreeSet<String>)>, FakeResponse> {
        let bad = |m: String| Self::error(400, 100, None, &format!("(#100) {m}"));
        let list: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|_| {
            bad("Param filtering must be a JSON array of {field, operator, value}".into())
        })?;
        let mut out = Vec::new();
        for (i, f) in list.iter().enumerate() {
            let field = f["field"].as_str().unwrap_or_default();
            let on = match field {
                "campaign.effective_status" => Level::Campaign,
                "adset.effective_status" => Level::AdGroup,
                "ad.effective_status" => Level::Ad,
                other => {
                    return Err(bad(format!(
                        "Filtering field {other:?} is invalid [the fake filters on campaign, adset or ad .effective_status only]"
                    )))
                }
            };
            if on > level {
                return Err(bad(format!(
                    "Filtering field {field} is invalid at level {}",
                    level_name(level)
                )));
            }
            if f["operator"].as_str() != Some("IN") {
                return Err(bad(format!(
                    "filtering[{i}][operator] {} is not supported [the fake knows IN only]",
                    f["operator"]
                )));
            }
            let Some(values) = f["value"].as_array() else {
                return Err(bad(format!("filtering[{i}][value] must be an array")));
            };
            let valid = effective_statuses(on);
            let mut set = BTreeSet::new();
            for v in values {
                match v.as_str() {
                    Some(x) if valid.contains(&x) => {
                        set.insert(x.to_owned());
                    }
                    _ => {
                        return Err(bad(format!(
                        "filtering[{i}][value] must be one of {{{}}}: {v} is not a valid {field}",
                        valid.join(", ")
                    )))
                    }
                }
            }
            out.push((on, set));
        }
        Ok(out)
    }

    /// The attribution a report asks for.
    fn attribution(params: &[(String, String)]) -> Attribution {
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        if let Some(w) = get("action_attribution_windows") {
            Attribution::Windows(serde_json::from_str(w).unwrap_or_default())
        } else if get("use_unified_attribution_setting").is_some_and(|v| v == "true") {
            Attribution::Unified
        } else {
            Attribution::AccountDefault
        }
    }

    fn page(&self, req: &FakeRequest, rows: &[wire::Row], level: Level, ask: &Ask) -> FakeResponse {
        let limit = req
            .q("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(25)
            .clamp(1, self.config.max_page_size);
        let offset = match req.q("after") {
            None => 0,
            Some(a) => match unb64(a) {
                Some(o) => o,
                None => return Self::error(400, 100, None, "(#100) Invalid cursor: after"),
            },
        };
        let end = (offset + limit).min(rows.len());
        let drift = self.drift();
        let mut slice: Vec<wire::Row> = rows.get(offset..end).unwrap_or(&[]).to_vec();
        if drift == Drift::RowRepeated && offset > 0 && !slice.is_empty() {
            let mut again = rows[offset - 1].clone();
            again.m.cost_micros += 1_000_000;
            slice.insert(0, again);
        }
        // The repeated row is not one of `rows`: offsets count from it.
        let skip = usize::from(drift == Drift::RowRepeated && offset > 0 && !slice.is_empty());
        let mut s = String::with_capacity(slice.len() * 700 + 256);
        s.push_str(r#"{"data":["#);
        let c = &self.config;
        let attribution = &ask.attribution;
        for (i, r) in slice.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let cid = r.campaign;
            let m = &r.m;
            // Only the asked fields, in Meta's order; the dates always.
            s.push('{');
            let field = |s: &mut String, name: &str, value: String| {
                if ask.wants(name) {
                    let _ = write!(s, r#""{name}":{value},"#);
                }
            };
            field(&mut s, "account_id", json_str(&c.account_id));
            field(&mut s, "account_name", json_str("Fake shop"));
            let currency = if drift == Drift::CurrencyOther && i == 0 {
                if c.currency == "EUR" {
                    "USD"
                } else {
                    "EUR"
                }
            } else {
                c.currency.as_str()
            };
            field(&mut s, "account_currency", json_str(currency));
            let campaign_id = if drift == Drift::IdsReshaped {
                format!("{}.0", r.campaign_id())
            } else {
                json_str(&r.campaign_id())
            };
            field(&mut s, "campaign_id", campaign_id);
            field(&mut s, "campaign_name", json_str(&wire::campaign_name(cid)));
            if let (Some(g), true) = (r.ad_group, level != Level::Campaign) {
                let id = wire::ad_group_id(cid, g);
                let id = if drift == Drift::IdsReshaped {
                    format!(" {id}")
                } else {
                    id
                };
                field(&mut s, "adset_id", json_str(&id));
                field(&mut s, "adset_name", json_str(&wire::ad_group_name(cid, g)));
            }
            if let (Some(g), Some(a), Level::Ad) = (r.ad_group, r.ad, level) {
                field(&mut s, "ad_id", json_str(&wire::ad_id(cid, g, a)));
                field(&mut s, "ad_name", json_str(&wire::ad_name(cid, g, a)));
            }
            let spend = if Some(r.day) == c.corrupt_day
                && i >= skip
                && offset + i - skip == first_of_day(rows, r.day)
            {
                r#""12,34""#.to_owned()
            } else if drift == Drift::SpendNull && i == 0 {
                "null".to_owned()
            } else {
                format!(r#""{}""#, m.cost())
            };
            let impressions = if drift == Drift::ImpressionsEmpty && i == 0 {
                String::new()
            } else {
                m.impressions.to_string()
            };
            field(&mut s, "impressions", format!(r#""{impressions}""#));
            field(&mut s, "clicks", format!(r#""{}""#, m.clicks));
            field(
                &mut s,
                "inline_link_clicks",
                format!(r#""{}""#, link_clicks(m)),
            );
            field(&mut s, "spend", spend);
            // Without the ad sets' own (unified) attribution settings Meta
            // counts purchases under other windows: the fake's stand-in is one
            // more purchase worth 1.00 wherever there were purchases.
            let legacy = *attribution != Attribution::Unified && m.conversion_halves > 0;
            let conv = if legacy {
                m.conversions() + rust_decimal::Decimal::ONE
            } else {
                m.conversions()
            };
            // The window keys of one action: its view-through share in view
            // windows, the rest in click windows.
            let windows = |truth: rust_decimal::Decimal, view: rust_decimal::Decimal| -> String {
                let Attribution::Windows(ws) = attribution else {
                    return String::new();
                };
                ws.iter()
                    .map(|w| {
                        let share = if w.ends_with("_view") {
                            view
                        } else if w.ends_with("_click") {
                            truth - view
                        } else {
                            truth
                        };
                        let suffix = if drift == Drift::WindowsRenamed {
                            "_v2"
                        } else {
                            ""
                        };
                        format!(r#","{w}{suffix}":"{share}""#)
                    })
                    .collect()
            };
            let half = rust_decimal::Decimal::new(5, 1);
            let view_conv = if m.conversion_halves >= 2 {
                half
            } else {
                rust_decimal::Decimal::ZERO
            };
            let view_value = if m.conversion_halves >= 2 && m.value_cents >= 100 {
                rust_decimal::Decimal::ONE
            } else {
                rust_decimal::Decimal::ZERO
            };
            const PURCHASES: [&str; 3] = [
                "offsite_conversion.fb_pixel_purchase",
                "purchase",
                "omni_purchase",
            ];
            if m.clicks > 0 {
                let mut actions = format!(
                    r#"[{{"action_type":"link_click","value":"{}"}}"#,
                    link_clicks(m)
                );
                if m.conversion_halves > 0 {
                    for t in PURCHASES {
                        let w = windows(m.conversions(), view_conv);
                        let _ = write!(actions, r#",{{"action_type":"{t}","value":"{conv}"{w}}}"#);
                    }
                }
                actions.push(']');
                field(&mut s, "actions", actions);
                if m.value_cents > 0 {
                    let v = if legacy {
                        m.value() + rust_decimal::Decimal::ONE
                    } else {
                        m.value()
                    };
                    let values: Vec<String> = PURCHASES
                        .iter()
                        .map(|t| {
                            let w = windows(m.value(), view_value);
                            let v = if drift == Drift::ValueNull {
                                "null".to_owned()
                            } else {
                                format!(r#""{v}""#)
                            };
                            format!(r#"{{"action_type":"{t}","value":{v}{w}}}"#)
                        })
                        .collect();
                    field(&mut s, "action_values", format!("[{}]", values.join(",")));
                }
            }
            let _ = write!(s, r#""date_start":"{d}","date_stop":"{d}"}}"#, d = r.day);
        }
        s.push(']');
        if !slice.is_empty() {
            let key = if drift == Drift::PagingRenamed {
                "pagination"
            } else {
                "paging"
            };
            let _ = write!(
                s,
                r#","{key}":{{"cursors":{{"before":"{}","after":"{}"}}"#,
                b64(offset),
                b64(end)
            );
            if end < rows.len() && drift != Drift::NextDropped {
                let mut next = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in &req.query {
                    if k != "after" && k != "access_token" {
                        next.append_pair(k, v);
                    }
                }
                next.append_pair("access_token", &self.config.access_token);
                next.append_pair("after", &b64(end));
                let _ = write!(
                    s,
                    r#","next":{}"#,
                    json_str(&format!("{}{}?{}", req.origin, req.path, next.finish()))
                );
            }
            s.push('}');
        }
        s.push('}');
        FakeResponse::json(200, s)
    }

    fn route(&self, req: &FakeRequest, n: u64) -> FakeResponse {
        let token = req
            .q("access_token")
            .map(str::to_owned)
            .or_else(|| {
                req.form()
                    .into_iter()
                    .find(|(k, _)| k == "access_token")
                    .map(|(_, v)| v)
            })
            .or_else(|| {
                req.header("authorization")
                    .and_then(|a| a.strip_prefix("Bearer "))
                    .map(str::to_owned)
            });
        if token.as_deref() != Some(self.config.access_token.as_str()) {
            return Self::error(
                401,
                190,
                None,
                "Invalid OAuth access token - Cannot parse access token",
            );
        }
        if self.config.throttle_errors_at.contains(&n)
            || self.limiter.as_ref().is_some_and(|l| !l.admit())
            || self.throttle.take()
        {
            self.throttle_errors_sent.fetch_add(1, Ordering::SeqCst);
            let status = self.config.throttle_status;
            // The four throttling errors of the reference (§6), in turn.
            return match n % 4 {
                1 => Self::error(status, 80000, Some(2446079), "(#80000) There have been too many calls from this ad-account. Wait a bit and try again."),
                2 => Self::error(status, 17, Some(2446079), "(#17) User request limit reached"),
                3 => Self::error(status, 613, Some(1487742), "(#613) Calls to this api have exceeded the rate limit."),
                _ => Self::error(status, 4, Some(1504022), "(#4) Application request limit reached"),
            };
        }
        let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        let act = format!("act_{}", self.config.account_id);
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", [_v, a]) if *a == act => FakeResponse::json(
                200,
                format!(
                    r#"{{"account_id":"{id}","name":"Fake shop","currency":"{}","timezone_name":"{}","id":"{act}"}}"#,
                    self.config.currency,
                    self.config.timezone,
                    id = self.config.account_id
                ),
            ),
            (_, [_v, a, ..]) if a.starts_with("act_") && *a != act => Self::error(
                400,
                100,
                Some(33),
                &format!("Unsupported get request. Object with ID '{a}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."),
            ),
            ("GET", [_v, a, "insights"]) if a.starts_with("act_") => match Self::report_args(&Self::params(req)) {
                Ok((level, from, to, ask)) => {
                    let rows = self.report_rows(level, from, to, &ask.filters);
                    self.page(req, &rows, level, &ask)
                }
                Err(e) => e,
            },
            ("POST", [_v, a, "insights"]) if a.starts_with("act_") => match Self::report_args(&Self::params(req)) {
                Ok((level, from, to, ask)) => {
                    let k = self.job_counter.fetch_add(1, Ordering::SeqCst) + 1;
                    let id = format!("{}", 6_000_000_000_000u64 + k);
                    self.jobs.lock().unwrap().insert(
                        id.clone(),
                        Job {
                            level,
                            ask,
                            from,
                            to,
                            polls: 0,
                            fails: self.config.fail_jobs.contains(&k),
                        },
                    );
                    FakeResponse::json(200, format!(r#"{{"report_run_id":"{id}"}}"#))
                }
                Err(e) => e,
            },
            ("GET", [_v, run]) => {
                let mut jobs = self.jobs.lock().unwrap();
                let Some(job) = jobs.get_mut(*run) else {
                    return Self::error(400, 100, Some(33), &format!("Unsupported get request. Object with ID '{run}' does not exist."));
                };
                job.polls += 1;
                let total = self.config.async_polls.max(1);
                let (status, pct) = if self.drift() == Drift::CompletedEarly {
                    ("Job Completed", if job.polls == 1 { 40 } else { 100 })
                } else if job.polls >= total {
                    (if job.fails { "Job Failed" } else { "Job Completed" }, 100)
                } else {
                    match job.polls {
                        1 => ("Job Not Started", 0),
                        2 => ("Job Started", 10),
                        p => ("Job Running", 100 * p / total),
                    }
                };
                FakeResponse::json(
                    200,
                    format!(
                        r#"{{"id":"{run}","account_id":"{}","async_status":"{status}","async_percent_completion":{pct},"date_start":"{}","date_stop":"{}"}}"#,
                        self.config.account_id, job.from, job.to
                    ),
                )
            }
            ("GET", [_v, run, "insights"]) => {
                let job = self.jobs.lock().unwrap().get(*run).cloned();
                match job {
                    Some(j) if self.drift() == Drift::CompletedEarly && j.polls == 1 => {
                        // What Meta has so far: the first 40 % of the rows.
                        let rows = self.report_rows(j.level, j.from, j.to, &j.ask.filters);
                        let part = rows[..rows.len() * 2 / 5].to_vec();
                        self.page(req, &part, j.level, &j.ask)
                    }
                    Some(j)
                        if (j.polls >= self.config.async_polls.max(1)
                            || (self.drift() == Drift::CompletedEarly && j.polls > 1))
                            && !j.fails =>
                    {
                        let rows = self.report_rows(j.level, j.from, j.to, &j.ask.filters);
                        self.page(req, &rows, j.level, &j.ask)
                    }
                    Some(_) => Self::error(400, 100, None, "(#100) The report run is not complete"),
                    None => Self::error(400, 100, Some(33), &format!("Unsupported get request. Object with ID '{run}' does not exist.")),
                }
            }
            _ => Self::error(400, 100, None, &format!("Unknown path components: {}", req.path)),
        }
    }
}

fn first_of_day(rows: &[wire::Row], day: NaiveDate) -> usize {
    rows.partition_point(|r| r.day < day)
}

impl Handle for MetaFake {
    fn handle(&self, req: &FakeRequest) -> FakeResponse {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let resp = self.route(req, n);
        self.usage_headers(resp, n)
    }
}

/// The axum router of the fake.
pub fn router(fake: Arc<MetaFake>) -> axum::Router {
    wire::router(fake)
}

/// An in-process bridge for `FakeHost::handler`: adds the access token as
/// the host does (query parameter) and answers from the fake.
pub fn bridge(
    fake: Arc<MetaFake>,
    access_token: &str,
) -> impl FnMut(&plugin_api::protocol::HttpRequest) -> plugin_api::testing::Reply {
    let token = access_token.to_owned();
    move |req| {
        let mut r = FakeRequest::from_plugin(req);
        r.query.push(("access_token".into(), token.clone()));
        fake.handle(&r).into_reply()
    }
}

/// Totals of the fake's truth.
pub fn truth_totals(fake: &MetaFake, level: Level, from: NaiveDate, to: NaiveDate) -> wire::Totals {
    wire::truth_totals(&fake.truth(level, from, to))
}
