//! Validation: an event is checked on its own (shapes, ranges, sizes) and against what the log
//! already holds (references). Every error names the field it is about, as a path such as
//! `amounts[0].unit`, so a user can find and fix it.

use std::fmt;

use crate::currency::{PERCENT, is_known_unit};
use crate::event::{Amount, NewEvent, Occurred, Participant, Source};
use crate::ids::EventId;
use crate::limits::*;
use crate::payload::{Kind, Payload};
use crate::registry::References;
use crate::time::ValidTime;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Where: a path into the event's JSON form, such as `occurred.end` or `sources[1].url`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found with an event (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// Prefixes every field path, e.g. with `events[3]` for the fourth event of a batch.
    pub fn within(mut self, prefix: &str) -> Self {
        for e in &mut self.0 {
            e.field = if e.field.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}.{}", e.field)
            };
        }
        self
    }

    pub fn first(&self) -> Option<&FieldError> {
        self.0.first()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Collector(Vec<FieldError>);

impl Collector {
    fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.0))
        }
    }

    fn text(&mut self, field: &str, value: &str, max: usize, required: bool) {
        if required && value.trim().is_empty() {
            self.error(field, "must not be empty");
            return;
        }
        let chars = value.chars().count();
        if chars > max {
            self.error(
                field,
                format!("is {chars} characters long; the limit is {max}"),
            );
        }
        if value
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            self.error(field, "must not contain control characters");
        }
    }

    fn opt_text(&mut self, field: &str, value: &Option<String>, max: usize) {
        if let Some(v) = value {
            self.text(field, v, max, true);
        }
    }

    fn list_len(&mut self, field: &str, len: usize) -> bool {
        if len > MAX_LIST_LEN {
            self.error(
                field,
                format!("has {len} entries; the limit is {MAX_LIST_LEN}"),
            );
            false
        } else {
            true
        }
    }
}

/// Checks an event on its own: required fields, ranges, sizes. Reference checks come from
/// [`validate_references`].
pub fn validate(event: &NewEvent) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    let kind = event.kind();

    if event.id.as_uuid().get_version_num() != 7 {
        c.error(
            "id",
            format!(
                "{} is a version {} UUID; ids must be UUID v7 (time-ordered)",
                event.id,
                event.id.as_uuid().get_version_num()
            ),
        );
    }

    if let Some(occurred) = &event.occurred {
        check_occurred(&mut c, "occurred", occurred);
    } else if kind.is_diplomatic() {
        c.error(
            "occurred",
            format!("is required for {kind}: give at least a start date"),
        );
    }
    check_participants(&mut c, "actors", &event.actors);
    check_participants(&mut c, "targets", &event.targets);
    if kind.is_diplomatic() && event.actors.is_empty() {
        c.error("actors", format!("{kind} needs at least one acting party"));
    }
    if c.list_len("issues", event.issues.len()) {
        for (i, issue) in event.issues.iter().enumerate() {
            if event.issues[..i].contains(issue) {
                c.error(format!("issues[{i}]"), format!("{issue} is listed twice"));
            }
        }
    }
    check_amounts(&mut c, "amounts", &event.amounts);
    c.opt_text("location", &event.location, MAX_SHORT_TEXT_CHARS);
    c.text(
        "summary",
        &event.summary,
        MAX_SUMMARY_CHARS,
        kind.is_diplomatic(),
    );
    check_sources(&mut c, "sources", &event.sources);
    if kind.is_diplomatic() && event.sources.is_empty() {
        c.error("sources", format!("{kind} needs at least one source"));
    }
    check_confidence(&mut c, "confidence", event.confidence);
    check_payload(&mut c, event);

    if c.0.is_empty() {
        let size = event.to_canonical_json().len();
        if size > MAX_EVENT_BYTES {
            c.error(
                "",
                format!("the event encodes to {size} bytes; the limit is {MAX_EVENT_BYTES}"),
            );
        }
    }
    c.finish()
}

fn check_occurred(c: &mut Collector, field: &str, occurred: &Occurred) {
    if let Some(end) = &occurred.end {
        if end.end_exclusive() <= occurred.start.earliest() {
            c.error(
                format!("{field}.end"),
                format!("{end} is before the start {}", occurred.start),
            );
        }
    }
}

fn check_participants(c: &mut Collector, field: &str, list: &[Participant]) {
    if !c.list_len(field, list.len()) {
        return;
    }
    for (i, p) in list.iter().enumerate() {
        if list[..i].contains(p) {
            c.error(format!("{field}[{i}]"), "is listed twice");
        }
    }
}

