//! Scalars: valid time with its precision, transaction time, and 53-bit integers for positions.
//! Parsing happens at input coercion, so a bad value is refused with the path of its field.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chancery_domain::{PartyCode, Timestamp, ValidTime as DomainValidTime};

/// The GraphQL scalar `$name`, written as a string: parsed by `$parse` (which says why it refuses
/// one), written as `$type`'s value displays.
macro_rules! string_scalar {
    ($name:tt, $type:ident, $parse:expr) => {
        #[Scalar(name = $name)]
        impl ScalarType for $type {
            fn parse(value: Value) -> InputValueResult<Self> {
                match value {
                    Value::String(s) => ($parse)(s)
                        .map($type)
                        .map_err(|e| InputValueError::custom(e.to_string())),
                    other => Err(InputValueError::expected_type(other)),
                }
            }

            fn to_value(&self) -> Value {
                Value::String(self.0.to_string())
            }
        }
    };
}

/// A point of valid time, as precisely as known: `2018`, `2018-05`, `2018-05-03`, or an RFC 3339
/// instant with its offset (`2018-05-03T09:30:00+08:00`). The form sets the precision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidTime(pub DomainValidTime);

string_scalar!("ValidTime", ValidTime, |s: String| DomainValidTime::parse(
    &s
));

/// An instant of transaction time, RFC 3339 in UTC with microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DateTime(pub Timestamp);

string_scalar!("DateTime", DateTime, |s: String| Timestamp::parse(&s));

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

string_scalar!("PartyCode", Party, PartyCode::new);

/// A slug naming a timeline, an issue or an actor: lowercase letters, digits and single hyphens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(pub String);

// Any of the slug types has the same rule; the timeline one reports it.
string_scalar!("Slug", Slug, |s: String| {
    chancery_domain::TimelineSlug::new(s.clone())
        .map(|_| s)
        .map_err(|e| e.to_string().replace("timeline slug", "slug"))
});

impl Slug {
    /// The slug as a typed domain slug (the rule was checked at parse).
    pub fn typed<T: std::str::FromStr>(&self) -> Option<T> {
        self.0.parse().ok()
    }
}
