//! Loopback fake of Impact.com's Brand API (`/Advertisers/{AccountSID}/...`).
//!
//! Faithful to what the connector relies on: HTTP Basic auth with the SID in
//! the path too; `CampaignId` required on `/Actions` and `/ActionUpdates`;
//! `/Actions` filtered by event date (`ActionDateStart/End`), last-updated
//! date (`StartDate/EndDate`) and locking date (`LockingDateStart/End`),
//! each pair given applying (none: the last 7 days by event date) as the
//! instants between its two ISO-8601 date-times (any offset), both
//! inclusive; each date range at most 45 days and no older than 3 years, `PageSize`
//! 2000..=20000 and at most 10 × `PageSize` rows per query (400 with
//! Impact's `{"Status": "ERROR", "Message", "Errors"}` envelope otherwise;
//! Impact documents the 10 × `PageSize` limit and that its error asks to
//! change `PageSize` or the dates, not the status or exact wording); the
//! `@`-envelope with **string** values and a relative `@nextpageuri` (on
//! `/Campaigns` too, whose page size a test sets:
//! [`ImpactFake::campaigns_page_size`]); numbers
//! as strings (and some as JSON numbers), `DeltaPayout`/`DeltaAmount` the
//! change since tracking (`Intended*` the tracked values); timestamps with
//! offsets;
//! `X-RateLimit-*` headers on every answer (`Remaining` counting down to 0
//! in each window of [`ImpactFake::limit_per_window`] requests; `Reset` in
//! seconds, or as an epoch with a `Date` header, [`ImpactFake::epoch_reset`])
//! and 429s on demand; `EventCode` empty for some actions, a code naming the
//! type for others and a brand code naming none (`EVT-22`) for the rest
//! ([`event_code`]).
//!
//! An action's last-updated date is its latest logged modification, else its
//! creation (event + 1 minute): the reference does not say what
//! `StartDate/EndDate` match for an action never modified, and counting its
//! creation is the costlier reading for the connector (the update filter then
//! returns the window's new actions too). `/ActionUpdates` serves the
//! changelog with the reference's fields only; there is no single-action
//! route (`/Actions/{Id}` is not in the reference: 404).
//!
//! The data is generated from a seed ([`Params`]); [`ImpactFake::truth`] is
//! the ground truth of a window. Tests change the world between two pulls:
//! [`ImpactFake::approve`] (the action locks now: a state transition, which
//! Impact does *not* log as an update nor count in the last-updated date),
//! [`ImpactFake::set_payout`] and [`ImpactFake::reverse`] (both logged in
//! `/ActionUpdates` and moving the last-updated date), and
//! [`ImpactFake::corrupt`].
//!
//! API drift (QA35d), answers that stray from the reference the way a
//! platform's do when it changes without notice: [`ImpactFake::next_page`]
//! drops or empties `@nextpageuri` on pages that are not the last,
//! [`ImpactFake::set_field`] serves one field of an action as any value
//! (`""` or null for an amount, a timestamp without a UTC offset, an id as
//! a float such as `10003.0`), and [`ImpactFake::dropped_row`] leaves a
//! row out of a page its envelope still counts (QA37).

use super::affiliate::{self, param, split_url, FakeApi, Shared, Throttle, Truth};
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveTime, Utc};
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
    /// RNG seed: the same seed gives the same world.
    pub seed: u64,
    /// Number of actions.
    pub actions: usize,
    /// Campaign ids; actions are spread over them.
    pub campaigns: Vec<u64>,
    /// Number of partners.
    pub partners: u64,
    /// First event day (UTC).
    pub from: NaiveDate,
    /// Last event day (UTC).
    pub to: NaiveDate,
    /// The account SID expected in paths and as the Basic-auth user.
    pub account_sid: String,
    /// The auth token expected as the Basic-auth password.
    pub auth_token: String,
}