fn check_amounts(c: &mut Collector, field: &str, amounts: &[Amount]) {
    if !c.list_len(field, amounts.len()) {
        return;
    }
    for (i, a) in amounts.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if !a.value.is_finite() {
            c.error(format!("{at}.value"), "must be a finite number");
        } else if a.value < 0.0 {
            c.error(
                format!("{at}.value"),
                format!(
                    "{} is negative; amounts are magnitudes (say what they measure)",
                    a.value
                ),
            );
        } else if a.unit == PERCENT && a.value > MAX_PERCENT {
            c.error(
                format!("{at}.value"),
                format!("{}% is above the limit of {MAX_PERCENT}%", a.value),
            );
        } else if a.value > MAX_AMOUNT {
            c.error(
                format!("{at}.value"),
                format!("{} is above the limit of {MAX_AMOUNT:e}", a.value),
            );
        }
        if !is_known_unit(&a.unit) {
            c.error(
                format!("{at}.unit"),
                format!(
                    "unknown currency code {:?}: use an ISO 4217 code (USD, CNY, EUR) or PERCENT",
                    a.unit
                ),
            );
        }
        c.text(
            &format!("{at}.measures"),
            &a.measures,
            MAX_SHORT_TEXT_CHARS,
            true,
        );
    }
}

fn check_sources(c: &mut Collector, field: &str, sources: &[Source]) {
    if !c.list_len(field, sources.len()) {
        return;
    }
    for (i, s) in sources.iter().enumerate() {
        let at = format!("{field}[{i}]");
        c.text(
            &format!("{at}.publication"),
            &s.publication,
            MAX_SHORT_TEXT_CHARS,
            true,
        );
        c.opt_text(&format!("{at}.title"), &s.title, MAX_SHORT_TEXT_CHARS);
        c.opt_text(&format!("{at}.quote"), &s.quote, MAX_QUOTE_CHARS);
        if let Some(url) = &s.url {
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            if !scheme_ok
                || url.len() > MAX_URL_BYTES
                || url.chars().any(|ch| ch.is_whitespace() || ch.is_control())
            {
                c.error(
                    format!("{at}.url"),
                    format!("must be an http(s) URL without spaces, at most {MAX_URL_BYTES} bytes"),
                );
            }
        }
    }
}

fn check_confidence(c: &mut Collector, field: &str, confidence: Option<f64>) {
    if let Some(v) = confidence {
        if !v.is_finite() || !(0.0..=1.0).contains(&v) {
            c.error(field, format!("{v} is not between 0 and 1"));
        }
    }
}

fn check_ordered(
    c: &mut Collector,
    field: &str,
    earlier: &ValidTime,
    later: &ValidTime,
    what: &str,
) {
    if later.end_exclusive() <= earlier.earliest() {
        c.error(field, format!("{later} is before {what} {earlier}"));
    }
}

fn check_texts(c: &mut Collector, field: &str, list: &[String], max: usize) {
    if c.list_len(field, list.len()) {
        for (i, t) in list.iter().enumerate() {
            c.text(&format!("{field}[{i}]"), t, max, true);
        }
    }
}

