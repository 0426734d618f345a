//! The shipped affiliate example configs (`config/{impact,everflow,cake,
//! partnerstack}.toml`) parse and resolve against each plugin's real
//! manifest and schema (the plugins are linked in; no library is loaded).

use plugin_api::Connector;
use reckon::config::resolve::resolve;
use reckon::plugins::{LoadError, Plugin};
use std::path::Path;
use std::sync::Arc;

fn manifest(id: &str) -> Option<plugin_api::Manifest> {
    Some(match id {
        "impact" => reckon_plugin_impact::Impact::manifest(),
        "everflow" => reckon_plugin_everflow::Everflow::manifest(),
        "cake" => reckon_plugin_cake::Cake::manifest(),
        "partnerstack" => reckon_plugin_partnerstack::PartnerStack::manifest(),
        _ => return None,
    })
}

fn text(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../config/{name}.toml"));
    std::fs::read_to_string(&path).unwrap()
}

fn check(name: &str) {
    check_text(name, &text(name)).unwrap_or_else(|e| panic!("config/{name}.toml: {e}"));
}

fn check_text(name: &str, text: &str) -> Result<(), String> {
    let cfg = reckon::config::parse(text, &format!("config/{name}.toml"))
        .map_err(|e| format!("{e:?}"))?;
    let load = |dir: &Path, id: &str, _pin: Option<&str>| -> Result<Arc<Plugin>, LoadError> {
        manifest(id)
            .map(|m| {
                Arc::new(Plugin {
                    path: dir.join(reckon_tests::plugin_file_name(id)),
                    manifest: m,
                    panic_unwind: true,
                })
            })
            .ok_or_else(|| LoadError::Refused {
                path: dir.display().to_string(),
                reason: format!("no plugin `{id}`"),
            })
    };
    let secrets =
        |_: &reckon::config::resolve::SecretRef| -> Result<String, String> { Ok("s3cret".into()) };
    let resolved = resolve(&cfg, &load, &secrets).map_err(|e| format!("{e:?}"))?;
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].config.plugin, name);
    Ok(())
}

#[test]
fn a_misspelt_setting_or_a_literal_secret_is_refused() {
    let typo = text("impact").replace("page_size = 20000", "page_sise = 20000");
    let err = check_text("impact", &typo).unwrap_err();
    assert!(err.contains("page_sise"), "{err}");
    let literal = text("everflow").replace(
        "api_key = { secret = \"env:EVERFLOW_API_KEY\" }",
        "api_key = \"abc\"",
    );
    let err = check_text("everflow", &literal).unwrap_err();
    assert!(err.contains("api_key"), "{err}");
}

#[test]
fn shipped_impact_config_resolves() {
    check("impact");
}

#[test]
fn shipped_everflow_config_resolves() {
    check("everflow");
}

#[test]
fn shipped_cake_config_resolves() {
    check("cake");
}

#[test]
fn shipped_partnerstack_config_resolves() {
    check("partnerstack");
}
