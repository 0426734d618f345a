//! Commission and FX config.
use serde::Deserialize;

/// `[programs.commission]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommissionConfig {}
