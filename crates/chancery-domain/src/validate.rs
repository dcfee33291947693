//! Validation: an event is checked on its own (shapes, ranges, sizes) and against what the log
//! already holds (references). Every error names the field it is about, as a path such as
//! `amounts[0].unit`, so a user can find and fix it.

use std::collections::BTreeMap;
use std::fmt;

use crate::currency::{PERCENT, is_known_unit};
use crate::dataset::DatasetCoding;
use crate::event::{Amount, NewEvent, Occurred, Participant, Source};
use crate::ids::{EventId, IssueSlug, PartyCode};
use crate::limits::*;
use crate::payload::{
    Correction, CorrectionChanges, Kind, Measure, Payload, Seminar, Talks, Visit,
};
use crate::record::PreparedEvent;
use crate::registry::{EventRef, References, Registry};
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

/// The path of a list's entry, `field[i]`. Paths are written out only for an error: valid
/// events, the common case, make no strings (validation runs on every append and import row).
#[derive(Clone, Copy)]
struct Entry<F>(F, usize);

impl<F: fmt::Display> fmt::Display for Entry<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.0, self.1)
    }
}

impl Collector {
    fn error(&mut self, field: impl fmt::Display, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_string(),
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

    fn text(&mut self, field: impl fmt::Display + Copy, value: &str, max: usize, required: bool) {
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

    /// A required text field of the payload.
    fn payload_text(&mut self, name: &str, value: &str, max: usize) {
        self.text(format_args!("payload.{name}"), value, max, true);
    }

    fn opt_text(&mut self, field: impl fmt::Display + Copy, value: &Option<String>, max: usize) {
        if let Some(v) = value {
            self.text(field, v, max, true);
        }
    }

    fn list_len(&mut self, field: impl fmt::Display, len: usize) -> bool {
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
    check_event(event, || event.canonical_json_len())
}

/// [`validate`] of an event whose encodings are made: the size comes from its canonical JSON
/// rather than being counted again.
pub fn validate_prepared(prepared: &PreparedEvent) -> Result<(), ValidationErrors> {
    check_event(prepared.event(), || prepared.canonical_json_len())
}

/// Every check of [`validate`]; `size` gives the canonical JSON's length, asked only when
/// everything else holds.
fn check_event(event: &NewEvent, size: impl FnOnce() -> usize) -> Result<(), ValidationErrors> {
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
        check_no_repeats(&mut c, "issues", &event.issues);
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
    if let Some(name) = &event.recorded_by {
        check_recorded_by(&mut c, "recordedBy", name);
    }
    if let Some(coding) = &event.dataset {
        check_dataset(&mut c, "dataset", coding);
    }

    if c.0.is_empty() {
        let size = size();
        if size > MAX_EVENT_BYTES {
            c.error(
                "",
                format!("the event encodes to {size} bytes; the limit is {MAX_EVENT_BYTES}"),
            );
        }
    }
    c.finish()
}

/// Checks a name for `recordedBy` (a token's name, or the operator of an import) before it is
/// given to events: what [`validate`] would say of it.
pub fn validate_recorded_by(name: &str) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    check_recorded_by(&mut c, "recordedBy", name);
    c.finish()
}

/// A name, not text: not blank, short, and on one line (not even a tab or a newline).
fn check_recorded_by(c: &mut Collector, field: &str, name: &str) {
    if name.trim().is_empty() {
        c.error(field, "must not be empty");
        return;
    }
    let chars = name.chars().count();
    if chars > MAX_RECORDED_BY_CHARS {
        c.error(
            field,
            format!("is {chars} characters long; the limit is {MAX_RECORDED_BY_CHARS}"),
        );
    }
    if name.chars().any(char::is_control) {
        c.error(field, "must not contain control characters");
    }
}

/// A dataset's coding as the importers write it: an id, codes of the dataset's own shapes, and
/// scores in the dataset's ranges.
fn check_dataset(c: &mut Collector, field: &str, coding: &DatasetCoding) {
    let id = &coding.event_id;
    if id.is_empty()
        || id.len() > MAX_DATASET_ID_BYTES
        || !id.chars().all(|ch| ch.is_ascii_graphic())
    {
        c.error(
            format!("{field}.eventId"),
            format!("{id:?} is not a dataset event id (1 to {MAX_DATASET_ID_BYTES} printable ASCII characters)"),
        );
    }
    if let Some(cameo) = &coding.cameo {
        if !(2..=4).contains(&cameo.len()) || !cameo.bytes().all(|b| b.is_ascii_digit()) {
            c.error(
                format!("{field}.cameo"),
                format!("{cameo:?} is not a CAMEO event code (2 to 4 digits)"),
            );
        }
    }
    for (name, value, upper) in [
        ("ploverType", &coding.plover_type, true),
        ("ploverMode", &coding.plover_mode, false),
    ] {
        if let Some(v) = value {
            let shaped = !v.is_empty()
                && v.len() <= 32
                && v.bytes().all(|b| {
                    b == b'_'
                        || if upper {
                            b.is_ascii_uppercase()
                        } else {
                            b.is_ascii_lowercase()
                        }
                });
            if !shaped {
                c.error(
                    format!("{field}.{name}"),
                    format!(
                        "{v:?} is not a PLOVER {}",
                        if upper {
                            "type (upper-case letters)"
                        } else {
                            "mode (lower-case letters)"
                        }
                    ),
                );
            }
        }
    }
    if let Some(q) = coding.quad_class {
        if !(1..=4).contains(&q) {
            c.error(
                format!("{field}.quadClass"),
                format!("{q} is not a QuadClass (1 to 4)"),
            );
        }
    }
    for (name, value, limit) in [
        ("goldstein", coding.goldstein, 10.0),
        ("intensity", coding.intensity, 10.0),
        ("tone", coding.tone, 100.0),
    ] {
        if let Some(v) = value {
            if !v.is_finite() || v.abs() > limit {
                c.error(
                    format!("{field}.{name}"),
                    format!("{v} is not between -{limit} and {limit}"),
                );
            }
        }
    }
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
        let at = Entry(field, i);
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
            format_args!("{at}.measures"),
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
        let at = Entry(field, i);
        c.text(
            format_args!("{at}.publication"),
            &s.publication,
            MAX_SHORT_TEXT_CHARS,
            true,
        );
        c.opt_text(format_args!("{at}.title"), &s.title, MAX_SHORT_TEXT_CHARS);
        c.opt_text(format_args!("{at}.quote"), &s.quote, MAX_QUOTE_CHARS);
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

fn check_texts(c: &mut Collector, field: impl fmt::Display + Copy, list: &[String], max: usize) {
    if c.list_len(field, list.len()) {
        for (i, t) in list.iter().enumerate() {
            c.text(Entry(field, i), t, max, true);
        }
    }
}

/// Flags every entry of `list` that repeats an earlier one, as `{field}[i]`.
fn check_no_repeats<T: PartialEq + fmt::Display>(c: &mut Collector, field: &str, list: &[T]) {
    for (i, item) in list.iter().enumerate() {
        if list[..i].contains(item) {
            c.error(format!("{field}[{i}]"), format!("{item} is listed twice"));
        }
    }
}

/// The path of a payload field. Payload errors always start at `payload`; a correction's new
/// payload is checked the same way and its errors moved under `payload.changes`.
fn payload_field(name: &str) -> String {
    format!("payload.{name}")
}

/// Checks the kind-specific payload: texts, ranges, and how it fits the envelope.
fn check_payload(c: &mut Collector, event: &NewEvent) {
    match &event.payload {
        Payload::Offer(o) => {
            c.payload_text("terms", &o.terms, MAX_TEXT_CHARS);
            check_texts(
                c,
                format_args!("payload.conditions"),
                &o.conditions,
                MAX_TEXT_CHARS,
            );
        }
        Payload::Demand(d) => c.payload_text("terms", &d.terms, MAX_TEXT_CHARS),
        Payload::Threat(t) => {
            c.payload_text("terms", &t.terms, MAX_TEXT_CHARS);
            c.opt_text(
                format_args!("payload.condition"),
                &t.condition,
                MAX_TEXT_CHARS,
            );
        }
        Payload::Refusal(r) => {
            c.payload_text("terms", &r.terms, MAX_TEXT_CHARS);
            c.list_len(format_args!("payload.refuses"), r.refuses.len());
        }
        Payload::Concession(x) => {
            c.payload_text("terms", &x.terms, MAX_TEXT_CHARS);
            c.list_len(format_args!("payload.answers"), x.answers.len());
        }
        Payload::Agreement(a) => c.payload_text("terms", &a.terms, MAX_TEXT_CHARS),
        Payload::Measure(m) => check_measure(c, m),
        Payload::Statement(s) => c.payload_text("claim", &s.claim, MAX_TEXT_CHARS),
        Payload::Accusation(a) => c.payload_text("claim", &a.claim, MAX_TEXT_CHARS),
        Payload::Seminar(s) => check_seminar(c, s),
        Payload::Visit(v) => check_visit(c, v, &event.actors),
        Payload::Talks(t) => check_talks(c, t),
        Payload::Retraction(r) => c.payload_text("reason", &r.reason, MAX_TEXT_CHARS),
        Payload::Correction(x) => check_correction(c, x, event),
        Payload::PartyRegistered(r) => c.payload_text("name", &r.name, MAX_SHORT_TEXT_CHARS),
        Payload::ActorRegistered(r) => {
            c.payload_text("name", &r.name, MAX_SHORT_TEXT_CHARS);
            c.payload_text("role", &r.role, MAX_SHORT_TEXT_CHARS);
            if let (Some(from), Some(to)) = (&r.from, &r.to) {
                check_ordered(c, &payload_field("to"), from, to, "the start of the role");
            }
        }
        Payload::IssueRegistered(r) => check_title_and_description(c, &r.title, &r.description),
        Payload::TimelineRegistered(r) => {
            if r.slug != event.timeline {
                c.error(
                    payload_field("slug"),
                    format!(
                        "{} differs from the event's timeline {}",
                        r.slug, event.timeline
                    ),
                );
            }
            check_title_and_description(c, &r.title, &r.description);
        }
    }
}

/// The title and description of a registered issue or timeline.
fn check_title_and_description(c: &mut Collector, title: &str, description: &Option<String>) {
    c.payload_text("title", title, MAX_SHORT_TEXT_CHARS);
    c.opt_text(
        format_args!("payload.description"),
        description,
        MAX_TEXT_CHARS,
    );
}

/// A measure takes effect no earlier than its announcement, at a rate that is a percentage.
fn check_measure(c: &mut Collector, m: &Measure) {
    c.payload_text("terms", &m.terms, MAX_TEXT_CHARS);
    if let Some(effective) = &m.effective {
        check_ordered(
            c,
            &payload_field("effective"),
            &m.announced,
            effective,
            "the announcement",
        );
    }
    if let Some(rate) = m.rate_percent {
        if !rate.is_finite() || !(0.0..=MAX_PERCENT).contains(&rate) {
            c.error(
                payload_field("ratePercent"),
                format!("{rate} is not between 0 and {MAX_PERCENT}"),
            );
        }
    }
}

/// A seminar lasts from a day to a year and lists its participants as short texts.
fn check_seminar(c: &mut Collector, s: &Seminar) {
    if !(1..=366).contains(&s.days) {
        c.error(
            payload_field("days"),
            format!("{} is not between 1 and 366", s.days),
        );
    }
    check_texts(
        c,
        format_args!("payload.participants"),
        &s.participants,
        MAX_SHORT_TEXT_CHARS,
    );
    c.opt_text(
        format_args!("payload.topic"),
        &s.topic,
        MAX_SHORT_TEXT_CHARS,
    );
}

/// A visit has two different parties, one of which acts: its code says which (made or hosted).
fn check_visit(c: &mut Collector, v: &Visit, actors: &[Participant]) {
    if v.visitor == v.host {
        c.error(
            payload_field("host"),
            "the visitor cannot host its own visit",
        );
    }
    if !actors
        .iter()
        .any(|a| a.party == v.visitor || a.party == v.host)
    {
        c.error(
            "actors",
            "a visit's actors must include the visitor or the host",
        );
    }
    c.payload_text("place", &v.place, MAX_SHORT_TEXT_CHARS);
    c.payload_text("purpose", &v.purpose, MAX_TEXT_CHARS);
}

/// Talks are between two or more different parties, over at least one round.
fn check_talks(c: &mut Collector, t: &Talks) {
    let participants = payload_field("participants");
    if t.participants.len() < 2 {
        c.error(&participants, "talks need at least two parties");
    }
    if c.list_len(&participants, t.participants.len()) {
        check_no_repeats(c, &participants, &t.participants);
    }
    c.payload_text("place", &t.place, MAX_SHORT_TEXT_CHARS);
    if t.rounds == Some(0) {
        c.error(payload_field("rounds"), "must be at least 1");
    }
}

/// A correction gives a reason and changes something; each new value is checked as the field it
/// replaces would be, under `payload.changes`.
fn check_correction(c: &mut Collector, x: &Correction, event: &NewEvent) {
    c.payload_text("reason", &x.reason, MAX_TEXT_CHARS);
    let at = payload_field("changes");
    if x.changes.is_empty() {
        c.error(&at, "a correction must change at least one field");
    }
    check_changed_envelope(c, &at, &x.changes);
    if let Some(payload) = &x.changes.payload {
        check_changed_payload(c, &at, payload, event);
    }
}

/// The new envelope values of a correction. An act keeps at least one actor and one source, so
/// a correction cannot empty those lists.
fn check_changed_envelope(c: &mut Collector, at: &str, ch: &CorrectionChanges) {
    if let Some(o) = &ch.occurred {
        check_occurred(c, &format!("{at}.occurred"), o);
    }
    let actors = format!("{at}.actors");
    check_replacing_list(
        c,
        &actors,
        &ch.actors,
        check_participants,
        "one acting party",
    );
    if let Some(list) = &ch.targets {
        check_participants(c, &format!("{at}.targets"), list);
    }
    if let Some(list) = &ch.issues {
        c.list_len(format_args!("{at}.issues"), list.len());
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
    let sources = format!("{at}.sources");
    check_replacing_list(c, &sources, &ch.sources, check_sources, "one source");
    check_confidence(c, &format!("{at}.confidence"), ch.confidence);
}

/// A list a correction may replace, checked with `check`; given, it must hold at least one
/// entry (`at_least` says what).
fn check_replacing_list<T>(
    c: &mut Collector,
    field: &str,
    list: &Option<Vec<T>>,
    check: fn(&mut Collector, &str, &[T]),
    at_least: &str,
) {
    if let Some(list) = list {
        check(c, field, list);
        if list.is_empty() {
            c.error(field, format!("an event needs at least {at_least}"));
        }
    }
}

/// A correction's new payload: an act's, checked as the corrected event's own payload would be.
fn check_changed_payload(c: &mut Collector, at: &str, payload: &Payload, event: &NewEvent) {
    if !payload.kind().is_diplomatic() {
        c.error(
            format!("{at}.payload"),
            format!("cannot correct into a {} payload", payload.kind()),
        );
        return;
    }
    let mut corrected = event.clone();
    corrected.payload = payload.clone();
    let mut inner = Collector::default();
    check_payload(&mut inner, &corrected);
    for e in inner.0 {
        c.error(format!("{at}.{}", e.field), e.message);
    }
}

/// Checks what an event points at: its timeline, parties, actors and issues must be registered
/// (and not registered twice), and events it retracts, corrects, answers or reaffirms must exist.
pub fn validate_references(
    event: &NewEvent,
    refs: &dyn References,
) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    check_timeline_ref(&mut c, event, refs.registry());
    check_participant_refs(&mut c, "actors", &event.actors, refs);
    check_participant_refs(&mut c, "targets", &event.targets, refs);
    check_issue_refs(&mut c, "issues", &event.issues, refs);
    check_payload_refs(&mut c, event, refs);
    c.finish()
}

/// An event belongs to a registered timeline, except the registration that opens it.
fn check_timeline_ref(c: &mut Collector, event: &NewEvent, registry: &Registry) {
    match &event.payload {
        Payload::TimelineRegistered(t) => {
            check_unregistered(c, "payload.slug", "timeline", &t.slug, &registry.timelines);
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
}

/// Checks the parties and earlier events a payload names.
fn check_payload_refs(c: &mut Collector, event: &NewEvent, refs: &dyn References) {
    let registry = refs.registry();
    match &event.payload {
        Payload::Offer(o) => {
            if let Some(id) = &o.reaffirms {
                find_event(c, "payload.reaffirms", id, &[Kind::Offer], refs);
            }
        }
        Payload::Demand(d) => {
            if let Some(id) = &d.reaffirms {
                find_event(c, "payload.reaffirms", id, &[Kind::Demand], refs);
            }
        }
        Payload::Refusal(r) => check_act_refs(c, "payload.refuses", &r.refuses, refs),
        Payload::Concession(x) => check_act_refs(c, "payload.answers", &x.answers, refs),
        Payload::Seminar(s) => check_party_ref(c, "payload.host", &s.host, registry),
        Payload::Visit(v) => {
            check_party_ref(c, "payload.visitor", &v.visitor, registry);
            check_party_ref(c, "payload.host", &v.host, registry);
        }
        Payload::Talks(t) => {
            for (i, party) in t.participants.iter().enumerate() {
                check_party_ref(c, Entry("payload.participants", i), party, registry);
            }
        }
        Payload::Retraction(r) => {
            let if_retracted = "is already retracted";
            amended_act(
                c,
                "payload.retracts",
                &r.retracts,
                event,
                refs,
                if_retracted,
            );
        }
        Payload::Correction(x) => check_correction_refs(c, x, event, refs),
        Payload::PartyRegistered(p) => {
            check_unregistered(c, "payload.code", "party", &p.code, &registry.parties);
        }
        Payload::ActorRegistered(a) => {
            check_unregistered(c, "payload.slug", "actor", &a.slug, &registry.actors);
            check_party_ref(c, "payload.party", &a.party, registry);
        }
        Payload::IssueRegistered(i) => {
            check_unregistered(c, "payload.slug", "issue", &i.slug, &registry.issues);
        }
        Payload::Threat(_)
        | Payload::Agreement(_)
        | Payload::Measure(_)
        | Payload::Statement(_)
        | Payload::Accusation(_)
        | Payload::TimelineRegistered(_) => {}
    }
}

/// A correction amends an act of its own timeline, keeps that act's kind, and names only
/// registered parties, actors and issues in its changes.
fn check_correction_refs(
    c: &mut Collector,
    x: &Correction,
    event: &NewEvent,
    refs: &dyn References,
) {
    let if_retracted = "is retracted; a retracted event cannot be corrected";
    let found = amended_act(
        c,
        "payload.corrects",
        &x.corrects,
        event,
        refs,
        if_retracted,
    );
    if let (Some(found), Some(p)) = (found, &x.changes.payload) {
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
    let ch = &x.changes;
    if let Some(list) = &ch.actors {
        check_participant_refs(c, "payload.changes.actors", list, refs);
    }
    if let Some(list) = &ch.targets {
        check_participant_refs(c, "payload.changes.targets", list, refs);
    }
    if let Some(list) = &ch.issues {
        check_issue_refs(c, "payload.changes.issues", list, refs);
    }
}

/// The act that a retraction or correction amends: an act in the log, in the same timeline, not
/// retracted (`if_retracted` finishes the message when it is). Answers it if it is in the log.
fn amended_act(
    c: &mut Collector,
    field: &str,
    id: &EventId,
    event: &NewEvent,
    refs: &dyn References,
    if_retracted: &str,
) -> Option<EventRef> {
    let found = find_event(c, field, id, DIPLOMATIC, refs)?;
    same_timeline(c, field, event, &found);
    if found.retracted {
        c.error(field, format!("event {id} {if_retracted}"));
    }
    Some(found)
}

/// The kinds that are acts of a party ([`Kind::is_diplomatic`]): the first kinds, up to talks.
const DIPLOMATIC: &[Kind] = Kind::ALL.split_at(Kind::Talks as usize + 1).0;

/// Looks up an earlier event that `field` names; it must be in the log and, unless `allowed` is
/// empty, of one of the `allowed` kinds.
fn find_event(
    c: &mut Collector,
    field: impl fmt::Display,
    id: &EventId,
    allowed: &[Kind],
    refs: &dyn References,
) -> Option<EventRef> {
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
}

/// Every entry of a list of earlier events (refused, answered) must be an act in the log.
fn check_act_refs(c: &mut Collector, field: &str, ids: &[EventId], refs: &dyn References) {
    for (i, id) in ids.iter().enumerate() {
        find_event(c, Entry(field, i), id, DIPLOMATIC, refs);
    }
}

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

fn same_timeline(c: &mut Collector, field: &str, event: &NewEvent, found: &EventRef) {
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

/// A registration must not register its key (`what` names its kind) a second time.
fn check_unregistered<K: Ord + fmt::Display, V>(
    c: &mut Collector,
    field: &str,
    what: &str,
    key: &K,
    registered: &BTreeMap<K, V>,
) {
    if registered.contains_key(key) {
        c.error(field, format!("{what} {key} is already registered"));
    }
}

fn check_party_ref(
    c: &mut Collector,
    field: impl fmt::Display,
    party: &PartyCode,
    registry: &Registry,
) {
    if !registry.parties.contains_key(party) {
        c.error(
            field,
            format!("unknown party {party}: register it first (PARTY_REGISTERED)"),
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
        let at = Entry(field, i);
        check_party_ref(c, format_args!("{at}.party"), &p.party, registry);
        if let Some(actor) = &p.actor {
            match registry.actors.get(actor) {
                None => c.error(
                    format_args!("{at}.actor"),
                    format!("unknown actor {actor}: register it first (ACTOR_REGISTERED)"),
                ),
                Some(a) if a.party != p.party => c.error(
                    format_args!("{at}.actor"),
                    format!("actor {actor} acts for {}, not {}", a.party, p.party),
                ),
                Some(_) => {}
            }
        }
    }
}

fn check_issue_refs(c: &mut Collector, field: &str, list: &[IssueSlug], refs: &dyn References) {
    for (i, issue) in list.iter().enumerate() {
        if !refs.registry().issues.contains_key(issue) {
            c.error(
                Entry(field, i),
                format!("unknown issue {issue}: register it first (ISSUE_REGISTERED)"),
            );
        }
    }
}
