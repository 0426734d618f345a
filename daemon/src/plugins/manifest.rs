//! The host's checks of a plugin's manifest when the library is loaded:
//! [`plugin_api::manifest::check`] (shared with `plugin_api::testing::FakeHost`,
//! so a plugin's own tests meet them), with this daemon's regex engine
//! judging the settings schema's `pattern`s, as `config::schema` compiles
//! them.

use plugin_api::protocol::Manifest;

/// The manifest checks the host relies on ([`plugin_api::manifest`]). The
/// error names the field and what to do.
pub fn check_manifest(m: &Manifest) -> Result<(), String> {
    plugin_api::manifest::check(m, &|p| regex::Regex::new(p).err().map(|e| e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A `pattern` this daemon's regex engine cannot compile is refused
    /// at load time, naming the setting (QA42a A-L1).
    #[test]
    fn a_settings_pattern_that_is_not_a_regular_expression_is_refused() {
        let mut m: Manifest = serde_json::from_value(json!({
            "id": "acmeaff", "name": "n", "version": "1", "kind": "affiliate",
            "description": "d",
            "config_schema": { "type": "object", "properties": {
                "region": { "type": "string", "pattern": "^[a-z]{2}$" }
            }},
            "streams": [{ "name": "transactions", "record": "conversion",
                "primary_key": ["external_id"], "cursor": null, "default_lookback_days": 1 }],
            "allowed_hosts": [], "default_base_url": null, "auth": null,
            "max_window_days": null
        }))
        .unwrap();
        assert_eq!(check_manifest(&m), Ok(()));
        m.config_schema["properties"]["region"]["pattern"] = json!("[a-");
        let e = check_manifest(&m).unwrap_err();
        assert!(
            e.starts_with("`config_schema.properties.region.pattern` \"[a-\" is not a valid regular expression: "),
            "{e}"
        );
    }
}
