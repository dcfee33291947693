//! Identifiers: event ids (UUID v7) and the validated codes and slugs that name parties, actors,
//! issues and timelines.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A map keyed by event ids. Ids are mostly random, but clients may choose them, so the hash
/// stays seeded per process (foldhash) while costing a fraction of the standard SipHash: the
/// log's writer looks ids up and records them for every event it appends.
pub type IdMap<V> = std::collections::HashMap<EventId, V, foldhash::fast::RandomState>;
/// A set of event ids, hashed as [`IdMap`]'s keys.
pub type IdSet = std::collections::HashSet<EventId, foldhash::fast::RandomState>;

/// The id of an event: a UUID v7, which a client may choose so that a retry is idempotent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    /// A fresh UUID v7: time-ordered, so ids recorded together sort together.
    pub fn new_v7() -> Self {
        Self(Uuid::now_v7())
    }

    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(Uuid::from_bytes(bytes))
    }

    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    pub const fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0)
    }
}

impl FromStr for EventId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self).map_err(|_| {
            IdError::new(
                "event id",
                s,
                "expected a UUID such as 0196a1f0-7c00-7000-8000-000000000001",
            )
        })
    }
}

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {rule}")]
pub struct IdError {
    pub what: &'static str,
    pub value: String,
    pub rule: &'static str,
}

impl IdError {
    fn new(what: &'static str, value: &str, rule: &'static str) -> Self {
        let mut value = value.to_owned();
        if value.len() > 80 {
            let cut = (0..=80)
                .rev()
                .find(|i| value.is_char_boundary(*i))
                .unwrap_or(0);
            value.truncate(cut);
            value.push('…');
        }
        Self { what, value, rule }
    }
}

/// Longest slug or code accepted, in bytes.
pub const MAX_SLUG_LEN: usize = 64;

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SLUG_LEN
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_party_code(s: &str) -> bool {
    let bytes = s.as_bytes();
    (2..=12).contains(&bytes.len())
        && bytes[0].is_ascii_uppercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
}

macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:path, $rule:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                if $check(&value) {
                    Ok(Self(value))
                } else {
                    Err(IdError::new($what, &value, $rule))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

validated_string!(
    /// A party: a state by its ISO 3166 alpha-3 code (`CHN`, `USA`), as CAMEO does, or an
    /// organization (`EU`, `WTO`).
    PartyCode,
    "party code",
    is_party_code,
    "use 2 to 12 uppercase letters, digits or '_', starting with a letter (e.g. USA, CHN, EU)"
);

validated_string!(
    /// A timeline: the dossier an event belongs to (`us-china-trade`).
    TimelineSlug,
    "timeline slug",
    is_slug,
    "use lowercase letters, digits and single hyphens, at most 64 characters"
);

validated_string!(
    /// An issue under negotiation (`trade-deficit`, `made-in-china-2025`).
    IssueSlug,
    "issue slug",
    is_slug,
    "use lowercase letters, digits and single hyphens, at most 64 characters"
);

validated_string!(
    /// A person or office acting for a party (`mnuchin`, `us-treasury-secretary`).
    ActorSlug,
    "actor slug",
    is_slug,
    "use lowercase letters, digits and single hyphens, at most 64 characters"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_accept_lowercase_words_joined_by_single_hyphens() {
        for ok in ["trade-deficit", "made-in-china-2025", "a", "x1"] {
            assert!(IssueSlug::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Trade", "-a", "a-", "a--b", "a b", "é", &"a".repeat(65)] {
            assert!(IssueSlug::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn party_codes_are_uppercase_codes() {
        for ok in ["USA", "CHN", "EU", "WTO", "G20"] {
            assert!(PartyCode::new(ok).is_ok(), "{ok}");
        }
        for bad in ["usa", "U", "1AB", "TOOLONGPARTYCODE", "U-S"] {
            assert!(PartyCode::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_rejects_invalid_codes_with_the_rule() {
        let err = serde_json::from_str::<PartyCode>("\"usa\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid party code \"usa\""), "{err}");
    }
}
