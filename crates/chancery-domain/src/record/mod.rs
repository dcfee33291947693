//! Recorded events: an event with the position, version, transaction time and hash the store
//! gave it. Two forms: the stored form ([`binary`]), read field by field and decoded only as far
//! as a reader needs; and the canonical JSON ([`canonical`]), which is hashed into the SHA-256
//! chain, written by exports, and was the stored form of the first version. Old forms and schema
//! versions are read in one place, [`decode_record`].

pub mod binary;
pub mod canonical;

use std::fmt;
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};

use crate::event::NewEvent;
use crate::text_serde::serde_as_text;
use crate::time::Timestamp;

pub use binary::{EventView, FORM_BINARY, Header};
pub use canonical::{encode_record, verify_record_hash};

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
        self.hex_str(&mut [0; 64]).to_owned()
    }

    /// The 64 hex digits, written into `digits` rather than a string on the heap: every
    /// record's export line carries two.
    pub fn hex_str<'a>(&self, digits: &'a mut [u8; 64]) -> &'a str {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (pair, b) in digits.chunks_exact_mut(2).zip(self.0) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 15)];
        }
        // Hex digits are ASCII.
        std::str::from_utf8(digits).unwrap_or_default()
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
        f.write_str(self.hex_str(&mut [0; 64]))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..12])
    }
}

serde_as_text!(Hash, |text: &str| {
    Hash::from_hex(text).ok_or("expected 64 lowercase hex digits")
});

/// An event as the log holds it: its stored bytes, with the fixed header read, and the event
/// decoded on first use (a record sealed by this process keeps the event it was sealed from).
/// Cheap to clone: clones share the bytes and the decoded event.
#[derive(Clone)]
pub struct RecordedEvent(Arc<Stored>);

struct Stored {
    bytes: Box<[u8]>,
    header: Header,
    event: OnceLock<NewEvent>,
}

/// An event with the two encodings a record of it needs made ahead of its sealing: its canonical
/// JSON (hashed inside the record's body) and the variable part of its stored form. Neither
/// depends on the record's place in the log, so the stores make them in the appending caller's
/// task, where validation needs the JSON's length anyway, and their single writer only places,
/// hashes and frames them.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedEvent {
    event: NewEvent,
    json: Vec<u8>,
    /// The stored form with its fixed header left blank.
    stored: Vec<u8>,
}

impl PreparedEvent {
    pub fn new(event: NewEvent) -> PreparedEvent {
        let json = event.to_canonical_json();
        // Room for the header in front, written at sealing, so the terms are never copied.
        let mut stored = Vec::with_capacity(binary::at::TERMS + 256 + event.summary.len());
        stored.resize(binary::at::TERMS, 0);
        binary::encode_terms(&event, &mut stored);
        PreparedEvent {
            event,
            json,
            stored,
        }
    }

    pub fn event(&self) -> &NewEvent {
        &self.event
    }

    /// The length of the event's canonical JSON (what [`NewEvent::canonical_json_len`] counts).
    pub fn canonical_json_len(&self) -> usize {
        self.json.len()
    }
}

impl RecordedEvent {
    /// Seals an event at its place in the log: computes its hash over the canonical JSON and
    /// writes its stored form.
    pub fn seal(
        position: Position,
        version: u64,
        recorded_at: Timestamp,
        prev_hash: Hash,
        event: NewEvent,
    ) -> RecordedEvent {
        Self::seal_prepared(
            position,
            version,
            recorded_at,
            prev_hash,
            PreparedEvent::new(event),
        )
    }

