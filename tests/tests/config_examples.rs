//! Every example config shipped in `config/*.toml` parses and resolves
//! against the real plugin libraries (loaded by the real loader), and its
//! programs and `[kpi]` section validate. `config/broken/` holds the
//! deliberately wrong fixtures, tested in `core_config.rs`.

use reckon::config::resolve::resolve;
use reckon::plugins::{LoadError, Plugin};
use std::path::Path;
use std::sync::Arc;

const PLUGINS: [&str; 9] = [
    "example",
    "orders",
    "impact",
    "everflow",
    "cake",
    "partnerstack",
    "google_ads",
    "meta_ads",
    "tiktok_ads",
];

#[test]
fn every_shipped_config_resolves() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let plugins = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(plugins.path(), &PLUGINS);
    let load = |_dir: &Path, id: &str, pin: Option<&str>| -> Result<Arc<Plugin>, LoadError> {
        reckon::plugins::load(plugins.path(), id, pin)
    };
    let secrets =
        |_: &reckon::config::resolve::SecretRef| -> Result<String, String> { Ok("s3cret".into()) };
    let mut checked = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let cfg = reckon::config::parse(&text, &format!("config/{name}"))
            .unwrap_or_else(|e| panic!("config/{name} does not parse: {e:?}"));
        resolve(&cfg, &load, &secrets)
            .unwrap_or_else(|e| panic!("config/{name} does not resolve: {e:?}"));
        reckon::reconcile::config::validate_programs(&cfg.programs)
            .unwrap_or_else(|e| panic!("config/{name}: programs: {e:?}"));
        checked.push(name);
    }
    for must in [
        "reckon.toml",
        "demo.toml",
        "google_ads.toml",
        "impact.toml",
        "orders_shopify.toml",
        "postbacks.toml",
    ] {
        assert!(
            checked.iter().any(|c| c == must),
            "config/{must} was not checked: {checked:?}"
        );
    }
}
