//! Test-only driver of the payout library for crash tests: runs one
//! `generate` or `finalize` against a real store, with decisions read from a
//! JSON file instead of the reconcile engine, and can abort itself after the
//! N-th durable step (as a `kill -9` would).
//!
//! Usage: `payout-harness <data_dir> <output_dir> <decisions.json>
//! <commission.json> <program> <generate|finalize> <period> [abort_after_step]`
use std::cell::Cell;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() >= 7,
        "usage: payout-harness <data_dir> <output_dir> <decisions.json> <commission.json> <program> <generate|finalize> <period> [abort_after_step]"
    );
    let store = reckon::store::Store::open(Path::new(&args[0]))?;
    let book = reckon::payout::book::StoreBook::open(&store)?;
    let decisions: Vec<reckon::reconcile::model::Decision> =
        serde_json::from_slice(&std::fs::read(&args[2])?)?;
    let config: reckon::payout::config::CommissionConfig =
        serde_json::from_str(&std::fs::read_to_string(&args[3])?)?;
    let abort_after: Option<u32> = args.get(7).map(|s| s.parse()).transpose()?;
    let count = Cell::new(0u32);
    let step = |name: &str| {
        count.set(count.get() + 1);
        if Some(count.get()) == abort_after {
            eprintln!("aborting after step {} ({name})", count.get());
            std::process::abort();
        }
    };
    let fx = std::collections::BTreeMap::new();
    let inputs = reckon::payout::Inputs {
        program: &args[4],
        config: &config,
        decisions: reckon::payout::Decisions::Slice(&decisions),
        fx: &fx,
        book: &book,
        output_dir: Path::new(&args[1]),
        step: &step,
    };
    let report = match args[5].as_str() {
        "generate" => reckon::payout::generate(&inputs, &args[6])?,
        "finalize" => reckon::payout::finalize(&inputs, &args[6])?,
        other => anyhow::bail!("unknown operation `{other}`"),
    };
    println!(
        "{} {} v{} partners={} lines={}",
        report.period,
        report.status.as_str(),
        report.version,
        report.partners,
        report.lines
    );
    Ok(())
}
