//! The `hirestate` binary: parse the command line, set up logging, hand over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = hirestate::cli::Cli::parse();
    hirestate::telemetry::init_logging();
    match hirestate::cli::run(cli) {
        Ok(code) => code,
        // The reader of its output went away (`| head`): nothing failed.
        Err(e) if hirestate::tools::stdout::reader_gone(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hirestate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
