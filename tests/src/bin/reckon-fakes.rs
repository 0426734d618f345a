//! `reckon-fakes`: serves the loopback fakes as a process (used by `reckon demo`).
fn main() {
    eprintln!("reckon-fakes: not built yet");
    std::process::exit(2);
}
