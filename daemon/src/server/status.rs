//! The `/status` document and its text rendering for `reckon status`.

use crate::schedule::{ConnectorStatus, Daemon};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// What `/status` returns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusReport {
    /// When the daemon started.
    pub started_at: DateTime<Utc>,
    /// The config file it runs with.
    pub config: String,
    /// Bytes the store uses on disk.
    pub store_size_bytes: Option<u64>,
    /// Per connector, in id order.
    pub connectors: Vec<ConnectorStatus>,
    /// Postback endpoints, in id order.
    #[serde(default)]
    pub postbacks: Vec<crate::server::postback::EndpointStatus>,
    /// Each program's last reconcile run since the daemon started, in id
    /// order.
    #[serde(default)]
    pub programs: Vec<crate::reconcile::LastRun>,
    /// Each configured program's stored decisions, in config order:
    /// reconciled, or why its next run must be a full one (and so runs
    /// after the next sync), with its last run's instant and payable count
    /// when its state records them. Read from each program's run state
    /// (one key), not from its decisions.
    #[serde(default)]
    pub reconciliation: Vec<crate::reconcile::ProgramStanding>,
    /// Each program's scheduled statement drafts since the daemon started
    /// (those with a `draft_schedule` that came due), in id order.
    #[serde(default)]
    pub drafts: Vec<crate::payout::hook::DraftRuns>,
    /// Why the store refuses every write, once it does (the daemon stops
    /// then; a restart recovers): [`crate::store::Store::failure`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_failure: Option<String>,
}

impl StatusReport {
    /// The status of a running daemon.
    pub fn of(d: &Daemon) -> StatusReport {
        StatusReport {
            started_at: d.started_at,
            config: d.config_path.display().to_string(),
            store_size_bytes: d.store.size_on_disk().ok(),
            connectors: d.status_snapshot(),
            postbacks: d.postbacks.status(),
            programs: crate::reconcile::last_runs(),
            reconciliation: reconciliation(d),
            drafts: crate::payout::hook::draft_runs(),
            store_failure: d.store.failure(),
        }
    }

