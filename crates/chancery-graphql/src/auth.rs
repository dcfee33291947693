//! Access: bearer tokens with roles. Readers query and subscribe, recorders also record events,
//! admins also register timelines, parties, actors and issues. Reads may be open; writes never
//! are without a token.

use std::collections::HashMap;
use std::fmt;

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
    fn with_article(self) -> &'static str {
        match self {
            Role::Reader => "a reader",
            Role::Recorder => "a recorder",
            Role::Admin => "an admin",
        }
    }
}

/// The configured tokens. Their values never appear in `Debug` output or logs.
#[derive(Clone, Default)]
pub struct Access {
    tokens: HashMap<String, Role>,
    pub open_reads: bool,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut roles: Vec<&str> = self.tokens.values().map(|r| r.name()).collect();
        roles.sort_unstable();
        f.debug_struct("Access")
            .field("tokens", &roles)
            .field("open_reads", &self.open_reads)
            .finish()
    }
}

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub role: Option<Role>,
}

impl Caller {
    pub(crate) const ANONYMOUS: Caller = Caller { role: None };
}

impl Access {
    pub fn new(tokens: impl IntoIterator<Item = (String, Role)>, open_reads: bool) -> Self {
        Self {
            tokens: tokens.into_iter().collect(),
            open_reads,
        }
    }

    pub fn has_writers(&self) -> bool {
        self.tokens.values().any(|r| *r >= Role::Recorder)
    }

    /// Who presents this `Authorization` value (`Bearer <token>`). A token that is not known is
    /// refused outright rather than treated as no token.
    pub fn identify(&self, authorization: Option<&str>) -> ApiResult<Caller> {
        let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Caller::ANONYMOUS);
        };
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .unwrap_or(value)
            .trim();
        // Compare every known token in full, so timing does not reveal a matching prefix.
        let mut found = None;
        for (known, role) in &self.tokens {
            if constant_time_eq(known.as_bytes(), token.as_bytes()) {
                found = Some(*role);
            }
        }
        match found {
            Some(role) => Ok(Caller { role: Some(role) }),
            None => Err(ApiError::new(Code::Unauthorized, "the token is not valid")),
        }
    }

    /// Refuses a caller who may not read.
    pub(crate) fn check_read(&self, caller: Caller) -> ApiResult<()> {
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
    pub fn check(&self, caller: Caller, role: Role, what: &str) -> ApiResult<()> {
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
