//! # reckon-tests: loopback fakes and shared test support
//!
//! - [`fakes`]: one loopback fake server per platform, faithful to the
//!   platform's documented API (auth, paging, error and throttling shapes,
//!   numbers as strings, restatements), driven by seeded data generators so a
//!   test can ask for 10 rows or 500k and know the ground truth.
//! - `tests/*.rs`: end-to-end suites that run the real `reckon` binary.
//! - `src/bin/reckon-fakes.rs`: the fakes as a binary (used by `reckon demo`).
//!
//! Helpers here find the built `reckon` binary and plugin libraries in the
//! cargo target directory: run `cargo build --workspace` before the tests
//! (the README's test command does).

pub mod demo_world;
pub mod fakes;
pub mod story;

use std::path::{Path, PathBuf};

/// The cargo profile directory the tests were built into (e.g. `target/debug`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test-exe> → target/debug
    let mut dir = exe.parent().expect("deps dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Path of the built `reckon` binary.
pub fn reckon_bin() -> PathBuf {
    let p = profile_dir().join("reckon");
    assert!(
        p.exists(),
        "{} not found: run `cargo build --workspace` before the tests",
        p.display()
    );
    p
}

/// File name of a plugin crate's library, e.g. `example` →
/// `libreckon_plugin_example.so`.
pub fn plugin_file_name(plugin: &str) -> String {
    format!(
        "{}reckon_plugin_{plugin}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// Copies the named plugins' libraries from the target directory into `dir`
/// (a fresh plugin directory for one test) and returns their paths.
pub fn install_plugins(dir: &Path, plugins: &[&str]) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).expect("create plugin dir");
    plugins
        .iter()
        .map(|p| {
            let name = plugin_file_name(p);
            let src = profile_dir().join(&name);
            assert!(
                src.exists(),
                "{} not found: run `cargo build --workspace` before the tests",
                src.display()
            );
            let dst = dir.join(&name);
            std::fs::copy(&src, &dst).expect("copy plugin");
            dst
        })
        .collect()
}

/// Polls `f` until it returns `Some` or the deadline passes (no fixed sleeps).
pub fn poll_until<T>(deadline: std::time::Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = std::time::Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() >= end {
            return None;
        }
        std::thread::yield_now();
        std::thread::park_timeout(std::time::Duration::from_millis(5));
    }
}

/// A long-running `reckon` (mostly `reckon run`) with its stderr in a log
/// file, killed when dropped, so a failing test leaves no daemon behind.
#[derive(Debug)]
pub struct RunningDaemon {
    child: Option<std::process::Child>,
    log: PathBuf,
}

/// `reckon run --config <config>` at `RUST_LOG=info`, for
/// `RunningDaemon::spawn` (add the test's own environment).
pub fn run_command(config: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(reckon_bin());
    command
        .arg("run")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info");
    command
}

impl RunningDaemon {
    /// `reckon --config reckon.toml run` in `dir`, its stderr in
    /// `dir/run.log` (`RUST_LOG` unset: info).
    pub fn start(dir: &Path) -> RunningDaemon {
        let mut command = std::process::Command::new(reckon_bin());
        command
            .current_dir(dir)
            .args(["--config", "reckon.toml", "run"])
            .env_remove("RECKON_CONFIG")
            .env_remove("RUST_LOG");
        RunningDaemon::spawn(&mut command, dir.join("run.log"))
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, std::process::Child::id)
    }

    /// Spawns `command` (arguments and environment already set), stdout
    /// discarded, stderr into a new file at `log`.
    pub fn spawn(command: &mut std::process::Command, log: PathBuf) -> RunningDaemon {
        let file = std::fs::File::create(&log).expect("create the daemon's log");
        let child = command
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start reckon");
        RunningDaemon {
            child: Some(child),
            log,
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `ready` (on the log so far) for up to 20 s until it returns
    /// `Some`; panics with the log if the daemon exits first or the time
    /// runs out (`what`: what was awaited).
    pub fn wait_until<T>(&mut self, what: &str, mut ready: impl FnMut(&str) -> Option<T>) -> T {
        let got = poll_until(std::time::Duration::from_secs(20), || {
            self.assert_running();
            ready(&self.log_text())
        });
        got.unwrap_or_else(|| panic!("{what}: not seen within 20 s; log:\n{}", self.log_text()))
    }

    /// Waits until the log contains each of `needles`.
    pub fn wait_for_log(&mut self, needles: &[&str]) {
        let what = format!("reckon run logging {needles:?}");
        self.wait_until(&what, |log| {
            needles.iter().all(|n| log.contains(n)).then_some(())
        });
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().expect("try_wait").is_some())
    }

    /// Panics, with the log, if the daemon has exited (for polls waiting
    /// on it).
    pub fn assert_running(&mut self) {
        assert!(
            !self.exited(),
            "reckon exited early; log:\n{}",
            self.log_text()
        );
    }

    /// Sends `sig` (`-HUP`, `-TERM`, …) with `kill`.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let sent = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill {sig} {pid} failed");
    }

    /// Sends SIGHUP (reload the config).
    pub fn hup(&self) {
        self.signal("-HUP");
    }

    /// SIGKILL, then waits for the exit (a crash, for tests of what it
    /// leaves behind).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill reckon");
            c.wait().expect("wait");
        }
    }

    /// SIGTERM, then waits for the exit, which must be a success; the log.
    pub fn stop(mut self) -> String {
        self.signal("-TERM");
        let status = self.child.take().expect("running").wait().expect("wait");
        assert!(
            status.success(),
            "reckon exited with {status}; log:\n{}",
            self.log_text()
        );
        self.log_text()
    }
}