    /// Human-readable text: one block per connector, then postbacks,
    /// programs and drafts.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let t = |d: Option<DateTime<Utc>>| {
            d.map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| "-".into())
        };
        let _ = writeln!(
            out,
            "reckon daemon: up since {}, config {}, store {} bytes",
            t(Some(self.started_at)),
            self.config,
            self.store_size_bytes
                .map(|b| b.to_string())
                .unwrap_or_else(|| "?".into())
        );
        if let Some(f) = &self.store_failure {
            let _ = writeln!(
                out,
                "STORE FAILED: {f}\n  the store refuses every write until reckon restarts; the daemon is stopping"
            );
        }
        for c in &self.connectors {
            let state = if !c.enabled {
                "disabled"
            } else if c.running {
                "running"
            } else if c.queued {
                "queued (waiting for a sync slot, `max_concurrent_syncs`)"
            } else {
                "idle"
            };
            let _ = writeln!(
                out,
                "\n{} ({}): {state}, schedule `{}` in {}",
                c.id, c.plugin, c.schedule, c.timezone
            );
            match &c.last_run {
                Some(r) => {
                    let _ = writeln!(
                        out,
                        "  last run:  {} → {} {} ({} pages, {} requests; records {} new, {} changed, {} unchanged)",
                        t(Some(r.started_at)),
                        t(r.ended_at),
                        r.outcome.as_str(),
                        r.pages,
                        r.requests,
                        r.records_new,
                        r.records_changed,
                        r.records_unchanged
                    );
                }
                None => {
                    let _ = writeln!(out, "  last run:  never");
                }
            }
            let _ = writeln!(out, "  records:   {}", c.records);
            let _ = writeln!(out, "  next fire: {}", t(c.next_fire));
            if let Some(r) = c.next_retry {
                let _ = writeln!(
                    out,
                    "  retry at:  {} (failure {} in a row)",
                    t(Some(r)),
                    c.consecutive_failures
                );
            }
            if let Some(e) = &c.last_error {
                // A failure that is not retried (a refused credential)
                // still says how many in a row (QA9 F5).
                let row = if c.next_retry.is_none() && c.consecutive_failures > 0 {
                    format!(" (failure {} in a row)", c.consecutive_failures)
                } else {
                    String::new()
                };
                let _ = writeln!(out, "  last error{row}: {e}");
            }
        }
        if !self.postbacks.is_empty() {
            let _ = writeln!(out, "\npostback endpoints:");
            for p in &self.postbacks {
                match &p.error {
                    None => {
                        let _ = writeln!(out, "  /postback/{} ({} auth): ok", p.id, p.auth);
                    }
                    Some(e) => {
                        let _ = writeln!(
                            out,
                            "  /postback/{} ({} auth): DISABLED, answers 503: {e}",
                            p.id, p.auth
                        );
                    }
                }
            }
        }
        if !self.reconciliation.is_empty() {
            let _ = writeln!(out, "\nreconciliation (stored decisions):");
            for p in &self.reconciliation {
                let _ = writeln!(out, "  {}", standing_line(p, t));
            }
            if self.reconciliation.iter().any(|p| p.needs_run) {
                let _ = writeln!(
                    out,
                    "  (a program that NEEDS A RUN is reconciled after the daemon's next sync, even one that changes nothing, before its drafts and the KPI summaries; or run `reckon reconcile`)"
                );
            }
        }
        if !self.programs.is_empty() {
            let _ = writeln!(out, "\nprograms (last reconcile since start):");
            for p in &self.programs {
                // "payable" of a run counts the claims it judged, not the
                // program's: say so, and give the program's when known.
                let outcomes = p.outcomes_changed.map_or_else(String::new, |n| {
                    format!(" ({n} with a new outcome, basis or payable flag)")
                });
                let total = p
                    .payable_total
                    .map_or_else(String::new, |n| format!("; {n} payable in the program"));
                let _ = match &p.error {
                    None => writeln!(
                        out,
                        "  {}: {} {} run in {}.{:03} s: {} claims judged ({} of them payable), {} decisions changed{outcomes}{total}",
                        p.program,
                        t(Some(p.at)),
                        if p.full { "full" } else { "incremental" },
                        p.millis / 1000,
                        p.millis % 1000,
                        p.claims_judged,
                        p.payable,
                        p.decisions_changed,
                    ),
                    Some(e) => writeln!(out, "  {}: {} FAILED: {e}", p.program, t(Some(p.at))),
                };
            }
        }
        if !self.drafts.is_empty() {
            let _ = writeln!(out, "\nstatement drafts (draft_schedule, since start):");
            for d in &self.drafts {
                let _ = match &d.last_error {
                    None => writeln!(out, "  {}: made {}", d.program, t(d.last_ok_at)),
                    Some(e) => writeln!(
                        out,
                        "  {}: FAILING ({} in a row, last {}; last made {}): {e}",
                        d.program,
                        d.consecutive_failures,
                        t(d.last_error_at),
                        t(d.last_ok_at)
                    ),
                };
            }
        }
        out
    }
}

/// Each configured program's [`crate::reconcile::standing`]: a key read
/// each, taking no lock a sync or a reconcile run holds.
fn reconciliation(d: &Daemon) -> Vec<crate::reconcile::ProgramStanding> {
    let runtime = d.runtime();
    runtime
        .config
        .programs
        .iter()
        .filter_map(|p| {
            crate::reconcile::standing(&d.store, p, runtime.fx_fingerprint.as_deref())
                .map_err(
                    |e| tracing::debug!(program = %p.id, error = %e, "/status: run state not read"),
                )
                .ok()
        })
        .collect()
}

