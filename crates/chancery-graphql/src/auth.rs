//! Access: bearer tokens with roles, timelines, names and expiry. Readers query and subscribe,
//! recorders also record events, admins also register timelines, parties, actors and issues. A
//! token granted some timelines sees the others as if they did not exist. Reads may be open;
//! writes never are without a token.

use std::fmt;
use std::sync::Arc;

use chancery_domain::{TimelineSlug, Timestamp};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult, Code};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Reader,
    Recorder,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "reader" => Some(Role::Reader),
            "recorder" => Some(Role::Recorder),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Recorder => "recorder",
            Role::Admin => "admin",
        }
    }

    /// The name with its article, for messages ("an admin token").
    pub fn with_article(self) -> &'static str {
        match self {
            Role::Reader => "a reader",
            Role::Recorder => "a recorder",
            Role::Admin => "an admin",
        }
    }
}

/// The timelines a token may read and record in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Timelines {
    /// Every timeline, present and future.
    #[default]
    All,
    /// These timelines only (sorted, without repeats, never empty).
    Only(Arc<[TimelineSlug]>),
}

impl Timelines {
    /// The given timelines only; every timeline when the list is empty.
    pub fn only(slugs: impl IntoIterator<Item = TimelineSlug>) -> Timelines {
        let mut slugs: Vec<TimelineSlug> = slugs.into_iter().collect();
        slugs.sort_unstable();
        slugs.dedup();
        if slugs.is_empty() {
            Timelines::All
        } else {
            Timelines::Only(slugs.into())
        }
    }

    pub fn allows(&self, slug: &str) -> bool {
        match self {
            Timelines::All => true,
            Timelines::Only(slugs) => slugs.iter().any(|s| s.as_str() == slug),
        }
    }

    /// What an answer about `asked` (one timeline, or every one when `None`) is computed over,
    /// one part at a time: `asked` itself for a caller granted every timeline; otherwise the
    /// asked timeline if granted, every granted one if none was asked, and nothing if a timeline
    /// not granted was asked, as if it did not exist.
    pub fn parts(&self, asked: Option<TimelineSlug>) -> Vec<Option<TimelineSlug>> {
        match (self, asked) {
            (Timelines::All, asked) => vec![asked],
            (Timelines::Only(slugs), None) => slugs.iter().cloned().map(Some).collect(),
            (Timelines::Only(_), Some(asked)) if self.allows(asked.as_str()) => vec![Some(asked)],
            (Timelines::Only(_), Some(_)) => Vec::new(),
        }
    }

    /// The granted timelines, or `None` for every timeline.
    pub fn listed(&self) -> Option<&[TimelineSlug]> {
        match self {
            Timelines::All => None,
            Timelines::Only(slugs) => Some(slugs),
        }
    }
}

/// A token's secret as kept in memory: its SHA-256 digest, so that the configuration may give
/// either the token or only its digest (`sha256:<hex>`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> TokenDigest {
        TokenDigest(Sha256::digest(token.as_bytes()).into())
    }

    /// The digest written as 64 hex digits.
    pub fn from_hex(hex: &str) -> Option<TokenDigest> {
        chancery_domain::Hash::from_hex(hex).map(|h| TokenDigest(h.0))
    }

    /// The first 8 hex digits: names an unnamed token in the audit trail without giving away
    /// anything that helps to guess it.
    fn fingerprint(&self) -> String {
        chancery_domain::Hash(self.0).to_hex()[..8].to_owned()
    }
}

/// One configured token: what it may do, where, until when, and the name events record.
#[derive(Clone)]
pub struct Grant {
    pub role: Role,
    pub digest: TokenDigest,
    /// Recorded as `recordedBy` on what the token writes; never the secret.
    pub name: Arc<str>,
    pub timelines: Timelines,
    /// The instant from which the token is refused.
    pub expires: Option<Timestamp>,
}

impl Grant {
    /// A grant named `<role>-<first 8 hex digits of the token's SHA-256>` unless named later.
    pub fn new(role: Role, digest: TokenDigest) -> Grant {
        Grant {
            role,
            name: format!("{}-{}", role.name(), digest.fingerprint()).into(),
            digest,
            timelines: Timelines::All,
            expires: None,
        }
    }
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("role", &self.role)
            .field("name", &self.name)
            .field("timelines", &self.timelines)
            .field("expires", &self.expires.map(|t| t.to_string()))
            .finish_non_exhaustive()
    }
}

/// The configured tokens. Their secrets never appear in `Debug` output or logs.
#[derive(Clone, Default)]
pub struct Access {
    grants: Vec<Grant>,
    pub open_reads: bool,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Access")
            .field("tokens", &self.grants)
            .field("open_reads", &self.open_reads)
            .finish()
    }
}

/// Who is asking: a token's role, name, timelines and expiry, or no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: Option<Role>,
    /// The token's name, recorded as `recordedBy`.
    pub name: Option<Arc<str>>,
    pub timelines: Timelines,
    pub expires: Option<Timestamp>,
}

impl Caller {
    pub(crate) const ANONYMOUS: Caller = Caller {
        role: None,
        name: None,
        timelines: Timelines::All,
        expires: None,
    };

    /// What decides which answers the caller may be given: kept answers and subscription groups
    /// are never shared across different scopes.
    pub fn scope(&self) -> Scope {
        Scope {
            role: self.role,
            timelines: self.timelines.clone(),
        }
    }
}

/// A caller's role and timelines: two callers with equal scopes get equal answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub role: Option<Role>,
    pub timelines: Timelines,
}

