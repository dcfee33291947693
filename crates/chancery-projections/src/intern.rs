//! Interned names: parties, issues and timelines as small numbers in facts and indexes.

use std::collections::HashMap;

use serde_json::json;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Namespace {
    names: Vec<String>,
    /// Looked up for every name of every event applied, so hashed fast; the names are the
    /// registry's, which only admins add to.
    ids: HashMap<String, u32, foldhash::fast::RandomState>,
}

impl Namespace {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The ids of the names a filter gives, leaving out names never interned; `None` when it
    /// gives names but none is interned, since such a filter matches nothing. An empty filter
    /// gives no ids: it matches everything.
    pub fn known_ids<S: AsRef<str>>(&self, filter: &[S]) -> Option<Vec<u32>> {
        let ids: Vec<u32> = filter.iter().filter_map(|n| self.get(n.as_ref())).collect();
        if !filter.is_empty() && ids.is_empty() {
            None
        } else {
            Some(ids)
        }
    }

    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn from_names(names: Vec<String>) -> Self {
        let ids = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        Self { names, ids }
    }
}

/// Every interned name, by kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Names {
    pub parties: Namespace,
    pub issues: Namespace,
    pub timelines: Namespace,
    /// Whether a name was added since the last checkpoint.
    pub dirty: bool,
}

impl Names {
    pub fn party(&mut self, code: &str) -> u32 {
        let before = self.parties.len();
        let id = self.parties.intern(code);
        self.dirty |= self.parties.len() != before;
        id
    }

    pub fn issue(&mut self, slug: &str) -> u32 {
        let before = self.issues.len();
        let id = self.issues.intern(slug);
        self.dirty |= self.issues.len() != before;
        id
    }

    pub fn timeline(&mut self, slug: &str) -> u32 {
        let before = self.timelines.len();
        let id = self.timelines.intern(slug);
        self.dirty |= self.timelines.len() != before;
        id
    }

    pub fn to_json(&self) -> Vec<u8> {
        json!({ "parties": self.parties.names, "issues": self.issues.names, "timelines": self.timelines.names })
            .to_string()
            .into_bytes()
    }

    pub fn from_json(bytes: &[u8]) -> Option<Names> {
        let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let list =
            |k: &str| -> Option<Vec<String>> { serde_json::from_value(v.get(k)?.clone()).ok() };
        Some(Names {
            parties: Namespace::from_names(list("parties")?),
            issues: Namespace::from_names(list("issues")?),
            timelines: Namespace::from_names(list("timelines")?),
            dirty: false,
        })
    }
}
