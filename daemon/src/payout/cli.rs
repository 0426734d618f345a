//! `reckon statements generate|finalize|show|verify|trace`: a thin shell
//! over [`super::lifecycle`] (and [`super::trace`], [`super::terms`]). Partner ids in what it prints (the `show` table,
//! warnings, `verify` problems) go through [`visible`]: a right-to-left
//! override or a newline in an id cannot reorder or split the lines.
use super::book::StoreBook;
use super::lifecycle::{self, Decisions, Inputs, StoredDecisions};
use crate::cli::Console;
use crate::display_safe::visible;
use anyhow::Context as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// `reckon statements` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum StatementsCommand {
    /// Generate (or regenerate) the draft statements of a period. For a
    /// finalised period, restore its files byte for byte from the store.
    Generate(PeriodArgs),
    /// Finalise a period: freeze, hash and record its statements. Only a
    /// period that has ended, or with --early the one running now.
    Finalize(FinalizeArgs),
    /// Show the recorded statements of a period.
    Show(ShowArgs),
    /// Recompute the hashes of a period's files and compare them with the
    /// store; exits with failure on any mismatch.
    Verify(PeriodArgs),
    /// Where a claim was paid: every line and adjustment of one claim on
    /// the program's finalised statements and current drafts, with the net
    /// the finalised periods credited. Exits with failure when the claim is
    /// on no statement.
    Trace(TraceArgs),
}

/// `statements show`: program, period, and what to show.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Program and period.
    #[command(flatten)]
    pub period: PeriodArgs,
    /// Also print the terms recorded when the period was finalised: the
    /// payout config (rules, overrides, bonuses, minimum payout, period,
    /// currency), the matching settings and `[fx]` with a fingerprint of
    /// its rates.
    #[arg(long)]
    pub terms: bool,
}

/// `statements trace`: program and claim.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// Program id (a `[[programs]]` entry with a `[programs.commission]`).
    #[arg(long)]
    pub program: String,
    /// The claim: `<network>/<claim id>`, the network being its claims
    /// connector id (as `reckon reconcile report` lists it).
    #[arg(long, value_parser = parse_claim)]
    pub claim: ClaimRef,
    /// `text` (a table) or `json`.
    #[arg(long, value_enum, default_value = "text")]
    pub format: TraceFormat,
}

/// A claim named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRef {
    /// The claims connector id.
    pub network: String,
    /// The claim id at the network (may hold `/`).
    pub claim_id: String,
}

fn parse_claim(s: &str) -> Result<ClaimRef, String> {
    match s.split_once('/') {
        Some((n, c)) if !n.is_empty() && !c.is_empty() => Ok(ClaimRef {
            network: n.to_owned(),
            claim_id: c.to_owned(),
        }),
        _ => Err(format!(
            "`{s}` is not `<network>/<claim id>` (e.g. `impact/C-108`: the claims connector id, a slash, the claim id)"
        )),
    }
}

/// Output of `statements trace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceFormat {
    /// A table.
    Text,
    /// The trace as one JSON document.
    Json,
}

/// Program and period.
#[derive(Debug, clap::Args)]
pub struct PeriodArgs {
    /// Program id (a `[[programs]]` entry with a `[programs.commission]`).
    #[arg(long)]
    pub program: String,
    /// Period: `YYYY-MM` (monthly), `YYYY-MM-H1`/`H2` (semi-monthly) or
    /// `YYYY-Www` (weekly), as configured.
    #[arg(long, value_parser = crate::cli::parse_statement_period)]
    pub period: String,
}

/// Program and period to finalise.
#[derive(Debug, clap::Args)]
pub struct FinalizeArgs {
    /// Program and period.
    #[command(flatten)]
    pub period: PeriodArgs,
    /// Finalise the period running now (its end is still to come): claims
    /// converted from now until its end go to the next period.
    #[arg(long)]
    pub early: bool,
}

