//! POLECAT (PLOVER 2.0-coded events): tab-separated with a header row, as the POLECAT data
//! description gives it. The importer reads the columns below by their header names; an export
//! writes every column of [`COLUMNS`], those it has no value for left empty.

use chancery_domain::Dataset;
use chancery_domain::payload::PartyKind;

use crate::mapping::PLOVER_TYPES;
use crate::parties;
use crate::row::{DatasetRow, Fields, Header, RowCode, RowError, RowParty};

pub const EVENT_ID: &str = "Event ID";
pub const EVENT_DATE: &str = "Event Date";
pub const EVENT_TYPE: &str = "Event Type";
pub const EVENT_MODE: &str = "Event Mode";
pub const INTENSITY: &str = "Intensity";
/// The name later releases give the intensity column.
const INTENSITY_ALSO: &str = "Event Intensity";
pub const QUAD_CODE: &str = "Quad Code";
pub const ACTOR_NAME: &str = "Actor Name";
pub const ACTOR_COUNTRY: &str = "Actor Country";
pub const RECIPIENT_NAME: &str = "Recipient Name";
pub const RECIPIENT_COUNTRY: &str = "Recipient Country";
pub const PLACENAME: &str = "Placename";
pub const SOURCE: &str = "Source";
pub const PUBLICATION_DATE: &str = "Publication Date";

/// Every column of a POLECAT file, in order.
pub const COLUMNS: [&str; 40] = [
    EVENT_ID,
    EVENT_DATE,
    EVENT_TYPE,
    EVENT_MODE,
    INTENSITY,
    QUAD_CODE,
    "Contexts",
    ACTOR_NAME,
    ACTOR_COUNTRY,
    "Actor COW",
    "Primary Actor Sector",
    "Actor Sectors",
    "Actor Title",
    "Actor Name Raw",
    "Wikipedia Actor ID",
    RECIPIENT_NAME,
    RECIPIENT_COUNTRY,
    "Recipient COW",
    "Primary Recipient Sector",
    "Recipient Sectors",
    "Recipient Title",
    "Recipient Name Raw",
    "Wikipedia Recipient ID",
    PLACENAME,
    "City",
    "District",
    "Province",
    "Country",
    "Latitude",
    "Longitude",
    "GeoNames ID",
    "Raw Placename",
    "Feature Type",
    SOURCE,
    PUBLICATION_DATE,
    "Story People",
    "Story Organizations",
    "Story Locations",
    "Language",
    "Version",
];

/// POLECAT's quad codes, in words, by number (1 to 4).
pub const QUAD_CODES: [&str; 4] = [
    "VERBAL COOPERATION",
    "MATERIAL COOPERATION",
    "VERBAL CONFLICT",
    "MATERIAL CONFLICT",
];

/// POLECAT is written from Python: a missing value is the text `None`.
fn value(text: &str) -> &str {
    if text == "None" { "" } else { text }
}

/// Where a file's columns are, from its header row.
#[derive(Debug, Clone)]
pub struct Columns {
    width: usize,
    event_id: usize,
    event_date: usize,
    event_type: usize,
    event_mode: Option<usize>,
    intensity: Option<usize>,
    quad_code: Option<usize>,
    actor_country: usize,
    recipient_country: usize,
    placename: Option<usize>,
    source: Option<usize>,
    publication_date: Option<usize>,
}

impl Columns {
    /// Reads the header row; a column the importer needs and cannot find is an error.
    pub fn of_header(line: u64, text: &str) -> Result<Columns, RowError> {
        let header = Header::read(line, text, "a POLECAT");
        let need = |name: &str| header.need(name);
        Ok(Columns {
            width: header.width(),
            event_id: need(EVENT_ID)?,
            event_date: need(EVENT_DATE)?,
            event_type: need(EVENT_TYPE)?,
            event_mode: header.find(EVENT_MODE),
            intensity: header
                .find(INTENSITY)
                .or_else(|| header.find(INTENSITY_ALSO)),
            quad_code: header.find(QUAD_CODE),
            actor_country: need(ACTOR_COUNTRY)?,
            recipient_country: need(RECIPIENT_COUNTRY)?,
            placename: header.find(PLACENAME),
            source: header.find(SOURCE),
            publication_date: header.find(PUBLICATION_DATE),
        })
    }

    /// Reads one row after the header.
    pub fn parse(&self, line: u64, text: &str) -> Result<DatasetRow, RowError> {
        let f = Fields::split_to_width(line, text, self.width)?;
        let opt = |at: Option<usize>| at.map(|at| value(f.text(at))).filter(|v| !v.is_empty());
        let event_id = f.required(self.event_id, EVENT_ID)?;
        let date = f.iso_day(self.event_date, EVENT_DATE)?;
        let event_type = f.required(self.event_type, EVENT_TYPE)?.to_uppercase();
        if !PLOVER_TYPES.contains(&event_type.as_str()) {
            return Err(f.error(
                EVENT_TYPE,
                format!(
                    "{event_type:?} is not a PLOVER 2.0 event type ({})",
                    PLOVER_TYPES.join(", ")
                ),
            ));
        }
        let mode = opt(self.event_mode).map(str::to_lowercase);
        let intensity = match self.intensity {
            Some(at) if !value(f.text(at)).is_empty() => f.score(at, INTENSITY, 10.0)?,
            _ => None,
        };
        let quad_class = match (opt(self.quad_code), self.quad_code) {
            (Some(words), Some(at)) => match QUAD_CODES
                .iter()
                .position(|q| q.eq_ignore_ascii_case(words))
            {
                Some(i) => u8::try_from(i + 1).ok(),
                None => f.quad_class(at, QUAD_CODE)?,
            },
            _ => None,
        };
        let published = match self.publication_date {
            Some(at) if !value(f.text(at)).is_empty() => Some(f.iso_day(at, PUBLICATION_DATE)?),
            _ => None,
        };
        Ok(DatasetRow {
            dataset: Dataset::Polecat,
            line,
            event_id: event_id.to_owned(),
            date,
            actor: party(value(f.text(self.actor_country))),
            target: party(value(f.text(self.recipient_country))),
            code: RowCode::Plover { event_type, mode },
            quad_class,
            goldstein: None,
            intensity,
            tone: None,
            url: None,
            publisher: opt(self.source).map_or_else(|| "POLECAT".to_owned(), str::to_owned),
            published,
            place: opt(self.placename).map(str::to_owned),
        })
    }
}

/// A party by its country code (ISO 3166 alpha-3, or one of PLOVER's non-state codes); a
/// country written in words is looked up in the party table. The row's actor name (a person, a
/// ministry) is not the party's, so a code the table lacks names its party itself.
fn party(country: &str) -> Option<RowParty> {
    if country.is_empty() {
        return None;
    }
    // PLOVER's EUR is the European Union; CAMEO's, in the table, is Europe.
    if country == "EUR" {
        return Some(RowParty {
            code: "EU".to_owned(),
            name: "European Union".to_owned(),
            group: true,
        });
    }
    Some(
        match parties::by_code(country).or_else(|| parties::by_name(country)) {
            Some(k) => RowParty {
                code: k.code.to_owned(),
                name: k.name.to_owned(),
                group: k.kind == PartyKind::Organization,
            },
            None => RowParty {
                code: country.to_owned(),
                name: country.to_owned(),
                group: false,
            },
        },
    )
}
