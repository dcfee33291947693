//! The mutation root: recording acts (a batch is atomic), retracting, correcting, registering.
//! Every mutation may carry an `expectedVersion` and client-chosen ids, and answers with the
//! events written and their positions; a retry with the same ids answers with the originals.
//!
//! Acts are recorded through one input whose `act` field is a `@oneOf` naming the kind (rather
//! than one mutation per kind): a batch can then mix kinds atomically (a demand and the refusal
//! it met, as they were reported together), while each kind keeps a typed input.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chancery_domain::limits::MAX_BATCH_EVENTS;
use chancery_domain::payload as p;
use chancery_domain::{FieldError, NewEvent, TimelineSlug, ValidationErrors};
use chancery_store::{AppendOutcome, AppendRequest, ExpectedVersion, StoreError};

use crate::api::{Api, api, caller};
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult, Code};
use crate::inputs::*;
use crate::objects::{Event, timeline_of_record};
use crate::scalars::{Long, Slug};

pub struct Mutation;

/// What a mutation wrote.
#[derive(SimpleObject)]
pub struct AppendResult {
    /// The events, in order, with their positions.
    pub events: Vec<Event>,
    pub first_position: Long,
    pub last_position: Long,
    /// The timeline's version after the append (the `expectedVersion` for the next one).
    pub timeline_version: Long,
    /// True when the whole batch had been recorded before (a retry): nothing new was written.
    pub deduplicated: bool,
}

#[derive(InputObject)]
pub struct RetractInput {
    /// The retraction's own id (a UUID v7), for idempotent retries.
    pub id: Option<ID>,
    /// The event to retract.
    pub event: ID,
    pub reason: String,
}

#[derive(InputObject)]
pub struct CorrectInput {
    /// The correction's own id (a UUID v7), for idempotent retries.
    pub id: Option<ID>,
    /// The event to correct.
    pub event: ID,
    pub reason: String,
    pub changes: ChangesInput,
}

/// What the log answers an append to a timeline it does not hold, with `expected`: the same
/// checks in the same order (the expected version first, then the first event's timeline).
fn as_if_unknown(timeline: TimelineSlug, expected: ExpectedVersion) -> StoreError {
    match expected {
        ExpectedVersion::Exact(v) if v > 0 => StoreError::WrongExpectedVersion {
            timeline,
            expected,
            actual: None,
        },
        _ => StoreError::Invalid(ValidationErrors(vec![FieldError {
            field: "events[0].timeline".into(),
            message: format!(
                "unknown timeline {timeline}: register it first (TIMELINE_REGISTERED)"
            ),
        }])),
    }
}

/// Appends for `caller`, counts it, and reads back what was written. A timeline the caller is
/// not granted is refused as if it did not exist.
async fn append(
    api: &Api,
    caller: &Caller,
    timeline: TimelineSlug,
    expected: Option<ExpectedVersionInput>,
    events: Vec<NewEvent>,
) -> ApiResult<AppendResult> {
    let expected = ExpectedVersionInput::to_domain(expected);
    if !caller.timelines.allows(timeline.as_str()) {
        return Err(ApiError::from(as_if_unknown(timeline, expected)));
    }
    // Every event over the API is recorded by the caller's token, by its name (never its
    // secret); no input can say who recorded it.
    let mut events = events;
    for event in &mut events {
        event.recorded_by = caller.name.as_deref().map(str::to_owned);
    }
    let count = events.len();
    let started = Instant::now();
    let outcome = api
        .log
        .append(AppendRequest {
            refers_within: caller.timelines.listed().map(<[TimelineSlug]>::to_vec),
            timeline,
            expected,
            events,
        })
        .await;
    api.metrics
        .record_append(count, started.elapsed(), outcome.is_ok());
    let outcome: AppendOutcome = outcome?;
    let first = outcome.events.first().map_or(0, |e| e.position);
    let written = outcome
        .records
        .iter()
        .cloned()
        .map(Event::as_recorded)
        .collect();
    Ok(AppendResult {
        events: written,
        first_position: Long(first),
        last_position: Long(outcome.last_position()),
        timeline_version: Long(outcome.last_version()),
        deduplicated: outcome.deduplicated,
    })
}

/// Appends one event given as `input` (a retraction, a correction, a registration), the paths
/// of its errors named as in the input.
async fn append_input(
    api: &Api,
    caller: &Caller,
    expected: Option<ExpectedVersionInput>,
    e: NewEvent,
) -> ApiResult<AppendResult> {
    let timeline = e.timeline.clone();
    append(api, caller, timeline, expected, vec![e])
        .await
        .map_err(|err| locate(err, |_, rest| input_path(rest)))
}