impl Params {
    /// A small world: `actions` actions in November 2026 over two campaigns.
    pub fn small(seed: u64, actions: usize) -> Params {
        Params {
            seed,
            actions,
            campaigns: vec![1000, 2000],
            partners: 7,
            from: NaiveDate::from_ymd_opt(2026, 10, 20).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
            account_sid: "IRfakeSID1".into(),
            auth_token: "tok-impact".into(),
        }
    }
}

/// One action as the fake stores it.
#[derive(Debug, Clone)]
pub struct Action {
    pub id: String,
    pub campaign_id: u64,
    pub partner_id: u64,
    pub tracker: &'static str,
    pub state: &'static str,
    pub amount: Decimal,
    pub payout: Decimal,
    pub currency: &'static str,
    pub event_date: DateTime<Utc>,
    pub locking_date: DateTime<Utc>,
    pub oid: String,
    pub promo: Option<String>,
}

#[derive(Debug, Clone)]
struct Update {
    id: String,
    action: usize,
    state: &'static str,
    update_date: DateTime<Utc>,
    delta_payout: Decimal,
    delta_amount: Decimal,
}

/// The `EventCode` the fake sends for an action (by a hash of its id): empty
/// (accounts on an old `IR-Version`), a code naming the tracker's type
/// (`online_purchase`, `lead_form`, `signup`), or a brand-defined code that
/// names none (`EVT-22`), for which only `ActionTrackerName` tells the type.
pub fn event_code(a: &Action) -> &'static str {
    let bucket = a.id.bytes().map(u64::from).sum::<u64>() % 3;
    match (bucket, a.tracker) {
        (0, _) => "",
        (1, "Online Sale") => "online_purchase",
        (1, "Lead") => "lead_form",
        (1, "Sign Up") => "signup",
        _ => "EVT-22",
    }
}

/// When Impact created an action (`CreationDate`).
fn creation_date(a: &Action) -> DateTime<Utc> {
    a.event_date + Duration::minutes(1)
}

/// The date an `/Actions` query filters on.
#[derive(Debug, Clone, Copy)]
enum DateFilter {
    Event,
    Updated,
    Locking,
}

/// How `@nextpageuri` is served on a page that is not the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NextPage {
    /// As the reference documents it: the next page's relative URI.
    #[default]
    AsDocumented,
    /// Renamed (`@nextPageUri`), so `@nextpageuri` is missing, from page
    /// `from` on (1: every page).
    Renamed { from: usize },
    /// `""` although `@page` < `@numpages`, from page `from` on.
    Empty { from: usize },
}

