//! Opaque cursors: a log position, or a place in valid-time order. Clients pass them back as
//! they got them; their text is base64url and may change between versions.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chancery_domain::{Position, Precision};
use chancery_projections::Slot;

use crate::error::{ApiError, ApiResult};
use crate::scalars::MAX_LONG;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    Log(Position),
    ValidTime(Slot),
}

fn precision_tag(p: Precision) -> u8 {
    p as u8
}

fn precision_of(tag: &str) -> Option<Precision> {
    match tag {
        "0" => Some(Precision::Year),
        "1" => Some(Precision::Month),
        "2" => Some(Precision::Day),
        "3" => Some(Precision::Instant),
        _ => None,
    }
}

impl Cursor {
    pub fn encode(&self) -> String {
        let text = match self {
            Cursor::Log(p) => format!("log:{p}"),
            Cursor::ValidTime(s) => format!(
                "valid:{}:{}:{}:{}",
                s.valid,
                precision_tag(s.precision),
                s.position,
                s.version
            ),
        };
        URL_SAFE_NO_PAD.encode(text.as_bytes())
    }

    pub fn decode(text: &str, field: &str) -> ApiResult<Cursor> {
        let bad =
            || ApiError::validation(field, format!("{text:?} is not a cursor this server gave"));
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let parts: Vec<&str> = text.split(':').collect();
        // Positions this server gives are Longs: a larger one is forged, and would overflow
        // where a page continues after it.
        let long = |t: &str| t.parse::<u64>().ok().filter(|n| *n <= MAX_LONG);
        match parts.as_slice() {
            ["log", p] => Ok(Cursor::Log(long(p).ok_or_else(bad)?)),
            ["valid", valid, precision, position, version] => Ok(Cursor::ValidTime(Slot {
                valid: valid.parse().map_err(|_| bad())?,
                precision: precision_of(precision).ok_or_else(bad)?,
                position: long(position).ok_or_else(bad)?,
                version: version.parse().map_err(|_| bad())?,
            })),
            _ => Err(bad()),
        }
    }

    /// Decodes a cursor of the kind `kind` picks out ([`Cursor::log`], [`Cursor::slot`]); one of
    /// the other kind is refused with `mismatch`.
    pub fn decode_as<T>(
        text: &str,
        field: &str,
        kind: fn(Cursor) -> Option<T>,
        mismatch: &str,
    ) -> ApiResult<T> {
        kind(Cursor::decode(text, field)?).ok_or_else(|| ApiError::validation(field, mismatch))
    }

    /// The position of a log cursor.
    pub fn log(self) -> Option<Position> {
        match self {
            Cursor::Log(position) => Some(position),
            Cursor::ValidTime(_) => None,
        }
    }

    /// The slot of a valid-time cursor.
    pub fn slot(self) -> Option<Slot> {
        match self {
            Cursor::ValidTime(slot) => Some(slot),
            Cursor::Log(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        for c in [
            Cursor::Log(0),
            Cursor::Log(123_456_789),
            Cursor::ValidTime(Slot {
                valid: -86_400,
                precision: Precision::Month,
                position: 42,
                version: 1,
            }),
        ] {
            assert_eq!(Cursor::decode(&c.encode(), "after").unwrap(), c);
        }
        let forged = URL_SAFE_NO_PAD.encode(b"log:18446744073709551615");
        for bad in ["", "!!", "bG9nOng", "aGVsbG8", forged.as_str()] {
            assert!(Cursor::decode(bad, "after").is_err(), "{bad}");
        }
    }
}
