//! Records the target triple so a plugin's header can state what it was built for.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=RECKON_PLUGIN_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
