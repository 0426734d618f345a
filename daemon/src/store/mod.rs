//! The sled store. Owned by the daemon-core work (issue 3).
pub mod cli;
