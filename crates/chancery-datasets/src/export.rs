//! Chancery events written as dataset rows: GDELT 2.0 event rows and POLECAT rows, with the
//! fields the formats share with Chancery (the dataset's id, the day, the parties, the code and
//! scores, the place, the source), so that importing the export gives back the same events and
//! codes. An event imported from the format keeps its own id and codes; any other event is
//! written with its position as its id and Chancery's codes.

use chancery_domain::codes::codes;
use chancery_domain::payload::PartyKind;
use chancery_domain::time::ValidTime;
use chancery_domain::{Dataset, NewEvent, PartyCode};
use time::{Date, OffsetDateTime};

use crate::{gdelt, polecat};

/// A party as an export writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedParty {
    pub name: String,
    pub kind: PartyKind,
}

/// The day an event starts, in UTC.
fn start_day(event: &NewEvent) -> Option<Date> {
    let start = event.occurred.as_ref()?.start;
    OffsetDateTime::from_unix_timestamp(start.earliest())
        .ok()
        .map(|t| t.date())
}

fn compact(date: Date) -> String {
    format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn iso(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn day_of(time: &ValidTime) -> Option<Date> {
    OffsetDateTime::from_unix_timestamp(time.earliest())
        .ok()
        .map(|t| t.date())
}

/// Removes what would break a tab-separated line.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A number as the datasets write it: `-5`, `2.8`.
fn number(n: f64) -> String {
    format!("{n}")
}

/// The first acting party and the first target.
fn dyad(event: &NewEvent) -> (Option<&PartyCode>, Option<&PartyCode>) {
    (
        event.actors.first().map(|p| &p.party),
        event.targets.first().map(|p| &p.party),
    )
}

/// An event's GDELT 2.0 row (61 tab-separated columns, no newline), or `None` for an event
/// without a valid time or codes (registrations, retractions, corrections). `position` is the
/// id of an event that does not come from GDELT.
pub fn gdelt_row(
    event: &NewEvent,
    position: u64,
    party: &dyn Fn(&PartyCode) -> ExportedParty,
) -> Option<String> {
    let day = start_day(event)?;
    let own = codes(event)?;
    let coding = event.dataset.as_ref();
    let from_gdelt = coding.filter(|c| c.dataset == Dataset::Gdelt);
    let mut cols: Vec<String> = vec![String::new(); gdelt::COLUMNS.len()];
    cols[gdelt::col::GLOBALEVENTID] =
        from_gdelt.map_or_else(|| position.to_string(), |c| c.event_id.clone());
    cols[gdelt::col::SQLDATE] = compact(day);
    cols[2] = format!("{:04}{:02}", day.year(), u8::from(day.month()));
    cols[3] = day.year().to_string();
    cols[4] = format!(
        "{:.4}",
        f64::from(day.year()) + f64::from(day.ordinal()) / 365.0
    );
    let (actor, target) = dyad(event);
    for (at, p) in [(gdelt::col::ACTOR1, actor), (gdelt::col::ACTOR2, target)] {
        if let Some(code) = p {
            let known = party(code);
            cols[at] = code.to_string();
            cols[at + gdelt::col::NAME] = clean(&known.name);
            let slot = if known.kind == PartyKind::State {
                gdelt::col::COUNTRY
            } else {
                gdelt::col::KNOWN_GROUP
            };
            cols[at + slot] = code.to_string();
        }
    }
    let cameo = coding
        .and_then(|c| c.cameo.clone())
        .unwrap_or_else(|| own.cameo.to_owned());
    cols[25] = "1".into();
    cols[27] = cameo.get(..3).unwrap_or(&cameo).to_owned();
    cols[28] = cameo.get(..2).unwrap_or(&cameo).to_owned();
    cols[gdelt::col::EVENT_CODE] = cameo;
    cols[gdelt::col::QUAD_CLASS] = coding
        .and_then(|c| c.quad_class)
        .unwrap_or(own.quad_class.number())
        .to_string();
    cols[gdelt::col::GOLDSTEIN] = number(coding.and_then(|c| c.goldstein).unwrap_or(own.goldstein));
    // NumMentions, NumSources, NumArticles: the one source the event cites.
    for count in &mut cols[31..=33] {
        *count = "1".into();
    }
    cols[gdelt::col::AVG_TONE] = number(coding.and_then(|c| c.tone).unwrap_or(0.0));
    cols[gdelt::col::ACTION_GEO_FULL_NAME] =
        event.location.as_deref().map(clean).unwrap_or_default();
    let source = event.sources.first();
    let added = source
        .and_then(|s| s.published.as_ref())
        .and_then(day_of)
        .unwrap_or(day);
    cols[gdelt::col::DATEADDED] = format!("{}000000", compact(added));
    cols[gdelt::col::SOURCEURL] = source
        .and_then(|s| s.url.as_deref())
        .map(clean)
        .unwrap_or_default();
    Some(cols.join("\t"))
}

/// POLECAT's header row, as `polecat_row` fills it.
pub fn polecat_header() -> String {
    polecat::COLUMNS.join("\t")
}

/// An event's POLECAT row, or `None` for an event without a valid time or codes. An event that
/// does not come from POLECAT gets its position as its id and the PLOVER type of Chancery's
/// codes (events whose codes have none, statements, are left out: PLOVER has no such type).
pub fn polecat_row(
    event: &NewEvent,
    position: u64,
    party: &dyn Fn(&PartyCode) -> ExportedParty,
) -> Option<String> {
    let day = start_day(event)?;
    let own = codes(event)?;
    let coding = event
        .dataset
        .as_ref()
        .filter(|c| c.dataset == Dataset::Polecat);
    let (event_type, mode) = match coding {
        Some(c) => (c.plover_type.clone()?, c.plover_mode.clone()),
        None => (
            own.plover_type?.to_owned(),
            own.plover_mode.map(str::to_owned),
        ),
    };
    let mut cols: Vec<String> = vec![String::new(); polecat::COLUMNS.len()];
    let set = |cols: &mut Vec<String>, name: &str, value: String| {
        if let Some(at) = polecat::COLUMNS.iter().position(|c| *c == name) {
            cols[at] = value;
        }
    };
    set(
        &mut cols,
        polecat::EVENT_ID,
        coding.map_or_else(|| position.to_string(), |c| c.event_id.clone()),
    );
    set(&mut cols, polecat::EVENT_DATE, iso(day));
    set(&mut cols, polecat::EVENT_TYPE, event_type);
    set(&mut cols, polecat::EVENT_MODE, mode.unwrap_or_default());
    let intensity = coding.and_then(|c| c.intensity).unwrap_or(own.goldstein);
    set(&mut cols, polecat::INTENSITY, number(intensity));
    let quad = coding
        .and_then(|c| c.quad_class)
        .unwrap_or(own.quad_class.number());
    let quad_words = polecat::QUAD_CODES
        .get(usize::from(quad).wrapping_sub(1))
        .copied()
        .unwrap_or("");
    set(&mut cols, polecat::QUAD_CODE, quad_words.to_owned());
    let (actor, target) = dyad(event);
    // PLOVER writes the European Union as EUR.
    let country = |code: &PartyCode| {
        if code.as_str() == "EU" {
            "EUR".to_owned()
        } else {
            code.to_string()
        }
    };
    if let Some(code) = actor {
        set(&mut cols, polecat::ACTOR_NAME, clean(&party(code).name));
        set(&mut cols, polecat::ACTOR_COUNTRY, country(code));
    }
    if let Some(code) = target {
        set(&mut cols, polecat::RECIPIENT_NAME, clean(&party(code).name));
        set(&mut cols, polecat::RECIPIENT_COUNTRY, country(code));
    }
    set(
        &mut cols,
        polecat::PLACENAME,
        event.location.as_deref().map(clean).unwrap_or_default(),
    );
    let source = event.sources.first();
    set(
        &mut cols,
        polecat::SOURCE,
        source.map(|s| clean(&s.publication)).unwrap_or_default(),
    );
    let published = source
        .and_then(|s| s.published.as_ref())
        .and_then(day_of)
        .unwrap_or(day);
    set(&mut cols, polecat::PUBLICATION_DATE, iso(published));
    Some(cols.join("\t"))
}
