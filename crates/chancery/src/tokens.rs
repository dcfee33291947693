//! Access tokens as the configuration gives them: `role:token[:timeline,timeline...]` lines from
//! flags, `CHANCERY_TOKENS` or a config file, and config-file tables that may also give the token
//! as its SHA-256 digest, a name and an expiry.

use chancery_domain::{TimelineSlug, Timestamp};
use chancery_graphql::{Grant, Role, Timelines, TokenDigest};

use crate::config::ConfigError;

/// The shortest token accepted in clear.
const MIN_TOKEN_LEN: usize = 16;
/// The longest name a token may carry (it is recorded with every event the token writes).
const MAX_NAME_LEN: usize = 64;

const LINE_FORM: &str = "a token is written role:token or role:token:timeline,timeline... \
                         (roles: reader, recorder, admin)";

/// Parses token lines. A line's timelines are separated by commas, as lines are: an item without
/// a colon goes on the timeline list of the line before it (a slug never holds a colon, a token
/// line always does), so `CHANCERY_TOKENS=reader:T1:a,b,admin:T2` gives two tokens.
pub fn parse_lines(entries: &[String]) -> Result<Vec<Grant>, ConfigError> {
    let mut grants: Vec<Grant> = Vec::new();
    let mut open_list: Option<Vec<TimelineSlug>> = None;
    let items = entries
        .iter()
        .flat_map(|e| e.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty());
    for item in items {
        if !item.contains(':') {
            let (Some(list), Some(last)) = (open_list.as_mut(), grants.last_mut()) else {
                return Err(ConfigError(format!("{item:?}: {LINE_FORM}")));
            };
            list.push(slug(item)?);
            last.timelines = Timelines::only(list.iter().cloned());
            continue;
        }
        let mut parts = item.splitn(3, ':');
        let role = role(parts.next().unwrap_or_default())?;
        let token = parts.next().unwrap_or_default();
        let mut grant = Grant::new(role, clear_token(role, token)?);
        open_list = match parts.next() {
            None => None,
            Some(first) => {
                let list = vec![slug(first)?];
                grant.timelines = Timelines::only(list.iter().cloned());
                Some(list)
            }
        };
        grants.push(grant);
    }
    Ok(grants)
}

/// Parses a config file's `tokens`: each a line (as on the command line) or a table with `role`,
/// `token` (in clear, or `sha256:<64 hex digits>`), and optionally `name`, `timelines` and
/// `expires` (an RFC 3339 instant).
pub fn parse_file_entries(entries: &[toml::Value]) -> Result<Vec<Grant>, ConfigError> {
    let mut grants = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = |message: String| ConfigError(format!("tokens[{i}]: {message}"));
        match entry {
            toml::Value::String(line) => {
                grants.extend(parse_lines(std::slice::from_ref(line)).map_err(|e| at(e.0))?)
            }
            toml::Value::Table(table) => grants.push(table_grant(table).map_err(|e| at(e.0))?),
            other => {
                return Err(at(format!(
                    "a token is a string role:token or a table {{ role, token, name, timelines, expires }} (found {})",
                    other.type_str()
                )));
            }
        }
    }
    Ok(grants)
}

fn table_grant(table: &toml::Table) -> Result<Grant, ConfigError> {
    const KNOWN: [&str; 5] = ["role", "token", "name", "timelines", "expires"];
    if let Some(unknown) = table.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ConfigError(format!(
            "unknown field {unknown:?}: a token table has role, token, name, timelines and expires"
        )));
    }
    let text = |key: &str| -> Result<Option<&str>, ConfigError> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(ConfigError(format!(
                "{key} is a string (found {})",
                other.type_str()
            ))),
        }
    };
    let role = role(text("role")?.ok_or_else(|| ConfigError("role is missing".into()))?)?;
    let token = text("token")?.ok_or_else(|| ConfigError("token is missing".into()))?;
    let digest = match token.strip_prefix("sha256:") {
        Some(hex) => TokenDigest::from_hex(hex).ok_or_else(|| {
            ConfigError("a hashed token is written sha256:<64 lowercase hex digits>".into())
        })?,
        None => clear_token(role, token)?,
    };
    let mut grant = Grant::new(role, digest);
    if let Some(name) = text("name")? {
        grant.name = token_name(name)?.into();
    }
    if let Some(value) = table.get("timelines") {
        let toml::Value::Array(items) = value else {
            return Err(ConfigError("timelines is a list of timeline slugs".into()));
        };
        let mut slugs = Vec::with_capacity(items.len());
        for item in items {
            let toml::Value::String(s) = item else {
                return Err(ConfigError("timelines is a list of timeline slugs".into()));
            };
            slugs.push(slug(s)?);
        }
        if slugs.is_empty() {
            return Err(ConfigError(
                "timelines is empty: leave it out to grant every timeline".into(),
            ));
        }
        grant.timelines = Timelines::only(slugs);
    }
    grant.expires = match table.get("expires") {
        None => None,
        // TOML's own date-times and strings both name an instant.
        Some(toml::Value::Datetime(at)) => Some(instant(&at.to_string())?),
        Some(toml::Value::String(at)) => Some(instant(at)?),
        Some(other) => {
            return Err(ConfigError(format!(
                "expires is an RFC 3339 instant (found {})",
                other.type_str()
            )));
        }
    };
    Ok(grant)
}

