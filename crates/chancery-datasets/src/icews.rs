//! ICEWS coded event data: tab-separated with a header row (`Event ID`, `Event Date`, `Source
//! Name`, `Source Sectors`, `Source Country`, `Event Text`, `CAMEO Code`, `Intensity`, `Target
//! Name`, `Target Sectors`, `Target Country`, `Story ID`, `Sentence Number`, `Publisher`, `City`,
//! `District`, `Province`, `Country`, `Latitude`, `Longitude`), as the ICEWS coded event data
//! description gives them. Countries are written as names; the party table turns them into codes.

use chancery_domain::Dataset;

use crate::parties;
use crate::row::{DatasetRow, Fields, Header, RowCode, RowError, RowParty};

/// The columns the importer reads, by their header names.
const EVENT_ID: &str = "Event ID";
const EVENT_DATE: &str = "Event Date";
const SOURCE_COUNTRY: &str = "Source Country";
const CAMEO_CODE: &str = "CAMEO Code";
const INTENSITY: &str = "Intensity";
const TARGET_COUNTRY: &str = "Target Country";
const PUBLISHER: &str = "Publisher";
const CITY: &str = "City";
const PROVINCE: &str = "Province";
const COUNTRY: &str = "Country";

/// Where a file's columns are, from its header row.
#[derive(Debug, Clone)]
pub struct Columns {
    width: usize,
    event_id: usize,
    event_date: usize,
    source_country: usize,
    cameo: usize,
    intensity: usize,
    target_country: usize,
    publisher: Option<usize>,
    place: Vec<usize>,
}

impl Columns {
    /// Reads the header row; a column the importer needs and cannot find is an error.
    pub fn of_header(line: u64, text: &str) -> Result<Columns, RowError> {
        let header = Header::read(line, text, "an ICEWS coded event");
        let need = |name: &str| header.need(name);
        Ok(Columns {
            width: header.width(),
            event_id: need(EVENT_ID)?,
            event_date: need(EVENT_DATE)?,
            source_country: need(SOURCE_COUNTRY)?,
            cameo: need(CAMEO_CODE)?,
            intensity: need(INTENSITY)?,
            target_country: need(TARGET_COUNTRY)?,
            publisher: header.find(PUBLISHER),
            place: [CITY, PROVINCE, COUNTRY]
                .iter()
                .filter_map(|n| header.find(n))
                .collect(),
        })
    }

    /// Reads one row after the header.
    pub fn parse(&self, line: u64, text: &str) -> Result<DatasetRow, RowError> {
        let f = Fields::split_to_width(line, text, self.width)?;
        let event_id = f.required(self.event_id, EVENT_ID)?;
        let date = f.iso_day(self.event_date, EVENT_DATE)?;
        // ICEWS files write some codes as numbers, without their leading zero.
        let code = f.cameo(self.cameo, CAMEO_CODE, true)?;
        let goldstein = f.score(self.intensity, INTENSITY, 10.0)?;
        let publisher = self
            .publisher
            .map(|at| f.text(at))
            .filter(|p| !p.is_empty());
        let place: Vec<&str> = self
            .place
            .iter()
            .map(|&at| f.text(at))
            .filter(|p| !p.is_empty())
            .collect();
        Ok(DatasetRow {
            dataset: Dataset::Icews,
            line,
            event_id: event_id.to_owned(),
            date,
            actor: party(f.text(self.source_country)),
            target: party(f.text(self.target_country)),
            code: RowCode::Cameo(code),
            quad_class: None,
            goldstein,
            intensity: None,
            tone: None,
            url: None,
            publisher: publisher.map_or_else(|| "ICEWS".to_owned(), |p| format!("{p} (via ICEWS)")),
            published: None,
            place: (!place.is_empty()).then(|| place.join(", ")),
        })
    }
}

/// A country named in words: its code from the party table, or an empty code that the mapping
/// reports as an unknown country.
fn party(country: &str) -> Option<RowParty> {
    // Extracts rewritten by R say NA for a missing value.
    if country.is_empty() || country == "NA" {
        return None;
    }
    Some(match parties::by_name(country) {
        Some(known) => RowParty {
            code: known.code.to_owned(),
            name: known.name.to_owned(),
            group: false,
        },
        None => RowParty {
            code: String::new(),
            name: country.to_owned(),
            group: false,
        },
    })
}