impl Drop for RunningDaemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A KPI CSV report without its `generated_at` column (each run states
/// its own time, QA34a A-M2), to compare two runs' reports. Its cells hold
/// no comma before that column (dimensions and metrics), so plain splitting
/// finds it.
pub fn kpi_csv_undated(csv: &str) -> String {
    let at = csv
        .lines()
        .next()
        .and_then(|h| h.split(',').position(|c| c == "generated_at"))
        .expect("generated_at column");
    csv.lines()
        .map(|l| {
            let mut cells: Vec<&str> = l.split(',').collect();
            cells.remove(at);
            cells.join(",") + "\n"
        })
        .collect()
}

/// A free loopback port (bound, then released): for a daemon's `listen`,
/// or a port nothing listens on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .expect("local address")
        .port()
}

/// `GET path` on `127.0.0.1:port` (HTTP/1.1, connection closed after):
/// the status code and body, or `None` if nothing answers within 5 s.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// The synthetic month the payout suites finalise (`SynthSpec::benchmark(200,
/// 7)` from 2026-08-01, long past: every claim is judged for good), stored
/// in a new store at `data`, which is closed again.
pub fn store_august(data: &std::path::Path) {
    let mut spec = reckon::reconcile::synth::SynthSpec::benchmark(200, 7);
    spec.start = chrono::DateTime::parse_from_rfc3339("2026-08-01T00:00:00Z")
        .expect("a time")
        .with_timezone(&chrono::Utc);
    let store = reckon::store::Store::open(data).expect("open the store");
    store_synth(
        &store,
        &reckon::reconcile::synth::generate(&spec),
        spec.start,
    );
}

/// Stores a synthetic program's claims and orders (`reconcile::synth`) as
/// their connectors would, first seen at `at`, and flushes.
pub fn store_synth(
    store: &reckon::store::Store,
    data: &reckon::reconcile::synth::Synth,
    at: chrono::DateTime<chrono::Utc>,
) {
    use reckon::reconcile::synth::{NETWORKS, SHOP};
    for net in NETWORKS {
        let claims: Vec<_> = data
            .claims
            .iter()
            .filter(|c| c.source == net)
            .cloned()
            .map(plugin_api::Record::Conversion)
            .collect();
        store
            .commit_page(net, &claims, None, at)
            .expect("store claims");
    }
    let orders: Vec<_> = data
        .orders
        .iter()
        .cloned()
        .map(plugin_api::Record::Order)
        .collect();
    store
        .commit_page(SHOP, &orders, None, at)
        .expect("store orders");
    store.flush().expect("flush");
}

/// Leaves `program`'s decisions as an upgrade from a release that stored
/// them in the FORMAT-1 layout leaves them: that release's run state
/// (`<program>/s`, `v: 1`, the program's and `[fx]`'s fingerprints, all
/// changes judged) and none of the decisions or indexes this release
/// reads. Written through the store API (`recon` tree), then flushed; the
/// program must have no `/` or `%` in its id (its keys are not escaped).
pub fn age_to_older_layout(
    store: &reckon::store::Store,
    program: &reckon::reconcile::config::ProgramConfig,
    fx: &reckon::fx::FxTable,
) {
    use reckon::reconcile::backend::{ReconBackend, StoreBackend};
    assert!(!program.id.contains(['/', '%']), "{}", program.id);
    let b = StoreBackend::new(store).expect("recon tree");
    let prefix = format!("{}/", program.id);
    let mut batch: Vec<(Vec<u8>, Option<Vec<u8>>)> = b
        .kv_scan(prefix.as_bytes())
        .map(|kv| (kv.expect("scan").0, None))
        .collect();
    let mut old_state = vec![1u8];
    old_state.extend(
        serde_json::to_vec(&serde_json::json!({
            "v": 1, "last_seq": store.last_seq().expect("seq"),
            "program": program.fingerprint(), "fx": fx.fingerprint(),
        }))
        .expect("json"),
    );
    batch.push((format!("{prefix}s").into_bytes(), Some(old_state)));
    b.kv_apply(batch).expect("apply");
    store.flush().expect("flush");
}

