//! Recording a session's HTTP exchanges as a cassette (`reckon sync
//! --record DIR`): every request the plugin made and the answer it was
//! given, in the format `plugin_api::testing::FakeHost` replays (the
//! plugins' `fixtures/*.json`), so a plugin author records a real sync
//! instead of writing fixtures by hand.
//!
//! What is recorded is what crossed the plugin boundary, not the wire: the
//! URL and body as the plugin built them (auth is added by the host after
//! that, so credentials in headers or the query are never in them), and the
//! answer the plugin got after the host's retries (a 429 waited out or a 500
//! retried is not in the cassette; the answer that followed is), with the
//! response headers already masked by the executor. Bodies are stored as
//! text (a cassette holds text; a body that is not UTF-8 is stored lossily
//! and a warning says so). Before it is written, every string in the
//! cassette goes through the session's [`Redactor`], as log lines do: secret
//! values in their plain, URL-encoded and Basic-encoded forms and OAuth2
//! access tokens become `***`, so a platform echoing a credential in a body
//! does not put it in the file (DESIGN §3: the host records; secrets never
//! reach a recording).
//!
//! Beside the cassette, `<name>.open.json` holds the session's
//! `SessionOpen` (window, checkpoints, settings, which hold no secrets, and
//! the clock), so a test replays the session exactly:
//! `FakeHost::replay(cassette).run::<MyConnector>(open)`.
//!
//! What this is not: no replay (that is `plugin_api::testing`), and no
//! record of requests that got no answer (a refused connection or a timeout
//! cannot be expressed in a cassette; they are counted and named in a
//! warning, and a replay stops at the first of them). Requests the host
//! refuses (a host not allowed) are not recorded either: `FakeHost`
//! refuses the same ones itself.

use super::http::Redactor;
use plugin_api::protocol::{Event, HttpFailureKind, HttpRequest, SessionOpen};
use plugin_api::testing::{Cassette, Exchange};
use std::path::{Path, PathBuf};

/// The exchanges of one session, written as a cassette when it ends.
#[derive(Debug)]
pub struct Recorder {
    path: PathBuf,
    exchanges: Vec<Exchange>,
    /// Requests that got no answer (method and URL, as the plugin sent them).
    unanswered: Vec<String>,
    /// Bodies that were not UTF-8.
    lossy: usize,
}

/// Where the session's `SessionOpen` is written beside the cassette `path`:
/// `x.json` → `x.open.json`.
pub fn open_path(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{stem}.open.json"))
}

impl Recorder {
    /// Records into the cassette file `path` (written by [`Recorder::write`]).
    pub fn new(path: PathBuf) -> Self {
        Recorder {
            path,
            exchanges: Vec::new(),
            unanswered: Vec::new(),
            lossy: 0,
        }
    }

    /// Notes the plugin's request and the answer the host is handing it.
    pub fn record(&mut self, req: &HttpRequest, answer: &(Event, Vec<u8>)) {
        match &answer.0 {
            Event::HttpResponse(head) => {
                let body = match std::str::from_utf8(&answer.1) {
                    Ok(text) => text.to_owned(),
                    Err(_) => {
                        self.lossy += 1;
                        String::from_utf8_lossy(&answer.1).into_owned()
                    }
                };
                self.exchanges.push(Exchange {
                    method: req.method.clone(),
                    url: req.url.clone(),
                    request_body: req.body.clone(),
                    status: head.status,
                    headers: head.headers.clone(),
                    body,
                });
            }
            // `FakeHost` refuses hosts that are not allowed by itself.
            Event::HttpFailure {
                kind: HttpFailureKind::NotAllowed,
                ..
            } => {}
            _ => self.unanswered.push(format!("{} {}", req.method, req.url)),
        }
    }

    /// Writes the cassette and, beside it, `open` (see [`open_path`]), every
    /// string masked by `redactor`. Returns the cassette's path.
    pub fn write(self, open: &SessionOpen, redactor: &Redactor) -> std::io::Result<PathBuf> {
        let mask = |s: &str| redactor.redact(s);
        let cassette = Cassette {
            exchanges: self
                .exchanges
                .iter()
                .map(|e| Exchange {
                    method: e.method.clone(),
                    url: mask(&e.url),
                    request_body: e.request_body.as_deref().map(mask),
                    status: e.status,
                    headers: e
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), mask(v)))
                        .collect(),
                    body: mask(&e.body),
                })
                .collect(),
        };
        std::fs::write(&self.path, pretty(&cassette, redactor)?)?;
        std::fs::write(open_path(&self.path), pretty(open, redactor)?)?;
        tracing::info!(cassette = %self.path.display(), exchanges = cassette.exchanges.len(),
            "cassette written");
        if !self.unanswered.is_empty() {
            tracing::warn!(cassette = %self.path.display(), unanswered = self.unanswered.len(),
                first = %mask(&self.unanswered[0]),
                "requests that got no response (refused connection, timeout) are not in the \
                 cassette; a replay stops at the first of them");
        }
        if self.lossy > 0 {
            tracing::warn!(cassette = %self.path.display(), bodies = self.lossy,
                "response bodies that are not UTF-8 were stored lossily; a replay differs there");
        }
        Ok(self.path)
    }
}

