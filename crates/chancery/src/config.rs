//! Server configuration: defaults, then a TOML file (`--config`), then `CHANCERY_*` environment
//! variables, then flags; each later source overrides the earlier. Tokens are redacted in `Debug`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chancery_graphql::{Access, Limits, Role};
use serde::Deserialize;

use crate::data::DEFAULT_DATA_DIR;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// What a config file may say (every field optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data: Option<PathBuf>,
    /// Tokens as `role:token` (roles: reader, recorder, admin).
    pub tokens: Option<Vec<String>>,
    pub open_reads: Option<bool>,
    pub allowed_origins: Option<Vec<String>>,
    pub introspection: Option<bool>,
    pub ws_init_timeout_seconds: Option<u64>,
    pub log_format: Option<String>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// What flags and environment said (clap reads both, flags first).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data: Option<PathBuf>,
    pub tokens: Vec<String>,
    pub open_reads: Option<bool>,
    pub allowed_origins: Vec<String>,
    pub introspection: Option<bool>,
    pub ws_init_timeout_seconds: Option<u64>,
    pub log_format: Option<String>,
}

/// The resolved configuration of a server.
#[derive(Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data: PathBuf,
    pub access: Access,
    pub allowed_origins: Vec<String>,
    pub introspection: bool,
    pub limits: Limits,
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("data", &self.data)
            .field("access", &self.access)
            .field("allowed_origins", &self.allowed_origins)
            .field("introspection", &self.introspection)
            .field("log_format", &self.log_format)
            .finish_non_exhaustive()
    }
}

fn parse_tokens(entries: &[String]) -> Result<Vec<(String, Role)>, ConfigError> {
    entries
        .iter()
        .flat_map(|e| e.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (role, token) = entry.split_once(':').ok_or_else(|| {
                ConfigError("a token is written role:token (roles: reader, recorder, admin)".into())
            })?;
            let role = Role::parse(role).ok_or_else(|| {
                ConfigError(format!(
                    "unknown role {role:?}: use reader, recorder or admin"
                ))
            })?;
            if token.len() < 16 {
                return Err(ConfigError(format!(
                    "a {} token must be at least 16 characters long",
                    role.name()
                )));
            }
            Ok((token.to_owned(), role))
        })
        .collect()
}

impl ServerConfig {
    /// Resolves a configuration: defaults < file < environment and flags.
    pub fn resolve(file: FileConfig, overrides: Overrides) -> Result<ServerConfig, ConfigError> {
        let listen = overrides
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen: SocketAddr = listen.parse().map_err(|_| {
            ConfigError(format!(
                "listen: {listen:?} is not an address such as 127.0.0.1:8080"
            ))
        })?;
        let token_entries = if overrides.tokens.is_empty() {
            file.tokens.unwrap_or_default()
        } else {
            overrides.tokens
        };
        let tokens = parse_tokens(&token_entries)?;
        let open_reads = overrides.open_reads.or(file.open_reads).unwrap_or(true);
        let allowed_origins = if overrides.allowed_origins.is_empty() {
            file.allowed_origins.unwrap_or_default()
        } else {
            overrides.allowed_origins
        };
        let mut limits = Limits::default();
        if let Some(seconds) = overrides
            .ws_init_timeout_seconds
            .or(file.ws_init_timeout_seconds)
        {
            limits.init_timeout = Duration::from_secs(seconds.max(1));
        }
        let log_format = match overrides.log_format.or(file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError(format!(
                    "log format {other:?}: use text or json"
                )));
            }
        };
        Ok(ServerConfig {
            listen,
            data: overrides
                .data
                .or(file.data)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            access: Access::new(tokens, open_reads),
            allowed_origins,
            introspection: overrides
                .introspection
                .or(file.introspection)
                .unwrap_or(true),
            limits,
            log_format,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_environment_override_the_file_which_overrides_defaults() {
        let file = FileConfig {
            listen: Some("127.0.0.1:9000".into()),
            open_reads: Some(false),
            ..FileConfig::default()
        };
        let config = ServerConfig::resolve(
            file,
            Overrides {
                listen: Some("0.0.0.0:7000".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:7000");
        assert!(
            !config.access.open_reads,
            "the file's setting stands where nothing overrides it"
        );
        let defaults = ServerConfig::resolve(FileConfig::default(), Overrides::default()).unwrap();
        assert_eq!(defaults.listen.to_string(), DEFAULT_LISTEN);
        assert!(defaults.access.open_reads);
        assert_eq!(defaults.data, PathBuf::from("data"));
    }

    #[test]
    fn bad_tokens_are_refused_with_the_reason() {
        let short = Overrides {
            tokens: vec!["admin:short".into()],
            ..Overrides::default()
        };
        assert!(
            ServerConfig::resolve(FileConfig::default(), short)
                .err()
                .unwrap()
                .0
                .contains("at least 16")
        );
        let role = Overrides {
            tokens: vec!["root:0123456789abcdef".into()],
            ..Overrides::default()
        };
        assert!(
            ServerConfig::resolve(FileConfig::default(), role)
                .err()
                .unwrap()
                .0
                .contains("unknown role")
        );
        let ok = Overrides {
            tokens: vec!["admin:0123456789abcdef,reader:fedcba9876543210".into()],
            ..Overrides::default()
        };
        let config = ServerConfig::resolve(FileConfig::default(), ok).unwrap();
        assert!(config.access.has_writers());
        assert!(
            !format!("{config:?}").contains("0123456789abcdef"),
            "tokens are redacted"
        );
    }
}