/// A config with one program (`shop`: claims of connector `network`,
/// orders of `shop`, disabled) and a 10 % commission rule, for tests of
/// the `statements` commands through the binary.
pub const PAYOUT_CONFIG: &str = r#"
[daemon]
data_dir = "data"
output_dir = "out"
timezone = "Europe/Berlin"

[[connectors]]
id = "network"
plugin = "impact"
schedule = "0 * * * *"
enabled = false

[[connectors]]
id = "shop"
plugin = "orders"
schedule = "0 * * * *"
enabled = false

[[programs]]
id = "shop"
currency = "EUR"
claims = ["network"]
orders = ["shop"]

[programs.commission]
payout_currency = "EUR"
minimum_payout = "25.00"

[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
"#;

/// A disabled connector `id` of the example plugin whose `api_key` is the
/// environment variable `env`, for configs whose claims are in the store
/// already.
pub fn example_affiliate(id: &str, env: &str) -> String {
    format!(
        "[[connectors]]\nid = \"{id}\"\nplugin = \"example\"\nschedule = \"0 * * * *\"\nenabled = false\n\
         [connectors.settings]\napi_key = {{ secret = \"env:{env}\" }}\n\n"
    )
}

/// A daemon config listening on `port` with program `shop-us`: claims of
/// three disabled example-plugin connectors (`impact`, `everflow`, `awin`,
/// their `api_key` the environment variable `key_env`), orders from a file
/// drop (`shop`, disabled), 10 % commission in USD.
pub fn shop_us_daemon_config(port: u16, key_env: &str) -> String {
    let affiliate = |id: &str| example_affiliate(id, key_env);
    format!(
        r#"[daemon]
data_dir = "data"
plugin_dir = "plugins"
output_dir = "out"
listen = "127.0.0.1:{port}"
timezone = "UTC"

{}{}{}[[connectors]]
id = "shop"
plugin = "orders"
schedule = "0 * * * *"
enabled = false
[connectors.settings]
mode = "files"
directory = "drop"

[[programs]]
id = "shop-us"
currency = "USD"
claims = ["impact", "everflow", "awin"]
orders = ["shop"]
return_window_days = 30
no_order_grace_days = 7

[programs.commission]
payout_currency = "USD"

[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
"#,
        affiliate("impact"),
        affiliate("everflow"),
        affiliate("awin")
    )
}

/// The connectors of the synthetic store ([`store_synth`]: claims of
/// `impact`, `everflow` and `awin`, orders of `shop`), disabled, and the
/// program `shop-us` over them, for a config's middle (add `[daemon]`
/// before it and the program's `[programs.match]` or `[programs.commission]`
/// after).
pub const SYNTH_PROGRAM: &str = r#"[[connectors]]
id = "impact"
plugin = "impact"
schedule = "0 * * * *"
enabled = false

[[connectors]]
id = "everflow"
plugin = "everflow"
schedule = "0 * * * *"
enabled = false

[[connectors]]
id = "awin"
plugin = "impact"
schedule = "0 * * * *"
enabled = false

[[connectors]]
id = "shop"
plugin = "orders"
schedule = "0 * * * *"
enabled = false

[[programs]]
id = "shop-us"
currency = "USD"
claims = ["impact", "everflow", "awin"]
orders = ["shop"]
return_window_days = 30
no_order_grace_days = 7
"#;

/// The log lines a `tracing` subscriber writes on this thread as JSON,
/// collected while the guard of [`CapturedLogs::at`] lives.
#[derive(Debug, Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    /// Captures this thread's events at `level` and above.
    pub fn at(level: tracing::Level) -> (CapturedLogs, tracing::subscriber::DefaultGuard) {
        let captured = CapturedLogs::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(level)
            .with_writer(move || writer.clone())
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    /// Everything written, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }

    /// Each line, as JSON.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON log line"))
            .collect()
    }
}

/// One connector of an ad-network bench: its id, plugin, timezone and the
/// lines of its `[connectors.settings]`.
#[derive(Debug, Clone, Copy)]
pub struct BenchConnector<'a> {
    /// Connector id.
    pub id: &'a str,
    /// Plugin id.
    pub plugin: &'a str,
    /// Its `timezone`.
    pub timezone: &'a str,
    /// TOML lines of its settings (secrets as `env:` references).
    pub settings: &'a str,
}

