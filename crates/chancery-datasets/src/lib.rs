//! Coded event datasets in and out: GDELT 2.0 event files, ICEWS coded event data and POLECAT,
//! read row by row into Chancery events ([`mapping`]), and Chancery events written back as
//! GDELT 2.0 or POLECAT rows ([`export`]).
//!
//! This crate reads and writes text; it knows nothing of the store. The import itself (two
//! passes over the file, registrations, batches, the report) is the `chancery` crate's.

pub mod export;
pub mod gdelt;
pub mod icews;
pub mod input;
pub mod mapping;
pub mod parties;
pub mod polecat;
pub mod row;

use std::str::FromStr;

pub use mapping::{Destination, Unmapped, event_of, parties_of};
pub use row::{DatasetRow, RowCode, RowError, RowParty};

/// The formats `chancery import --format` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Gdelt,
    Icews,
    Polecat,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Gdelt, Format::Icews, Format::Polecat];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Gdelt => "gdelt",
            Format::Icews => "icews",
            Format::Polecat => "polecat",
        }
    }

    /// A reader of this format's lines, which learns the columns from a header row where the
    /// format has one.
    pub fn rows(self) -> RowReader {
        RowReader {
            format: self,
            header: None,
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("{s:?} is not a dataset format (gdelt, icews or polecat)"))
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads the lines of one file of a format, in order.
#[derive(Debug, Clone)]
pub struct RowReader {
    format: Format,
    /// The columns of a format with a header row, once its first line is read.
    header: Option<HeaderColumns>,
}

/// Where a headed format's columns are.
#[derive(Debug, Clone)]
pub(crate) enum HeaderColumns {
    Icews(icews::Columns),
    Polecat(polecat::Columns),
}

impl RowReader {
    /// Reads a non-empty line: `Ok(None)` for a header row, the row otherwise.
    pub fn line(&mut self, number: u64, text: &str) -> Result<Option<DatasetRow>, RowError> {
        match (self.format, &self.header) {
            (Format::Gdelt, _) => gdelt::parse(number, text).map(Some),
            (Format::Icews, None) => {
                self.header = Some(HeaderColumns::Icews(icews::Columns::of_header(
                    number, text,
                )?));
                Ok(None)
            }
            (Format::Polecat, None) => {
                self.header = Some(HeaderColumns::Polecat(polecat::Columns::of_header(
                    number, text,
                )?));
                Ok(None)
            }
            (_, Some(HeaderColumns::Icews(columns))) => columns.parse(number, text).map(Some),
            (_, Some(HeaderColumns::Polecat(columns))) => columns.parse(number, text).map(Some),
        }
    }
}

/// Why a dataset file cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{name}: {source}")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{name} is a zip archive that cannot be read: {why}")]
    Archive { name: String, why: String },
}

impl DatasetError {
    pub(crate) fn io(name: &str, source: std::io::Error) -> Self {
        DatasetError::Io {
            name: name.to_owned(),
            source,
        }
    }
}
