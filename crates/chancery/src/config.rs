//! Server configuration: defaults, then a TOML file (`--config`), then `CHANCERY_*` environment
//! variables, then flags; each later source overrides the earlier. Tokens are redacted in `Debug`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chancery_graphql::{Access, Limits};
use serde::Deserialize;

use crate::data::DEFAULT_DATA_DIR;
use crate::tokens;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The longest `ws_flush_interval_ms` accepted: a live frame may wait this long to be written.
pub const MAX_WS_FLUSH_INTERVAL_MS: u64 = 1_000;

/// Declares a struct holding every setting that a config file and the flags both give as an
/// optional value, so that the two name them once; the fields each spells its own way (lists:
/// absent in a file, empty from the flags) come first, as written at the call.
macro_rules! with_shared_settings {
    ($(#[$attr:meta])* $name:ident { $($own:tt)* }) => {
        $(#[$attr])*
        pub struct $name {
            $($own)*
            pub listen: Option<String>,
            pub data: Option<PathBuf>,
            pub open_reads: Option<bool>,
            pub introspection: Option<bool>,
            pub ws_init_timeout_seconds: Option<u64>,
            pub log_format: Option<String>,
            pub request_timeout_ms: Option<u64>,
            pub max_wait_ms: Option<u64>,
            pub max_subscriptions_per_connection: Option<usize>,
            pub max_connections: Option<usize>,
            pub subscriber_queue: Option<usize>,
            pub ws_flush_interval_ms: Option<u64>,
            pub max_complexity: Option<usize>,
            pub max_depth: Option<usize>,
            /// `sled` (the default) or `nats://host:port[,host:port...]`.
            pub store: Option<String>,
            pub nats_stream: Option<String>,
            pub nats_replicas: Option<usize>,
        }
    };
}

with_shared_settings! {
    /// What a config file may say (every field optional).
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    FileConfig {
        /// Tokens as `role:token[:timeline,...]` lines or tables (see [`crate::tokens`]).
        pub tokens: Option<Vec<toml::Value>>,
        pub allowed_origins: Option<Vec<String>>,
    }
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

with_shared_settings! {
    /// What flags and environment said (clap reads both, flags first).
    #[derive(Debug, Default, Clone)]
    Overrides {
        pub tokens: Vec<String>,
        pub allowed_origins: Vec<String>,
    }
}

/// Where the log lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// The embedded sled log in the data directory.
    Sled,
    /// A NATS JetStream stream; the data directory holds this server's replica and projections.
    Nats {
        servers: Vec<String>,
        stream: String,
        replicas: usize,
    },
}

impl StoreChoice {
    pub fn parse(
        text: &str,
        stream: Option<String>,
        replicas: Option<usize>,
    ) -> Result<StoreChoice, ConfigError> {
        let text = text.trim();
        if text.is_empty() || text == "sled" {
            return Ok(StoreChoice::Sled);
        }
        let Some(rest) = text.strip_prefix("nats://") else {
            return Err(ConfigError(format!(
                "store {text:?}: use sled or nats://host:port[,host:port...]"
            )));
        };
        let servers: Vec<String> = rest
            .split(',')
            .map(|s| s.trim().trim_start_matches("nats://"))
            .filter(|s| !s.is_empty())
            .map(|s| format!("nats://{s}"))
            .collect();
        if servers.is_empty() {
            return Err(ConfigError("store nats:// names no server".into()));
        }
        let replicas = replicas.unwrap_or(if servers.len() >= 3 { 3 } else { 1 });
        if !matches!(replicas, 1 | 3 | 5) {
            return Err(ConfigError(format!(
                "nats replicas {replicas}: use 1, 3 or 5"
            )));
        }
        Ok(StoreChoice::Nats {
            servers,
            stream: stream.unwrap_or_else(|| "CHANCERY".into()),
            replicas,
        })
    }
}

/// The resolved configuration of a server.
#[derive(Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data: PathBuf,
    pub store: StoreChoice,
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
            .field("store", &self.store)
            .field("access", &self.access)
            .field("allowed_origins", &self.allowed_origins)
            .field("introspection", &self.introspection)
            .field("log_format", &self.log_format)
            .finish_non_exhaustive()
    }
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
        let grants = if overrides.tokens.is_empty() {
            tokens::parse_file_entries(&file.tokens.unwrap_or_default())?
        } else {
            tokens::parse_lines(&overrides.tokens)?
        };
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
        if let Some(ms) = overrides.request_timeout_ms.or(file.request_timeout_ms) {
            limits.request_timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(ms) = overrides.max_wait_ms.or(file.max_wait_ms) {
            limits.max_wait = Duration::from_millis(ms);
        }
        if let Some(ms) = overrides.ws_flush_interval_ms.or(file.ws_flush_interval_ms) {
            if ms > MAX_WS_FLUSH_INTERVAL_MS {
                return Err(ConfigError(format!(
                    "ws flush interval {ms} ms: at most {MAX_WS_FLUSH_INTERVAL_MS} ms, as every \
                     live frame may wait that long"
                )));
            }
            limits.ws_flush_interval = Duration::from_millis(ms);
        }
        let pick = |flag: Option<usize>, file: Option<usize>, default: usize| {
            flag.or(file).unwrap_or(default)
        };
        limits.max_subscriptions_per_connection = pick(
            overrides.max_subscriptions_per_connection,
            file.max_subscriptions_per_connection,
            limits.max_subscriptions_per_connection,
        );
        limits.max_connections = pick(
            overrides.max_connections,
            file.max_connections,
            limits.max_connections,
        );
        limits.subscriber_queue = pick(
            overrides.subscriber_queue,
            file.subscriber_queue,
            limits.subscriber_queue,
        )
        .max(1);
        limits.max_complexity = pick(
            overrides.max_complexity,
            file.max_complexity,
            limits.max_complexity,
        );
        limits.max_depth = pick(overrides.max_depth, file.max_depth, limits.max_depth);
        let log_format = match overrides.log_format.or(file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError(format!(
                    "log format {other:?}: use text or json"
                )));
            }
        };
        let store = StoreChoice::parse(
            overrides.store.or(file.store).as_deref().unwrap_or("sled"),
            overrides.nats_stream.or(file.nats_stream),
            overrides.nats_replicas.or(file.nats_replicas),
        )?;
        Ok(ServerConfig {
            listen,
            store,
            data: overrides
                .data
                .or(file.data)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            access: Access::new(grants, open_reads),
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
    fn the_store_is_sled_or_a_nats_cluster() {
        assert_eq!(
            StoreChoice::parse("sled", None, None).unwrap(),
            StoreChoice::Sled
        );
        let one = StoreChoice::parse("nats://127.0.0.1:4222", None, None).unwrap();
        assert_eq!(
            one,
            StoreChoice::Nats {
                servers: vec!["nats://127.0.0.1:4222".into()],
                stream: "CHANCERY".into(),
                replicas: 1
            }
        );
        let three = StoreChoice::parse(
            "nats://a:4222,b:4222,nats://c:4222",
            Some("LOG".into()),
            None,
        )
        .unwrap();
        assert_eq!(
            three,
            StoreChoice::Nats {
                servers: vec![
                    "nats://a:4222".into(),
                    "nats://b:4222".into(),
                    "nats://c:4222".into()
                ],
                stream: "LOG".into(),
                replicas: 3
            }
        );
        assert!(StoreChoice::parse("postgres://x", None, None).is_err());
        assert!(StoreChoice::parse("nats://a:1", None, Some(2)).is_err());
    }

    #[test]
    fn every_limit_can_be_set() {
        let file = FileConfig {
            max_depth: Some(4),
            request_timeout_ms: Some(250),
            ws_flush_interval_ms: Some(7),
            ..FileConfig::default()
        };
        let overrides = Overrides {
            max_complexity: Some(10),
            max_wait_ms: Some(20),
            max_subscriptions_per_connection: Some(2),
            max_connections: Some(3),
            ws_init_timeout_seconds: Some(1),
            ..Overrides::default()
        };
        let limits = ServerConfig::resolve(file, overrides).unwrap().limits;
        assert_eq!((limits.max_depth, limits.max_complexity), (4, 10));
        assert_eq!(
            (limits.request_timeout, limits.max_wait),
            (Duration::from_millis(250), Duration::from_millis(20))
        );
        assert_eq!(
            (
                limits.max_subscriptions_per_connection,
                limits.max_connections
            ),
            (2, 3)
        );
        assert_eq!(limits.init_timeout, Duration::from_secs(1));
        assert_eq!(limits.ws_flush_interval, Duration::from_millis(7));
    }

    #[test]
    fn a_ws_flush_interval_longer_than_a_second_is_refused() {
        let at_most = Overrides {
            ws_flush_interval_ms: Some(MAX_WS_FLUSH_INTERVAL_MS),
            ..Overrides::default()
        };
        let limits = ServerConfig::resolve(FileConfig::default(), at_most)
            .unwrap()
            .limits;
        assert_eq!(limits.ws_flush_interval, Duration::from_secs(1));
        let too_long = Overrides {
            ws_flush_interval_ms: Some(MAX_WS_FLUSH_INTERVAL_MS + 1),
            ..Overrides::default()
        };
        let refused = ServerConfig::resolve(FileConfig::default(), too_long).unwrap_err();
        assert!(refused.0.contains("at most 1000 ms"), "{}", refused.0);
    }

    #[test]
    fn bad_tokens_are_refused_with_the_reason() {
        for (token, reason) in [
            ("admin:short", "at least 16"),
            ("root:0123456789abcdef", "unknown role"),
        ] {
            let overrides = Overrides {
                tokens: vec![token.into()],
                ..Overrides::default()
            };
            let refused = ServerConfig::resolve(FileConfig::default(), overrides)
                .err()
                .unwrap();
            assert!(refused.0.contains(reason), "{token}: {}", refused.0);
        }
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