fn check_payload(c: &mut Collector, event: &NewEvent) {
    let p = "payload";
    match &event.payload {
        Payload::Offer(o) => {
            c.text(&format!("{p}.terms"), &o.terms, MAX_TEXT_CHARS, true);
            check_texts(c, &format!("{p}.conditions"), &o.conditions, MAX_TEXT_CHARS);
        }
        Payload::Demand(d) => c.text(&format!("{p}.terms"), &d.terms, MAX_TEXT_CHARS, true),
        Payload::Threat(t) => {
            c.text(&format!("{p}.terms"), &t.terms, MAX_TEXT_CHARS, true);
            c.opt_text(&format!("{p}.condition"), &t.condition, MAX_TEXT_CHARS);
        }
        Payload::Refusal(r) => {
            c.text(&format!("{p}.terms"), &r.terms, MAX_TEXT_CHARS, true);
            c.list_len(&format!("{p}.refuses"), r.refuses.len());
        }
        Payload::Concession(x) => {
            c.text(&format!("{p}.terms"), &x.terms, MAX_TEXT_CHARS, true);
            c.list_len(&format!("{p}.answers"), x.answers.len());
        }
        Payload::Agreement(a) => c.text(&format!("{p}.terms"), &a.terms, MAX_TEXT_CHARS, true),
        Payload::Measure(m) => {
            c.text(&format!("{p}.terms"), &m.terms, MAX_TEXT_CHARS, true);
            if let Some(effective) = &m.effective {
                check_ordered(
                    c,
                    &format!("{p}.effective"),
                    &m.announced,
                    effective,
                    "the announcement",
                );
            }
            if let Some(rate) = m.rate_percent {
                if !rate.is_finite() || !(0.0..=MAX_PERCENT).contains(&rate) {
                    c.error(
                        format!("{p}.ratePercent"),
                        format!("{rate} is not between 0 and {MAX_PERCENT}"),
                    );
                }
            }
        }
        Payload::Statement(s) => c.text(&format!("{p}.claim"), &s.claim, MAX_TEXT_CHARS, true),
        Payload::Accusation(a) => c.text(&format!("{p}.claim"), &a.claim, MAX_TEXT_CHARS, true),
        Payload::Seminar(s) => {
            if !(1..=366).contains(&s.days) {
                c.error(
                    format!("{p}.days"),
                    format!("{} is not between 1 and 366", s.days),
                );
            }
            check_texts(
                c,
                &format!("{p}.participants"),
                &s.participants,
                MAX_SHORT_TEXT_CHARS,
            );
            c.opt_text(&format!("{p}.topic"), &s.topic, MAX_SHORT_TEXT_CHARS);
        }
        Payload::Visit(v) => {
            if v.visitor == v.host {
                c.error(format!("{p}.host"), "the visitor cannot host its own visit");
            }
            if !event
                .actors
                .iter()
                .any(|a| a.party == v.visitor || a.party == v.host)
            {
                c.error(
                    "actors",
                    "a visit's actors must include the visitor or the host",
                );
            }
            c.text(&format!("{p}.place"), &v.place, MAX_SHORT_TEXT_CHARS, true);
            c.text(&format!("{p}.purpose"), &v.purpose, MAX_TEXT_CHARS, true);
        }
        Payload::Talks(t) => {
            if t.participants.len() < 2 {
                c.error(
                    format!("{p}.participants"),
                    "talks need at least two parties",
                );
            }
            if c.list_len(&format!("{p}.participants"), t.participants.len()) {
                for (i, party) in t.participants.iter().enumerate() {
                    if t.participants[..i].contains(party) {
                        c.error(
                            format!("{p}.participants[{i}]"),
                            format!("{party} is listed twice"),
                        );
                    }
                }
            }
            c.text(&format!("{p}.place"), &t.place, MAX_SHORT_TEXT_CHARS, true);
            if t.rounds == Some(0) {
                c.error(format!("{p}.rounds"), "must be at least 1");
            }
        }
        Payload::Retraction(r) => c.text(&format!("{p}.reason"), &r.reason, MAX_TEXT_CHARS, true),
        Payload::Correction(x) => {
            c.text(&format!("{p}.reason"), &x.reason, MAX_TEXT_CHARS, true);
            let ch = &x.changes;
            let at = format!("{p}.changes");
            if ch.is_empty() {
                c.error(&at, "a correction must change at least one field");
            }
            if let Some(o) = &ch.occurred {
                check_occurred(c, &format!("{at}.occurred"), o);
            }
            if let Some(list) = &ch.actors {
                check_participants(c, &format!("{at}.actors"), list);
                if list.is_empty() {
                    c.error(
                        format!("{at}.actors"),
                        "an event needs at least one acting party",
                    );
                }
            }
            if let Some(list) = &ch.targets {
                check_participants(c, &format!("{at}.targets"), list);
            }
            if let Some(list) = &ch.issues {
                c.list_len(&format!("{at}.issues"), list.len());
            }
            if let Some(list) = &ch.amounts {
                check_amounts(c, &format!("{at}.amounts"), list);
            }
            c.opt_text(
                &format!("{at}.location"),
                &ch.location,
                MAX_SHORT_TEXT_CHARS,
            );
            c.opt_text(&format!("{at}.summary"), &ch.summary, MAX_SUMMARY_CHARS);
            if let Some(list) = &ch.sources {
                check_sources(c, &format!("{at}.sources"), list);
                if list.is_empty() {
                    c.error(
                        format!("{at}.sources"),
                        "an event needs at least one source",
                    );
                }
            }
            check_confidence(c, &format!("{at}.confidence"), ch.confidence);
            if let Some(payload) = &ch.payload {
                if !payload.kind().is_diplomatic() {
                    c.error(
                        format!("{at}.payload"),
                        format!("cannot correct into a {} payload", payload.kind()),
                    );
                } else {
                    let mut corrected = event.clone();
                    corrected.payload = payload.clone();
                    let mut inner = Collector::default();
                    check_payload(&mut inner, &corrected);
                    for e in inner.0 {
                        c.error(format!("{at}.{}", e.field), e.message);
                    }
                }
            }
        }
        Payload::PartyRegistered(r) => {
            c.text(&format!("{p}.name"), &r.name, MAX_SHORT_TEXT_CHARS, true)
        }
        Payload::ActorRegistered(r) => {
            c.text(&format!("{p}.name"), &r.name, MAX_SHORT_TEXT_CHARS, true);
            c.text(&format!("{p}.role"), &r.role, MAX_SHORT_TEXT_CHARS, true);
            if let (Some(from), Some(to)) = (&r.from, &r.to) {
                check_ordered(c, &format!("{p}.to"), from, to, "the start of the role");
            }
        }
        Payload::IssueRegistered(r) => {
            c.text(&format!("{p}.title"), &r.title, MAX_SHORT_TEXT_CHARS, true);
            c.opt_text(&format!("{p}.description"), &r.description, MAX_TEXT_CHARS);
        }
        Payload::TimelineRegistered(r) => {
            if r.slug != event.timeline {
                c.error(
                    format!("{p}.slug"),
                    format!(
                        "{} differs from the event's timeline {}",
                        r.slug, event.timeline
                    ),
                );
            }
            c.text(&format!("{p}.title"), &r.title, MAX_SHORT_TEXT_CHARS, true);
            c.opt_text(&format!("{p}.description"), &r.description, MAX_TEXT_CHARS);
        }
    }
}

