//! The plugin host: loader, transports, HTTP executor. Owned by the foundation work (issue 2).
pub mod cli;
