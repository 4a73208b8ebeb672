//! `puffle-bench`: figures, not assertions. See bench/README.md.
//!
//! `make bench` (scripts/bench.sh) starts a private stack on free ports and
//! runs `puffle-bench suite` against it; the other subcommands are tools.

mod api;
mod create_latency;
mod lambdas;
mod procs;
mod provider;
mod reads;
mod report;
mod sqs_emulators;
mod stats;
mod suite;
mod throughput;

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
    /// Create a queue (if missing) on AWS_ENDPOINT_URL_SQS and print its URL:
    /// the bench's create-latency server dispatches into a queue nobody consumes.
    MakeQueue { name: String },
    /// The whole suite against a running stack (scripts/bench.sh starts one).
    Suite(Box<suite::SuiteArgs>),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Cmd::SqsEmulator { messages, label } => sqs_emulators::run(messages, &label).await,
        Cmd::MakeQueue { name } => {
            let sdk = puffle_aws::config::sdk_loader().load().await;
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            let url = sqs.create_queue().queue_name(&name).send().await?.queue_url.unwrap_or_default();
            println!("{url}");
            Ok(())
        }
        Cmd::Suite(args) => {
            procs::install_signal_handler();
            suite::run(*args).await
        }
    }
}