/// Checks what an event points at: its timeline, parties, actors and issues must be registered
/// (and not registered twice), and events it retracts, corrects, answers or reaffirms must exist.
pub fn validate_references(
    event: &NewEvent,
    refs: &dyn References,
) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    let registry = refs.registry();

    match &event.payload {
        Payload::TimelineRegistered(t) => {
            if registry.timelines.contains_key(&t.slug) {
                c.error(
                    "payload.slug",
                    format!("timeline {} is already registered", t.slug),
                );
            }
        }
        _ => {
            if !registry.timelines.contains_key(&event.timeline) {
                c.error(
                    "timeline",
                    format!(
                        "unknown timeline {}: register it first (TIMELINE_REGISTERED)",
                        event.timeline
                    ),
                );
            }
        }
    }

    check_participant_refs(&mut c, "actors", &event.actors, refs);
    check_participant_refs(&mut c, "targets", &event.targets, refs);
    check_issue_refs(&mut c, "issues", &event.issues, refs);

    let party_ref = |c: &mut Collector, field: &str, party: &crate::ids::PartyCode| {
        if !registry.parties.contains_key(party) {
            c.error(
                field,
                format!("unknown party {party}: register it first (PARTY_REGISTERED)"),
            );
        }
    };
    let target = |c: &mut Collector,
                  field: &str,
                  id: &EventId,
                  allowed: &[Kind]|
     -> Option<crate::registry::EventRef> {
        match refs.event(id) {
            None => {
                c.error(field, format!("no event {id} in the log"));
                None
            }
            Some(r) if !allowed.is_empty() && !allowed.contains(&r.kind) => {
                c.error(
                    field,
                    format!("event {id} is a {}, not {}", r.kind, names(allowed)),
                );
                None
            }
            Some(r) => Some(r),
        }
    };

    match &event.payload {
        Payload::Offer(o) => {
            if let Some(id) = &o.reaffirms {
                target(&mut c, "payload.reaffirms", id, &[Kind::Offer]);
            }
        }
        Payload::Demand(d) => {
            if let Some(id) = &d.reaffirms {
                target(&mut c, "payload.reaffirms", id, &[Kind::Demand]);
            }
        }
        Payload::Refusal(r) => {
            for (i, id) in r.refuses.iter().enumerate() {
                target(&mut c, &format!("payload.refuses[{i}]"), id, &DIPLOMATIC);
            }
        }
        Payload::Concession(x) => {
            for (i, id) in x.answers.iter().enumerate() {
                target(&mut c, &format!("payload.answers[{i}]"), id, &DIPLOMATIC);
            }
        }
        Payload::Seminar(s) => party_ref(&mut c, "payload.host", &s.host),
        Payload::Visit(v) => {
            party_ref(&mut c, "payload.visitor", &v.visitor);
            party_ref(&mut c, "payload.host", &v.host);
        }
        Payload::Talks(t) => {
            for (i, party) in t.participants.iter().enumerate() {
                party_ref(&mut c, &format!("payload.participants[{i}]"), party);
            }
        }
        Payload::Retraction(r) => {
            if let Some(found) = target(&mut c, "payload.retracts", &r.retracts, &DIPLOMATIC) {
                same_timeline(&mut c, "payload.retracts", event, &found);
                if found.retracted {
                    c.error(
                        "payload.retracts",
                        format!("event {} is already retracted", r.retracts),
                    );
                }
            }
        }
        Payload::Correction(x) => {
            if let Some(found) = target(&mut c, "payload.corrects", &x.corrects, &DIPLOMATIC) {
                same_timeline(&mut c, "payload.corrects", event, &found);
                if found.retracted {
                    c.error(
                        "payload.corrects",
                        format!(
                            "event {} is retracted; a retracted event cannot be corrected",
                            x.corrects
                        ),
                    );
                }
                if let Some(p) = &x.changes.payload {
                    if p.kind() != found.kind {
                        c.error(
                            "payload.changes.payload",
                            format!(
                                "is a {} payload but event {} is a {}",
                                p.kind(),
                                x.corrects,
                                found.kind
                            ),
                        );
                    }
                }
            }
            let ch = &x.changes;
            if let Some(list) = &ch.actors {
                check_participant_refs(&mut c, "payload.changes.actors", list, refs);
            }
            if let Some(list) = &ch.targets {
                check_participant_refs(&mut c, "payload.changes.targets", list, refs);
            }
            if let Some(list) = &ch.issues {
                check_issue_refs(&mut c, "payload.changes.issues", list, refs);
            }
        }
        Payload::PartyRegistered(p) => {
            if registry.parties.contains_key(&p.code) {
                c.error(
                    "payload.code",
                    format!("party {} is already registered", p.code),
                );
            }
        }
        Payload::ActorRegistered(a) => {
            if registry.actors.contains_key(&a.slug) {
                c.error(
                    "payload.slug",
                    format!("actor {} is already registered", a.slug),
                );
            }
            party_ref(&mut c, "payload.party", &a.party);
        }
        Payload::IssueRegistered(i) => {
            if registry.issues.contains_key(&i.slug) {
                c.error(
                    "payload.slug",
                    format!("issue {} is already registered", i.slug),
                );
            }
        }
        Payload::Threat(_)
        | Payload::Agreement(_)
        | Payload::Measure(_)
        | Payload::Statement(_)
        | Payload::Accusation(_)
        | Payload::TimelineRegistered(_) => {}
    }
    c.finish()
}

