//! QA36 (tester A) postback findings, through the postback router on a
//! loopback port with a real store: ids sent as JSON numbers (A-H2), late
//! deliveries that move a status back (A-H3), `currency` without the
//! amounts it names (A-M7), multipart and mislabelled bodies (A-M8),
//! Unicode spaces inside ids (A-L3) and the status synonyms (A-L4).

use plugin_api::protocol::{ConversionStatus, Record, RecordKind};
use reckon::server::postback::{self, PostbackConfig, PostbackState};
use reckon::store::Store;
use reckon_tests::fakes::server::FakeServer;

const TOKEN: &str = "qa36-postback-token-0123456789abcdef";

fn endpoint(id: &str) -> PostbackConfig {
    let toml = format!(
        "id = \"{id}\"\nauth = \"token\"\nsecret = {{ secret = \"env:UNUSED_IN_TESTS\" }}\ndefault_currency = \"USD\""
    );
    let mut cfg: PostbackConfig = toml::from_str(&toml).unwrap();
    cfg.resolved_secret = Some(TOKEN.into());
    cfg
}

struct Harness {
    _dir: tempfile::TempDir,
    store: Store,
    server: FakeServer,
    client: reqwest::Client,
    id: &'static str,
}

fn harness(id: &'static str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let router = postback::router(PostbackState {
        store: store.clone(),
        postbacks: vec![endpoint(id)],
    });
    Harness {
        _dir: dir,
        store,
        server: FakeServer::start(router),
        client: reqwest::Client::new(),
        id,
    }
}

