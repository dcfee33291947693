//! One dataset row, read: what GDELT, ICEWS and POLECAT rows share once their columns are parsed
//! (an id, a day, who did what to whom, the dataset's codes and scores, where it was reported),
//! and the error that names the line and column a malformed row fails at.

use chancery_domain::time::ValidTime;
use chancery_domain::{Dataset, DatasetCoding};

/// A party as a row names it: a code (an ISO 3166 alpha-3 or CAMEO country code, or a known
/// group's code) and the row's own name for it.
#[derive(Debug, Clone, PartialEq)]
pub struct RowParty {
    pub code: String,
    /// The row's name of the actor ("UNITED STATES", "Xi Jinping"), used when the party table
    /// has no name for the code.
    pub name: String,
    /// Whether the code names a group (an organization) rather than a country.
    pub group: bool,
}

/// What the dataset says happened.
#[derive(Debug, Clone, PartialEq)]
pub enum RowCode {
    /// A CAMEO event code (GDELT, ICEWS), digits as a string.
    Cameo(String),
    /// A PLOVER event type and mode (POLECAT).
    Plover {
        event_type: String,
        mode: Option<String>,
    },
}

/// A parsed row.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRow {
    pub dataset: Dataset,
    /// The row's line in its file (from 1).
    pub line: u64,
    pub event_id: String,
    /// The day it happened.
    pub date: ValidTime,
    /// The acting party; `None` when the row names none the importer can use.
    pub actor: Option<RowParty>,
    pub target: Option<RowParty>,
    pub code: RowCode,
    pub quad_class: Option<u8>,
    pub goldstein: Option<f64>,
    pub intensity: Option<f64>,
    pub tone: Option<f64>,
    /// The article the row was coded from, when the dataset gives it.
    pub url: Option<String>,
    /// Who published the report ("GDELT 2.0" when the dataset does not say).
    pub publisher: String,
    /// When the report was published or added to the dataset.
    pub published: Option<ValidTime>,
    /// Where it happened, as the row names the place.
    pub place: Option<String>,
}

impl DatasetRow {
    /// The dataset's coding of the row, as kept with the event.
    pub fn coding(&self) -> DatasetCoding {
        let (cameo, plover_type, plover_mode) = match &self.code {
            RowCode::Cameo(code) => (Some(code.clone()), None, None),
            RowCode::Plover { event_type, mode } => (None, Some(event_type.clone()), mode.clone()),
        };
        DatasetCoding {
            cameo,
            plover_type,
            plover_mode,
            quad_class: self.quad_class,
            goldstein: self.goldstein,
            intensity: self.intensity,
            tone: self.tone,
            ..DatasetCoding::new(self.dataset, self.event_id.clone())
        }
    }
}

/// A row that cannot be read: its line, the column at fault and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, {field}: {message}")]
pub struct RowError {
    pub line: u64,
    pub field: String,
    pub message: String,
}

impl RowError {
    pub fn new(line: u64, field: impl Into<String>, message: impl Into<String>) -> Self {
        RowError {
            line,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The columns of one line, split on tabs, with the line number for errors.
pub(crate) struct Fields<'a> {
    pub line: u64,
    pub values: Vec<&'a str>,
}

impl<'a> Fields<'a> {
    pub fn split(line: u64, text: &'a str) -> Self {
        // A row has tens of short columns: one vectorised scan for the tabs, into a list sized
        // for the widest format, costs a fraction of a search started afresh per column.
        let mut values = Vec::with_capacity(64);
        let mut start = 0;
        for tab in memchr::memchr_iter(b'\t', text.as_bytes()) {
            values.push(text.get(start..tab).unwrap_or_default());
            start = tab + 1;
        }
        values.push(text.get(start..).unwrap_or_default());
        Fields { line, values }
    }

    pub fn error(&self, field: &str, message: impl Into<String>) -> RowError {
        RowError::new(self.line, field, message)
    }

    /// A column's text, trimmed; empty when the column is empty or missing.
    pub fn text(&self, at: usize) -> &'a str {
        self.values.get(at).map_or("", |v| v.trim())
    }

    /// A column that must not be empty.
    pub fn required(&self, at: usize, field: &str) -> Result<&'a str, RowError> {
        match self.text(at) {
            "" => Err(self.error(field, "is empty")),
            v => Ok(v),
        }
    }

