//! `puffle`: the Puffle command-line client.

mod admin;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "puffle", version, about = "Puffle lead enrichment from a terminal")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Operator commands that talk straight to the store (no API token needed).
    Admin(admin::AdminArgs),
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Admin(a) => admin::run(a).await,
    };
    std::process::exit(code);
}