impl Harness {
    fn url(&self) -> String {
        format!(
            "{}/postback/{}?token={TOKEN}",
            self.server.base_url, self.id
        )
    }
    /// A GET with `query` (already percent-encoded) after the token.
    async fn get(&self, query: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}&{query}", self.url()))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
    /// A POST of `body` as `content_type`.
    async fn post(&self, content_type: &str, body: &str) -> (u16, String) {
        let r = self
            .client
            .post(self.url())
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
    async fn json(&self, body: &str) -> (u16, String) {
        self.post("application/json", body).await
    }
    fn conversion(&self, key: &str) -> Option<(u32, plugin_api::Conversion)> {
        self.store
            .get_record(RecordKind::Conversion, self.id, key)
            .unwrap()
            .map(|s| match s.record {
                Record::Conversion(c) => (s.revision, c),
                other => panic!("not a conversion: {other:?}"),
            })
    }
    fn count(&self) -> u64 {
        self.store
            .count_records(RecordKind::Conversion, Some(self.id))
    }
}

#[track_caller]
fn expect(got: (u16, String), status: u16, needle: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert!(got.1.contains(needle), "expected {needle:?} in {}", got.1);
}

/// A-H2: a JSON serializer that holds ids as doubles writes `555.0`; the
/// reversal it sends must land on conversion `555`, and partner `101.0` is
/// partner `101`. A fraction or an exponent is no id: 400 naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_sent_as_json_numbers_are_the_ids_they_name() {
    let h = harness("qa36_ids");
    expect(
        h.get("transaction_id=555&order_id=ORD-555&amount=100&payout=10&affiliate_id=101&status=approved")
            .await,
        200,
        "\"stored\"",
    );
    expect(
        h.json(r#"{"transaction_id":555.0,"status":"reversed","affiliate_id":101.0,"order_id":"ORD-555"}"#)
            .await,
        200,
        "\"result\":\"updated\",\"transaction_id\":\"555\"",
    );
    let (rev, c) = h.conversion("555").unwrap();
    assert_eq!((rev, c.status), (2, ConversionStatus::Reversed));
    assert_eq!(c.partner_id, "101");
    assert_eq!(h.count(), 1, "no conversion `555.0` beside `555`");

    // A whole number in every id field; `-0`-style oddities aside, the
    // literal's integer part is the id.
    expect(
        h.json(r#"{"tid":"j2","click_id":77.00,"order_id":9001.0,"campaign_id":12,"coupon":5.0,"affiliate_id":101.0,"amount":10}"#)
            .await,
        200,
        "\"stored\"",
    );
    let (_, c) = h.conversion("j2").unwrap();
    assert_eq!(c.click_id.as_deref(), Some("77"));
    assert_eq!(c.order_id.as_deref(), Some("9001"));
    assert_eq!(c.campaign_id.as_deref(), Some("12"));
    assert_eq!(c.coupon.as_deref(), Some("5"));
    assert_eq!(c.partner_id, "101");

    // Each refusal says what is wrong with the number (QA37 R-L6: `1.0e2`
    // is whole, yet was called "not a whole number").
    for (body, param, why) in [
        (
            r#"{"transaction_id":555.5,"affiliate_id":"101"}"#,
            "transaction_id",
            "which has a fraction",
        ),
        (
            r#"{"tid":"j3","affiliate_id":1.01e2}"#,
            "affiliate_id",
            "which has an exponent",
        ),
        (
            r#"{"tid":"j3","affiliate_id":"101","oid":1E3}"#,
            "oid",
            "which has an exponent",
        ),
        (
            r#"{"tid":"j3","affiliate_id":"101","clickid":0.5}"#,
            "clickid",
            "which has a fraction",
        ),
    ] {
        let (status, answer) = h.json(body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer.contains(&format!("parameter `{param}` is the JSON number"))
                && answer.contains(why),
            "{body}: {answer}"
        );
    }
    assert!(h.conversion("j3").is_none());
    // Amounts keep their exact literal (not ids).
    expect(
        h.json(r#"{"tid":"j4","affiliate_id":"101","amount":12.50}"#)
            .await,
        200,
        "\"stored\"",
    );
    let (_, c) = h.conversion("j4").unwrap();
    assert_eq!(c.sale_amount.unwrap().amount.to_string(), "12.50");

    // A query string (and a JSON string) is text the network wrote: `555.0`
    // there is an id of its own, as an order id `2026.001` is.
    expect(
        h.get("tid=555.0&affiliate_id=101").await,
        200,
        "\"transaction_id\":\"555.0\"",
    );
    assert_eq!(h.conversion("555").unwrap().0, 2);
}

/// A-H3: networks retry a postback that timed out, so an `approved` can
/// arrive after the `reversed` that followed it. Without a newer status
/// time, a move back is refused (409, `stale`), not applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_delivery_does_not_move_a_status_back() {
    let h = harness("qa36_late");
    let base = "amount=50&payout=5&affiliate_id=101";
    let back = "would move conversion";

    // C: the reversal arrives first, the older approval after it.
    expect(
        h.get(&format!("tid=o3&{base}&status=reversed")).await,
        200,
        "\"stored\"",
    );
    expect(
        h.get(&format!("tid=o3&{base}&status=approved")).await,
        409,
        back,
    );
    let (rev, c) = h.conversion("o3").unwrap();
    assert_eq!((rev, c.status), (1, ConversionStatus::Reversed));

    // E: the reversal carries a status time, the late approval none.
    expect(
        h.get(&format!(
            "tid=o5&{base}&status=reversed&status_time=2026-01-30T12:00:00Z"
        ))
        .await,
        200,
        "\"stored\"",
    );
    expect(
        h.get(&format!("tid=o5&{base}&status=approved")).await,
        409,
        back,
    );
    // ... or one older than the stored (already refused before QA36).
    expect(
        h.get(&format!(
            "tid=o5&{base}&status=approved&status_time=2026-01-29T00:00:00Z"
        ))
        .await,
        409,
        "is older than the stored",
    );
    assert_eq!(
        h.conversion("o5").unwrap().1.status,
        ConversionStatus::Reversed
    );

    // B: approved, then a late pending.
    expect(
        h.get(&format!("tid=o2&{base}&status=approved")).await,
        200,
        "\"stored\"",
    );
    expect(
        h.get(&format!("tid=o2&{base}&status=pending")).await,
        409,
        back,
    );
    // Rejected → approved (an appeal) without a time, too.
    expect(
        h.get(&format!("tid=o6&{base}&status=rejected")).await,
        200,
        "\"stored\"",
    );
    expect(h.get("tid=o6&status=paid").await, 409, back);

    // The stored status has no status time: a move back needs one after
    // the conversion was first stored.
    expect(
        h.get("tid=o3&status=approved&status_time=2026-01-01T00:00:00Z")
            .await,
        409,
        back,
    );
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    expect(
        h.get(&format!("tid=o3&status=approved&status_time={soon}"))
            .await,
        200,
        "\"updated\"",
    );
    assert_eq!(
        h.conversion("o3").unwrap().1.status,
        ConversionStatus::Approved
    );
    // A newer network status time moves it back on purpose.
    expect(
        h.get("tid=o5&status=approved&status_time=2026-01-31T00:00:00Z")
            .await,
        200,
        "\"updated\"",
    );
    assert_eq!(
        h.conversion("o5").unwrap().1.status,
        ConversionStatus::Approved
    );

    // Forward moves need no status time; lateral ones are applied too.
    expect(
        h.get(&format!("tid=o7&{base}&status=pending")).await,
        200,
        "\"stored\"",
    );
    expect(h.get("tid=o7&status=approved").await, 200, "\"updated\"");
    expect(h.get("tid=o7&status=reversed").await, 200, "\"updated\"");
    expect(h.get("tid=o7&status=rejected").await, 200, "\"updated\"");
    assert_eq!(h.conversion("o7").unwrap().0, 4);
    let stale = postback::counters()
        .into_iter()
        .filter(|(c, o, _)| c == "qa36_late" && *o == "stale")
        .map(|(_, _, n)| n)
        .sum::<u64>();
    assert_eq!(stale, 6);
}

/// A-M7: `currency` names the currency of the amounts sent with it; a
/// conversion's amounts stay in one currency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn currency_is_never_applied_to_only_some_amounts() {
    let h = harness("qa36_cur");
    expect(
        h.get("tid=cc1&amount=100&payout=10&currency=USD&affiliate_id=101")
            .await,
        200,
        "\"stored\"",
    );
    // A currency-only correction was a `duplicate`.
    expect(
        h.get("tid=cc1&currency=EUR").await,
        400,
        "currency EUR differs from the currency of conversion `cc1`'s stored amount (100 USD)",
    );
    // A new amount in a new currency left the payout in USD.
    expect(
        h.get("tid=cc1&amount=100&currency=EUR").await,
        400,
        "stored payout (10 USD), which this postback does not send",
    );
    let (rev, c) = h.conversion("cc1").unwrap();
    assert_eq!(rev, 1);
    assert_eq!(c.commission.unwrap().currency, "USD");
    // Every amount with the new currency: applied.
    expect(
        h.get("tid=cc1&amount=100&payout=10&currency=eur").await,
        200,
        "\"updated\"",
    );
    let (_, c) = h.conversion("cc1").unwrap();
    assert_eq!(c.sale_amount.unwrap().currency, "EUR");
    assert_eq!(c.commission.unwrap().currency, "EUR");
    // The stored currency repeated, or none: as before.
    expect(
        h.get("tid=cc1&currency=EUR&status=approved").await,
        200,
        "\"updated\"",
    );
    expect(h.get("tid=cc1&payout=12").await, 200, "\"updated\"");
    let (_, c) = h.conversion("cc1").unwrap();
    assert_eq!(c.commission.unwrap().currency, "EUR");
}

/// A-M8: a multipart body was read as a form split on `&`, and answered
/// "transaction_id is required" though it carried one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_postbacks_do_not_read_is_refused_naming_the_types_they_do() {
    let h = harness("qa36_body");
    let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"transaction_id\"\r\n\r\nmp1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"affiliate_id\"\r\n\r\n101\r\n--XyZ--\r\n";
    let (status, answer) = h.post("multipart/form-data; boundary=XyZ", multipart).await;
    assert_eq!(status, 415, "{answer}");
    assert!(
        answer.contains("the body is multipart/form-data, which postbacks do not read")
            && answer.contains("application/x-www-form-urlencoded")
            && answer.contains("application/json"),
        "{answer}"
    );
    expect(
        h.post("application/xml", "<transaction_id>x1</transaction_id>")
            .await,
        415,
        "the body is application/xml",
    );
    // A JSON object labelled as a form.
    expect(
        h.post(
            "application/x-www-form-urlencoded",
            r#"{"transaction_id":"mp2","affiliate_id":"101"}"#,
        )
        .await,
        400,
        "the body is a JSON object but is sent as application/x-www-form-urlencoded",
    );
    assert_eq!(h.count(), 0);
    // The bodies postbacks read still are.
    expect(
        h.post(
            "application/x-www-form-urlencoded; charset=utf-8",
            "tid=f1&affiliate_id=101",
        )
        .await,
        200,
        "\"stored\"",
    );
    expect(
        h.post("text/plain", r#"{"tid":"f2","affiliate_id":"101"}"#)
            .await,
        200,
        "\"stored\"",
    );
    assert_eq!(h.count(), 2);
}

/// A-L3: a no-break or em space inside an id looks like an ASCII space and
/// makes another id; it is refused naming the parameter and code point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unicode_space_inside_an_id_is_refused() {
    let h = harness("qa36_space");
    for (query, needle) in [
        ("tid=id%C2%A0nb&affiliate_id=101", "parameter `tid`"),
        (
            "tid=s1&order_id=A%E2%80%83100&affiliate_id=101",
            "parameter `order_id`",
        ),
        (
            "tid=s1&affiliate_id=p%E3%80%80101",
            "parameter `affiliate_id`",
        ),
    ] {
        let (status, answer) = h.get(query).await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert!(
            answer.contains(needle) && answer.contains("holds the space character U+"),
            "{query}: {answer}"
        );
    }
    assert_eq!(h.count(), 0);
    // Around an id they are trimmed; in a name they are text.
    expect(
        h.get("tid=%C2%A0s2%C2%A0&affiliate_id=101&partner_name=Jane%C2%A0Doe")
            .await,
        200,
        "\"transaction_id\":\"s2\"",
    );
    assert_eq!(
        h.conversion("s2").unwrap().1.partner_name.as_deref(),
        Some("Jane\u{a0}Doe")
    );
}

/// A-L4: the 400 for an unknown status lists every accepted synonym,
/// numeric codes included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_status_lists_every_accepted_synonym() {
    let h = harness("qa36_status");
    let (status, answer) = h.get("tid=st1&affiliate_id=101&status=chargeback").await;
    assert_eq!(status, 400, "{answer}");
    for needle in [
        "status \\\"chargeback\\\" is not one of pending, approved, reversed, rejected",
        "pending (new, open, hold, held, 0)",
        "approved (approve, confirmed, valid, paid, locked, 1)",
        "rejected (reject, declined, invalid, fraud, -1)",
    ] {
        assert!(answer.contains(needle), "{needle}: {answer}");
    }
    expect(
        h.get("tid=st1&affiliate_id=101&status=-1").await,
        200,
        "\"stored\"",
    );
    assert_eq!(
        h.conversion("st1").unwrap().1.status,
        ConversionStatus::Rejected
    );
}
