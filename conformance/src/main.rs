use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    conformance::main_exit(conformance::Opts::parse()).await
}
