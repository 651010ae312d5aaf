use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match reports::run(reports::Opts::parse()) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(e) => {
            eprintln!("reports: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
