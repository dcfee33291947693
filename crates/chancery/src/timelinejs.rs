//! TimelineJS: one timeline's events as the JSON that Knight Lab's TimelineJS embeds, so that a
//! newsroom can publish what the store holds.
//!
//! The file follows TimelineJS's JSON format: a `title` slide (the timeline's title and
//! description), then one slide per act of the timeline with `start_date` (and `end_date` when
//! the act has an end) as date parts as precise as the act's valid time, `text.headline`,
//! `text.text`, `group` (the kind), `unique_id` (the event id) and `media` (the first source
//! with a URL). Retracted acts are left out and corrections applied, as the store's reads do;
//! bookkeeping events (registrations, retractions, corrections) are not slides. TimelineJS
//! renders `headline` and `text` as HTML, so every text the store holds is escaped.

use chancery_domain::{NewEvent, Precision, TimelineSlug, ValidTime};
use chancery_store::EventLog;
use serde_json::{Map, Value, json};

use crate::exchange::{ExchangeError, Progress, TimelineActs, timeline_acts};

/// What a TimelineJS export holds besides its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineJs {
    /// The file: TimelineJS's JSON format.
    pub json: Value,
    /// Slides written: the timeline's acts, less those retracted.
    pub slides: usize,
    /// Acts left out because they have no valid time to place them at.
    pub undated: usize,
}

/// The TimelineJS file of `timeline`, read from the log up to its current head. Fails, having
/// written nothing, when the log holds no such timeline.
pub async fn export(
    log: &dyn EventLog,
    timeline: &TimelineSlug,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<TimelineJs, ExchangeError> {
    let TimelineActs {
        title,
        description,
        acts,
    } = timeline_acts(log, timeline, progress).await?;
    let (headline, description) = (title, description);
    let mut slides: Vec<(ValidTime, Value)> = Vec::new();
    let mut undated = 0;
    for (_, act) in &acts {
        match &act.occurred {
            Some(occurred) => slides.push((occurred.start, slide(act))),
            None => undated += 1,
        }
    }
    // TimelineJS orders slides itself; sorting here makes the file read in order too.
    slides.sort_by_key(|(start, _)| sort_key(start));
    let count = slides.len();
    let json = json!({
        "title": {
            "text": {
                "headline": escape(&headline),
                "text": description.as_deref().map(escape).unwrap_or_default(),
            }
        },
        "events": slides.into_iter().map(|(_, slide)| slide).collect::<Vec<_>>(),
    });
    Ok(TimelineJs {
        json,
        slides: count,
        undated,
    })
}

/// One act's slide.
fn slide(act: &NewEvent) -> Value {
    let mut slide = Map::new();
    if let Some(occurred) = &act.occurred {
        slide.insert("start_date".into(), date(&occurred.start));
        if let Some(end) = &occurred.end {
            slide.insert("end_date".into(), date(end));
        }
    }
    let kind = act.kind().to_string();
    let parties = |list: &[chancery_domain::Participant]| {
        list.iter()
            .map(|p| match &p.actor {
                Some(actor) => format!("{} ({actor})", p.party),
                None => p.party.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut headline = format!("{}: {}", label(&kind), parties(&act.actors));
    if !act.targets.is_empty() {
        headline.push_str(" → ");
        headline.push_str(&parties(&act.targets));
    }
    let mut text = format!("<p>{}</p>", escape(&act.summary));
    if !act.sources.is_empty() {
        text.push_str("<p>Sources: ");
        let sources: Vec<String> = act
            .sources
            .iter()
            .map(|s| match &s.title {
                Some(title) => format!("{}, “{}”", escape(&s.publication), escape(title)),
                None => escape(&s.publication),
            })
            .collect();
        text.push_str(&sources.join("; "));
        text.push_str("</p>");
    }
    slide.insert(
        "text".into(),
        json!({ "headline": escape(&headline), "text": text }),
    );
    slide.insert("group".into(), Value::String(label(&kind)));
    slide.insert("unique_id".into(), Value::String(act.id.to_string()));
    if let Some(source) = act.sources.iter().find(|s| s.url.is_some()) {
        slide.insert(
            "media".into(),
            json!({
                "url": source.url,
                "caption": escape(source.title.as_deref().unwrap_or(&source.publication)),
                "credit": escape(&source.publication),
            }),
        );
    }
    Value::Object(slide)
}

/// TimelineJS's date object: the parts a valid time has, as numbers, and the time as recorded
/// for display.
fn date(time: &ValidTime) -> Value {
    let mut parts = Map::new();
    match *time {
        ValidTime::Year(year) => {
            parts.insert("year".into(), year.into());
        }
        ValidTime::Month(year, month) => {
            parts.insert("year".into(), year.into());
            parts.insert("month".into(), (month as u8).into());
        }
        ValidTime::Day(day) => {
            parts.insert("year".into(), day.year().into());
            parts.insert("month".into(), (day.month() as u8).into());
            parts.insert("day".into(), day.day().into());
        }
        ValidTime::Instant(at) => {
            parts.insert("year".into(), at.year().into());
            parts.insert("month".into(), (at.month() as u8).into());
            parts.insert("day".into(), at.day().into());
            parts.insert("hour".into(), at.hour().into());
            parts.insert("minute".into(), at.minute().into());
            parts.insert("second".into(), at.second().into());
        }
    }
    parts.insert("display_date".into(), Value::String(time.to_string()));
    Value::Object(parts)
}

/// Orders valid times as the store's valid-time order does: by the first instant each may
/// denote, a coarser time before the finer ones it holds.
fn sort_key(time: &ValidTime) -> (i64, Precision) {
    (time.earliest(), time.precision())
}

/// `THREAT` as `Threat`, `PARTY_REGISTERED` as `Party registered`.
fn label(kind: &str) -> String {
    let lower = kind.replace('_', " ").to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Text made safe to place in HTML: TimelineJS renders headlines and texts as markup.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_the_store_s_text_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn kinds_read_as_words() {
        assert_eq!(label("THREAT"), "Threat");
        assert_eq!(label("PARTY_REGISTERED"), "Party registered");
    }

    #[test]
    fn dates_have_the_parts_their_precision_gives() {
        let month: ValidTime = "2018-05".parse().unwrap();
        assert_eq!(
            date(&month),
            json!({ "year": 2018, "month": 5, "display_date": "2018-05" })
        );
        let instant: ValidTime = "2018-05-03T09:30:00+08:00".parse().unwrap();
        assert_eq!(
            date(&instant),
            json!({ "year": 2018, "month": 5, "day": 3, "hour": 9, "minute": 30, "second": 0,
                    "display_date": "2018-05-03T09:30:00+08:00" })
        );
        let year: ValidTime = "2018".parse().unwrap();
        assert!(sort_key(&year) < sort_key(&month));
        assert!(sort_key(&month) < sort_key(&instant));
    }
}
