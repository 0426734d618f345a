//! # reckon: the daemon library
//!
//! The `reckon` binary is a thin shell over this library. Each module has one
//! job; domain modules (reconcile, payout, kpi) are pure functions over data,
//! and I/O stays at the edges (plugins' HTTP executor, store, server, CLI).
//!
//! | module | job |
//! |---|---|
//! | [`config`] | the TOML config: parse, validate, resolve secrets |
//! | [`plugins`] | load plugin libraries, run sessions in-process or in a subprocess, execute their HTTP |
//! | [`store`] | the sled store: records with revisions, checkpoints, runs, domain trees |
//! | [`sync`] | one connector run: window from checkpoint and lookback, session, commit |
//! | [`schedule`] | cron per connector in its timezone; `reckon run` |
//! | [`fx`] | exchange rates table |
//! | [`reconcile`] | claims × orders per program: outcomes, decisions, discrepancy reports |
//! | [`payout`] | commission rules and payout statements |
//! | [`kpi`] | KPI summaries, reported and reconciled views |
//! | [`server`] | HTTP: health, status, metrics, postbacks |
//! | [`demo`] | `reckon demo`: the whole pipeline against loopback fakes |
//! | [`display_safe`] | names and ids from outside shown to people: bidi and control characters as visible escapes |
//! | [`cli`] | clap definitions and dispatch |

// `print!`, `eprintln!` and friends panic when the reader of stdout or
// stderr has gone (a closed pipe): the daemon died at its next log line
// (QA6 F1, F3). Output goes through `cli::output` and `errln!` instead.
#![deny(clippy::print_stdout, clippy::print_stderr)]

/// mimalloc is the allocator of every binary that links the daemon (the
/// `reckon` binary, benches, tests): sled allocates and frees a node copy per
/// write, and with glibc's malloc ~30% of ingest CPU went to the allocator's
/// own bookkeeping and arena-lock wake-ups (perf, `store_ingest` bench).
/// Built without transparent huge pages (the `no_thp` feature, set in the
/// workspace `Cargo.toml`): with them, the first touch of each 2 MiB of a
/// fresh process's memory zeroed a whole huge page, a third of a fresh
/// incremental reconcile run (ARCHITECTURE.md, Reconciliation → Benchmark).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The message of a caught panic (`std::panic::catch_unwind`'s payload).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Returns memory the allocator holds but no longer uses to the OS. Call it
/// after freeing a large working set and before building the next one, so
/// the two do not add up in the process's resident memory.
#[allow(unsafe_code)]
pub fn release_free_memory() {
    extern "C" {
        fn mi_collect(force: bool);
    }
    // SAFETY: `mi_collect` (linked from libmimalloc-sys, the global
    // allocator above) has no preconditions and may be called from any
    // thread at any time.
    unsafe { mi_collect(true) }
}

/// This binary's version and the commit it was built from (`build.rs`):
/// `reckon --version`, the daemon's start line and `/status`.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("RECKON_BUILD"), ")");

pub mod cli;
pub mod config;
pub mod demo;
pub mod display_safe;
pub mod fx;
pub mod kpi;
pub mod payout;
pub mod plugins;
pub mod reconcile;
pub mod schedule;
pub mod server;
pub mod store;
pub mod sync;
#[cfg(test)]
mod test_support;
