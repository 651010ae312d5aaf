use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    match conformance::run(conformance::Opts::parse()).await {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(e) => {
            eprintln!("conformance: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
