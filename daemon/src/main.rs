//! The `reckon` binary: parse the command line and hand off to the library.
fn main() -> std::process::ExitCode {
    let cli = reckon::cli::parse();
    // This binary serves `plugin-host --describe`: describe plugins there.
    if let Ok(exe) = std::env::current_exe() {
        reckon::plugins::describe::describe_in_children_of(exe);
    }
    reckon::cli::main(cli)
}
