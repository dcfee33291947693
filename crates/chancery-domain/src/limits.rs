//! Size limits on what an event may carry. They keep one event small (a record must fit well
//! inside a storage page), a quote short (a citation, never a copied article) and a request cheap
//! to validate. Documented for users in the README's "Limits" table; change both together.

/// Characters in an event's summary.
pub const MAX_SUMMARY_CHARS: usize = 2_000;
/// Characters in long free text: terms, claims, reasons, purposes, descriptions.
pub const MAX_TEXT_CHARS: usize = 4_000;
/// Characters in short text: names, titles, roles, places, publications, what an amount measures.
pub const MAX_SHORT_TEXT_CHARS: usize = 300;
/// Characters in the name an event is recorded by (`recordedBy`: a token's name, or the
/// operator of an import).
pub const MAX_RECORDED_BY_CHARS: usize = 64;
/// Characters in a source's quote: a short excerpt, never the full text.
pub const MAX_QUOTE_CHARS: usize = 500;
/// Bytes in a source URL.
pub const MAX_URL_BYTES: usize = 2_048;
/// Entries in any list of an event (actors, targets, issues, amounts, sources, conditions, ...).
pub const MAX_LIST_LEN: usize = 32;
/// Largest amount accepted in any unit: ten quadrillion, far above any economy.
pub const MAX_AMOUNT: f64 = 1e16;
/// Largest rate accepted, in percent.
pub const MAX_PERCENT: f64 = 10_000.0;
/// Bytes in the canonical encoding of one event.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
/// Events in one append.
pub const MAX_BATCH_EVENTS: usize = 1_000;
/// The longest dataset event id (GDELT's are integers, POLECAT's hashes).
pub const MAX_DATASET_ID_BYTES: usize = 64;
