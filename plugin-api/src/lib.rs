//! # plugin-api: write a Reckon connector
//!
//! The one crate a connector plugin depends on. A plugin is pure logic: it
//! never opens a socket, reads a clock, a file or an environment variable. The
//! daemon does all I/O and talks to the plugin through a small C ABI that moves
//! bytes only.
//!
//! | module | what it is |
//! |---|---|
//! | [`abi`] | the static header and function table (with the export shims in [`sdk`], the only `unsafe`, hidden behind [`export_plugin!`]) |
//! | [`protocol`] | serde messages (manifest, session, events, actions, errors, logs) and the canonical records [`protocol::Spend`], [`protocol::Conversion`], [`protocol::Order`], [`protocol::Money`] |
//! | [`sdk`] | the [`sdk::Connector`] trait with straight-line `async fn`s, and [`sdk::Cx`] (its [`sdk::Cx::timezone`] is the connector's zone, whose days the window's are; [`sdk::day_start`] turns a day into its first instant); also [`sdk::encode_component`] (percent-encode a query value) and [`sdk::malformed_json`] (the message for a body that is not JSON) |
//! | [`testing`] | a fake host that replays recorded HTTP exchanges (or answers from a closure) into a connector, with [`testing::open_read`] / [`testing::open_check`] to open a session |
//! | [`validate`] | the host's checks of a plugin's output (records: [`validate::record`]; checkpoints, complete passes, the session's caps and paging), shared by the daemon and [`testing::FakeHost`] in the same words |
//! | [`review`] | what the host masks or warns about in output it accepts (a credential the platform echoed into a field, an amount with float noise), shared the same way |
//! | [`currency`] | ISO-4217 codes and minor units ([`currency::is_known`], [`currency::minor_unit_digits`], [`currency::at_minor_scale`]) |
//! | [`parse`] | lenient parsers for the number and date shapes platforms send (and a strict one for amounts people write) |
//! | [`json_object`] | a JSON object's keys all kept, so a repeated key can be refused |
//! | [`progress`] | day-by-day progress through a window and its checkpoints (resume a crashed window, re-pull a finished one), and [`progress::chunks`] to split a range of days |
//! | [`lenient`] | a borrowed JSON scalar for fast typed page parsing ([`lenient::Scalar`]), and [`lenient::Num`] for metrics sent as strings or numbers |
//! | [`throttle`] | a session's requests sent through the host keeping to a platform's rate limit (pause when a window is nearly used up, wait out a 429 up to the host's cap, [`throttle::MAX_RATE_LIMIT_WAIT_SECS`]) |
//!
//! What it is not: no tokio, no reqwest, no libloading, no filesystem.
//!
//! See `plugins/example` for an annotated connector and README.md ("Writing a
//! connector plugin") for the walk-through.

#![warn(missing_docs)]

pub mod abi;
pub mod currency;
pub mod json_object;
pub mod lenient;
pub mod manifest;
pub mod parse;
pub mod progress;
pub mod protocol;
pub mod review;
pub mod sdk;
pub mod testing;
pub mod throttle;
pub mod validate;

pub use protocol::{
    Channel, Checkpoint, Conversion, ConversionStatus, Covers, ErrorKind, EventType, Manifest,
    Money, Order, OrderStatus, PluginError, PluginKind, Record, RecordKind, Refund, SessionOpen,
    Spend, StreamSpec, Utm, Window,
};
pub use sdk::{Connector, Cx, Request, Response};

/// Re-exported so plugins use the same versions as the host.
pub use chrono;
pub use chrono_tz;
pub use rust_decimal;
pub use serde_json;
