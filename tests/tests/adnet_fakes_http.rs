//! The ad-network fakes over real loopback HTTP (axum), with a plain
//! HTTP/1.1 client: routing, auth refusals, headers and paging links work the
//! same as through the in-process bridge.

use reckon_tests::fakes::google_ads::wire::Universe;
use reckon_tests::fakes::server::FakeServer;
use reckon_tests::fakes::{google_ads, meta_ads, tiktok_ads};
use std::io::{Read, Write};
use std::net::TcpStream;

/// Sends one request and returns (status, headers lower-cased, body).
fn http(
    server: &FakeServer,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(server.addr).unwrap();
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-length: {}\r\n",
        server.addr,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let hs: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    let chunked = hs
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (status, hs, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
}

#[test]
fn google_fake_exchanges_the_refresh_token_and_checks_every_credential() {
    let fake = google_ads::GoogleFake::new(google_ads::Config::default(), Universe::new(1, 2, 2));
    let server = FakeServer::start(google_ads::router(fake.clone()));
    let c = google_ads::Credentials::default();
    let form = format!(
        "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token=wrong",
        c.client_id, c.client_secret
    );
    let (status, _, body) = http(
        &server,
        "POST",
        "/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        &form,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_grant"));
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("client_id", &c.client_id)
        .append_pair("client_secret", &c.client_secret)
        .append_pair("refresh_token", &c.refresh_token)
        .finish();
    let (status, _, body) = http(
        &server,
        "POST",
        "/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        &form,
    );
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let query = r#"{"query":"SELECT campaign.id FROM campaign WHERE segments.date BETWEEN '2026-10-01' AND '2026-10-02'"}"#;
    let path = "/v24/customers/1234567890/googleAds:searchStream";
    let (status, _, body) = http(&server, "POST", path, &[("authorization", &bearer)], query);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("DEVELOPER_TOKEN_INVALID"), "{body}");
    let (status, _, body) = http(
        &server,
        "POST",
        path,
        &[
            ("authorization", &bearer),
            ("developer-token", &c.developer_token),
        ],
        query,
    );
    assert_eq!(status, 200, "{body}");
    let batches: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rows = batches[0]["results"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        fake.truth(
            google_ads::wire::Level::Campaign,
            "2026-10-01".parse().unwrap(),
            "2026-10-02".parse().unwrap()
        )
        .len()
    );
    assert!(rows[0]["campaign"]["id"].is_string());
}

#[test]
fn meta_fake_pages_link_back_to_the_server_with_the_token() {
    let config = meta_ads::Config::default();
    let token = config.access_token.clone();
    let fake = meta_ads::MetaFake::new(config, Universe::new(2, 4, 3));
    let server = FakeServer::start(meta_ads::router(fake));
    let (status, _, body) = http(&server, "GET", "/v22.0/act_4242?access_token=nope", &[], "");
    assert_eq!(status, 401);
    assert!(body.contains("\"code\":190"), "{body}");
    let target = format!(
        "/v22.0/act_4242/insights?level=adset&time_increment=1&limit=5&time_range=%7B%22since%22%3A%222026-10-01%22%2C%22until%22%3A%222026-10-01%22%7D&access_token={token}"
    );
    let (status, headers, body) = http(&server, "GET", &target, &[], "");
    assert_eq!(status, 200, "{body}");
    assert!(headers
        .iter()
        .any(|(k, _)| k == "x-business-use-case-usage"));
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 5);
    let next = page["paging"]["next"].as_str().unwrap();
    assert!(next.starts_with(&server.base_url), "{next}");
    assert!(next.contains("access_token="), "{next}");
    assert!(page["data"][0]["spend"].is_string());
}

#[test]
fn tiktok_fake_answers_errors_with_http_200_and_a_code() {
    let config = tiktok_ads::Config::default();
    let token = config.access_token.clone();
    let fake = tiktok_ads::TiktokFake::new(config, Universe::new(3, 2, 2));
    let server = FakeServer::start(tiktok_ads::router(fake));
    let (status, _, body) = http(
        &server,
        "GET",
        "/open_api/v1.3/advertiser/info/?advertiser_ids=%5B%22x%22%5D",
        &[("access-token", "nope")],
        "",
    );
    assert_eq!(status, 200);
    assert!(body.contains("\"code\":40105"), "{body}");
    let (status, _, body) = http(
        &server,
        "GET",
        "/open_api/v1.3/advertiser/info/?advertiser_ids=%5B%227012345678901234567%22%5D",
        &[("access-token", &token)],
        "",
    );
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], 0);
    assert_eq!(v["data"]["list"][0]["timezone"], "America/New_York");
}