/// The fake's state.
#[derive(Debug)]
pub struct ImpactFake {
    params: Params,
    actions: Vec<Action>,
    updates: Vec<Update>,
    /// The fake's clock (update dates, the 3-year floor).
    pub now: DateTime<Utc>,
    /// 429 injection for data requests.
    pub throttle: Throttle,
    /// `X-RateLimit-Reset` seconds sent with a 429.
    pub reset_secs: u64,
    /// Requests per rate-limit window (`X-RateLimit-Limit`, 1000 by
    /// default); `X-RateLimit-Remaining` counts down to 0 within it.
    pub limit_per_window: u64,
    /// Send `X-RateLimit-Reset` as an epoch (with a `Date` header from
    /// [`ImpactFake::now`]), as the docs' example does, instead of seconds.
    pub epoch_reset: bool,
    /// Rows per page of `/Campaigns` when the request gives no `PageSize`
    /// (20000 by default, `/Actions`' default: every campaign on one page).
    /// The reference documents no default for `/Campaigns`; a test sets a
    /// small one to spread the campaigns ([`Params::campaigns`]) over pages.
    pub campaigns_page_size: usize,
    /// `@nextpageuri` drift on every list endpoint (default: none).
    pub next_page: NextPage,
    /// Drift (QA37 R-M2): page `n` of every list answer leaves out its
    /// last row while its envelope (`@start`, `@end`, `@total`) still
    /// counts it (default: none).
    pub dropped_row: Option<usize>,
    corrupt: Option<(String, &'static str)>,
    /// `(action id, field, value)` served instead of what the action has.
    fields: Vec<(String, &'static str, Value)>,
    requests: u64,
}

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

impl ImpactFake {
    /// A fake serving exactly these actions (the demo's story).
    pub fn from_actions(params: Params, actions: Vec<Action>) -> ImpactFake {
        let mut fake = ImpactFake::new(Params {
            actions: 0,
            ..params
        });
        fake.actions = actions;
        fake
    }

    /// Generates the world.
    pub fn new(params: Params) -> ImpactFake {
        let mut rng = rand::rngs::StdRng::seed_from_u64(params.seed);
        let span = (day_start(params.to) + Duration::days(1) - day_start(params.from))
            .num_seconds()
            .max(1);
        let trackers = [
            "Online Sale",
            "Online Sale",
            "Online Sale",
            "Lead",
            "Sign Up",
        ];
        let states = ["PENDING", "PENDING", "APPROVED", "APPROVED", "REVERSED"];
        let actions = (0..params.actions)
            .map(|i| {
                let campaign_id = params.campaigns[i % params.campaigns.len()];
                let event_date = day_start(params.from) + Duration::seconds(rng.gen_range(0..span));
                let state = states[rng.gen_range(0..states.len())];
                let amount = Decimal::new(rng.gen_range(500..50_000), 2);
                let (amount, payout) = if state == "REVERSED" {
                    (Decimal::ZERO, Decimal::ZERO)
                } else {
                    (
                        amount,
                        (amount * Decimal::new(rng.gen_range(3..15), 2)).round_dp(2),
                    )
                };
                Action {
                    id: format!("{campaign_id}.{}.{}", 4000 + i / 1000, 100_000 + i),
                    campaign_id,
                    partner_id: 10_000 + rng.gen_range(0..params.partners),
                    tracker: trackers[rng.gen_range(0..trackers.len())],
                    state,
                    amount,
                    payout,
                    currency: if i % 10 == 9 { "EUR" } else { "USD" },
                    event_date,
                    locking_date: day_start(event_date.date_naive()) + Duration::days(45),
                    oid: format!("ORD-{}", 500_000 + i),
                    promo: (i % 6 == 0).then(|| format!("PROMO{}", i % 4)),
                }
            })
            .collect();
        ImpactFake {
            now: day_start(params.to) + Duration::days(1),
            params,
            actions,
            updates: Vec::new(),
            throttle: Throttle::default(),
            reset_secs: 1,
            limit_per_window: 1000,
            epoch_reset: false,
            campaigns_page_size: 20_000,
            next_page: NextPage::AsDocumented,
            dropped_row: None,
            corrupt: None,
            fields: Vec::new(),
            requests: 0,
        }
    }

    /// The generation parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// All actions.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// Canonical status of a state.
    pub fn canonical(state: &str) -> ConversionStatus {
        match state {
            "APPROVED" => ConversionStatus::Approved,
            "REVERSED" => ConversionStatus::Reversed,
            _ => ConversionStatus::Pending,
        }
    }

    /// Ground truth of the actions with an event day in `from..=to`.
    pub fn truth(&self, from: NaiveDate, to: NaiveDate) -> Truth {
        let (s, e) = (day_start(from), day_start(to) + Duration::days(1));
        let mut t = Truth::default();
        for a in self
            .actions
            .iter()
            .filter(|a| a.event_date >= s && a.event_date < e)
        {
            t.add(
                &a.partner_id.to_string(),
                Self::canonical(a.state),
                Some(a.payout),
                Some(a.amount),
            );
        }
        t
    }

    fn index(&self, id: &str) -> usize {
        self.actions
            .iter()
            .position(|a| a.id == id)
            .unwrap_or_else(|| panic!("no action {id}"))
    }

    fn log(&mut self, i: usize, delta_payout: Decimal, delta_amount: Decimal) {
        let n = self.updates.len();
        self.updates.push(Update {
            id: format!("{}.{}", self.actions[i].id, 90_000 + n),
            action: i,
            state: self.actions[i].state,
            update_date: self.now,
            delta_payout,
            delta_amount,
        });
    }

    /// PENDING → APPROVED: the action locks now (its `LockingDate` becomes
    /// [`ImpactFake::now`] when it was later). Not an update in Impact's
    /// sense: nothing is logged and the last-updated date stays.
    pub fn approve(&mut self, id: &str) {
        let i = self.index(id);
        let now = self.now;
        let a = &mut self.actions[i];
        a.state = "APPROVED";
        a.locking_date = a.locking_date.min(now);
    }

    /// Changes the payout (logged as an update).
    pub fn set_payout(&mut self, id: &str, payout: Decimal) {
        let i = self.index(id);
        let delta = payout - self.actions[i].payout;
        self.actions[i].payout = payout;
        self.log(i, delta, Decimal::ZERO);
    }

    /// Reverses an action (logged as an update); amounts go to zero.
    pub fn reverse(&mut self, id: &str) {
        let i = self.index(id);
        let (delta_payout, delta_amount) = (-self.actions[i].payout, -self.actions[i].amount);
        let a = &mut self.actions[i];
        a.state = "REVERSED";
        a.payout = Decimal::ZERO;
        a.amount = Decimal::ZERO;
        self.log(i, delta_payout, delta_amount);
    }

    /// Serves `field` of action `id` as garbage from now on.
    pub fn corrupt(&mut self, id: &str, field: &'static str) {
        self.corrupt = Some((id.to_owned(), field));
    }

    /// Serves `field` of action `id` as `value` from now on (replacing an
    /// earlier value set for that field): a drifted answer such as
    /// `"Payout": ""`, an `EventDate` without an offset or a
    /// `MediaPartnerId` of `10003.0`. The world itself is unchanged
    /// ([`ImpactFake::truth`] is what the action really is).
    pub fn set_field(&mut self, id: &str, field: &'static str, value: Value) {
        self.index(id);
        self.fields.retain(|(i, f, _)| !(i == id && *f == field));
        self.fields.push((id.to_owned(), field, value));
    }

    /// Data requests answered (including 429s).
    pub fn requests(&self) -> u64 {
        self.requests
    }

    fn render(&self, a: &Action) -> Value {
        // Impact shows local offsets; alternate between two.
        let tz = if a.partner_id & 1 == 0 {
            FixedOffset::west_opt(7 * 3600).unwrap()
        } else {
            FixedOffset::east_opt(0).unwrap()
        };
        let ts = |t: DateTime<Utc>| t.with_timezone(&tz).to_rfc3339();
        let money = |d: Decimal, as_number: bool| {
            if as_number {
                json!(d.to_f64().unwrap_or_default())
            } else {
                json!(d.to_string())
            }
        };
        let as_number = a.oid.ends_with('7');
        let (delta_payout, delta_amount) = self.deltas(a);
        let mut v = json!({
            "Id": a.id,
            "CampaignId": a.campaign_id.to_string(),
            "CampaignName": format!("Campaign {}", a.campaign_id),
            "ActionTrackerId": "22",
            "ActionTrackerName": a.tracker,
            "EventCode": event_code(a),
            "MediaPartnerId": if as_number { json!(a.partner_id) } else { json!(a.partner_id.to_string()) },
            "MediaPartnerName": format!("Partner {}", a.partner_id),
            "State": a.state,
            "AdId": "506720",
            "Amount": money(a.amount, as_number),
            "DeltaAmount": money(delta_amount, false),
            "IntendedAmount": money(a.amount - delta_amount, false),
            "Payout": money(a.payout, as_number),
            "DeltaPayout": money(delta_payout, false),
            "IntendedPayout": money(a.payout - delta_payout, false),
            "ClientCost": money(a.payout, false),
            "Currency": a.currency,
            "ReferringDate": ts(a.event_date - Duration::minutes(30)),
            "EventDate": ts(a.event_date),
            "CreationDate": ts(creation_date(a)),
            "LockingDate": ts(a.locking_date),
            "ClearedDate": "",
            "ReferringType": "CLICK_COOKIE",
            "PromoCode": a.promo.clone().unwrap_or_default(),
            "Oid": a.oid,
            "CustomerId": format!("cust-{}", a.oid),
            "CustomerStatus": "NEW",
            "SubId1": "", "SubId2": "", "SubId3": "",
            "Uri": format!("/Advertisers/{}/Actions/{}", self.params.account_sid, a.id),
        });
        if let Some((id, field)) = &self.corrupt {
            if *id == a.id {
                v[*field] = json!("1,5O");
            }
        }
        for (id, field, value) in &self.fields {
            if *id == a.id {
                v[*field] = value.clone();
            }
        }
        v
    }

    /// How far an action's payout and amount moved from what was tracked:
    /// the sum of its logged modifications (zero for one never modified).
    /// Impact's `DeltaPayout`/`DeltaAmount` (REF: "Amount, DeltaAmount,
    /// IntendedAmount"), with `Intended*` the tracked values; QA20 F9: the
    /// fake sent the full amounts there.
    fn deltas(&self, a: &Action) -> (Decimal, Decimal) {
        self.updates
            .iter()
            .filter(|u| self.actions[u.action].id == a.id)
            .fold((Decimal::ZERO, Decimal::ZERO), |(p, m), u| {
                (p + u.delta_payout, m + u.delta_amount)
            })
    }

    /// Each action's last-updated date when it differs from its creation:
    /// its latest logged modification.
    fn last_updated(&self) -> std::collections::HashMap<usize, DateTime<Utc>> {
        let mut m = std::collections::HashMap::new();
        for u in &self.updates {
            let d = m.entry(u.action).or_insert(u.update_date);
            *d = (*d).max(u.update_date);
        }
        m
    }

    fn error(status: u16, message: &str, field: Option<&str>) -> Reply {
        let mut body = json!({"Status": "ERROR", "Message": message});
        if let Some(f) = field {
            body["Errors"] = json!([{"Field": f, "Message": message}]);
        }
        Reply::json(status, &body)
    }

    fn rate_headers(&self) -> Vec<(&'static str, String)> {
        let limit = self.limit_per_window.max(1);
        let mut h = vec![
            ("x-ratelimit-limit", limit.to_string()),
            (
                "x-ratelimit-remaining",
                (limit - (self.requests % limit) - 1).to_string(),
            ),
        ];
        if self.epoch_reset {
            h.push((
                "x-ratelimit-reset",
                (self.now.timestamp() + 3600).to_string(),
            ));
            h.push(("date", self.now.to_rfc2822()));
        } else {
            h.push(("x-ratelimit-reset", "3600".into()));
        }
        h
    }

    fn range(
        &self,
        q: &[(String, String)],
        start: &str,
        end: &str,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>), Reply> {
        let get = |k: &str| -> Result<DateTime<Utc>, Reply> {
            let v = param(q, k).ok_or_else(|| {
                Self::error(400, &format!("{k} is required with {start}/{end}"), Some(k))
            })?;
            DateTime::parse_from_rfc3339(v)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|_| {
                    Self::error(400, &format!("{k} is not an ISO-8601 date-time"), Some(k))
                })
        };
        let (s, e) = (get(start)?, get(end)?);
        if e < s {
            return Err(Self::error(
                400,
                &format!("{end} is before {start}"),
                Some(end),
            ));
        }
        if e - s > Duration::days(45) {
            return Err(Self::error(
                400,
                "The date range cannot exceed 45 days",
                Some(start),
            ));
        }
        if s < self.now - Duration::days(3 * 365) {
            return Err(Self::error(
                400,
                "StartDate cannot be more than 3 years in the past",
                Some(start),
            ));
        }
        Ok((s, e))
    }

    /// The request's `PageSize` (2000..=20000), else `default`.
    fn page_size(q: &[(String, String)], default: usize) -> Result<usize, Reply> {
        match param(q, "PageSize").map(str::parse::<usize>) {
            None => Ok(default),
            Some(Ok(n)) if (2000..=20_000).contains(&n) => Ok(n),
            Some(_) => Err(Self::error(
                400,
                "PageSize must be between 2000 and 20000",
                Some("PageSize"),
            )),
        }
    }

    /// A page of an `/Actions`-style query: refused above 10 × `PageSize`.
    fn paged(&self, path: &str, q: &[(String, String)], key: &str, rows: Vec<Value>) -> Reply {
        let size = match Self::page_size(q, 20_000) {
            Ok(n) => n,
            Err(r) => return r,
        };
        if rows.len() > 10 * size {
            return Self::error(
                400,
                "Too many results: reduce the date range or increase PageSize",
                Some("PageSize"),
            );
        }
        self.page_of(path, q, key, rows, size)
    }

    /// Page `Page` (1 if absent) of `rows`, `size` to a page, under `key`
    /// in the string-valued `@`-envelope; `@nextpageuri` is the path with
    /// the request's query and the next `Page`, `""` on the last page.
    fn page_of(
        &self,
        path: &str,
        q: &[(String, String)],
        key: &str,
        rows: Vec<Value>,
        size: usize,
    ) -> Reply {
        let page = param(q, "Page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let total = rows.len();
        let num_pages = total.div_ceil(size).max(1);
        let start = (page - 1) * size;
        let mut slice: Vec<Value> = rows.into_iter().skip(start).take(size).collect();
        let base_q: Vec<String> = q
            .iter()
            .filter(|(k, _)| k != "Page")
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    plugin_api::sdk::encode_component(k),
                    plugin_api::sdk::encode_component(v)
                )
            })
            .collect();
        let uri = |p: usize| {
            let mut pairs = base_q.clone();
            pairs.push(format!("Page={p}"));
            format!("{path}?{}", pairs.join("&"))
        };
        let mut body = json!({
            "@page": page.to_string(),
            "@numpages": num_pages.to_string(),
            "@pagesize": size.to_string(),
            "@total": total.to_string(),
            "@start": start.to_string(),
            "@end": (start + slice.len()).saturating_sub(1).to_string(),
            "@uri": uri(page),
            "@firstpageuri": uri(1),
            "@previouspageuri": if page > 1 { uri(page - 1) } else { String::new() },
            "@nextpageuri": if page < num_pages { uri(page + 1) } else { String::new() },
            "@lastpageuri": uri(num_pages),
        });
        match self.next_page {
            NextPage::AsDocumented => {}
            NextPage::Renamed { from } if page >= from => {
                let uri = body["@nextpageuri"].take();
                body.as_object_mut().unwrap().remove("@nextpageuri");
                body["@nextPageUri"] = uri;
            }
            NextPage::Empty { from } if page >= from => body["@nextpageuri"] = json!(""),
            NextPage::Renamed { .. } | NextPage::Empty { .. } => {}
        }
        if self.dropped_row == Some(page) {
            slice.pop();
        }
        body[key] = Value::Array(slice);
        affiliate::json(200, &body, &self.rate_headers())
    }
}

