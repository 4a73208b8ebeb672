//! `puffle admin ...`: workspaces, tokens and credits, straight against the
//! store (the same AWS environment variables as the functions).

use clap::{Args, Subcommand};
use serde_json::json;

#[derive(Args, Debug)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Workspaces.
    Workspace {
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// Credit balances and grants.
    Credits {
        #[command(subcommand)]
        command: CreditsCommand,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Write the fixed workspace, token, Lead, List and run that events/*.json
    /// name (local stack only; idempotent), so the events work as shipped.
    SeedEvents,
}

#[derive(Subcommand, Debug)]
enum WorkspaceCommand {
    /// Create a workspace with an API token (shown once) and initial credits.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 0)]
        credits: u64,
    },
}

#[derive(Subcommand, Debug)]
enum CreditsCommand {
    /// Add credits to a workspace (recorded in its ledger).
    Grant {
        #[arg(long)]
        workspace_id: String,
        #[arg(long)]
        credits: u64,
        #[arg(long, default_value = "admin grant")]
        reason: String,
    },
    /// Show the balance and the ledger.
    Show {
        #[arg(long)]
        workspace_id: String,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create another API token for a workspace (shown once).
    Create {
        #[arg(long)]
        workspace_id: String,
    },
    /// Revoke an API token: every function refuses it within seconds (their
    /// token cache lasts 5 s). Pass the token itself, or `-` to read it from stdin.
    Revoke {
        #[arg(long)]
        token: String,
    },
}

pub async fn run(args: AdminArgs) -> i32 {
    let app = puffle_app::App::from_env().await;
    let result = match args.command {
        AdminCommand::Workspace { command: WorkspaceCommand::Create { name, credits } } => {
            if name.trim().is_empty() {
                eprintln!("error: --name must not be empty");
                return 2;
            }
            app.create_workspace(name.trim(), credits).await.map(|w| {
                eprintln!("Workspace created. The token is shown only once: keep it.");
                json!({"workspaceId": w.workspace_id, "token": w.token})
            })
        }
        AdminCommand::Credits { command: CreditsCommand::Grant { workspace_id, credits, reason } } => app
            .grant_credits(&workspace_id, credits, &reason)
            .await
            .map(|b| json!({"workspaceId": workspace_id, "balance": b})),
        AdminCommand::Credits { command: CreditsCommand::Show { workspace_id } } => {
            match app.balance(&workspace_id).await {
                Ok(balance) => app
                    .ledger(&workspace_id)
                    .await
                    .map(|l| json!({"workspaceId": workspace_id, "balance": balance, "ledger": l})),
                Err(e) => Err(e),
            }
        }
        AdminCommand::Token { command: TokenCommand::Create { workspace_id } } => {
            app.create_token(&workspace_id).await.map(|t| json!({"workspaceId": workspace_id, "token": t}))
        }
        AdminCommand::SeedEvents => app.seed_event_fixtures().await.map(|()| {
            use puffle_app::fixtures as f;
            json!({"workspaceId": f::WORKSPACE_ID, "token": f::TOKEN, "leadId": f::LEAD_ID, "listId": f::LIST_ID, "runId": f::RUN_ID})
        }),
        AdminCommand::Token { command: TokenCommand::Revoke { token } } => {
            let token = if token == "-" {
                let mut s = String::new();
                let _ = std::io::stdin().read_line(&mut s);
                s.trim().to_string()
            } else {
                token
            };
            match app.revoke_token(&token).await {
                Ok(true) => Ok(json!({"revoked": true})),
                Ok(false) => Err(puffle_app::AppError::not_found("TOKEN_NOT_FOUND", "no such token")),
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(v) => {
            println!("{v}");
            0
        }
        Err(puffle_app::AppError::NotFound { message, .. }) => {
            eprintln!("error: {message}");
            3
        }
        Err(puffle_app::AppError::Unavailable(m)) => {
            eprintln!("error: the store is unavailable ({m}); is the local stack up? (make up)");
            5
        }
        Err(e) => {
            eprintln!("error: {e}");
            5
        }
    }
}
