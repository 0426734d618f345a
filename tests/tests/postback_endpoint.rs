//! The postback endpoint in process: a real sled store in a temp dir, the
//! postback router on a loopback port, a reqwest client.

use plugin_api::protocol::{ConversionStatus, Record, RecordKind};
use reckon::server::postback::{self, PostbackAuth, PostbackConfig, PostbackState, SecretRef};
use reckon::store::Store;
use reckon_tests::fakes::server::FakeServer;

fn endpoint(id: &str, auth: PostbackAuth) -> PostbackConfig {
    let toml = format!(
        "id = \"{id}\"\nauth = \"{}\"\nsecret = {{ secret = \"env:UNUSED_IN_TESTS\" }}\ndefault_currency = \"USD\"",
        match auth {
            PostbackAuth::Token => "token",
            PostbackAuth::Hmac => "hmac",
        }
    );
    let mut cfg: PostbackConfig = toml::from_str(&toml).unwrap();
    // The config loader resolves the reference; tests hand over the value.
    cfg.resolved_secret = Some("s3cret".into());
    cfg
}

struct Harness {
    _dir: tempfile::TempDir,
    store: Store,
    server: FakeServer,
    client: reqwest::Client,
}

fn harness(endpoints: Vec<PostbackConfig>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let router = postback::router(PostbackState {
        store: store.clone(),
        postbacks: endpoints,
    });
    Harness {
        _dir: dir,
        store,
        server: FakeServer::start(router),
        client: reqwest::Client::new(),
    }
}

impl Harness {
    async fn get(&self, path_query: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path_query}", self.server.base_url))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
    fn conversion(&self, source: &str, key: &str) -> Option<(u32, plugin_api::Conversion)> {
        self.store
            .get_record(RecordKind::Conversion, source, key)
            .unwrap()
            .map(|s| match s.record {
                Record::Conversion(c) => (s.revision, c),
                other => panic!("not a conversion: {other:?}"),
            })
    }
}