/// `value` as pretty JSON, masked again as a whole (a string field was
/// masked before; this catches anything serialised from other fields).
fn pretty(value: &impl serde::Serialize, redactor: &Redactor) -> std::io::Result<String> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    Ok(redactor.redact(&text) + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::http::HttpExecutor;
    use crate::plugins::{HttpPolicy, Secret, SessionTuning};
    use base64::Engine;
    use plugin_api::protocol::{AuthSpec, HttpResponseHead};
    use std::collections::BTreeMap;

    const TOKEN: &str = "tok/SECRET+1";

    fn request(url: &str, body: Option<&str>) -> HttpRequest {
        HttpRequest {
            id: 1,
            method: "POST".into(),
            url: url.into(),
            headers: BTreeMap::new(),
            body: body.map(str::to_owned),
            idempotent: true,
            label: "page".into(),
        }
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> (Event, Vec<u8>) {
        let headers = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        (
            Event::HttpResponse(HttpResponseHead {
                id: 1,
                status,
                headers,
            }),
            body.as_bytes().to_vec(),
        )
    }

    /// The redactor a session with Basic auth has (plain, URL-encoded and
    /// Basic-encoded forms of the secret).
    fn redactor() -> Redactor {
        let mut policy = HttpPolicy::new("net");
        policy.secrets = BTreeMap::from([("token".to_owned(), Secret(TOKEN.to_owned()))]);
        let exec = HttpExecutor::new(
            policy,
            Some(AuthSpec::Basic {
                username: "sid".into(),
                password: "token".into(),
            }),
            &[],
            "https://api.example",
            serde_json::json!({ "sid": "AC1" }),
            SessionTuning::default(),
        );
        exec.redactor().clone()
    }

    #[test]
    fn a_cassette_holds_the_answers_the_plugin_got_with_every_form_of_a_secret_masked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net_2026-11-01_2026-11-02.json");
        let mut rec = Recorder::new(path.clone());
        let encoded: String = url::form_urlencoded::byte_serialize(TOKEN.as_bytes()).collect();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("AC1:{TOKEN}"));
        rec.record(
            &request(
                &format!("https://api.example/v1/x?echo={encoded}"),
                Some(&format!("{{\"token\":\"{TOKEN}\"}}")),
            ),
            &response(
                200,
                &[("x-echo", &format!("Bearer {TOKEN}"))],
                &format!("{{\"seen\":\"Basic {basic}\",\"raw\":\"{TOKEN}\"}}"),
            ),
        );
        // No answer: not in the cassette (it cannot say so); a refused host
        // neither (`FakeHost` refuses it itself).
        for kind in [HttpFailureKind::Timeout, HttpFailureKind::NotAllowed] {
            rec.record(
                &request("https://api.example/v1/y", None),
                &(
                    Event::HttpFailure {
                        id: 2,
                        kind,
                        message: "no".into(),
                    },
                    Vec::new(),
                ),
            );
        }
        rec.record(
            &request("https://api.example/v1/z", None),
            &response(200, &[], "[]"),
        );
        let mut open = plugin_api::testing::open_read(
            "net",
            "https://api.example",
            serde_json::json!({ "sid": "AC1" }),
            plugin_api::protocol::Window {
                from: "2026-11-01".parse().unwrap(),
                to: "2026-11-02".parse().unwrap(),
            },
        );
        open.settings["note"] = serde_json::json!(TOKEN);
        let written = rec.write(&open, &redactor()).unwrap();
        assert_eq!(written, path);

        let text = std::fs::read_to_string(&path).unwrap();
        let open_text = std::fs::read_to_string(open_path(&path)).unwrap();
        for t in [&text, &open_text] {
            for needle in [TOKEN, encoded.as_str(), basic.as_str()] {
                assert!(!t.contains(needle), "{needle} in\n{t}");
            }
        }
        let cassette = Cassette::from_json(&text).unwrap();
        assert_eq!(cassette.exchanges.len(), 2, "{text}");
        let first = &cassette.exchanges[0];
        assert_eq!(first.url, "https://api.example/v1/x?echo=***");
        assert_eq!(first.request_body.as_deref(), Some("{\"token\":\"***\"}"));
        assert_eq!(first.headers["x-echo"], "Bearer ***");
        assert_eq!(first.body, "{\"seen\":\"Basic ***\",\"raw\":\"***\"}");
        assert_eq!(cassette.exchanges[1].url, "https://api.example/v1/z");
        let open_back: SessionOpen = serde_json::from_str(&open_text).unwrap();
        assert_eq!(open_back.window, open.window);
        assert_eq!(open_back.settings["note"], "***");
    }

    #[test]
    fn the_session_is_written_beside_its_cassette() {
        assert_eq!(
            open_path(Path::new("/r/net_2026-11-01_2026-11-02.json")),
            Path::new("/r/net_2026-11-01_2026-11-02.open.json")
        );
    }
}