fn role(text: &str) -> Result<Role, ConfigError> {
    Role::parse(text).ok_or_else(|| {
        ConfigError(format!(
            "unknown role {text:?}: use reader, recorder or admin"
        ))
    })
}

fn clear_token(role: Role, token: &str) -> Result<TokenDigest, ConfigError> {
    if token.len() < MIN_TOKEN_LEN {
        return Err(ConfigError(format!(
            "{} token must be at least {MIN_TOKEN_LEN} characters long",
            role.with_article()
        )));
    }
    Ok(TokenDigest::of(token))
}

fn slug(text: &str) -> Result<TimelineSlug, ConfigError> {
    TimelineSlug::new(text.trim())
        .map_err(|e| ConfigError(format!("timeline {text:?} in a token's grant: {e}")))
}

fn token_name(name: &str) -> Result<&str, ConfigError> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(ConfigError(format!(
            "a token's name is 1 to {MAX_NAME_LEN} characters without control characters"
        )));
    }
    Ok(name)
}

/// An instant that a token expires at, which must carry its offset (an RFC 3339 date-time).
fn instant(text: &str) -> Result<Timestamp, ConfigError> {
    Timestamp::parse(text).map_err(|_| {
        ConfigError(format!(
            "expires {text:?} is not an RFC 3339 instant such as 2027-01-31T00:00:00Z"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Result<Vec<Grant>, ConfigError> {
        parse_lines(&[text.to_owned()])
    }

    fn listed(grant: &Grant) -> Vec<&str> {
        grant
            .timelines
            .listed()
            .map(|slugs| slugs.iter().map(TimelineSlug::as_str).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_line_grants_every_timeline_or_those_it_lists() {
        let grants =
            lines("reader:0123456789abcdef:trade-war,g20,admin:fedcba9876543210,recorder:aaaaaaaaaaaaaaaa:g20")
                .unwrap();
        assert_eq!(grants.len(), 3);
        assert_eq!(grants[0].role, Role::Reader);
        assert_eq!(listed(&grants[0]), ["g20", "trade-war"]);
        assert_eq!(grants[1].timelines, Timelines::All);
        assert_eq!(listed(&grants[2]), ["g20"]);
        assert!(grants[1].name.starts_with("admin-"), "{}", grants[1].name);
        assert!(
            !grants[1].name.contains("fedcba98"),
            "the name is not the secret"
        );
    }

    #[test]
    fn bad_lines_are_refused_with_the_reason() {
        for (line, reason) in [
            ("trade-war", "role:token"),
            ("admin:0123456789abcdef,g20", "role:token"),
            ("reader:0123456789abcdef:Not A Slug", "timeline"),
            ("reader:short:g20", "at least 16"),
        ] {
            let refused = lines(line).err().unwrap();
            assert!(refused.0.contains(reason), "{line}: {}", refused.0);
        }
    }

    #[test]
    fn a_table_may_hash_name_limit_and_expire_a_token() {
        let file: toml::Table = toml::from_str(
            r#"tokens = [
                { role = "reader", token = "sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8", name = "ana", timelines = ["g20"], expires = 2027-01-31T00:00:00Z },
                { role = "admin", token = "0123456789abcdef", expires = "2027-02-01T12:00:00+01:00" },
                "recorder:fedcba9876543210:trade-war",
            ]"#,
        )
        .unwrap();
        let toml::Value::Array(entries) = &file["tokens"] else {
            panic!("tokens is a list")
        };
        let grants = parse_file_entries(entries).unwrap();
        assert_eq!(&*grants[0].name, "ana");
        assert!(grants[0].digest == TokenDigest::of("password"));
        assert_eq!(listed(&grants[0]), ["g20"]);
        assert_eq!(
            grants[0].expires,
            Some(Timestamp::parse("2027-01-31T00:00:00Z").unwrap())
        );
        assert_eq!(
            grants[1].expires,
            Some(Timestamp::parse("2027-02-01T11:00:00Z").unwrap())
        );
        assert_eq!(listed(&grants[2]), ["trade-war"]);
    }

    #[test]
    fn bad_tables_are_refused_with_the_reason() {
        for (entry, reason) in [
            (r#"{ role = "reader" }"#, "token is missing"),
            (
                r#"{ role = "reader", token = "sha256:abc" }"#,
                "64 lowercase hex",
            ),
            (
                r#"{ role = "reader", token = "0123456789abcdef", expires = "tomorrow" }"#,
                "RFC 3339",
            ),
            (
                r#"{ role = "reader", token = "0123456789abcdef", expires = 2027-01-31 }"#,
                "RFC 3339",
            ),
            (
                r#"{ role = "reader", token = "0123456789abcdef", timelines = [] }"#,
                "timelines is empty",
            ),
            (
                r#"{ role = "reader", token = "0123456789abcdef", secret = "x" }"#,
                "unknown field",
            ),
            (
                r#"{ role = "reader", token = "0123456789abcdef", name = "" }"#,
                "name",
            ),
            ("7", "found integer"),
        ] {
            let file: toml::Table = toml::from_str(&format!("tokens = [{entry}]")).unwrap();
            let toml::Value::Array(entries) = &file["tokens"] else {
                panic!("tokens is a list")
            };
            let refused = parse_file_entries(entries).err().unwrap();
            assert!(refused.0.contains(reason), "{entry}: {}", refused.0);
            assert!(refused.0.starts_with("tokens[0]"), "{}", refused.0);
        }
    }
}
