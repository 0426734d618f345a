//! DESIGN §3: plugins never do I/O. The daemon owns HTTP, time, secrets and
//! storage; a plugin reads the clock, files, the environment or the network
//! only through the host. Every first-party plugin's `src/` (unit tests
//! included: a test that reads the clock is not deterministic; `benches/`
//! are host-side harnesses and excluded) is searched for the std and chrono
//! entry points that would break that.

use std::path::{Path, PathBuf};

/// What a plugin must not call, and what to use instead.
const FORBIDDEN: &[(&str, &str)] = &[
    ("Utc::now", "use the `now` the host passes in"),
    ("Local::now", "use the `now` the host passes in"),
    ("SystemTime", "use the `now` the host passes in"),
    ("Instant::now", "ask the host to wait (`Step::Sleep`)"),
    ("std::thread::sleep", "ask the host to wait (`Step::Sleep`)"),
    ("std::fs", "the host stores records and checkpoints"),
    ("File::open", "the host stores records and checkpoints"),
    ("std::net", "send requests through the host"),
    ("TcpStream", "send requests through the host"),
    ("reqwest", "send requests through the host"),
    ("std::env", "settings and secrets come from the host"),
    ("std::process", "plugins run no programs"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn first_party_plugins_do_no_io_of_their_own() {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let mut files = Vec::new();
    for p in std::fs::read_dir(&plugins).unwrap().flatten() {
        let src = p.path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    assert!(
        files.len() > 20,
        "found only {} plugin sources",
        files.len()
    );
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (what, instead) in FORBIDDEN {
                if code.contains(what) {
                    found.push(format!("{}:{}: `{what}`: {instead}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "plugins doing I/O:\n{}", found.join("\n"));
}
