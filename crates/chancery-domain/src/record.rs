//! Recorded events: an event with the position, version, transaction time and hash the store
//! gave it; their canonical encoding, the SHA-256 chain that links them, and their decoding
//! (with upcasting of older schema versions, in this one place).

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::NewEvent;
use crate::time::Timestamp;

/// The schema version of recorded events written by this build. Older versions are upcast on
/// read by [`decode_record`]; never change the meaning of a version once released.
pub const SCHEMA_VERSION: u32 = 1;

/// A place in the global log: gapless, starting at 1. Position 0 means "before the first event".
pub type Position = u64;

/// A SHA-256 digest, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The `prevHash` of the first event.
    pub const GENESIS: Hash = Hash([0; 32]);

    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
        out
    }

    pub fn from_hex(s: &str) -> Option<Hash> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return None;
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(Hash(out))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..12])
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Hash::from_hex(&s)
            .ok_or_else(|| serde::de::Error::custom("expected 64 lowercase hex digits"))
    }
}

/// An event as the log holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub position: Position,
    /// The event's version within its timeline: 1, 2, 3, ...
    pub version: u64,
    /// Transaction time: when the store recorded it. Never decreases along the log.
    pub recorded_at: Timestamp,
    pub prev_hash: Hash,
    pub hash: Hash,
    pub event: NewEvent,
}

/// The hashed part of a record, in its canonical field order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    schema: u32,
    position: Position,
    version: u64,
    recorded_at: Timestamp,
    prev_hash: Hash,
    event: &'a NewEvent,
}

/// The length of the `,"hash":"<64 hex>"}` suffix that closes every encoded record.
const HASH_SUFFIX_LEN: usize = 75;

/// Encodes a record-to-be and computes its hash: the hash is SHA-256 of the canonical body
/// (`{"schema":..,"position":..,"version":..,"recordedAt":..,"prevHash":..,"event":{..}}`), and
/// the stored bytes are that body with `,"hash":"<hex>"` inserted before its closing brace.
///
/// Verifying a stored record thus needs no decoding: strip the suffix, restore the brace, hash.
pub fn encode_record(
    position: Position,
    version: u64,
    recorded_at: Timestamp,
    prev_hash: Hash,
    event: &NewEvent,
) -> (Vec<u8>, Hash) {
    let body = Body {
        schema: SCHEMA_VERSION,
        position,
        version,
        recorded_at,
        prev_hash,
        event,
    };
    let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
    let hash = Hash(Sha256::digest(&bytes).into());
    bytes.pop(); // the body's closing brace
    bytes.extend_from_slice(b",\"hash\":\"");
    bytes.extend_from_slice(hash.to_hex().as_bytes());
    bytes.extend_from_slice(b"\"}");
    (bytes, hash)
}

/// Recomputes the hash of a stored record from its bytes and compares it with the hash it
/// carries. Returns the carried hash when they agree.
pub fn verify_record_hash(bytes: &[u8]) -> Result<Hash, RecordError> {
    if bytes.len() <= HASH_SUFFIX_LEN || !bytes.starts_with(b"{") {
        return Err(RecordError::Malformed("too short to be a record".into()));
    }
    let (body, suffix) = bytes.split_at(bytes.len() - HASH_SUFFIX_LEN);
    let carried = suffix
        .strip_prefix(b",\"hash\":\"")
        .and_then(|rest| rest.strip_suffix(b"\"}"))
        .and_then(|hex| std::str::from_utf8(hex).ok())
        .and_then(Hash::from_hex)
        .ok_or_else(|| RecordError::Malformed("does not end with its hash".into()))?;
    let mut hasher = Sha256::new();
    hasher.update(body);
    hasher.update(b"}");
    let computed = Hash(hasher.finalize().into());
    if computed == carried {
        Ok(carried)
    } else {
        Err(RecordError::HashMismatch { carried, computed })
    }
}

impl RecordedEvent {
    /// Builds a record: encodes it and computes its hash.
    pub fn seal(
        position: Position,
        version: u64,
        recorded_at: Timestamp,
        prev_hash: Hash,
        event: NewEvent,
    ) -> (RecordedEvent, Vec<u8>) {
        let (bytes, hash) = encode_record(position, version, recorded_at, prev_hash, &event);
        (
            RecordedEvent {
                position,
                version,
                recorded_at,
                prev_hash,
                hash,
                event,
            },
            bytes,
        )
    }

    /// The stored form of this record (what [`RecordedEvent::seal`] produced).
    pub fn encode(&self) -> Vec<u8> {
        encode_record(
            self.position,
            self.version,
            self.recorded_at,
            self.prev_hash,
            &self.event,
        )
        .0
    }
}

/// Why stored bytes are not a good record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("malformed record: {0}")]
    Malformed(String),
    #[error(
        "record written by schema version {found}, newer than this build's {SCHEMA_VERSION}: upgrade Chancery"
    )]
    NewerSchema { found: u32 },
    #[error("hash mismatch: the record says {carried} but its contents hash to {computed}")]
    HashMismatch { carried: Hash, computed: Hash },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RecordWire {
    schema: u32,
    position: Position,
    version: u64,
    recorded_at: Timestamp,
    prev_hash: Hash,
    event: NewEvent,
    hash: Hash,
}

#[derive(Deserialize)]
struct SchemaOnly {
    schema: u32,
}

/// Decodes stored bytes into a record of the current schema, upcasting older versions.
///
/// This is the one place where old schema versions are read. Version 1 is the first; when a
/// version 2 comes, its upcaster from 1 goes here and the committed fixture log written by
/// version 1 must still decode (see the store crate's fixture test).
pub fn decode_record(bytes: &[u8]) -> Result<RecordedEvent, RecordError> {
    match serde_json::from_slice::<RecordWire>(bytes) {
        Ok(wire) if wire.schema == SCHEMA_VERSION => Ok(RecordedEvent {
            position: wire.position,
            version: wire.version,
            recorded_at: wire.recorded_at,
            prev_hash: wire.prev_hash,
            hash: wire.hash,
            event: wire.event,
        }),
        Ok(wire) => Err(schema_error(wire.schema)),
        Err(e) => match serde_json::from_slice::<SchemaOnly>(bytes) {
            Ok(s) if s.schema != SCHEMA_VERSION => Err(schema_error(s.schema)),
            _ => Err(RecordError::Malformed(e.to_string())),
        },
    }
}

fn schema_error(found: u32) -> RecordError {
    if found > SCHEMA_VERSION {
        RecordError::NewerSchema { found }
    } else {
        RecordError::Malformed(format!("unknown schema version {found}"))
    }
}
