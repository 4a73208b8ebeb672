//! Where the API and the token come from: flags beat the environment
//! (`PUFFLE_API_URL`, `PUFFLE_TOKEN`) beat the profile file that
//! `puffle login` writes, beat the default URL.
//!
//! The profile file is `$XDG_CONFIG_HOME/puffle/config.json`, or
//! `$HOME/.config/puffle/config.json` when XDG_CONFIG_HOME is unset or not
//! absolute. It is JSON `{"apiUrl": "...", "token": "..."}`, mode 0600.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};

pub const DEFAULT_API_URL: &str = "http://127.0.0.1:3000";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    File,
    Default,
    None,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::File => "file",
            Source::Default => "default",
            Source::None => "none",
        }
    }
}

/// A value given on the command line or in the environment (clap reads
/// both), with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Given {
    pub value: Option<String>,
    /// Flag or Env (meaningful when `value` is Some).
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub api_url: String,
    pub api_url_source: Source,
    pub token: Option<String>,
    pub token_source: Source,
    pub config_file: Option<PathBuf>,
}

/// The profile file's path from the environment's XDG_CONFIG_HOME and HOME.
pub fn config_path_from(xdg: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    if let Some(x) = xdg.filter(|x| Path::new(x).is_absolute()) {
        return Some(Path::new(x).join("puffle").join("config.json"));
    }
    home.filter(|h| !h.is_empty()).map(|h| Path::new(h).join(".config").join("puffle").join("config.json"))
}

pub fn config_path() -> Option<PathBuf> {
    let xdg = std::env::var("XDG_CONFIG_HOME").ok();
    let home = std::env::var("HOME").ok();
    config_path_from(xdg.as_deref(), home.as_deref())
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The precedence rule, pure.
pub fn resolve(api_url: Given, token: Given, file: &Profile, config_file: Option<PathBuf>) -> Resolved {
    let (api_url, api_url_source) = match (non_empty(api_url.value), non_empty(file.api_url.clone())) {
        (Some(v), _) => (v, api_url.source),
        (None, Some(v)) => (v, Source::File),
        (None, None) => (DEFAULT_API_URL.to_string(), Source::Default),
    };
    let (token, token_source) = match (non_empty(token.value), non_empty(file.token.clone())) {
        (Some(v), _) => (Some(v), token.source),
        (None, Some(v)) => (Some(v), Source::File),
        (None, None) => (None, Source::None),
    };
    Resolved { api_url: api_url.trim_end_matches('/').to_string(), api_url_source, token, token_source, config_file }
}

/// Reads the profile; a missing file is an empty profile.
pub fn load(path: Option<&Path>) -> Result<Profile> {
    let Some(path) = path else { return Ok(Profile::default()) };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Profile::default()),
        Err(e) => return Err(CliError::usage(format!("cannot read the profile {}: {e}", path.display()))),
    };
    warn_if_readable_by_others(path);
    serde_json::from_str(&text).map_err(|e| {
        CliError::usage(format!(
            "the profile {} is not valid JSON ({e}); fix it or run `puffle login` again",
            path.display()
        ))
    })
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            eprintln!("warning: {} holds a token and is readable by others: chmod 600 it", path.display());
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

/// Writes the profile with mode 0600 (directory 0700), atomically.
pub fn save(path: &Path, profile: &Profile) -> Result<()> {
    let local = |what: &str, e: std::io::Error| CliError::Local(format!("cannot {what} {}: {e}", path.display()));
    let dir = path.parent().ok_or_else(|| CliError::Local(format!("{} has no parent directory", path.display())))?;
    create_private_dir(dir).map_err(|e| local("create the directory of", e))?;
    let tmp = dir.join(format!(".config.json.{}.tmp", std::process::id()));
    let text = serde_json::to_string_pretty(profile).map_err(|e| CliError::Local(e.to_string()))? + "\n";
    write_private(&tmp, text.as_bytes()).map_err(|e| local("write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        local("write", e)
    })?;
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // The mode above applies only to a new file.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// `pfl_1234…cdef`: enough to tell tokens apart, not enough to use one.
pub fn mask_token(t: &str) -> String {
    let n = t.chars().count();
    if n <= 12 {
        return "…".to_string();
    }
    let head: String = t.chars().take(8).collect();
    let tail: String = t.chars().skip(n - 4).collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(v: Option<&str>, s: Source) -> Given {
        Given { value: v.map(str::to_string), source: s }
    }

    #[test]
    fn flags_beat_env_beat_file_beat_default() {
        let file = Profile { api_url: Some("http://file:1".into()), token: Some("file-token".into()) };
        let r =
            resolve(given(Some("http://flag:1/"), Source::Flag), given(Some("env-token"), Source::Env), &file, None);
        assert_eq!((r.api_url.as_str(), r.api_url_source), ("http://flag:1", Source::Flag));
        assert_eq!((r.token.as_deref(), r.token_source), (Some("env-token"), Source::Env));
        let r = resolve(given(None, Source::None), given(Some("  "), Source::Env), &file, None);
        assert_eq!((r.api_url.as_str(), r.api_url_source), ("http://file:1", Source::File));
        assert_eq!((r.token.as_deref(), r.token_source), (Some("file-token"), Source::File));
        let r = resolve(given(None, Source::None), given(None, Source::None), &Profile::default(), None);
        assert_eq!((r.api_url.as_str(), r.api_url_source), (DEFAULT_API_URL, Source::Default));
        assert_eq!((r.token, r.token_source), (None, Source::None));
    }

    #[test]
    fn config_path_respects_xdg_then_home() {
        assert_eq!(config_path_from(Some("/x"), Some("/h")), Some(PathBuf::from("/x/puffle/config.json")));
        assert_eq!(
            config_path_from(Some("relative"), Some("/h")),
            Some(PathBuf::from("/h/.config/puffle/config.json"))
        );
        assert_eq!(config_path_from(None, Some("/h")), Some(PathBuf::from("/h/.config/puffle/config.json")));
        assert_eq!(config_path_from(None, None), None);
    }

    #[test]
    fn save_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("puffle").join("config.json");
        let p = Profile { api_url: Some("http://x".into()), token: Some("t".into()) };
        save(&path, &p).unwrap();
        save(&path, &p).unwrap();
        assert_eq!(load(Some(&path)).unwrap(), p);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(load(Some(&dir.path().join("none.json"))).unwrap(), Profile::default());
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(load(Some(&path)), Err(CliError::Usage(_))));
    }

    #[test]
    fn tokens_are_masked() {
        assert_eq!(mask_token("pfl_0123456789abcdef"), "pfl_0123…cdef");
        assert_eq!(mask_token("short"), "…");
    }
}
