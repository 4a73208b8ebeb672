//! `puffle-bench`: figures, not assertions. See bench/README.md.

mod sqs_emulators;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "puffle-bench")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send/drain rates of the SQS emulator at AWS_ENDPOINT_URL_SQS (run once per emulator).
    SqsEmulator {
        #[arg(long, default_value_t = 1000)]
        messages: usize,
        #[arg(long, default_value = "emulator")]
        label: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Cmd::SqsEmulator { messages, label } => sqs_emulators::run(messages, &label).await,
    }
}