/// A spend backfill through the real daemon, as the ad-network benches run
/// it: a config in `dir` (an empty directory) with connector `c` (secrets
/// from `env`), `reckon sync <id> --from --to`, then `records export` of
/// its spend rows, which must number `truth`. Returns the rows stored and
/// the sync's milliseconds; panics with the sync's log tail when either
/// fails.
pub fn spend_backfill(
    dir: &Path,
    c: BenchConnector<'_>,
    env: &[(&str, &str)],
    (from, to): (&str, &str),
    truth: usize,
) -> (usize, u128) {
    let BenchConnector {
        id,
        plugin,
        timezone,
        settings,
    } = c;
    install_plugins(&dir.join("plugins"), &[plugin]);
    let cfg = dir.join("reckon.toml");
    let config = format!(
        "[daemon]\ndata_dir = \"data\"\nplugin_dir = \"plugins\"\n\n\
         [[connectors]]\nid = \"{id}\"\nplugin = \"{plugin}\"\n\
         schedule = \"0 6 * * *\"\ntimezone = \"{timezone}\"\ntimeout_secs = 120\n\n\
         [connectors.settings]\n{settings}"
    );
    std::fs::write(&cfg, config).unwrap();
    let t = std::time::Instant::now();
    let out = std::process::Command::new(reckon_bin())
        .arg("--config")
        .arg(&cfg)
        .args(["sync", id, "--from", from, "--to", to])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let ms = t.elapsed().as_millis().max(1);
    let log_tail = || {
        let err = String::from_utf8_lossy(&out.stderr);
        let mut tail: Vec<&str> = err.lines().rev().take(8).collect();
        tail.reverse();
        tail.join("\n")
    };
    assert!(out.status.success(), "sync failed: {}", log_tail());
    let export = std::process::Command::new(reckon_bin())
        .arg("--config")
        .arg(&cfg)
        .args(["records", "export", "--kind", "spend", "--source", id])
        .output()
        .unwrap();
    let stored = export.stdout.iter().filter(|b| **b == b'\n').count();
    assert_eq!(
        stored,
        truth,
        "stored rows differ from the fake's truth; sync log tail:\n{}",
        log_tail()
    );
    (stored, ms)
}

/// Asserts that a command ran to success, printing its output when not.
pub fn assert_success(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The spend rows of a `reckon records export --kind spend --format
/// jsonl`, with their revisions, in the export's (key) order.
pub fn exported_spend(stdout: &[u8]) -> Vec<(plugin_api::Spend, u64)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("export line");
            let spend = match serde_json::from_value::<plugin_api::Record>(v["record"].clone())
                .expect("a record")
            {
                plugin_api::Record::Spend(s) => s,
                other => panic!("not spend: {other:?}"),
            };
            (spend, v["revision"].as_u64().expect("revision"))
        })
        .collect()
}

/// Asserts that a `reckon sync` of `connector` against a drifted API
/// (QA35d, QA36) failed with an error holding every one of `parts` and
/// the connector, and set no stored spend row to zero.
pub fn assert_drift_refused(
    drift: &str,
    out: &std::process::Output,
    parts: &[&str],
    connector: &str,
) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{drift}: the sync succeeded on a drifted answer:\n{err}"
    );
    for part in parts.iter().chain(&[connector]) {
        assert!(err.contains(part), "{drift}: `{part}` not in:\n{err}");
    }
    assert!(
        !err.contains("no longer reports") && !err.contains("reported none"),
        "{drift}: stored rows were zeroed:\n{err}"
    );
}

/// A child process (`reckon run`, say) whose stderr log lines are read as
/// they come, on a thread of their own. A failed test leaves no child
/// running: it is killed when dropped.
#[derive(Debug)]
pub struct LoggedChild {
    /// The process.
    pub child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    log: Vec<String>,
}

impl LoggedChild {
    /// Spawns `command` with its stderr piped to the reader.
    pub fn spawn(command: &mut std::process::Command) -> LoggedChild {
        use std::io::BufRead as _;
        let mut child = command
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let (tx, lines) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LoggedChild {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Reads log lines until one contains `needle` (true), or `within`
    /// passes or the log ends (false).
    pub fn wait_for(&mut self, needle: &str, within: std::time::Duration) -> bool {
        let end = std::time::Instant::now() + within;
        while let Some(left) = end.checked_duration_since(std::time::Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else {
                return false;
            };
            let hit = line.contains(needle);
            self.log.push(line);
            if hit {
                return true;
            }
        }
        false
    }

    /// The lines read so far.
    pub fn log(&self) -> String {
        self.log.join("\n")
    }
}

impl Drop for LoggedChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
