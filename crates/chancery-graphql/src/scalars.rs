//! Scalars: valid time with its precision, transaction time, and 53-bit integers for positions.
//! Parsing happens at input coercion, so a bad value is refused with the path of its field.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chancery_domain::{PartyCode, Timestamp, ValidTime as DomainValidTime};

/// A point of valid time, as precisely as known: `2018`, `2018-05`, `2018-05-03`, or an RFC 3339
/// instant with its offset (`2018-05-03T09:30:00+08:00`). The form sets the precision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidTime(pub DomainValidTime);

#[Scalar(name = "ValidTime")]
impl ScalarType for ValidTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => DomainValidTime::parse(&s)
                .map(ValidTime)
                .map_err(|e| InputValueError::custom(e.to_string())),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// An instant of transaction time, RFC 3339 in UTC with microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DateTime(pub Timestamp);

#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Timestamp::parse(&s)
                .map(DateTime)
                .map_err(|e| InputValueError::custom(e.to_string())),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// A non-negative integer up to 2^53 - 1 (exact in JSON and JavaScript): log positions and
/// timeline versions, which may outgrow GraphQL's 32-bit `Int`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Long(pub u64);

pub const MAX_LONG: u64 = (1 << 53) - 1;

#[Scalar(name = "Long")]
impl ScalarType for Long {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => match n.as_u64() {
                Some(v) if v <= MAX_LONG => Ok(Long(v)),
                _ => Err(InputValueError::custom(format!(
                    "{n} is not an integer between 0 and {MAX_LONG}"
                ))),
            },
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

/// A party code: ISO 3166 alpha-3 for states (`USA`, `CHN`), or an organization (`EU`, `WTO`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party(pub PartyCode);

#[Scalar(name = "PartyCode")]
impl ScalarType for Party {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => PartyCode::new(s)
                .map(Party)
                .map_err(|e| InputValueError::custom(e.to_string())),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// A slug naming a timeline, an issue or an actor: lowercase letters, digits and single hyphens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(pub String);

#[Scalar(name = "Slug")]
impl ScalarType for Slug {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            // Any of the slug types has the same rule; the timeline one reports it.
            Value::String(s) => chancery_domain::TimelineSlug::new(s.clone())
                .map(|_| Slug(s))
                .map_err(|e| {
                    InputValueError::custom(e.to_string().replace("timeline slug", "slug"))
                }),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

impl Slug {
    /// The slug as a typed domain slug (the rule was checked at parse).
    pub fn typed<T: std::str::FromStr>(&self) -> Option<T> {
        self.0.parse().ok()
    }
}