/// The API state and the caller of a request whose caller holds `role`; a refusal otherwise.
fn permitted<'a>(ctx: &Context<'a>, role: Role, what: &str) -> ApiResult<(&'a Arc<Api>, Caller)> {
    let api = api(ctx)?;
    let caller = caller(ctx);
    api.access.check(&caller, role, what)?;
    Ok((api, caller))
}

/// The timeline of an earlier event, for retractions and corrections. An event of a timeline
/// the caller is not granted is not found, as if it did not exist.
async fn timeline_of(
    api: &Api,
    caller: &Caller,
    id: &ID,
    field: &str,
) -> ApiResult<(chancery_domain::EventId, TimelineSlug)> {
    let target = event_id(id, field)?;
    let found = match api.log.event(target).await? {
        Some(record) => Some(timeline_of_record(&record)?),
        None => None,
    };
    match found.filter(|timeline| caller.timelines.allows(timeline.as_str())) {
        Some(timeline) => Ok((target, timeline)),
        None => Err(ApiError::field(
            Code::NotFound,
            field,
            format!("no event {target} in the log"),
        )),
    }
}

/// A retraction or a correction of an earlier event, summarised by what it is (`label`) and why.
fn amendment(
    timeline: TimelineSlug,
    payload: p::Payload,
    id: &Option<ID>,
    label: &str,
    reason: &str,
) -> ApiResult<NewEvent> {
    let mut e = input_event(timeline, payload, id)?;
    e.summary = format!("{label}: {}", reason.chars().take(200).collect::<String>());
    Ok(e)
}

#[Object]
impl Mutation {
    /// Records one act in a timeline.
    async fn record_event(
        &self,
        ctx: &Context<'_>,
        timeline: Slug,
        event: EventInput,
        expected_version: Option<ExpectedVersionInput>,
    ) -> ApiResult<AppendResult> {
        let (api, caller) = permitted(ctx, Role::Recorder, "recording events")?;
        let timeline = timeline_slug(&timeline, "timeline")?;
        let e = event.to_event(&timeline, "event")?;
        let kind = act_field(&e);
        append(api, &caller, timeline, expected_version, vec![e])
            .await
            .map_err(|err| locate(err, |_, rest| event_path("event", rest, &kind)))
    }

    /// Records a batch of acts in a timeline, atomically (all or none; at most 1,000): the batch
    /// import.
    async fn record_events(
        &self,
        ctx: &Context<'_>,
        timeline: Slug,
        events: Vec<EventInput>,
        expected_version: Option<ExpectedVersionInput>,
    ) -> ApiResult<AppendResult> {
        let (api, caller) = permitted(ctx, Role::Recorder, "recording events")?;
        let timeline = timeline_slug(&timeline, "timeline")?;
        // Refused before 1,001 events are converted and validated for nothing, with its field.
        if events.len() > MAX_BATCH_EVENTS {
            return Err(ApiError::field(
                Code::Limit,
                "events",
                format!(
                    "{} events in one batch; the limit is {MAX_BATCH_EVENTS}: split the batch",
                    events.len()
                ),
            ));
        }
        let batch = events
            .iter()
            .enumerate()
            .map(|(i, e)| e.to_event(&timeline, &format!("events[{i}]")))
            .collect::<ApiResult<Vec<_>>>()?;
        let kinds: Vec<String> = batch.iter().map(act_field).collect();
        append(api, &caller, timeline, expected_version, batch)
            .await
            .map_err(|err| {
                locate(err, |i, rest| {
                    event_path(
                        &format!("events[{i}]"),
                        rest,
                        kinds.get(i).map_or("", String::as_str),
                    )
                })
            })
    }

    /// Withdraws an event: projections then act as if it had never been recorded; the log keeps
    /// both.
    async fn retract_event(
        &self,
        ctx: &Context<'_>,
        input: RetractInput,
        expected_version: Option<ExpectedVersionInput>,
    ) -> ApiResult<AppendResult> {
        let (api, caller) = permitted(ctx, Role::Recorder, "retracting events")?;
        let (target, timeline) = timeline_of(api, &caller, &input.event, "input.event").await?;
        let retraction = p::Retraction {
            retracts: target,
            reason: input.reason.clone(),
        };
        let payload = p::Payload::Retraction(retraction);
        let e = amendment(timeline, payload, &input.id, "Retraction", &input.reason)?;
        append_input(api, &caller, expected_version, e).await
    }