    /// Seals an event whose encodings were made beforehand ([`PreparedEvent::new`]): what is left
    /// is the header, the copy of the event's bytes behind it, and the hash.
    pub fn seal_prepared(
        position: Position,
        version: u64,
        recorded_at: Timestamp,
        prev_hash: Hash,
        prepared: PreparedEvent,
    ) -> RecordedEvent {
        let PreparedEvent {
            event,
            json,
            mut stored,
        } = prepared;
        let hash =
            canonical::hash_with_event_json(position, version, recorded_at, prev_hash, &json);
        let header = Header {
            schema: schema_byte(),
            position,
            version,
            recorded_at,
            prev_hash,
            hash,
            kind: event.kind(),
            id: event.id,
        };
        binary::write_header(&header, &mut stored);
        Self::holding(stored, header, event)
    }

    fn from_parts(header: Header, event: NewEvent) -> RecordedEvent {
        let mut bytes = Vec::new();
        binary::encode(&header, &event, &mut bytes);
        Self::holding(bytes, header, event)
    }

    /// A record of stored bytes whose event is already at hand, decoded.
    fn holding(bytes: Vec<u8>, header: Header, event: NewEvent) -> RecordedEvent {
        let decoded = OnceLock::new();
        let _ = decoded.set(event);
        RecordedEvent(Arc::new(Stored {
            bytes: bytes.into_boxed_slice(),
            header,
            event: decoded,
        }))
    }

    /// A record from its stored form, read no further than its header.
    pub fn from_stored(bytes: impl Into<Box<[u8]>>) -> Result<RecordedEvent, RecordError> {
        let bytes = bytes.into();
        let header = binary::header(&bytes)?;
        if u32::from(header.schema) != SCHEMA_VERSION {
            return Err(canonical::schema_error(u32::from(header.schema)));
        }
        Ok(RecordedEvent(Arc::new(Stored {
            bytes,
            header,
            event: OnceLock::new(),
        })))
    }

    /// A record from its canonical JSON line (an export line, or a record stored by the first
    /// version): its hash checked, and its bytes checked to be exactly the canonical encoding of
    /// what they decode to, so that exporting it again gives back the same bytes.
    pub fn from_canonical_json(bytes: &[u8]) -> Result<RecordedEvent, RecordError> {
        // Decoded first, so that a record of a newer schema says so rather than failing its hash.
        let line = canonical::decode_line(bytes)?;
        let carried = verify_record_hash(bytes)?;
        let (again, hash) = encode_record(
            line.position,
            line.version,
            line.recorded_at,
            line.prev_hash,
            &line.event,
        );
        if hash != carried || again != bytes {
            return Err(RecordError::Malformed(
                "not in canonical form: encoding what it says gives other bytes".into(),
            ));
        }
        let schema = u8::try_from(line.schema).map_err(|_| canonical::schema_error(line.schema))?;
        Ok(Self::from_parts(
            Header {
                schema,
                position: line.position,
                version: line.version,
                recorded_at: line.recorded_at,
                prev_hash: line.prev_hash,
                hash: line.hash,
                kind: line.event.kind(),
                id: line.event.id,
            },
            line.event,
        ))
    }

    /// The stored form.
    pub fn stored(&self) -> &[u8] {
        &self.0.bytes
    }

    pub fn header(&self) -> &Header {
        &self.0.header
    }

    pub fn position(&self) -> Position {
        self.0.header.position
    }

    /// The event's version within its timeline: 1, 2, 3, ...
    pub fn version(&self) -> u64 {
        self.0.header.version
    }

    /// Transaction time: when the store recorded it. Never decreases along the log.
    pub fn recorded_at(&self) -> Timestamp {
        self.0.header.recorded_at
    }

    pub fn prev_hash(&self) -> Hash {
        self.0.header.prev_hash
    }

    pub fn hash(&self) -> Hash {
        self.0.header.hash
    }

    pub fn kind(&self) -> crate::payload::Kind {
        self.0.header.kind
    }

    pub fn id(&self) -> crate::ids::EventId {
        self.0.header.id
    }