const DIPLOMATIC: [Kind; 12] = [
    Kind::Offer,
    Kind::Demand,
    Kind::Threat,
    Kind::Refusal,
    Kind::Concession,
    Kind::Agreement,
    Kind::Measure,
    Kind::Statement,
    Kind::Accusation,
    Kind::Seminar,
    Kind::Visit,
    Kind::Talks,
];

fn names(kinds: &[Kind]) -> String {
    if kinds.len() == DIPLOMATIC.len() {
        return "an act of a party (it cannot be a registration, retraction or correction)".into();
    }
    kinds
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(" or ")
}

fn same_timeline(
    c: &mut Collector,
    field: &str,
    event: &NewEvent,
    found: &crate::registry::EventRef,
) {
    if found.timeline != event.timeline {
        c.error(
            field,
            format!(
                "that event is in timeline {}, not {}",
                found.timeline, event.timeline
            ),
        );
    }
}

fn check_participant_refs(
    c: &mut Collector,
    field: &str,
    list: &[Participant],
    refs: &dyn References,
) {
    let registry = refs.registry();
    for (i, p) in list.iter().enumerate() {
        if !registry.parties.contains_key(&p.party) {
            c.error(
                format!("{field}[{i}].party"),
                format!(
                    "unknown party {}: register it first (PARTY_REGISTERED)",
                    p.party
                ),
            );
        }
        if let Some(actor) = &p.actor {
            match registry.actors.get(actor) {
                None => c.error(
                    format!("{field}[{i}].actor"),
                    format!("unknown actor {actor}: register it first (ACTOR_REGISTERED)"),
                ),
                Some(a) if a.party != p.party => c.error(
                    format!("{field}[{i}].actor"),
                    format!("actor {actor} acts for {}, not {}", a.party, p.party),
                ),
                Some(_) => {}
            }
        }
    }
}

fn check_issue_refs(
    c: &mut Collector,
    field: &str,
    list: &[crate::ids::IssueSlug],
    refs: &dyn References,
) {
    for (i, issue) in list.iter().enumerate() {
        if !refs.registry().issues.contains_key(issue) {
            c.error(
                format!("{field}[{i}]"),
                format!("unknown issue {issue}: register it first (ISSUE_REGISTERED)"),
            );
        }
    }
}