impl Access {
    pub fn new(grants: impl IntoIterator<Item = Grant>, open_reads: bool) -> Self {
        Self {
            grants: grants.into_iter().collect(),
            open_reads,
        }
    }

    pub fn has_writers(&self) -> bool {
        self.grants.iter().any(|g| g.role >= Role::Recorder)
    }

    /// Who presents this `Authorization` value (`Bearer <token>`) at `now`. A token that is not
    /// known, or has expired, is refused outright rather than treated as no token.
    pub fn identify(&self, authorization: Option<&str>, now: Timestamp) -> ApiResult<Caller> {
        let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Caller::ANONYMOUS);
        };
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .unwrap_or(value)
            .trim();
        let presented = TokenDigest::of(token);
        // Compare every known digest in full, so timing does not reveal which one matched.
        let mut found = None;
        for grant in &self.grants {
            if constant_time_eq(&grant.digest.0, &presented.0) {
                found = Some(grant);
            }
        }
        let Some(grant) = found else {
            return Err(ApiError::new(Code::Unauthorized, "the token is not valid"));
        };
        if let Some(expires) = grant.expires.filter(|at| *at <= now) {
            return Err(ApiError::new(
                Code::Unauthorized,
                format!("the token expired at {expires}"),
            ));
        }
        Ok(Caller {
            role: Some(grant.role),
            name: Some(Arc::clone(&grant.name)),
            timelines: grant.timelines.clone(),
            expires: grant.expires,
        })
    }

    /// Refuses a caller who may not read (anyone may, with open reads).
    pub fn check_read(&self, caller: &Caller) -> ApiResult<()> {
        if self.open_reads || caller.role.is_some() {
            Ok(())
        } else {
            Err(ApiError::new(
                Code::Unauthorized,
                "reads need a token (Authorization: Bearer <token>)",
            ))
        }
    }

    /// Refuses a caller below `role`.
    pub fn check(&self, caller: &Caller, role: Role, what: &str) -> ApiResult<()> {
        match caller.role {
            None => Err(ApiError::new(
                Code::Unauthorized,
                format!(
                    "{what} needs {} token (Authorization: Bearer <token>)",
                    role.with_article()
                ),
            )),
            Some(r) if r < role => Err(ApiError::new(
                Code::Forbidden,
                format!(
                    "{what} needs {} token; this one is {} token",
                    role.with_article(),
                    r.with_article()
                ),
            )),
            Some(_) => Ok(()),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug(s: &str) -> TimelineSlug {
        TimelineSlug::new(s).expect("a slug")
    }

    fn access() -> Access {
        let mut limited = Grant::new(Role::Reader, TokenDigest::of("reader-of-a-0123456789"));
        limited.timelines = Timelines::only([slug("a")]);
        limited.name = "ana".into();
        let mut expiring = Grant::new(Role::Admin, TokenDigest::of("admin-until-2030-01234"));
        expiring.expires = Some(Timestamp::parse("2030-01-01T00:00:00Z").expect("an instant"));
        let hashed = Grant::new(
            Role::Recorder,
            TokenDigest::from_hex(
                "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
            )
            .expect("a digest"),
        );
        Access::new([limited, expiring, hashed], false)
    }

    fn at(instant: &str) -> Timestamp {
        Timestamp::parse(instant).expect("an instant")
    }

    #[test]
    fn a_token_is_known_by_its_digest_and_carries_its_grant() {
        let access = access();
        let now = at("2029-06-01T00:00:00Z");
        let ana = access
            .identify(Some("Bearer reader-of-a-0123456789"), now)
            .expect("a known token");
        assert_eq!(ana.role, Some(Role::Reader));
        assert_eq!(ana.name.as_deref(), Some("ana"));
        assert!(ana.timelines.allows("a") && !ana.timelines.allows("b"));
        let hashed = access.identify(Some("password"), now).expect("hashed");
        assert_eq!(hashed.role, Some(Role::Recorder));
        let name = hashed.name.expect("a name");
        assert!(name.starts_with("recorder-5e884898"), "{name}");
        let unknown = access.identify(Some("Bearer nobody-0123456789abc"), now);
        assert_eq!(unknown.expect_err("unknown").code, Code::Unauthorized);
        assert_eq!(access.identify(None, now).ok(), Some(Caller::ANONYMOUS));
    }

    #[test]
    fn an_expired_token_is_refused_from_its_instant_on() {
        let access = access();
        let token = Some("admin-until-2030-01234");
        assert!(access.identify(token, at("2029-12-31T23:59:59Z")).is_ok());
        let refused = access
            .identify(token, at("2030-01-01T00:00:00Z"))
            .expect_err("expired");
        assert_eq!(refused.code, Code::Unauthorized);
        assert!(refused.message.contains("expired"), "{}", refused.message);
    }

    #[test]
    fn answers_about_timelines_are_computed_over_the_granted_ones_only() {
        let all = Timelines::All;
        assert_eq!(all.parts(None), vec![None]);
        assert_eq!(all.parts(Some(slug("b"))), vec![Some(slug("b"))]);
        let some = Timelines::only([slug("c"), slug("a"), slug("c")]);
        assert_eq!(some.parts(None), vec![Some(slug("a")), Some(slug("c"))]);
        assert_eq!(some.parts(Some(slug("a"))), vec![Some(slug("a"))]);
        assert!(
            some.parts(Some(slug("b"))).is_empty(),
            "as if b did not exist"
        );
        assert_eq!(Timelines::only([]), Timelines::All);
    }
}
