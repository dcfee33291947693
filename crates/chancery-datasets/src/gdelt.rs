//! GDELT 2.0 event files (`YYYYMMDDHHMMSS.export.CSV`): 61 tab-separated columns, no header
//! row, as the GDELT 2.0 Event Codebook lays them out. Rows are read into [`DatasetRow`]s and
//! events are written back as rows of the same 61 columns.

use chancery_domain::Dataset;

use crate::parties;
use crate::row::{DatasetRow, Fields, RowCode, RowError, RowParty};

/// The columns, in order, as the codebook names them.
pub const COLUMNS: [&str; 61] = [
    "GLOBALEVENTID",
    "SQLDATE",
    "MonthYear",
    "Year",
    "FractionDate",
    "Actor1Code",
    "Actor1Name",
    "Actor1CountryCode",
    "Actor1KnownGroupCode",
    "Actor1EthnicCode",
    "Actor1Religion1Code",
    "Actor1Religion2Code",
    "Actor1Type1Code",
    "Actor1Type2Code",
    "Actor1Type3Code",
    "Actor2Code",
    "Actor2Name",
    "Actor2CountryCode",
    "Actor2KnownGroupCode",
    "Actor2EthnicCode",
    "Actor2Religion1Code",
    "Actor2Religion2Code",
    "Actor2Type1Code",
    "Actor2Type2Code",
    "Actor2Type3Code",
    "IsRootEvent",
    "EventCode",
    "EventBaseCode",
    "EventRootCode",
    "QuadClass",
    "GoldsteinScale",
    "NumMentions",
    "NumSources",
    "NumArticles",
    "AvgTone",
    "Actor1Geo_Type",
    "Actor1Geo_FullName",
    "Actor1Geo_CountryCode",
    "Actor1Geo_ADM1Code",
    "Actor1Geo_ADM2Code",
    "Actor1Geo_Lat",
    "Actor1Geo_Long",
    "Actor1Geo_FeatureID",
    "Actor2Geo_Type",
    "Actor2Geo_FullName",
    "Actor2Geo_CountryCode",
    "Actor2Geo_ADM1Code",
    "Actor2Geo_ADM2Code",
    "Actor2Geo_Lat",
    "Actor2Geo_Long",
    "Actor2Geo_FeatureID",
    "ActionGeo_Type",
    "ActionGeo_FullName",
    "ActionGeo_CountryCode",
    "ActionGeo_ADM1Code",
    "ActionGeo_ADM2Code",
    "ActionGeo_Lat",
    "ActionGeo_Long",
    "ActionGeo_FeatureID",
    "DATEADDED",
    "SOURCEURL",
];

/// Where the columns the importer reads sit.
pub(crate) mod col {
    pub const GLOBALEVENTID: usize = 0;
    pub const SQLDATE: usize = 1;
    pub const ACTOR1: usize = 5;
    pub const ACTOR2: usize = 15;
    /// Offsets within an actor's ten columns.
    pub const NAME: usize = 1;
    pub const COUNTRY: usize = 2;
    pub const KNOWN_GROUP: usize = 3;
    pub const EVENT_CODE: usize = 26;
    pub const QUAD_CLASS: usize = 29;
    pub const GOLDSTEIN: usize = 30;
    pub const AVG_TONE: usize = 34;
    pub const ACTION_GEO_FULL_NAME: usize = 52;
    pub const DATEADDED: usize = 59;
    pub const SOURCEURL: usize = 60;
}

/// The name an event's source gets: the dataset, since GDELT names no publisher.
pub const PUBLISHER: &str = "GDELT 2.0";

/// Reads one line of a GDELT 2.0 event file.
pub fn parse(line: u64, text: &str) -> Result<DatasetRow, RowError> {
    let f = Fields::split(line, text);
    if f.values.len() != COLUMNS.len() {
        return Err(f.error(
            "columns",
            format!(
                "has {} tab-separated columns; a GDELT 2.0 event row has {}",
                f.values.len(),
                COLUMNS.len()
            ),
        ));
    }
    let event_id = f.required(col::GLOBALEVENTID, "GLOBALEVENTID")?;
    if !event_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(f.error("GLOBALEVENTID", format!("{event_id:?} is not a number")));
    }
    let date = f.compact_day(col::SQLDATE, "SQLDATE")?;
    let code = f.cameo(col::EVENT_CODE, "EventCode", false)?;
    let quad_class = f.quad_class(col::QUAD_CLASS, "QuadClass")?;
    let goldstein = f.score(col::GOLDSTEIN, "GoldsteinScale", 10.0)?;
    let tone = f.score(col::AVG_TONE, "AvgTone", 100.0)?;
    let added = f.text(col::DATEADDED);
    let published = if added.is_empty() {
        None
    } else {
        Some(f.compact_day(col::DATEADDED, "DATEADDED")?)
    };
    let url = Some(f.text(col::SOURCEURL))
        .filter(|u| !u.is_empty())
        .map(str::to_owned);
    let place = Some(f.text(col::ACTION_GEO_FULL_NAME))
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    Ok(DatasetRow {
        dataset: Dataset::Gdelt,
        line,
        event_id: event_id.to_owned(),
        date,
        actor: actor(&f, col::ACTOR1),
        target: actor(&f, col::ACTOR2),
        code: RowCode::Cameo(code),
        quad_class,
        goldstein,
        intensity: None,
        tone,
        url,
        publisher: PUBLISHER.to_owned(),
        published,
        place,
    })
}

/// An actor's party: its country code, else its known group's code (an organization).
fn actor(f: &Fields<'_>, at: usize) -> Option<RowParty> {
    let name = f.text(at + col::NAME).to_owned();
    let country = f.text(at + col::COUNTRY);
    if !country.is_empty() {
        // CAMEO's legacy codes (ROM for Romania) are aliases of the ISO code in the table.
        let code = parties::by_code(country)
            .or_else(|| parties::by_name(country))
            .map_or(country, |k| k.code);
        return Some(RowParty {
            code: code.to_owned(),
            name,
            group: false,
        });
    }
    let group = f.text(at + col::KNOWN_GROUP);
    (!group.is_empty()).then(|| RowParty {
        code: group.to_owned(),
        name,
        group: true,
    })
}