fn counter(connector: &str, outcome: &str) -> u64 {
    postback::counters()
        .into_iter()
        .filter(|(c, o, _)| c == connector && *o == outcome)
        .map(|(_, _, n)| n)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_secret_is_rejected_and_counted() {
    let h = harness(vec![endpoint("pb_auth", PostbackAuth::Token)]);
    let (status, body) = h
        .get("/postback/pb_auth?tid=t1&affid=p1&amount=10&token=nope")
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("wrong token"), "{body}");
    let (status, body) = h.get("/postback/pb_auth?tid=t1&affid=p1&amount=10").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("missing token"), "{body}");
    assert!(h.conversion("pb_auth", "t1").is_none());
    assert_eq!(counter("pb_auth", "forbidden"), 1);
    assert_eq!(counter("pb_auth", "unauthorized"), 1);
    let (status, _) = h.get("/postback/no_such?tid=t1").await;
    assert_eq!(status, 404);
    assert!(postback::render_metrics()
        .contains("reckon_postback_requests_total{connector=\"pb_auth\",outcome=\"forbidden\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_postback_is_stored_once_and_a_status_change_is_a_revision() {
    let h = harness(vec![endpoint("pb_replay", PostbackAuth::Token)]);
    let q = "/postback/pb_replay?transaction_id=tx-9&order_id=A-1&sale_amount=120.50&payout=12.05&affiliate_id=p7&status=pending&token=s3cret";
    let (status, body) = h.get(q).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"result\":\"stored\""), "{body}");
    let (status, body) = h.get(q).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"result\":\"duplicate\""), "{body}");
    let (rev, c) = h.conversion("pb_replay", "tx-9").unwrap();
    assert_eq!(rev, 1);
    assert_eq!(c.order_id.as_deref(), Some("A-1"));
    assert_eq!(c.commission.unwrap().amount.to_string(), "12.05");
    assert_eq!(
        h.store
            .count_records(RecordKind::Conversion, Some("pb_replay")),
        1
    );

    // A status-only update keeps the amounts and becomes revision 2.
    let (status, body) = h
        .get("/postback/pb_replay?transaction_id=tx-9&status=reversed&token=s3cret")
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"result\":\"updated\""), "{body}");
    let (rev, c) = h.conversion("pb_replay", "tx-9").unwrap();
    assert_eq!(rev, 2);
    assert_eq!(c.status, ConversionStatus::Reversed);
    assert_eq!(c.sale_amount.unwrap().amount.to_string(), "120.50");
    let old = h
        .store
        .revisions(RecordKind::Conversion, "pb_replay", "tx-9")
        .unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(counter("pb_replay", "stored"), 1);
    assert_eq!(counter("pb_replay", "duplicate"), 1);
    assert_eq!(counter("pb_replay", "updated"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_reason_and_are_counted() {
    let h = harness(vec![endpoint("pb_bad", PostbackAuth::Token)]);
    for (q, reason) in [
        ("affid=p&amount=1", "transaction_id is required"),
        (
            "tid=a&affid=p&amount=12.3.4",
            "amount \\\"12.3.4\\\" is not a decimal",
        ),
        ("tid={transaction_id}&affid=p", "did not substitute"),
        ("tid=b&amount=5", "partner_id is required"),
        // The 400s list every accepted name (README's table too).
        ("affid=p&amount=1", "actionid"),
        ("affid=p&amount=1", "irclickid"),
        ("tid=c&amount=5", "mediapartnerid"),
        // A repeated parameter with different values is ambiguous.
        (
            "transaction_id=t11&transaction_id=t12&affid=p&amount=1",
            "parameter `transaction_id` is given more than once",
        ),
        // A conversion from the future is a broken macro or clock.
        (
            "tid=d&affid=p&amount=1&timestamp=2099-01-01T00:00:00Z",
            "in the future",
        ),
    ] {
        let (status, body) = h.get(&format!("/postback/pb_bad?{q}&token=s3cret")).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body.contains(reason), "{q}: {body}");
    }
    assert_eq!(counter("pb_bad", "bad_request"), 9);
    assert_eq!(
        h.store
            .count_records(RecordKind::Conversion, Some("pb_bad")),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_signed_json_and_form_bodies_are_accepted_and_tampering_is_not() {
    let h = harness(vec![endpoint("pb_hmac", PostbackAuth::Hmac)]);
    let url = format!("{}/postback/pb_hmac", h.server.base_url);
    let json_body = r#"{"transaction_id":"h1","amount":42.5,"currency":"EUR","partner_id":"p1","status":"approved","event":"sale","timestamp":"2026-11-20T10:00:00+01:00"}"#;
    let sig = postback::sign("s3cret", json_body.as_bytes());
    let r = h
        .client
        .post(&url)
        .header("content-type", "application/json")
        .header("x-signature", format!("sha256={sig}"))
        .body(json_body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    let (_, c) = h.conversion("pb_hmac", "h1").unwrap();
    assert_eq!(c.sale_amount.unwrap().to_string(), "42.5 EUR");
    assert_eq!(c.occurred_at.to_rfc3339(), "2026-11-20T09:00:00+00:00");
    assert_eq!(c.status, ConversionStatus::Approved);

    // The prefix in upper case too (QA28-E F4: "signature is not hex").
    let upper_body = json_body.replace("\"h1\"", "\"h1u\"");
    let sig = postback::sign("s3cret", upper_body.as_bytes());
    let r = h
        .client
        .post(&url)
        .header("content-type", "application/json")
        .header("x-signature", format!("SHA256={}", sig.to_uppercase()))
        .body(upper_body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    assert!(h.conversion("pb_hmac", "h1u").is_some());

    let form = "transaction_id=h2&amount=1&partner_id=p1";
    let sig = postback::sign("s3cret", form.as_bytes());
    let r = h
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-signature", &sig)
        .body(form.replace("amount=1", "amount=100"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(h.conversion("pb_hmac", "h2").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_postbacks_are_all_stored_exactly_once() {
    let h = std::sync::Arc::new(harness(vec![endpoint("pb_load", PostbackAuth::Token)]));
    let mut tasks = Vec::new();
    // 1,000 distinct conversions plus 200 replays of some of them, all at once.
    for i in 0..1200u32 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let n = if i < 1000 { i } else { (i - 1000) * 5 };
            h.get(&format!(
                "/postback/pb_load?tid=c{n}&affid=p{}&amount={}.{:02}&token=s3cret",
                n % 7,
                n,
                n % 100
            ))
            .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        ok += 1;
    }
    assert_eq!(ok, 1200);
    assert_eq!(
        h.store
            .count_records(RecordKind::Conversion, Some("pb_load")),
        1000
    );
    for n in [0u32, 5, 499, 999] {
        let (rev, c) = h.conversion("pb_load", &format!("c{n}")).unwrap();
        assert_eq!(rev, 1, "c{n} was written more than once");
        assert_eq!(c.partner_id, format!("p{}", n % 7));
    }
    assert_eq!(counter("pb_load", "stored"), 1000);
    assert_eq!(counter("pb_load", "duplicate"), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_whose_secret_cannot_be_resolved_answers_503_and_stores_nothing() {
    let mut cfg = endpoint("pb_nosecret", PostbackAuth::Token);
    cfg.resolved_secret = None;
    cfg.secret = SecretRef {
        secret: "env:RECKON_TEST_PB_SECRET_NEVER_SET".into(),
    };
    let h = harness(vec![cfg]);
    let (status, body) = h
        .get("/postback/pb_nosecret?tid=t1&affid=p1&amount=1&token=anything")
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("misconfigured on the server"), "{body}");
    assert!(!body.contains("RECKON_TEST_PB_SECRET_NEVER_SET"), "{body}");
    assert!(h.conversion("pb_nosecret", "t1").is_none());
    assert_eq!(counter("pb_nosecret", "misconfigured"), 1);
    // Such an endpoint is listed as disabled (for `/status` and `/healthz`).
    let mut cfg = endpoint("pb_nosecret", PostbackAuth::Token);
    cfg.resolved_secret = None;
    cfg.secret = SecretRef {
        secret: "env:RECKON_TEST_PB_SECRET_NEVER_SET".into(),
    };
    let status = postback::Endpoints::new(vec![cfg]).status();
    assert!(!status[0].enabled);
    assert!(
        status[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("RECKON_TEST_PB_SECRET_NEVER_SET")),
        "{status:?}"
    );
}

/// QA's hostile postbacks (each was a 200 that stored a wrong or ambiguous
/// conversion): now each is a 400 naming the parameter, and nothing is
/// stored. Every case is checked and the wrong ones listed together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_postbacks_are_refused_and_store_nothing() {
    let h = harness(vec![endpoint("pb_hostile", PostbackAuth::Token)]);
    let url = format!("{}/postback/pb_hostile?token=s3cret", h.server.base_url);
    let mut wrong = Vec::new();
    let mut expect = |case: &str, (status, body): (u16, String), reason: &str| {
        if status != 400 || !body.contains(reason) {
            wrong.push(format!(
                "{case}: {status} {body} (expected 400 with {reason:?})"
            ));
        }
    };
    for (body, reason) in [
        // A JSON key twice: 1000 was stored.
        (
            r#"{"transaction_id":"v2","amount":"10","amount":"1000","affiliate_id":"7"}"#,
            "parameter `amount` is given more than once with different values",
        ),
        // An object amount: the claim was stored without an amount.
        (
            r#"{"transaction_id":"v3","amount":{"x":1},"affiliate_id":"7"}"#,
            "parameter `amount` is an object",
        ),
    ] {
        let r = h
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let got = (r.status().as_u16(), r.text().await.unwrap());
        expect(body, got, reason);
    }
    for (q, reason) in [
        // An unknown event became `other`.
        (
            "tid=e1&affid=p&event=bogus",
            "event \\\"bogus\\\" is not one of",
        ),
        (
            "tid=e2&affid=p&event=leads",
            "event \\\"leads\\\" is not one of",
        ),
        // Times before 2000 (1970 from a small epoch value).
        ("tid=t1&affid=p&timestamp=86400", "before 2000-01-01"),
        // Macros of other syntaxes collapsed into one conversion.
        ("tid=%5BTRANSACTION_ID%5D&affid=p", "did not substitute"),
        ("tid=%25%25TID%25%25&affid=p", "did not substitute"),
        ("tid=%24%7Btid%7D&affid=p", "did not substitute"),
        ("tid=%3Ctid%3E&affid=p", "did not substitute"),
        ("tid=null&affid=p", "did not substitute"),
        ("tid=undefined&affid=p", "did not substitute"),
        ("tid=m1&affid=%5Baffiliate_id%5D", "did not substitute"),
        // Not UTF-8: different ids became one U+FFFD id.
        (
            "tid=u1&affiliate_id=%FF",
            "parameter `affiliate_id` is not valid UTF-8",
        ),
        // Exponents and digit separators.
        ("tid=n1&affid=p&amount=1e3", "scientific notation"),
        ("tid=n2&affid=p&amount=1_000", "digit separator"),
    ] {
        let got = h
            .get(&format!("/postback/pb_hostile?{q}&token=s3cret"))
            .await;
        expect(q, got, reason);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        h.store
            .count_records(RecordKind::Conversion, Some("pb_hostile")),
        0
    );

    // `timestamp=0` (an unfilled macro) is the time received, not 1970.
    let before = chrono::Utc::now() - chrono::Duration::minutes(1);
    let (status, body) = h
        .get("/postback/pb_hostile?tid=z1&affid=p&timestamp=0&token=s3cret")
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, c) = h.conversion("pb_hostile", "z1").unwrap();
    assert!(c.occurred_at >= before, "{}", c.occurred_at);
}

impl Harness {
    /// A POST with `body` signed with the test secret in `X-Signature`.
    async fn post_signed(&self, path_query: &str, body: &str) -> (u16, String) {
        let r = self
            .client
            .post(format!("{}{path_query}", self.server.base_url))
            .header("content-type", "application/json")
            .header("x-signature", postback::sign("s3cret", body.as_bytes()))
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

/// QA10 H1: a captured signed POST replayed with fields added in its query
/// string changed the partner, the payout and the currency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_post_with_fields_in_its_query_string_is_refused() {
    let h = harness(vec![endpoint("pb_h1", PostbackAuth::Hmac)]);
    let body = r#"{"transaction_id":"h1","order_id":"o-h1","amount":"10.00","partner_id":"p1","status":"pending"}"#;
    let (status, answer) = h.post_signed("/postback/pb_h1", body).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = h
        .post_signed(
            "/postback/pb_h1?payout=9999&partner_id=attacker&currency=EUR&event=lead",
            body,
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.contains("`currency`, `event`, `partner_id`, `payout`")
            && answer.contains("signature covers the body only"),
        "{answer}"
    );
    // The signature in the query instead of the header: the same.
    let sig = postback::sign("s3cret", body.as_bytes());
    let r = h
        .client
        .post(format!(
            "{}/postback/pb_h1?signature={sig}&affid=attacker",
            h.server.base_url
        ))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let (rev, c) = h.conversion("pb_h1", "h1").unwrap();
    assert_eq!(rev, 1);
    assert_eq!(c.partner_id, "p1");
    assert_eq!(c.sale_amount.unwrap().to_string(), "10.00 USD");
    assert_eq!(c.commission, None);
    assert_eq!(counter("pb_h1", "bad_request"), 2);
    // The signature and ignored parameters (sub ids) may be in the query.
    let r = h
        .client
        .post(format!(
            "{}/postback/pb_h1?signature={sig}&sub2=x",
            h.server.base_url
        ))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("\"duplicate\""));
    // A bodiless request signs its whole query: its fields are covered.
    let q = "tid=h2&affid=p2&amount=5";
    let (status, answer) = h
        .get(&format!(
            "/postback/pb_h1?{q}&signature={}",
            postback::sign("s3cret", q.as_bytes())
        ))
        .await;
    assert_eq!(status, 200, "{answer}");
}

/// QA10 M1: replaying an older postback after a change rolled the
/// conversion back (`approved` → `reversed` → replayed `approved`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_older_postback_is_refused_as_stale_and_a_newer_status_time_restores() {
    let h = harness(vec![
        endpoint("pb_m1h", PostbackAuth::Hmac),
        endpoint("pb_m1t", PostbackAuth::Token),
    ]);
    let approved = r#"{"transaction_id":"r1","order_id":"o-r1","amount":"10.00","partner_id":"p1","status":"approved"}"#;
    let reversed = r#"{"transaction_id":"r1","status":"reversed"}"#;
    let mut answers = Vec::new();
    for b in [approved, reversed, approved, reversed] {
        answers.push(h.post_signed("/postback/pb_m1h", b).await);
    }
    assert_eq!(answers[0].0, 200, "{}", answers[0].1);
    assert!(answers[1].1.contains("\"updated\""), "{}", answers[1].1);
    assert_eq!(answers[2].0, 409, "{}", answers[2].1);
    assert!(
        answers[2].1.contains("earlier, superseded revision")
            && answers[2].1.contains("status_time"),
        "{}",
        answers[2].1
    );
    assert!(answers[3].1.contains("\"duplicate\""), "{}", answers[3].1);
    let (rev, c) = h.conversion("pb_m1h", "r1").unwrap();
    assert_eq!((rev, c.status), (2, ConversionStatus::Reversed));
    assert_eq!(counter("pb_m1h", "stale"), 1);
    assert!(postback::render_metrics()
        .contains("reckon_postback_requests_total{connector=\"pb_m1h\",outcome=\"stale\"} 1"));

    // Token auth: the same, with status times. A deliberate restore carries
    // a newer status time and is applied; an older one is stale.
    let t = "/postback/pb_m1t?token=s3cret&tid=r2&affid=p1&amount=10";
    let pending = format!("{t}&status=pending");
    let approved = format!("{t}&status=approved&status_time=2026-01-02T00:00:00Z");
    let (s1, _) = h.get(&pending).await;
    let (s2, _) = h.get(&approved).await;
    let (s3, a3) = h.get(&pending).await;
    assert_eq!((s1, s2, s3), (200, 200, 409), "{a3}");
    let (status, answer) = h
        .get(&format!(
            "{t}&status=reversed&status_time=2026-01-01T00:00:00Z"
        ))
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer.contains("is older than the stored"), "{answer}");
    let back = format!("{t}&status=pending&status_time=2026-01-03T00:00:00Z");
    let (status, answer) = h.get(&back).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"updated\""), "{answer}");
    let (status, answer) = h.get(&back).await;
    assert!(
        status == 200 && answer.contains("\"duplicate\""),
        "{answer}"
    );
    let (rev, c) = h.conversion("pb_m1t", "r2").unwrap();
    assert_eq!((rev, c.status), (3, ConversionStatus::Pending));
    assert_eq!(
        c.status_changed_at.unwrap().to_rfc3339(),
        "2026-01-03T00:00:00+00:00"
    );
    assert_eq!(counter("pb_m1t", "stale"), 2);
}

/// QA10 L5: an unsubstituted macro as the credential was a 403 "wrong token".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_that_is_an_unsubstituted_macro_is_a_400() {
    let h = harness(vec![
        endpoint("pb_l5t", PostbackAuth::Token),
        endpoint("pb_l5h", PostbackAuth::Hmac),
    ]);
    for (path, reason) in [
        (
            "/postback/pb_l5t?tid=m1&affid=p&token={token}",
            "parameter `token` looks like a macro",
        ),
        (
            "/postback/pb_l5t?tid=m1&affid=p&token=%23token%23",
            "parameter `token` looks like a macro",
        ),
        (
            "/postback/pb_l5h?tid=m1&affid=p&signature={signature}",
            "parameter `signature` looks like a macro",
        ),
    ] {
        let (status, body) = h.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains(reason), "{path}: {body}");
    }
    let r = h
        .client
        .get(format!(
            "{}/postback/pb_l5t?tid=m1&affid=p",
            h.server.base_url
        ))
        .header("x-postback-token", "[TOKEN]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("header `x-postback-token` looks like a macro"));
    assert_eq!(counter("pb_l5t", "bad_request"), 3);
    assert_eq!(counter("pb_l5h", "bad_request"), 1);
    assert_eq!(counter("pb_l5t", "forbidden"), 0);
    assert!(h.conversion("pb_l5t", "m1").is_none());
}

/// QA28-E F2: axum answers HEAD with the GET handler, so a HEAD (a link
/// checker probing the URL) stored a sale. It is refused, 405 with
/// `Allow: GET, POST`, and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_request_stores_nothing() {
    let h = harness(vec![endpoint("pb_head", PostbackAuth::Token)]);
    let r = h
        .client
        .head(format!(
            "{}/postback/pb_head?tid=h1&affid=p1&amount=10&token=s3cret",
            h.server.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers()["allow"], "GET, POST");
    assert!(h.conversion("pb_head", "h1").is_none());
    // The same as a GET is stored.
    let (status, body) = h
        .get("/postback/pb_head?tid=h1&affid=p1&amount=10&token=s3cret")
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(h.conversion("pb_head", "h1").is_some());
}

/// QA28-E F3: a body over the limit was answered by the HTTP layer in
/// plain text, neither counted nor logged as the endpoint's. Now it is a
/// JSON 413 counted as `too_large`, and nothing is stored; a body within
/// the limit is read as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused_as_json_and_counted() {
    let h = harness(vec![endpoint("pb_big", PostbackAuth::Token)]);
    let url = format!("{}/postback/pb_big?token=s3cret", h.server.base_url);
    let before = counter("pb_big", "too_large");
    let big = format!("tid=b1&affid=p1&amount=10&sub1={}", "A".repeat(2_200_000));
    let r = h
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["error"],
        "the body is larger than 2 MiB; a postback is a few fields"
    );
    assert_eq!(counter("pb_big", "too_large"), before + 1);
    assert!(h.conversion("pb_big", "b1").is_none());
    let r = h
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("tid=b2&affid=p1&amount=10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    assert!(h.conversion("pb_big", "b2").is_some());
}
