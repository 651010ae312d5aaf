use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    match loadgen::run(loadgen::Opts::parse()).await {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
