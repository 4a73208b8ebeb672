//! `puffle`: the Puffle command-line client.

mod admin;
mod backoff;
mod client;
mod commands;
mod config;
mod error;
mod import;
mod mcp;
mod output;
mod scope;
mod watch;

use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands::{account, enrichment, lead, list, webhook, Ctx};
use crate::config::{Given, Source};
use crate::error::{CliError, EXIT_CODES_HELP};
use crate::output::Format;

#[derive(Parser, Debug)]
#[command(name = "puffle", version, about = "Puffle lead enrichment from a terminal", after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// API base URL [env: PUFFLE_API_URL] [default: http://127.0.0.1:3000, or the profile's]
    #[arg(long, global = true, value_name = "URL")]
    api_url: Option<String>,
    /// API token [env: PUFFLE_TOKEN] [default: the profile's, see `puffle login`]
    #[arg(long, global = true, value_name = "TOKEN")]
    token: Option<String>,
    /// Output format: json (the API's body), table, csv/jsonl (listings)
    #[arg(long, global = true, value_enum, default_value_t = Format::Json, value_name = "FORMAT")]
    format: Format,
    /// Seconds before an HTTP request is abandoned
    #[arg(long, global = true, default_value_t = 60.0, value_name = "SECONDS")]
    timeout: f64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Operator commands that talk straight to the store (no API token needed).
    Admin(admin::AdminArgs),
    Enrichment(enrichment::EnrichmentArgs),
    Lead(lead::LeadArgs),
    List(list::ListArgs),
    Webhook(webhook::WebhookArgs),
    /// The workspace's credit balance (GET /api/credits)
    Credits,
    /// Save --token (and --api-url) to the profile file, mode 0600
    Login(account::LoginArgs),
    /// Show the settings in force and where each comes from
    Config,
    /// Serve Puffle's tools to an MCP client over stdio (the same API URL and token as every command)
    Mcp,
    /// Print a shell completion script: puffle completions bash > /etc/bash_completion.d/puffle
    Completions {
        /// bash, zsh, fish, elvish or powershell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// A flag's value, else the environment variable's (read here rather than
/// by clap, so usage lines do not show values that came from the environment).
fn given(flag: Option<String>, var: &str) -> Given {
    match flag {
        Some(v) => Given { value: Some(v), source: Source::Flag },
        None => match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Given { value: Some(v), source: Source::Env },
            _ => Given { value: None, source: Source::None },
        },
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Admin(a) => admin::run(a).await,
        other => match run(other, cli.api_url, cli.token, cli.format, cli.timeout).await {
            Ok(()) => error::exit::OK,
            Err(e) => {
                eprintln!("{}", e.report());
                e.exit_code()
            }
        },
    };
    std::process::exit(code);
}

async fn run(
    command: Command,
    api_url: Option<String>,
    token: Option<String>,
    format: Format,
    timeout: f64,
) -> error::Result<()> {
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= 3600.0) {
        return Err(CliError::usage(format!("--timeout must be between 0 and 3600 seconds, got {timeout}")));
    }
    let timeout = Duration::from_secs_f64(timeout);
    if let Command::Completions { shell } = command {
        let mut cmd = Cli::command();
        let mut buf = vec![];
        clap_complete::generate(shell, &mut cmd, "puffle", &mut buf);
        output::out(&String::from_utf8_lossy(&buf));
        return Ok(());
    }
    let api = given(api_url, "PUFFLE_API_URL");
    let tok = given(token, "PUFFLE_TOKEN");
    let path = config::config_path();
    // The file is read only when a flag or variable leaves something open.
    let profile =
        if api.value.is_none() || tok.value.is_none() { config::load(path.as_deref())? } else { Default::default() };
    let cfg = config::resolve(api, tok, &profile, path);
    match command {
        Command::Config => return account::show_config(&cfg, format),
        Command::Login(a) => return account::login(a, &cfg, format, timeout).await,
        _ => {}
    }
    if let Command::Mcp = command {
        // A missing or bad token does not stop the server: each tool call answers UNAUTHENTICATED.
        return mcp::serve(client::Client::new(&cfg, timeout)?, &cfg).await;
    }
    let ctx = Ctx { client: client::Client::new(&cfg, timeout)?, format };
    match command {
        Command::Enrichment(a) => enrichment::run(&ctx, a).await,
        Command::Lead(a) => lead::run(&ctx, a).await,
        Command::List(a) => list::run(&ctx, a).await,
        Command::Webhook(a) => webhook::run(&ctx, a).await,
        Command::Credits => account::credits(&ctx).await,
        Command::Admin(_) | Command::Config | Command::Login(_) | Command::Completions { .. } | Command::Mcp => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_and_subcommand_shapes() {
        assert!(Cli::try_parse_from(["puffle", "list", "lead"]).is_err(), "--id is required");
        assert!(Cli::try_parse_from(["puffle", "list", "lead", "add", "--id", "l", "--lead-ids", "a,b"]).is_ok());
        assert!(Cli::try_parse_from(["puffle", "enrichment", "--id", "email_domain"]).is_ok());
        assert!(Cli::try_parse_from(["puffle", "enrichment", "status"]).is_err());
        assert!(Cli::try_parse_from(["puffle", "enrichment", "retry", "--id", "r", "--status", "skipped"]).is_ok());
        assert!(Cli::try_parse_from(["puffle", "enrichment", "retry", "--id", "r", "--status", "completed"]).is_err());
        assert!(
            Cli::try_parse_from(["puffle", "webhook", "create", "--url", "https://x.test/h", "--events", "*"]).is_ok()
        );
        assert!(Cli::try_parse_from(["puffle", "webhook", "replay", "--id", "wh_1"]).is_err(), "--delivery-id");
        assert!(Cli::try_parse_from(["puffle", "webhook", "update", "--id", "wh_1", "--enabled", "false"]).is_ok());
        assert!(Cli::try_parse_from(["puffle", "enrichment", "results", "--id", "r", "--limit", "101"]).is_err());
        assert!(Cli::try_parse_from(["puffle", "lead", "--limit", "0"]).is_err());
        assert!(Cli::try_parse_from(["puffle", "lead", "import", "x.csv", "--map", "a=salary"]).is_err());
        assert!(
            Cli::try_parse_from(["puffle", "--format", "csv", "enrichment", "results", "--id", "r", "--all"]).is_ok()
        );
    }
}
