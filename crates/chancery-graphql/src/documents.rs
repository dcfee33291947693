//! Parsed documents, kept by their text: clients send the same few documents again and again
//! (a recorder's mutation, a dashboard's query), and parsing one costs more than the rest of a
//! small request. A document is parsed once; each request gets a copy of the parsed tree, with
//! what the HTTP handler checks before execution (its aliases, its operations' types) worked
//! out once too. Validation still runs per request, since it depends on the variables.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::{ExecutableDocument, OperationType};

use crate::limits::count_aliases;

/// A parsed document and what is known of it before execution.
pub struct Parsed {
    pub document: ExecutableDocument,
    /// Aliased fields as the document would run (see `limits::count_aliases`).
    pub aliases: usize,
    /// Each operation's name and type.
    pub operations: Vec<(Option<String>, OperationType)>,
    /// Whether it writes an enum value as a string literal (see `schema::Schemas`).
    pub enum_literals: bool,
}

impl Parsed {
    fn of(document: ExecutableDocument) -> Parsed {
        let aliases = count_aliases(&document);
        let enum_literals = crate::enum_literals::refused(&document);
        let operations = document
            .operations
            .iter()
            .map(|(name, op)| (name.map(|n| n.to_string()), op.node.ty))
            .collect();
        Parsed {
            document,
            aliases,
            operations,
            enum_literals,
        }
    }

    /// The type of the operation a request names (or of its only one).
    pub fn operation_type(&self, name: Option<&str>) -> Option<OperationType> {
        match name {
            Some(name) => self
                .operations
                .iter()
                .find(|(n, _)| n.as_deref() == Some(name))
                .map(|(_, ty)| *ty),
            None => self.operations.first().map(|(_, ty)| *ty),
        }
    }
}

/// Parsed documents by their text, bounded: two generations, the older dropped whole when the
/// newer fills, so a document in use stays and memory stays under two generations.
#[derive(Default)]
pub struct DocumentCache {
    inner: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    young: HashMap<Arc<str>, Arc<Parsed>>,
    old: HashMap<Arc<str>, Arc<Parsed>>,
}

impl DocumentCache {
    /// Documents per generation.
    const GENERATION: usize = 256;
    /// Longer documents are parsed every time: they are rarely sent twice, and would crowd out
    /// the ones that are.
    const MAX_KEPT_LEN: usize = 16 * 1024;

    /// The parsed document of `query`, parsed now if it is not kept.
    pub fn get(&self, query: &str) -> Result<Arc<Parsed>, async_graphql::parser::Error> {
        if let Some(parsed) = self.lookup(query) {
            return Ok(parsed);
        }
        let parsed = Arc::new(Parsed::of(async_graphql::parser::parse_query(query)?));
        if query.len() <= Self::MAX_KEPT_LEN {
            if let Ok(mut g) = self.inner.lock() {
                if g.young.len() >= Self::GENERATION {
                    g.old = std::mem::take(&mut g.young);
                }
                g.young.insert(Arc::from(query), Arc::clone(&parsed));
            }
        }
        Ok(parsed)
    }

    /// The parsed document of `query` if it is kept; never parses.
    pub fn peek(&self, query: &str) -> Option<Arc<Parsed>> {
        self.lookup(query)
    }

    fn lookup(&self, query: &str) -> Option<Arc<Parsed>> {
        let mut g = self.inner.lock().ok()?;
        if let Some(parsed) = g.young.get(query) {
            return Some(Arc::clone(parsed));
        }
        let (key, parsed) = g.old.remove_entry(query)?;
        if g.young.len() >= Self::GENERATION {
            g.old = std::mem::take(&mut g.young);
        }
        g.young.insert(key, Arc::clone(&parsed));
        Some(parsed)
    }
}