impl FakeApi for ImpactFake {
    fn handle(&mut self, req: &HttpRequest) -> Reply {
        let (path, q) = split_url(&req.url);
        let prefix = format!("/Advertisers/{}/", self.params.account_sid);
        let expected = affiliate::basic_auth(&self.params.account_sid, &self.params.auth_token);
        if req.headers.get("authorization") != Some(&expected) || !path.starts_with(&prefix) {
            return Self::error(401, "Invalid credentials or account SID", None);
        }
        if req.method != "GET" {
            return Self::error(405, "Method not allowed", None);
        }
        let resource = &path[prefix.len()..];
        if resource == "Campaigns" {
            let campaigns: Vec<Value> = self
                .params
                .campaigns
                .iter()
                .map(|c| json!({"Id": c.to_string(), "Name": format!("Campaign {c}")}))
                .collect();
            let size = match Self::page_size(&q, self.campaigns_page_size.max(1)) {
                Ok(n) => n,
                Err(r) => return r,
            };
            return self.page_of(&path, &q, "Campaigns", campaigns, size);
        }
        self.requests += 1;
        if self.throttle.refuse() {
            return affiliate::json(
                429,
                &json!({"Status": "ERROR", "Message": "Rate limit exceeded"}),
                &[
                    ("x-ratelimit-limit", "1000".into()),
                    ("x-ratelimit-remaining", "0".into()),
                    ("x-ratelimit-reset", self.reset_secs.to_string()),
                ],
            );
        }
        let campaign = || -> Result<u64, Reply> {
            param(&q, "CampaignId")
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| Self::error(400, "CampaignId is required", Some("CampaignId")))
        };
        match resource {
            "Actions" => {
                let c = match campaign() {
                    Ok(c) => c,
                    Err(r) => return r,
                };
                // Each date pair given filters its date; none: the last 7
                // days by event date.
                let mut by: Vec<(DateFilter, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
                for (filter, start, end) in [
                    (DateFilter::Event, "ActionDateStart", "ActionDateEnd"),
                    (DateFilter::Updated, "StartDate", "EndDate"),
                    (DateFilter::Locking, "LockingDateStart", "LockingDateEnd"),
                ] {
                    if param(&q, start).is_none() && param(&q, end).is_none() {
                        continue;
                    }
                    match self.range(&q, start, end) {
                        Ok((s, e)) => by.push((filter, s, e)),
                        Err(r) => return r,
                    }
                }
                if by.is_empty() {
                    by.push((DateFilter::Event, self.now - Duration::days(7), self.now));
                }
                let updated = self.last_updated();
                let mut rows: Vec<&Action> = self
                    .actions
                    .iter()
                    .enumerate()
                    .filter(|(i, a)| {
                        a.campaign_id == c
                            && by.iter().all(|(f, s, e)| {
                                let d = match f {
                                    DateFilter::Event => a.event_date,
                                    DateFilter::Updated => {
                                        updated.get(i).copied().unwrap_or(creation_date(a))
                                    }
                                    DateFilter::Locking => a.locking_date,
                                };
                                *s <= d && d <= *e
                            })
                    })
                    .map(|(_, a)| a)
                    .collect();
                // Most recently created first, as Impact documents.
                rows.sort_by(|a, b| b.event_date.cmp(&a.event_date).then(a.id.cmp(&b.id)));
                let rows = rows.into_iter().map(|a| self.render(a)).collect();
                self.paged(&path, &q, "Actions", rows)
            }
            "ActionUpdates" => {
                let c = match campaign() {
                    Ok(c) => c,
                    Err(r) => return r,
                };
                let (s, e) = match self.range(&q, "StartDate", "EndDate") {
                    Ok(r) => r,
                    Err(r) => return r,
                };
                let rows = self
                    .updates
                    .iter()
                    .filter(|u| {
                        self.actions[u.action].campaign_id == c
                            && u.update_date >= s
                            && u.update_date <= e
                    })
                    .map(|u| {
                        // The reference's fields of a changelog row, no more.
                        let a = &self.actions[u.action];
                        json!({
                            "Id": u.id, "ActionId": a.id, "CampaignId": a.campaign_id.to_string(),
                            "ActionTrackerId": "22",
                            "MediaPartnerId": a.partner_id.to_string(), "State": u.state,
                            "StateDetail": "",
                            "UpdateDate": u.update_date.to_rfc3339(),
                            "DeltaPayout": u.delta_payout.to_string(),
                            "DeltaAmount": u.delta_amount.to_string(),
                            "LockingDate": a.locking_date.to_rfc3339(),
                        })
                    })
                    .collect();
                self.paged(&path, &q, "ActionUpdates", rows)
            }
            other => Self::error(404, &format!("Unknown resource {other}"), None),
        }
    }
}

/// Serves the fake over HTTP (run it with
/// [`crate::fakes::server::FakeServer::start`]).
pub fn router(state: Shared<ImpactFake>) -> axum::Router {
    affiliate::router(state)
}
