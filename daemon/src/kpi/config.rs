//! `[kpi]` config.
use serde::Deserialize;

/// `[kpi]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiConfig {}