    /// The event, decoded on first use.
    pub fn event(&self) -> Result<&NewEvent, RecordError> {
        if let Some(event) = self.0.event.get() {
            return Ok(event);
        }
        let (_, event) = binary::decode(&self.0.bytes)?;
        // Another thread may have decoded it meanwhile: either copy is the same.
        let _ = self.0.event.set(event);
        self.0
            .event
            .get()
            .ok_or_else(|| RecordError::Malformed("the event could not be kept".into()))
    }

    /// The event if it is decoded already (sealed here, or read by [`RecordedEvent::event`]).
    pub fn decoded(&self) -> Option<&NewEvent> {
        self.0.event.get()
    }

    /// The envelope's terms, borrowed from the stored bytes, without decoding the rest.
    pub fn view(&self) -> Result<EventView<'_>, RecordError> {
        EventView::read(&self.0.bytes)
    }

    /// The canonical JSON line: the hashed body with the hash the record carries before its
    /// closing brace. The hash is not computed again (an export spent a tenth of its time on
    /// it): a record whose content no longer matches its hash gives a line that fails
    /// verification, as the record itself does.
    pub fn canonical_json(&self) -> Result<Vec<u8>, RecordError> {
        let mut line = Vec::with_capacity(1024);
        self.write_canonical_json(&mut line)?;
        Ok(line)
    }

    /// Appends [`RecordedEvent::canonical_json`] to `out`, which an export fills with many
    /// lines: no buffer per line.
    pub fn write_canonical_json(&self, out: &mut Vec<u8>) -> Result<(), RecordError> {
        let h = &self.0.header;
        self.with_event(|event| {
            canonical::write_body(
                h.position,
                h.version,
                h.recorded_at,
                h.prev_hash,
                event,
                out,
            );
        })?;
        canonical::close_with_hash(out, &h.hash);
        Ok(())
    }

    /// Checks that the record's content hashes to the hash it carries; answers that hash.
    pub fn verify(&self) -> Result<Hash, RecordError> {
        let h = &self.0.header;
        let body = self.with_event(|event| {
            canonical::body(h.position, h.version, h.recorded_at, h.prev_hash, event)
        })?;
        let computed = Hash(Sha256::digest(&body).into());
        if computed == h.hash {
            Ok(computed)
        } else {
            Err(RecordError::HashMismatch {
                carried: h.hash,
                computed,
            })
        }
    }

    /// `use_event` of the event: the one decoded already, else one decoded for this call alone
    /// and dropped after it. A walk over many records (an export, `verify`) that kept every
    /// event it decoded would allocate each one's strings in memory no longer in the cache (a
    /// fifth of a first export's time, docs/benchmarks.md); dropped at once, they reuse the same
    /// few blocks.
    fn with_event<R>(&self, use_event: impl FnOnce(&NewEvent) -> R) -> Result<R, RecordError> {
        if let Some(event) = self.0.event.get() {
            return Ok(use_event(event));
        }
        let (_, event) = binary::decode(&self.0.bytes)?;
        Ok(use_event(&event))
    }
}

fn schema_byte() -> u8 {
    u8::try_from(SCHEMA_VERSION).unwrap_or(u8::MAX)
}

impl PartialEq for RecordedEvent {
    fn eq(&self, other: &Self) -> bool {
        self.0.bytes == other.0.bytes
    }
}

impl Eq for RecordedEvent {}

impl fmt::Debug for RecordedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.0.header;
        f.debug_struct("RecordedEvent")
            .field("position", &h.position)
            .field("version", &h.version)
            .field("kind", &h.kind)
            .field("id", &h.id)
            .field("hash", &h.hash)
            .finish_non_exhaustive()
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

/// Reads a record in any stored form this build knows: the binary form, or the canonical JSON
/// that the first version stored (upcast here, and only here). The binary form is read no
/// further than its header; its hash is checked by [`RecordedEvent::verify`].
pub fn decode_record(bytes: &[u8]) -> Result<RecordedEvent, RecordError> {
    match bytes.first() {
        Some(b'{') => RecordedEvent::from_canonical_json(bytes),
        _ => RecordedEvent::from_stored(bytes),
    }
}