/// Runs a statements subcommand.
pub fn run(
    config_path: &Path,
    cmd: StatementsCommand,
    con: &mut Console,
) -> anyhow::Result<ExitCode> {
    let config = crate::config::load(config_path)?;
    let (data_dir, output_dir) = (&config.daemon.data_dir, &config.daemon.output_dir);
    let program_id = match &cmd {
        StatementsCommand::Finalize(f) => &f.period.program,
        StatementsCommand::Show(s) => &s.period.program,
        StatementsCommand::Generate(a) | StatementsCommand::Verify(a) => &a.program,
        StatementsCommand::Trace(t) => &t.program,
    };
    let program = config
        .programs
        .iter()
        .find(|p| &p.id == program_id)
        .with_context(|| {
            let ids: Vec<&str> = config.programs.iter().map(|p| p.id.as_str()).collect();
            format!(
                "no program `{}` in [[programs]] of {}{}",
                program_id,
                config_path.display(),
                crate::config::source::not_configured(program_id, &ids)
            )
        })?;
    let commission = program
        .commission
        .clone()
        .ok_or_else(|| lifecycle::PayoutError::NoCommission(program.id.clone()))?
        .with_default_timezone(config.daemon.timezone.0);
    let commission = &commission;
    // Statements are written to output_dir: one this user may not write is
    // the config error it is before anything runs (QA28-A F3: the store
    // was reconciled first).
    if matches!(
        cmd,
        StatementsCommand::Generate(_) | StatementsCommand::Finalize(_)
    ) {
        if let Some(e) = crate::config::dirs::output_dir_problem(&config) {
            anyhow::bail!("{e}");
        }
    }
    // `show` and `verify` only read: a mistyped data_dir is an error, not
    // a new empty store that has "no statements recorded" (QA).
    let store = match cmd {
        StatementsCommand::Show(_) | StatementsCommand::Verify(_) | StatementsCommand::Trace(_) => {
            con.existing_store(data_dir)?
        }
        _ => con.store(data_dir)?,
    };
    let book = StoreBook::open(&store)?;
    match cmd {
        StatementsCommand::Generate(a) => {
            let today = chrono::Utc::now()
                .with_timezone(&commission.tz())
                .date_naive();
            lifecycle::check_generatable(&book, &a.program, commission, &a.period, today)?;
            // Writing a finalised period's files back pays nothing new: a
            // settled config change does not stand in its way (QA8 F5).
            let period = lifecycle::named_period(&book, &a.program, commission, &a.period)?;
            let finalised = lifecycle::is_finalised(&book, &a.program, &period.to_string())?;
            if !finalised {
                lifecycle::check_settled(&book, program, commission)?;
            }
            // Before the reconcile run writes decisions (finance QA13 F4).
            super::issued::check(&book, output_dir, &a.program)?;
            let fx = crate::reconcile::fx_table(&config)?;
            // A finalised period's files come from the store as issued: no
            // decision is read, so none is re-judged (QA18 A6: restoring
            // from an archived store wrote today's decisions into it).
            if !finalised {
                reconcile_first(&store, program, &fx, con)?;
            }
            let decisions = StoredDecisions {
                store: &store,
                program: &a.program,
            };
            let inputs = inputs(&a.program, commission, &decisions, &fx, &book, output_dir);
            let report = lifecycle::generate(&inputs, &a.period)?;
            if !finalised {
                for w in partly_synced(&store, program, commission, &period, false)? {
                    writeln!(con.err, "warning: {}", visible(&w))?;
                }
            }
            print_report(&report, &commission.payout_currency, con)?;
            Ok(ExitCode::SUCCESS)
        }
        StatementsCommand::Finalize(FinalizeArgs { period: a, early }) => {
            let today = chrono::Utc::now()
                .with_timezone(&commission.tz())
                .date_naive();
            lifecycle::check_finalizable(&book, &a.program, commission, &a.period, today, early)?;
            lifecycle::check_settled(&book, program, commission)?;
            // Before the reconcile run writes decisions (finance QA13 F4).
            super::issued::check(&book, output_dir, &a.program)?;
            let fx = crate::reconcile::fx_table(&config)?;
            let period = lifecycle::named_period(&book, &a.program, commission, &a.period)?;
            // As `generate`: finalising again only restores the files.
            let finalised = lifecycle::is_finalised(&book, &a.program, &period.to_string())?;
            if !finalised {
                reconcile_first(&store, program, &fx, con)?;
            }
            let decisions = StoredDecisions {
                store: &store,
                program: &a.program,
            };
            let inputs = inputs(&a.program, commission, &decisions, &fx, &book, output_dir);
            // Before its end (`--early`): the statements say when they
            // were closed (QA31-A L4).
            let early = (today < period.end).then(|| {
                // To the second, as the CSV and HTML give it.
                use chrono::SubsecRound as _;
                chrono::Utc::now().trunc_subsecs(0)
            });
            // Recorded with the period: what it was paid under (QA33d M6).
            let terms =
                super::terms::TermsInForce::of(program, commission, config.fx.as_ref(), &fx);
            let report = lifecycle::finalize_with_terms(&inputs, &a.period, early, &terms)?;
            if !finalised {
                for w in partly_synced(&store, program, commission, &period, true)? {
                    writeln!(con.err, "warning: {}", visible(&w))?;
                }
            }
            print_report(&report, &commission.payout_currency, con)?;
            Ok(ExitCode::SUCCESS)
        }
        StatementsCommand::Trace(t) => trace(&book, output_dir, program, &t, &store, con),
        StatementsCommand::Show(ShowArgs { period: a, terms }) => {
            let shown = lifecycle::show(&book, output_dir, &a.program, &a.period)
                .map_err(|e| of_its_kind(e, commission.period, &a.period))?;
            use std::fmt::Write as _;
            let when = match shown.record.recorded_at {
                Some(t) => format!(
                    ", {} {}",
                    match shown.record.status {
                        super::model::Status::Finalised => "finalised",
                        super::model::Status::Draft => "generated",
                    },
                    // In full, as `--as-of` takes it: cut to the second,
                    // a sync stored in the same second before the run
                    // judged otherwise (QA32-D F4).
                    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                ),
                None => ", recorded before 2026-11-30 (no time kept)".to_owned(),
            };
            let mut text = format!(
                "{} {}: {} (version {}), {} statements{when}\n{:<24} {:>14} {:<4} {:>12} {:>12}  content hash\n",
                shown.record.program,
                shown.record.period,
                shown.record.status.as_str(),
                shown.record.version,
                shown.rows.len(),
                "partner",
                "payable",
                "cur",
                "carried in",
                "carried out"
            );
            for r in &shown.rows {
                let _ = writeln!(
                    text,
                    "{:<24} {:>14} {:<4} {:>12} {:>12}  {}",
                    visible(&r.partner_id),
                    r.total_payable,
                    r.currency,
                    r.carried_in,
                    r.carried_out,
                    r.content_hash
                );
            }
            if terms {
                text.push('\n');
                match super::terms::load_terms(&book, &a.program, &shown.record.period)? {
                    Some(t) => {
                        for line in super::terms::describe(&t).lines() {
                            let _ = writeln!(text, "{}", visible(line));
                        }
                    }
                    None if shown.record.status == super::model::Status::Draft => text.push_str(
                        "terms: none recorded for a draft (they are recorded when the period is finalised)\n",
                    ),
                    None => text.push_str(
                        "terms: not recorded (the period was finalised before Reckon recorded the terms in force, or by a library caller)\n",
                    ),
                }
            }
            con.out.write_all(text.as_bytes())?;
            if let Some(why) = &shown.files_not_recorded {
                writeln!(con.err, "warning: {why}")?;
            }
            if let Some(why) = &shown.stale {
                writeln!(con.err, "warning: {why}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        StatementsCommand::Verify(a) => {
            let v = lifecycle::verify(&book, output_dir, &a.program, &a.period)
                .map_err(|e| of_its_kind(e, commission.period, &a.period))?;
            if v.problems.is_empty() {
                writeln!(
                    con.out,
                    "{} {} ({}): {} files verified in {}",
                    v.program,
                    v.period,
                    v.status.as_str(),
                    v.files_checked,
                    visible(&shown_dir(&v.dir))
                )?;
                Ok(ExitCode::SUCCESS)
            } else {
                for p in &v.problems {
                    writeln!(con.out, "MISMATCH {}", visible(p))?;
                }
                writeln!(
                    con.out,
                    "{} problem(s) in {} files in {}",
                    v.problems.len(),
                    v.files_checked,
                    visible(&shown_dir(&v.dir))
                )?;
                // What repairs it (QA: verify said what was wrong, not
                // what to do). A store older than the files names its own
                // remedy in the problem.
                if !v
                    .problems
                    .iter()
                    .any(|p| p.contains("store is older") || p.contains("run `reckon statements"))
                {
                    let generate = format!(
                        "`reckon statements generate --program {} --period {}`",
                        v.program, v.period
                    );
                    if v.status == super::model::Status::Finalised {
                        // `generate` refuses a directory whose summary no
                        // longer lists what the store issued (a truncated
                        // copy; QA28-A F8): moved aside first, it always
                        // restores.
                        // Into the program's `set-aside/`, which no
                        // check reads as issued statements (a sibling
                        // `2026-10.damaged` would be one).
                        let dir = shown_dir(&v.dir);
                        let aside = shown_dir(&v.dir.parent().unwrap_or(&v.dir).join("set-aside"));
                        let name = v.dir.file_name().unwrap_or_default().to_string_lossy();
                        writeln!(
                            con.out,
                            "`mkdir -p {aside} && mv {dir} {aside}/{name}.damaged` (keeps these files aside), then {generate} writes the finalised files back byte for byte from the store",
                        )?;
                    } else {
                        writeln!(
                            con.out,
                            "{generate} writes the draft again from the current data"
                        )?;
                    }
                }
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

/// `statements trace`: the claim's entries as a table or JSON; an error
/// when the claim is on no statement, saying what Reckon decided for it.
fn trace(
    book: &StoreBook,
    output_dir: &Path,
    program: &crate::reconcile::config::ProgramConfig,
    args: &TraceArgs,
    store: &crate::store::Store,
    con: &mut Console,
) -> anyhow::Result<ExitCode> {
    let ClaimRef {
        network,
        claim_id: claim,
    } = &args.claim;
    let t = super::trace::trace_claim(book, output_dir, &program.id, network, claim)?;
    let name = format!("{network}/{claim}");
    if t.entries.is_empty() {
        // Only here is the decision looked up (a failure to read it is
        // not the answer).
        let decided = crate::reconcile::load_decision(store, &program.id, network, claim);
        // The instant the program's last run judged at (one key read):
        // whether a lock date has passed since.
        let judged_at = match &decided {
            Ok(Some(_)) => crate::reconcile::standing(store, program, None)
                .ok()
                .and_then(|s| s.judged_at),
            _ => None,
        };
        let what = match &decided {
            Ok(Some(d)) => {
                super::trace::unpaid_answer(
                    d,
                    judged_at,
                    chrono::Utc::now(),
                    program.require_network_approval,
                    &t.held_back,
                )
            }
            Ok(None) if !program.claims.contains(network) => format!(
                "`{network}` is not one of the program's claims connectors ({})",
                program.claims.join(", ")
            ),
            Ok(None) => "Reckon has no decision for it (not a claim of this program, or not reconciled yet: `reckon reconcile --program ...`)".to_owned(),
            Err(e) => format!("its decision could not be read: {e}"),
        };
        let message = format!(
            "claim `{}` of program `{}` is paid on no statement (finalised or draft: a statement may list it among the claims it does not pay); {}",
            visible(&name),
            program.id,
            visible(&what)
        );
        if args.format == TraceFormat::Json {
            // The same answer as a document on stdout, exit 1 as in text
            // (QA35a L1: a script tracing unpaid claims got nothing to
            // parse): no entries, the decision and why it is not paid.
            let decision = decided.as_ref().ok().and_then(Option::as_ref);
            let mut doc = serde_json::to_value(&t)?;
            if let serde_json::Value::Object(m) = &mut doc {
                m.insert("on_statement".into(), false.into());
                m.insert("decision".into(), serde_json::to_value(decision)?);
                m.insert(
                    "not_payable_reason".into(),
                    serde_json::to_value(
                        decision
                            .and_then(|d| crate::reconcile::report::NotPayable::of(d, judged_at)),
                    )?,
                );
                m.insert("explanation".into(), what.clone().into());
            }
            serde_json::to_writer_pretty(&mut con.out, &doc)?;
            con.out.write_all(b"\n")?;
            let _ = writeln!(con.err, "error: {message}");
            return Ok(ExitCode::FAILURE);
        }
        anyhow::bail!("{message}");
    }
    if args.format == TraceFormat::Json {
        let mut doc = serde_json::to_value(&t)?;
        if let serde_json::Value::Object(m) = &mut doc {
            m.insert("on_statement".into(), true.into());
        }
        serde_json::to_writer_pretty(&mut con.out, &doc)?;
        con.out.write_all(b"\n")?;
        return Ok(ExitCode::SUCCESS);
    }
    use std::fmt::Write as _;
    let mut text = format!(
        "claim {} of program {}: {} entr{}\n{:<10} {:<12} {:<40} {:>5} {:<11} {:>12} {:<4} {:<18} reason\n",
        visible(&name),
        t.program,
        t.entries.len(),
        if t.entries.len() == 1 { "y" } else { "ies" },
        "period",
        "status",
        "statement",
        "line",
        "kind",
        "amount",
        "cur",
        "outcome"
    );
    for e in &t.entries {
        let mut reason = e.reason.clone();
        if let Some(r) = &e.refers_to {
            reason.push_str(&format!(" [corrects {r}]"));
        }
        let _ = writeln!(
            text,
            "{:<10} {:<12} {:<40} {:>5} {:<11} {:>12} {:<4} {:<18} {}",
            e.period,
            format!("{} v{}", e.status.as_str(), e.version),
            visible(&e.statement_id),
            format!("#{}", e.line_no),
            e.kind.as_str(),
            e.amount,
            e.currency,
            e.outcome.as_deref().unwrap_or("-"),
            visible(&reason)
        );
    }
    if t.net_finalised.is_empty() {
        text.push_str("net paid by finalised periods: nothing (drafts only)\n");
    }
    for n in &t.net_finalised {
        let _ = writeln!(
            text,
            "net paid by finalised periods to {}: {} {}",
            visible(&n.payee),
            n.amount,
            n.currency
        );
    }
    match &t.ledger {
        Some(l) => {
            let _ = writeln!(
                text,
                "ledger: paid to {} by {}, {} credited in total",
                visible(&l.payee),
                visible(&l.paid_on),
                l.paid_total
            );
        }
        None if !t.net_finalised.is_empty() => {
            text.push_str("ledger: no finalised line pays it now (taken back after it moved, or paid only by drafts)\n");
        }
        None => {}
    }
    for h in &t.held_back {
        let _ = writeln!(text, "{}", visible(&h.sentence()));
    }
    if t.entries
        .iter()
        .any(|e| e.status == super::model::Status::Draft)
    {
        text.push_str("draft entries are not paid until their period is finalised\n");
    }
    con.out.write_all(text.as_bytes())?;
    for d in &t.unread_drafts {
        writeln!(con.err, "warning: draft not read: {}", visible(d))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The program's claims and orders connectors synced only part-way into
/// `period` (QA34-B M2: March finalised during a backfill that had
/// loaded claims through the 15th; the rest went on April's statement and
/// took back paid claims they outranked): one warning each whose stored
/// checkpoints (the watermark of a stream: everything before it is in the
/// store) lie before the period's end, or before today for a period still
/// running (`--early`, a draft of the current period). A connector never
/// synced has no checkpoint and a postback endpoint none at all: nothing
/// is said for them. Of a connector's streams, the one furthest behind.
fn partly_synced(
    store: &crate::store::Store,
    program: &crate::reconcile::config::ProgramConfig,
    commission: &super::config::CommissionConfig,
    period: &super::period::Period,
    finalising: bool,
) -> anyhow::Result<Vec<String>> {
    let zone = crate::kpi::period::ReportingZone::from_tz(commission.tz());
    let today = zone.day_of(chrono::Utc::now());
    let end_day = period.end.min(today);
    if end_day <= period.start {
        // Its first day: no day of it has ended yet.
        return Ok(Vec::new());
    }
    let until = zone.start_of(end_day);
    let last_day = end_day.pred_opt().unwrap_or(end_day);
    let sources = program
        .claims
        .iter()
        .map(|c| (c, "claims"))
        .chain(program.orders.iter().map(|o| (o, "orders")));
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (id, kind) in sources {
        if !seen.insert(id) {
            continue;
        }
        let checkpoints = store.checkpoints(id)?;
        let Some(behind) = checkpoints.values().min_by_key(|c| c.watermark) else {
            continue;
        };
        if behind.watermark >= until {
            continue;
        }
        let local = behind.watermark.with_timezone(&commission.tz());
        let first_day = local.date_naive().max(period.start);
        let through = if local.time() == chrono::NaiveTime::MIN {
            format!(
                "through {}",
                local.date_naive().pred_opt().unwrap_or(first_day)
            )
        } else {
            format!(
                "up to {} ({})",
                local.format("%Y-%m-%d %H:%M"),
                commission.timezone_name()
            )
        };
        let days = if first_day == last_day {
            first_day.to_string()
        } else {
            format!("{first_day}..{last_day}")
        };
        let what = match kind {
            "claims" => format!("its claims of {days}"),
            _ => format!("the claims matched to its orders of {days}"),
        };
        let fate = if finalising {
            format!(
                "{what}, synced after this finalise, go on a later statement, not this period's"
            )
        } else {
            format!("{what} are not on this draft until synced, and go on a later statement if synced after the period is finalised")
        };
        out.push(format!(
            "`{id}` ({kind} of program `{}`) has been synced only {through} (stream `{}`, watermark {}): {fate} (`reckon sync {id} --from {first_day} --to {last_day}` loads them{})",
            program.id,
            behind.stream,
            behind
                .watermark
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            if finalising { " first" } else { "" }
        ));
    }
    Ok(out)
}

fn inputs<'a>(
    program: &'a str,
    config: &'a super::config::CommissionConfig,
    decisions: &'a StoredDecisions<'a>,
    fx: &'a crate::fx::FxTable,
    book: &'a StoreBook,
    output_dir: &'a Path,
) -> Inputs<'a> {
    Inputs {
        program,
        config,
        decisions: Decisions::Source(decisions),
        fx,
        book,
        output_dir,
        step: &|_| {},
    }
}

/// Brings the program's decisions up to the present before statements are
/// built from them: claims whose lock passed since the last run become
/// payable, and decisions left by `reconcile --now` in the past are
/// replaced. Cheap when nothing changed (an incremental run).
fn reconcile_first(
    store: &crate::store::Store,
    program: &crate::reconcile::config::ProgramConfig,
    fx: &crate::fx::FxTable,
    con: &mut Console,
) -> anyhow::Result<()> {
    let summary =
        crate::reconcile::run(store, std::slice::from_ref(program), fx, chrono::Utc::now())?;
    for p in &summary.programs {
        writeln!(
            con.out,
            "reconciled {} first: {} run, {} claims judged, {} decisions changed",
            p.program,
            if p.full { "full" } else { "incremental" },
            p.claims_judged,
            p.decisions_changed
        )?;
    }
    Ok(())
}

/// Prints what a generate or finalise did; amounts in `currency`.
pub fn print_report(
    r: &lifecycle::Report,
    currency: &str,
    con: &mut Console,
) -> std::io::Result<()> {
    let money = |d: rust_decimal::Decimal| {
        format!(
            "{} {currency}",
            plugin_api::currency::at_minor_scale(d, currency)
        )
    };
    for w in &r.warnings {
        writeln!(con.err, "warning: {}", visible(w))?;
    }
    if r.already_finalised {
        writeln!(
            con.out,
            "{} {}: already finalised (version {}); {}",
            r.program,
            r.period,
            r.version,
            if r.restored.is_empty() {
                "files unchanged".to_string()
            } else {
                format!("restored {} file(s) from the store", r.restored.len())
            }
        )?;
    }
    writeln!(
        con.out,
        "{} {}: {} version {}: {} statement(s), {} line(s), {} adjustment(s){}, total payable {}, carried out {}{} -> {}",
        r.program,
        r.period,
        r.status.as_str(),
        r.version,
        r.partners,
        r.lines,
        r.adjustments,
        match (r.bonus_adjustments, r.manual_adjustments) {
            (0, 0) => String::new(),
            (n, 0) => format!(" ({n} of bonuses)"),
            (0, m) => format!(", {m} manual adjustment(s)"),
            (n, m) => format!(" ({n} of bonuses), {m} manual adjustment(s)"),
        },
        money(r.total_payable),
        money(r.carried_out - r.owed_back),
        if r.owed_back.is_zero() {
            String::new()
        } else {
            format!(", owed back by partners {}", money(-r.owed_back))
        },
        r.dir.display()
    )
}

/// A directory as `verify` names it: `./` inside dropped (an `output_dir`
/// of `.` gave `reckon-demo/./statements/...`).
fn shown_dir(dir: &std::path::Path) -> String {
    dir.components()
        .collect::<std::path::PathBuf>()
        .display()
        .to_string()
}

/// Nothing recorded for an id that is not of the program's period kind
/// (`2026-W05` for a monthly program): the error `generate` gives for it,
/// not advice to run that `generate` (QA25 N3) or to show a later period.
/// Periods of a kind the program used before are still shown and verified
/// when recorded, and a draft of one that a finalise retired is named with
/// the finalised period that paid its claims and where its files are
/// (QA32-D F5: the monthly draft retired by `2026-11-H1`).
fn of_its_kind(
    e: lifecycle::PayoutError,
    kind: super::config::PeriodKind,
    period: &str,
) -> lifecycle::PayoutError {
    match e {
        lifecycle::PayoutError::NoStatements {
            retired: Some(_), ..
        } => e,
        lifecycle::PayoutError::NotGenerated { .. }
        | lifecycle::PayoutError::NoStatements { .. } => {
            match super::period::Period::parse(kind, period) {
                Err(p) => lifecycle::PayoutError::Period(p),
                Ok(_) => e,
            }
        }
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::PeriodKind;
    use super::lifecycle::PayoutError;

    /// QA32-D F5: the monthly draft a semi-monthly finalise retired is
    /// named with the period that paid its claims and its set-aside files;
    /// a name of another kind nothing was recorded for is the parse error.
    #[test]
    fn a_retired_draft_of_another_kind_is_named_not_refused_as_a_name() {
        let retired = |dir: Option<&str>| PayoutError::NoStatements {
            program: "shop".into(),
            period: "2026-11".into(),
            later: "2026-11-H1".into(),
            retired: dir.map(Into::into),
        };
        let e = super::of_its_kind(
            retired(Some("out/set-aside/2026-11")),
            PeriodKind::SemiMonthly,
            "2026-11",
        );
        assert!(matches!(e, PayoutError::NoStatements { .. }), "{e}");
        let e = super::of_its_kind(retired(None), PeriodKind::SemiMonthly, "2026-11");
        assert!(matches!(e, PayoutError::Period(_)), "{e}");
    }

    #[test]
    fn a_shown_directory_has_no_dot_inside() {
        assert_eq!(
            super::shown_dir(std::path::Path::new("reckon-demo/./statements/n/2026-10")),
            "reckon-demo/statements/n/2026-10"
        );
        assert_eq!(
            super::shown_dir(std::path::Path::new("/srv/out/statements")),
            "/srv/out/statements"
        );
    }
}