    /// Replaces fields of an event from now on; the log keeps what was believed before.
    async fn correct_event(
        &self,
        ctx: &Context<'_>,
        input: CorrectInput,
        expected_version: Option<ExpectedVersionInput>,
    ) -> ApiResult<AppendResult> {
        let (api, caller) = permitted(ctx, Role::Recorder, "correcting events")?;
        let (target, timeline) = timeline_of(api, &caller, &input.event, "input.event").await?;
        let correction = p::Correction {
            corrects: target,
            reason: input.reason.clone(),
            changes: input.changes.to_changes("input.changes")?,
        };
        let payload = p::Payload::Correction(Box::new(correction));
        let e = amendment(timeline, payload, &input.id, "Correction", &input.reason)?;
        append_input(api, &caller, expected_version, e).await
    }

    /// Opens a timeline (a dossier). Needs an admin token.
    async fn register_timeline(
        &self,
        ctx: &Context<'_>,
        input: RegisterTimelineInput,
    ) -> ApiResult<AppendResult> {
        let (api, caller) = permitted(ctx, Role::Admin, "registering timelines")?;
        let event = input.to_event()?;
        // Opening a timeline names it, so a token limited to others is told why it may not.
        if !caller.timelines.allows(event.timeline.as_str()) {
            return Err(ApiError::field(
                Code::Forbidden,
                "input.slug",
                format!(
                    "this token is not granted timeline {}, so it may not open it",
                    event.timeline
                ),
            ));
        }
        append_input(api, &caller, None, event).await
    }

    /// Registers a party, for every timeline. Needs an admin token.
    async fn register_party(
        &self,
        ctx: &Context<'_>,
        input: RegisterPartyInput,
        expected_version: Option<ExpectedVersionInput>,
    ) -> ApiResult<AppendResult> {
        let (api, caller) = permitted(ctx, Role::Admin, "registering parties")?;
        append_input(api, &caller, expected_version, input.to_event()?).await
    }

    /// Registers an actor of a party. Needs an admin token.
    async fn register_actor(
        &self,
        ctx: &Context<'_>,
        input: RegisterActorInput,
        expected_version: Option<ExpectedVersionInput>,
    ) -> ApiResult<AppendResult> {
        let (api, caller) = permitted(ctx, Role::Admin, "registering actors")?;
        append_input(api, &caller, expected_version, input.to_event()?).await
    }

    /// Registers an issue. Needs an admin token.
    async fn register_issue(
        &self,
        ctx: &Context<'_>,
        input: RegisterIssueInput,
        expected_version: Option<ExpectedVersionInput>,
    ) -> ApiResult<AppendResult> {
        let (api, caller) = permitted(ctx, Role::Admin, "registering issues")?;
        append_input(api, &caller, expected_version, input.to_event()?).await
    }
}

/// Moves an error's field path from the log's terms (`events[i].payload.x`) to the mutation's
/// arguments, so a client sees which of its fields is wrong.
fn locate(e: ApiError, place: impl Fn(usize, &str) -> String) -> ApiError {
    e.map_fields(|field| {
        let Some(rest) = field.strip_prefix("events[") else {
            return field.to_owned();
        };
        match rest
            .split_once(']')
            .and_then(|(i, rest)| Some((i.parse::<usize>().ok()?, rest)))
        {
            Some((i, rest)) => place(i, rest),
            None => field.to_owned(),
        }
    })
}

/// Where a field of a recorded act is in the input: under `event` (or `events[i]`), except its
/// timeline, which is the mutation's own `timeline` argument.
fn event_path(prefix: &str, rest: &str, kind: &str) -> String {
    if rest == ".timeline" {
        "timeline".to_owned()
    } else {
        format!("{prefix}{}", act_path(rest, kind))
    }
}

/// `.payload.x` of an act is `.act.<kind>.x` in the input.
fn act_path(rest: &str, kind: &str) -> String {
    match rest.strip_prefix(".payload") {
        Some(inner) => format!(".act.{kind}{inner}"),
        None => rest.to_owned(),
    }
}

/// The oneOf field naming an act's kind in the input.
fn act_field(e: &NewEvent) -> String {
    e.kind().name().to_ascii_lowercase()
}

/// Paths of a retraction, correction or registration, all given as `input`.
fn input_path(rest: &str) -> String {
    let mapped = match rest {
        ".payload.retracts" | ".payload.corrects" => ".event".to_owned(),
        ".payload.partyKind" => ".kind".to_owned(),
        other => match other.strip_prefix(".payload.changes.payload") {
            Some(inner) => format!(".changes.act{inner}"),
            None => other
                .strip_prefix(".payload")
                .map_or_else(|| other.to_owned(), str::to_owned),
        },
    };
    format!("input{mapped}")
}
