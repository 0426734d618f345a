//! The `reckon` binary: parse the command line and hand off to the library.
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = reckon::cli::Cli::parse();
    reckon::cli::main(cli)
}
