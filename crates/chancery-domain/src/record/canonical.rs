//! The canonical JSON of a record: what is hashed, what an export line holds, and the stored form
//! of the records written by the first version. Our own serializer's output, fixed field order,
//! optional fields left out, so that equal records have equal bytes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::NewEvent;
use crate::record::{Hash, Position, RecordError, SCHEMA_VERSION};
use crate::time::Timestamp;

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

/// Encodes a record-to-be as canonical JSON and computes its hash: the hash is SHA-256 of the
/// body (`{"schema":..,"position":..,"version":..,"recordedAt":..,"prevHash":..,"event":{..}}`),
/// and the line is that body with `,"hash":"<hex>"` inserted before its closing brace.
///
/// Verifying a line thus needs no decoding: strip the suffix, restore the brace, hash.
pub fn encode_record(
    position: Position,
    version: u64,
    recorded_at: Timestamp,
    prev_hash: Hash,
    event: &NewEvent,
) -> (Vec<u8>, Hash) {
    let mut bytes = body(position, version, recorded_at, prev_hash, event);
    let hash = Hash(Sha256::digest(&bytes).into());
    close_with_hash(&mut bytes, &hash);
    (bytes, hash)
}

/// The hashed body alone.
pub(crate) fn body(
    position: Position,
    version: u64,
    recorded_at: Timestamp,
    prev_hash: Hash,
    event: &NewEvent,
) -> Vec<u8> {
    // Most bodies are under a kilobyte: one allocation rather than a doubling from empty.
    let mut bytes = Vec::with_capacity(1024);
    write_body(position, version, recorded_at, prev_hash, event, &mut bytes);
    bytes
}

/// Appends the hashed body to `out`.
pub(crate) fn write_body(
    position: Position,
    version: u64,
    recorded_at: Timestamp,
    prev_hash: Hash,
    event: &NewEvent,
    out: &mut Vec<u8>,
) {
    let body = Body {
        schema: SCHEMA_VERSION,
        position,
        version,
        recorded_at,
        prev_hash,
        event,
    };
    // Plain data with string keys always serializes; writing into a vector cannot fail.
    let _ = serde_json::to_writer(out, &body);
}

/// The header's part of a body, in the body's field order (an event is not part of it).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HeaderFields {
    schema: u32,
    position: Position,
    version: u64,
    recorded_at: Timestamp,
    prev_hash: Hash,
}

/// The hash of a record whose event's canonical JSON is already made: the SHA-256 of the same
/// bytes as [`body`], fed to the hash in pieces rather than copied into one buffer first.
pub(crate) fn hash_with_event_json(
    position: Position,
    version: u64,
    recorded_at: Timestamp,
    prev_hash: Hash,
    event_json: &[u8],
) -> Hash {
    let fields = HeaderFields {
        schema: SCHEMA_VERSION,
        position,
        version,
        recorded_at,
        prev_hash,
    };
    let mut header = Vec::with_capacity(160);
    // Plain data with string keys always serializes.
    let _ = serde_json::to_writer(&mut header, &fields);
    // `{..."prevHash":"<hex>"}` is hashed as `{..."prevHash":"<hex>","event":<event>}`.
    header.pop();
    let mut hasher = Sha256::new();
    hasher.update(&header);
    hasher.update(b",\"event\":");
    hasher.update(event_json);
    hasher.update(b"}");
    Hash(hasher.finalize().into())
}

/// Turns a body into its line: `,"hash":"<hex>"` before the closing brace.
pub(crate) fn close_with_hash(body: &mut Vec<u8>, hash: &Hash) {
    body.pop();
    body.extend_from_slice(b",\"hash\":\"");
    body.extend_from_slice(hash.hex_str(&mut [0; 64]).as_bytes());
    body.extend_from_slice(b"\"}");
}

/// Recomputes the hash of a canonical JSON line from its bytes and compares it with the hash it
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

/// A canonical JSON line, decoded.
pub(crate) struct Line {
    pub schema: u32,
    pub position: Position,
    pub version: u64,
    pub recorded_at: Timestamp,
    pub prev_hash: Hash,
    pub hash: Hash,
    pub event: NewEvent,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LineWire {
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

/// Decodes a canonical JSON line (any schema this build reads).
pub(crate) fn decode_line(bytes: &[u8]) -> Result<Line, RecordError> {
    match serde_json::from_slice::<LineWire>(bytes) {
        Ok(wire) if wire.schema == SCHEMA_VERSION => Ok(Line {
            schema: wire.schema,
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

pub(crate) fn schema_error(found: u32) -> RecordError {
    if found > SCHEMA_VERSION {
        RecordError::NewerSchema { found }
    } else {
        RecordError::Malformed(format!("unknown schema version {found}"))
    }
}
