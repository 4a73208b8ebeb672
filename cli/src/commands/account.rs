//! `puffle credits`, `puffle login`, `puffle config`.

use clap::Args;
use serde_json::json;

use crate::client::Client;
use crate::config::{self, Profile, Resolved, Source};
use crate::error::{CliError, Result};
use crate::output::Format;

use super::{print_object, Ctx};

pub async fn credits(ctx: &Ctx) -> Result<()> {
    crate::output::require_single_object_format(ctx.format, "credits")?;
    let body = ctx.client.get(&["api", "credits"], &[]).await?;
    print_object(ctx.format, &body);
    Ok(())
}

#[derive(Args, Debug)]
#[command(
    after_help = "Writes the profile file ($XDG_CONFIG_HOME/puffle/config.json, else ~/.config/puffle/config.json) with mode 0600. \
The token comes from --token (or PUFFLE_TOKEN); --api-url (or PUFFLE_API_URL) is saved with it when given. \
Flags and environment variables still win over the file."
)]
pub struct LoginArgs {
    /// Save without checking the token against the API first
    #[arg(long)]
    pub no_verify: bool,
}

pub async fn login(args: LoginArgs, cfg: &Resolved, format: Format, timeout: std::time::Duration) -> Result<()> {
    crate::output::require_single_object_format(format, "login")?;
    let path = cfg.config_file.clone().ok_or_else(|| {
        CliError::usage("neither XDG_CONFIG_HOME nor HOME is set: there is nowhere to write the profile")
    })?;
    let token = match cfg.token_source {
        Source::Flag | Source::Env => cfg.token.clone(),
        _ => None,
    }
    .ok_or_else(|| CliError::usage("puffle login needs --token <token> (or PUFFLE_TOKEN)"))?;
    let existing = config::load(Some(&path)).unwrap_or_default();
    let api_url = match cfg.api_url_source {
        Source::Flag | Source::Env => Some(cfg.api_url.clone()),
        _ => existing.api_url.clone(),
    };
    if !args.no_verify {
        let client = Client::new(cfg, timeout)?;
        client.get(&["api", "credits"], &[]).await.map_err(|e| match e {
            CliError::Network { url, message } => CliError::Network {
                url,
                message: format!("{message}; nothing was saved (use --no-verify to save anyway)"),
            },
            other => other,
        })?;
    }
    config::save(&path, &Profile { api_url: api_url.clone(), token: Some(token.clone()) })?;
    eprintln!("Saved to {} (mode 0600).", path.display());
    print_object(
        format,
        &json!({
            "configFile": path.display().to_string(),
            "apiUrl": api_url,
            "token": config::mask_token(&token),
            "verified": !args.no_verify,
        }),
    );
    Ok(())
}

/// The settings in force and where each came from (the token masked).
pub fn show_config(cfg: &Resolved, format: Format) -> Result<()> {
    crate::output::require_single_object_format(format, "config")?;
    print_object(
        format,
        &json!({
            "apiUrl": cfg.api_url,
            "apiUrlSource": cfg.api_url_source.as_str(),
            "token": cfg.token.as_deref().map(config::mask_token),
            "tokenSource": cfg.token_source.as_str(),
            "configFile": cfg.config_file.as_ref().map(|p| p.display().to_string()),
            "configFileExists": cfg.config_file.as_ref().is_some_and(|p| p.is_file()),
        }),
    );
    Ok(())
}