/// One program's line under "reconciliation", e.g. `shop: reconciled;
/// last run: judged at 2026-11-29 08:00:00 UTC, 570 payable in the
/// program, up to store change 1234`.
fn standing_line(
    p: &crate::reconcile::ProgramStanding,
    t: impl Fn(Option<DateTime<Utc>>) -> String,
) -> String {
    let mut line = format!("{}: ", p.program);
    match (p.needs_run, p.running_since) {
        (true, Some(at)) => {
            let _ = write!(line, "NEEDS A RUN (under way since {}): ", t(Some(at)));
        }
        (true, None) => line.push_str("NEEDS A RUN: "),
        (false, _) => {}
    }
    line.push_str(p.state.describe());
    if !p.decisions_read && p.state != crate::reconcile::Standing::Never {
        line.push_str("; until then `kpi` and `reconcile report` say it has not been reconciled");
    }
    let mut last = Vec::new();
    if let Some(at) = p.judged_at {
        last.push(format!("judged at {}", t(Some(at))));
    }
    if let Some(at) = p.store_as_of {
        last.push(format!("store as of {}", t(Some(at))));
    }
    if let Some(n) = p.payable {
        last.push(format!("{n} payable in the program"));
    }
    if let Some(seq) = p.last_seq {
        last.push(format!("up to store change {seq}"));
    }
    if !last.is_empty() {
        let _ = write!(line, "; last run: {}", last.join(", "));
    }
    if let (false, Some(at)) = (p.needs_run, p.running_since) {
        let _ = write!(line, "; a run is under way since {}", t(Some(at)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Soak QA 2026-11-29: with `max_concurrent_syncs = 1`, seven
    /// connectors waiting for the one slot all showed `running`.
    #[test]
    fn a_run_waiting_for_a_sync_slot_shows_as_queued() {
        let at = "2026-11-29T08:00:00Z".parse().unwrap();
        let connector = |id: &str, running: bool, queued: bool| crate::schedule::ConnectorStatus {
            id: id.into(),
            plugin: "example".into(),
            enabled: true,
            schedule: "*/15 * * * * *".into(),
            timezone: "UTC".into(),
            running,
            queued,
            ..Default::default()
        };
        let report = StatusReport {
            started_at: at,
            config: "reckon.toml".into(),
            store_size_bytes: Some(1),
            connectors: vec![connector("a", true, false), connector("b", false, true)],
            postbacks: vec![],
            store_failure: None,
            programs: vec![],
            reconciliation: vec![],
            drafts: vec![],
        };
        let text = report.render();
        assert!(text.contains("a (example): running,"), "{text}");
        assert!(
            text.contains("b (example): queued (waiting for a sync slot, `max_concurrent_syncs`),"),
            "{text}"
        );
    }

    #[test]
    fn programs_render_their_last_run_or_its_failure() {
        let at = "2026-11-29T08:00:00Z".parse().unwrap();
        let run = |program: &str, error: Option<&str>| crate::reconcile::LastRun {
            program: program.into(),
            at,
            millis: 1234,
            full: false,
            claims_judged: 12,
            decisions_changed: 3,
            payable: 2,
            error: error.map(str::to_owned),
            outcomes_changed: Some(1),
            payable_total: Some(20),
        };
        let report = StatusReport {
            started_at: at,
            config: "reckon.toml".into(),
            store_size_bytes: Some(1),
            connectors: vec![],
            postbacks: vec![],
            store_failure: None,
            programs: vec![run("a", None), run("b", Some("store I/O failed"))],
            reconciliation: vec![],
            drafts: vec![
                crate::payout::hook::DraftRuns {
                    program: "a".into(),
                    last_ok_at: Some(at),
                    last_error_at: None,
                    last_error: None,
                    consecutive_failures: 0,
                    ok_total: 3,
                    failed_total: 0,
                },
                crate::payout::hook::DraftRuns {
                    program: "b".into(),
                    last_ok_at: None,
                    last_error_at: Some(at),
                    last_error: Some("program `b`: the payout currency is EUR".into()),
                    consecutive_failures: 2,
                    ok_total: 0,
                    failed_total: 2,
                },
            ],
        };
        let text = report.render();
        // QA9 F5: a failure that is not retried still says how many.
        let refused = StatusReport {
            connectors: vec![ConnectorStatus {
                id: "impact".into(),
                enabled: true,
                consecutive_failures: 2,
                last_error: Some("credentials refused (HTTP 401)".into()),
                ..ConnectorStatus::default()
            }],
            ..report.clone()
        }
        .render();
        assert!(
            refused.contains("  last error (failure 2 in a row): credentials refused (HTTP 401)"),
            "{refused}"
        );
        // QA9 F2: refused drafts show in `reckon status`, not only the log.
        assert!(
            text.contains("statement drafts (draft_schedule, since start):\n  a: made 2026-11-29 08:00:00 UTC\n  b: FAILING (2 in a row, last 2026-11-29 08:00:00 UTC; last made -): program `b`: the payout currency is EUR"),
            "{text}"
        );
        // The run's payable count is of the claims it judged (QA 2026-11-29:
        // "2 payable" read as the program's); the program's follows.
        assert!(text.contains(
            "  a: 2026-11-29 08:00:00 UTC incremental run in 1.234 s: 12 claims judged (2 of them payable), 3 decisions changed (1 with a new outcome, basis or payable flag); 20 payable in the program"
        ), "{text}");
        assert!(
            text.contains("  b: 2026-11-29 08:00:00 UTC FAILED: store I/O failed"),
            "{text}"
        );
        // A daemon of before 2026-11-29 sends neither count: not printed.
        let older = r#"{"program":"c","at":"2026-11-29T08:00:00Z","full":true,"claims_judged":3,"decisions_changed":3,"payable":1,"error":null}"#;
        let older: crate::reconcile::LastRun = serde_json::from_str(older).unwrap();
        let text = StatusReport {
            store_failure: None,
            programs: vec![older],
            drafts: vec![],
            ..report
        }
        .render();
        assert!(
            text.contains("3 claims judged (1 of them payable), 3 decisions changed\n"),
            "{text}"
        );
        // A daemon of before `programs` answers without it.
        let old = r#"{"started_at":"2026-11-29T08:00:00Z","config":"c","store_size_bytes":null,"connectors":[]}"#;
        let parsed: StatusReport = serde_json::from_str(old).unwrap();
        assert!(parsed.programs.is_empty());
    }

    /// Upgrade QA F1: `/status` showed nothing of a program whose decisions
    /// a run must redo; each configured program's standing is shown now.
    #[test]
    fn reconciliation_shows_each_programs_standing() {
        use crate::reconcile::{ProgramStanding, Standing};
        let at: DateTime<Utc> = "2026-11-29T08:00:00Z".parse().unwrap();
        let standing = |program: &str, state: Standing| ProgramStanding {
            program: program.into(),
            state,
            needs_run: state.needs_run(),
            decisions_read: true,
            judged_at: Some(at),
            store_as_of: None,
            payable: Some(570),
            last_seq: Some(1234),
            running_since: None,
        };
        let report = StatusReport {
            started_at: at,
            config: "reckon.toml".into(),
            store_size_bytes: Some(1),
            connectors: vec![],
            postbacks: vec![],
            programs: vec![],
            reconciliation: vec![
                standing("northwind", Standing::Reconciled),
                ProgramStanding {
                    decisions_read: false,
                    judged_at: None,
                    payable: None,
                    ..standing("upgraded", Standing::OlderLayout)
                },
                standing("rules", Standing::OlderRules),
                standing("edited", Standing::ConfigChanged),
                standing("rates", Standing::FxChanged),
                ProgramStanding {
                    store_as_of: Some("2026-10-31T23:59:59Z".parse().unwrap()),
                    ..standing("replayed", Standing::AsOf)
                },
                ProgramStanding {
                    decisions_read: false,
                    judged_at: None,
                    payable: None,
                    last_seq: None,
                    running_since: Some(at),
                    ..standing("new", Standing::Never)
                },
            ],
            drafts: vec![],
            store_failure: None,
        };
        insta::assert_snapshot!(report.render());
        // JSON: one entry per program, `state` in snake case.
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["reconciliation"][1]["state"], "older_layout");
        assert_eq!(json["reconciliation"][1]["needs_run"], true);
        assert_eq!(
            json["reconciliation"][0]["judged_at"],
            "2026-11-29T08:00:00Z"
        );
        // A daemon of before `reconciliation` answers without it; a newer
        // one may name a state this version does not know.
        let old = r#"{"started_at":"2026-11-29T08:00:00Z","config":"c","store_size_bytes":null,"connectors":[]}"#;
        let parsed: StatusReport = serde_json::from_str(old).unwrap();
        assert!(parsed.reconciliation.is_empty());
        let newer: ProgramStanding = serde_json::from_str(
            r#"{"program":"p","state":"reshuffled","needs_run":true,"decisions_read":true,"future_field":1}"#,
        )
        .unwrap();
        assert_eq!(newer.state, Standing::Unknown);
    }
}