    /// A decimal number, or `None` for an empty column.
    pub fn number(&self, at: usize, field: &str) -> Result<Option<f64>, RowError> {
        match self.text(at) {
            "" => Ok(None),
            v => v
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(Some)
                .ok_or_else(|| self.error(field, format!("{v:?} is not a number"))),
        }
    }

    /// A score within `-limit..=limit`, or `None` for an empty column.
    pub fn score(&self, at: usize, field: &str, limit: f64) -> Result<Option<f64>, RowError> {
        let value = self.number(at, field)?;
        match value {
            Some(v) if v.abs() > limit => {
                Err(self.error(field, format!("{v} is not between -{limit} and {limit}")))
            }
            _ => Ok(value),
        }
    }

    /// A quad class 1 to 4, or `None` for an empty column.
    pub fn quad_class(&self, at: usize, field: &str) -> Result<Option<u8>, RowError> {
        match self.text(at) {
            "" => Ok(None),
            v => v
                .parse::<u8>()
                .ok()
                .filter(|q| (1..=4).contains(q))
                .map(Some)
                .ok_or_else(|| self.error(field, format!("{v:?} is not a quad class (1 to 4)"))),
        }
    }

    /// A CAMEO event code: 2 to 4 digits. `pad` restores the leading zero of a code a dataset
    /// wrote as a number (`42` for `042`, `311` for `0311`): CAMEO roots run from 01 to 20, so a
    /// code whose first two digits are past 20 lost its zero.
    pub fn cameo(&self, at: usize, field: &str, pad: bool) -> Result<String, RowError> {
        let v = self.required(at, field)?;
        let bad = || self.error(field, format!("{v:?} is not a CAMEO event code"));
        if !(2..=4).contains(&v.len()) || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let root: u8 = v[..2].parse().map_err(|_| bad())?;
        let code = if pad && v.len() < 4 && root > 20 {
            format!("0{v}")
        } else {
            v.to_owned()
        };
        let root: u8 = code[..2].parse().map_err(|_| bad())?;
        if !(1..=20).contains(&root) {
            return Err(bad());
        }
        Ok(code)
    }

    /// A day written as `YYYYMMDD` (GDELT).
    pub fn compact_day(&self, at: usize, field: &str) -> Result<ValidTime, RowError> {
        let v = self.required(at, field)?;
        if v.len() < 8 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.error(field, format!("{v:?} is not a date (YYYYMMDD)")));
        }
        // `YYYY-MM-DD` in place, without a string per date (two per GDELT row).
        let b = v.as_bytes();
        let iso = [b[0], b[1], b[2], b[3], b'-', b[4], b[5], b'-', b[6], b[7]];
        std::str::from_utf8(&iso)
            .map_err(|e| self.error(field, e.to_string()))
            .and_then(|day| ValidTime::parse(day).map_err(|e| self.error(field, e.to_string())))
    }

    /// A day written as `YYYY-MM-DD` (ICEWS, POLECAT); a longer timestamp keeps its day.
    pub fn iso_day(&self, at: usize, field: &str) -> Result<ValidTime, RowError> {
        let v = self.required(at, field)?;
        ValidTime::parse(v.get(..10).unwrap_or(v)).map_err(|e| self.error(field, e.to_string()))
    }
}

/// A header row: where each named column is, for formats that have one.
pub(crate) struct Header<'a> {
    line: u64,
    names: Vec<&'a str>,
    /// The format, for the error of a missing column.
    format: &'static str,
}

impl<'a> Header<'a> {
    pub fn read(line: u64, text: &'a str, format: &'static str) -> Self {
        Header {
            line,
            names: text.split('\t').collect(),
            format,
        }
    }

    /// How many columns the rows must have.
    pub fn width(&self) -> usize {
        self.names.len()
    }

    /// A column's index by its name, if the header has it.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.names
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    }

    /// A column the importer cannot do without.
    pub fn need(&self, name: &str) -> Result<usize, RowError> {
        self.find(name).ok_or_else(|| {
            RowError::new(
                self.line,
                name,
                format!(
                    "is missing from the header row (is this {} file?)",
                    self.format
                ),
            )
        })
    }
}

impl<'a> Fields<'a> {
    /// A row of a headed format, which must have as many columns as its header.
    pub fn split_to_width(line: u64, text: &'a str, width: usize) -> Result<Self, RowError> {
        let f = Fields::split(line, text);
        if f.values.len() != width {
            return Err(f.error(
                "columns",
                format!(
                    "has {} tab-separated columns; the header has {width}",
                    f.values.len()
                ),
            ));
        }
        Ok(f)
    }
}
