use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    loadgen::main_exit(loadgen::Opts::parse()).await
}
