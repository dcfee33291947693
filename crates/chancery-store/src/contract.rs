//! The contract test suite: every rule of [`EventLog`](crate::EventLog), run against any backend.
//!
//! A backend's tests call [`contract_tests!`](crate::contract_tests) with a factory that makes a
//! fresh, empty log whose live buffer holds at most [`LIVE_BUFFER`] events (so that the slow
//! subscriber test really reads from storage).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chancery_domain::limits::MAX_BATCH_EVENTS;
use chancery_domain::sample;
use chancery_domain::{
    EventId, Hash, Kind, NewEvent, PartyCode, Position, TimelineSlug, ValidationErrors,
    decode_record, verify_record_hash,
};
use futures_util::StreamExt;

use crate::{
    AppendOutcome, AppendRequest, Direction, EventFilter, EventLog, ExpectedVersion, ReadRequest,
    StoreError,
};

/// The live buffer size a factory must configure.
pub const LIVE_BUFFER: usize = 64;

/// How long any single wait in the suite may take before it fails: generous, for loaded machines.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A fresh log, and whatever must live as long as it (a temporary directory, a server).
pub struct Fixture {
    pub log: Arc<dyn EventLog>,
    pub guard: Box<dyn Any + Send>,
}

pub type BoxedFixture = Pin<Box<dyn Future<Output = Fixture> + Send>>;

/// What a contract test gets: a fresh log, and a way to make more.
pub struct Ctx {
    pub log: Arc<dyn EventLog>,
    pub fresh: Arc<dyn Fn() -> BoxedFixture + Send + Sync>,
}

/// Runs one contract test on a multi-threaded runtime.
pub fn run<F, Fut, T, TFut>(factory: F, test: T)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Fixture> + Send + 'static,
    T: FnOnce(Ctx) -> TFut,
    TFut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let factory = Arc::new(factory);
    runtime.block_on(async move {
        let fixture = factory().await;
        let fresh: Arc<dyn Fn() -> BoxedFixture + Send + Sync> = {
            let factory = Arc::clone(&factory);
            Arc::new(move || Box::pin(factory()) as BoxedFixture)
        };
        let guard = fixture.guard;
        test(Ctx {
            log: fixture.log,
            fresh,
        })
        .await;
        drop(guard);
    });
}

/// Generates one `#[test]` per contract rule for a backend.
///
/// ```ignore
/// chancery_store::contract_tests!(|| async { my_backend_fixture() });
/// ```
#[macro_export]
macro_rules! contract_tests {
    ($factory:expr) => {
        $crate::contract_tests!(@each $factory;
            positions_are_gapless_from_one_and_versions_per_timeline,
            a_batch_is_atomic_when_one_event_is_invalid,
            expected_version_no_timeline,
            expected_version_exact_conflict_names_the_actual_version,
            expected_version_any_always_appends,
            a_retry_returns_the_original_positions,
            the_same_id_with_other_content_is_a_conflict,
            a_retry_by_another_recorder_is_the_same_event_and_keeps_the_first_name,
            a_partly_recorded_batch_is_a_conflict,
            duplicate_ids_in_one_batch_are_invalid,
            invalid_references_name_the_field_and_write_nothing,
            references_outside_the_named_timelines_are_not_found,
            oversized_batches_are_refused,
            reads_go_forward_and_backward_with_filters,
            reads_of_one_timeline_start_at_a_version,
            events_are_found_by_id,
            the_registry_follows_registrations,
            the_hash_chain_links_every_event,
            retractions_need_an_existing_unretracted_event,
            a_subscription_gives_history_then_live,
            a_subscription_resumes_exactly_after_its_cursor,
            a_subscription_filters_on_the_server,
            a_slow_subscriber_reads_from_storage_and_misses_nothing,
            concurrent_writers_on_one_timeline_get_one_winner_per_version,
            a_subscriber_racing_live_appends_sees_every_position_once,
            a_restore_reproduces_the_log_byte_for_byte,
            a_restore_with_a_broken_chain_writes_nothing
        );
    };
    (@each $factory:expr; $($name:ident),+) => {
        $(
            #[test]
            fn $name() {
                $crate::contract::run($factory, $crate::contract::$name);
            }
        )+
    };
}

const T: &str = "contract";

fn timeline() -> TimelineSlug {
    sample::timeline(T)
}

fn party(code: &str) -> PartyCode {
    PartyCode::new(code).unwrap()
}

async fn append(
    log: &dyn EventLog,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<AppendOutcome, StoreError> {
    let timeline = events
        .first()
        .map(|e| e.timeline.clone())
        .unwrap_or_else(timeline);
    log.append(AppendRequest {
        refers_within: None,
        timeline,
        expected,
        events,
    })
    .await
}

/// Registers the timeline, parties USA, CHN, EU and issues `deficit`, `tariffs`.
async fn world(log: &dyn EventLog) -> AppendOutcome {
    append(
        log,
        ExpectedVersion::NoTimeline,
        sample::world(T, &["USA", "CHN", "EU"], &["deficit", "tariffs"]),
    )
    .await
    .unwrap()
}

/// Appends a batch whatever the timeline's version; it must be recorded.
async fn recorded(log: &dyn EventLog, events: Vec<NewEvent>) -> AppendOutcome {
    append(log, ExpectedVersion::Any, events).await.unwrap()
}

/// Appends a batch expecting `expected` of its timeline; it must be refused, and this says why.
async fn refused_at(
    log: &dyn EventLog,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> StoreError {
    append(log, expected, events).await.unwrap_err()
}

/// Appends a batch whatever the timeline's version; it must be refused, and this says why.
async fn refused(log: &dyn EventLog, events: Vec<NewEvent>) -> StoreError {
    refused_at(log, ExpectedVersion::Any, events).await
}

/// The refusal of an append to the contract's timeline that expected `expected` of it.
fn wrong_version(expected: ExpectedVersion, actual: Option<u64>) -> StoreError {
    StoreError::WrongExpectedVersion {
        timeline: timeline(),
        expected,
        actual,
    }
}

/// Appends a batch that must be refused as an id conflict, writing nothing, and answers the
/// conflicting id and the position that holds it.
async fn id_conflict(log: &dyn EventLog, events: Vec<NewEvent>) -> (EventId, Position) {
    let before = head(log).await;
    let err = refused(log, events).await;
    let StoreError::IdConflict { id, position, .. } = err else {
        panic!("expected an id conflict, got {err}")
    };
    assert_eq!(head(log).await, before, "the refused batch wrote nothing");
    (id, position)
}

/// Appends a batch that must be refused as invalid, and answers why.
async fn invalid(log: &dyn EventLog, events: Vec<NewEvent>) -> ValidationErrors {
    let err = refused(log, events).await;
    let StoreError::Invalid(errors) = err else {
        panic!("expected a validation error, got {err}")
    };
    errors
}

fn statement(actor: &str, issue: &str) -> NewEvent {
    sample::statement(T, actor, &[issue], "2018-05-01")
}

async fn head(log: &dyn EventLog) -> Position {
    log.head().await.unwrap().position
}

async fn all_events(log: &dyn EventLog) -> Vec<chancery_domain::RecordedEvent> {
    log.read(ReadRequest::forward(1, usize::MAX)).await.unwrap()
}

/// Every record in one encoding, in order.
async fn encoded(
    log: &dyn EventLog,
    encode: impl Fn(&chancery_domain::RecordedEvent) -> Vec<u8>,
) -> Vec<Vec<u8>> {
    all_events(log).await.iter().map(encode).collect()
}

/// Every record's stored form, in order.
async fn stored(log: &dyn EventLog) -> Vec<Vec<u8>> {
    encoded(log, |r| r.stored().to_vec()).await
}

/// Every record's canonical JSON (an export's lines), in order.
async fn export_lines(log: &dyn EventLog) -> Vec<Vec<u8>> {
    encoded(log, |r| r.canonical_json().unwrap()).await
}

pub async fn positions_are_gapless_from_one_and_versions_per_timeline(ctx: Ctx) {
    let log = &*ctx.log;
    assert_eq!(log.head().await.unwrap(), crate::Head::EMPTY);
    let setup = world(log).await;
    assert_eq!(
        setup.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<_>>()
    );
    assert_eq!(
        setup.events.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<_>>()
    );

    let other = sample::world("other", &[], &[]);
    let o = append(log, ExpectedVersion::NoTimeline, other)
        .await
        .unwrap();
    assert_eq!(
        (o.events[0].position, o.events[0].version),
        (7, 1),
        "versions count per timeline"
    );

    let b = append(
        log,
        ExpectedVersion::Exact(6),
        vec![statement("USA", "deficit"), statement("CHN", "tariffs")],
    )
    .await
    .unwrap();
    assert_eq!(
        b.events
            .iter()
            .map(|e| (e.position, e.version))
            .collect::<Vec<_>>(),
        vec![(8, 7), (9, 8)]
    );
    assert!(!b.deduplicated);
    assert_eq!(head(log).await, 9);
    assert_eq!(log.timeline_version(timeline()).await.unwrap(), Some(8));
    assert_eq!(
        log.timeline_version(sample::timeline("other"))
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        log.timeline_version(sample::timeline("nothing"))
            .await
            .unwrap(),
        None
    );
    let positions: Vec<_> = all_events(log).await.iter().map(|e| e.position()).collect();
    assert_eq!(positions, (1..=9).collect::<Vec<_>>());
}

pub async fn a_batch_is_atomic_when_one_event_is_invalid(ctx: Ctx) {
    let log = &*ctx.log;
    world(log).await;
    let good = statement("USA", "deficit");
    let bad = sample::statement(T, "USA", &["unregistered-issue"], "2018-05-01");
    let errors = invalid(log, vec![good.clone(), bad]).await;
    assert_eq!(errors.0[0].field, "events[1].issues[0]", "{errors}");
    assert_eq!(head(log).await, 6, "nothing of the batch was written");
    assert!(log.event(good.id).await.unwrap().is_none());
}

pub async fn expected_version_no_timeline(ctx: Ctx) {
    let log = &*ctx.log;
    world(log).await;
    let usa = vec![statement("USA", "deficit")];
    let err = refused_at(log, ExpectedVersion::NoTimeline, usa).await;
    assert_eq!(err, wrong_version(ExpectedVersion::NoTimeline, Some(6)));
    assert_eq!(head(log).await, 6);
}

pub async fn expected_version_exact_conflict_names_the_actual_version(ctx: Ctx) {
    let log = &*ctx.log;
    world(log).await;
    append(
        log,
        ExpectedVersion::Exact(6),
        vec![statement("USA", "deficit")],
    )
    .await
    .unwrap();
    let chn = vec![statement("CHN", "deficit")];
    let err = refused_at(log, ExpectedVersion::Exact(6), chn).await;
    assert_eq!(err, wrong_version(ExpectedVersion::Exact(6), Some(7)));
    assert!(err.to_string().contains("it is at version 7"), "{err}");
    let fresh = sample::world("fresh", &[], &[]);
    let err = refused_at(log, ExpectedVersion::Exact(3), fresh).await;
    assert!(
        matches!(err, StoreError::WrongExpectedVersion { actual: None, .. }),
        "{err}"
    );
    assert_eq!(head(log).await, 7);
}

pub async fn expected_version_any_always_appends(ctx: Ctx) {
    let log = &*ctx.log;
    world(log).await;
    for i in 0..3 {
        let out = recorded(log, vec![statement("USA", "deficit")]).await;
        assert_eq!(out.last_version(), 7 + i);
    }
}

pub async fn a_retry_returns_the_original_positions(ctx: Ctx) {
    let log = &*ctx.log;
    world(log).await;
    let batch = vec![statement("USA", "deficit"), statement("CHN", "deficit")];
    let first = append(log, ExpectedVersion::Exact(6), batch.clone())
        .await
        .unwrap();
    recorded(log, vec![statement("EU", "tariffs")]).await;
    // The retry carries the now stale expected version: it still answers with the originals.
    let retry = append(log, ExpectedVersion::Exact(6), batch).await.unwrap();
    assert!(retry.deduplicated);
    assert_eq!(retry.events, first.events);
    assert_eq!(head(log).await, 9, "the retry wrote nothing");
}

pub async fn the_same_id_with_other_content_is_a_conflict(ctx: Ctx) {
    let log = &*ctx.log;
    world(log).await;
    let original = statement("USA", "deficit");
    let out = recorded(log, vec![original.clone()]).await;
    let mut other = original.clone();
    other.summary = "something else".into();
    assert_eq!(
        id_conflict(log, vec![other]).await,
        (original.id, out.last_position())
    );
}

pub async fn a_retry_by_another_recorder_is_the_same_event_and_keeps_the_first_name(ctx: Ctx) {
    let log = &*ctx.log;
    world(log).await;
    let mut original = statement("USA", "deficit");
    original.recorded_by = Some("ana".into());
    let first = recorded(log, vec![original.clone()]).await;
    for name in [Some("bo"), None] {
        let mut retry = original.clone();
        retry.recorded_by = name.map(str::to_owned);
        let again = recorded(log, vec![retry]).await;
        assert!(again.deduplicated, "a retry by {name:?} is the same event");
        assert_eq!(again.events, first.events);
    }
    assert_eq!(head(log).await, 7, "the retries wrote nothing");
    let record = log.event(original.id).await.unwrap().unwrap();
    assert_eq!(
        record.event().unwrap().recorded_by.as_deref(),
        Some("ana"),
        "the record keeps the first writer's name"
    );
    // The name is in the hashed record, as read back from the backend.
    let line = String::from_utf8(record.canonical_json().unwrap()).unwrap();
    assert!(line.contains(r#","recordedBy":"ana"},"hash":""#), "{line}");
    assert_eq!(verify_record_hash(line.as_bytes()), Ok(record.hash()));
    assert_eq!(record.verify(), Ok(record.hash()));

    // Other content is still a conflict, whoever sends it.
    let mut other = original.clone();
    other.summary = "something else".into();
    other.recorded_by = Some("ana".into());
    assert_eq!(
        id_conflict(log, vec![other]).await,
        (original.id, first.last_position())
    );
    // A name that is no name is refused with its field.
    let mut blank = statement("CHN", "deficit");
    blank.recorded_by = Some(" ".into());
    let errors = invalid(log, vec![blank]).await;
    assert_eq!(errors.0[0].field, "events[0].recordedBy", "{errors}");
}

pub async fn a_partly_recorded_batch_is_a_conflict(ctx: Ctx) {
    let log = &*ctx.log;
    world(log).await;
    let first = statement("USA", "deficit");
    recorded(log, vec![first.clone()]).await;
    let (id, _) = id_conflict(log, vec![first.clone(), statement("CHN", "deficit")]).await;
    assert_eq!(id, first.id);
}

pub async fn duplicate_ids_in_one_batch_are_invalid(ctx: Ctx) {
    let log = &*ctx.log;
    world(log).await;
    let e = statement("USA", "deficit");
    let errors = invalid(log, vec![e.clone(), e]).await;
    assert_eq!(errors.0[0].field, "events[1].id");
    assert_eq!(head(log).await, 6);
}

pub async fn invalid_references_name_the_field_and_write_nothing(ctx: Ctx) {
    let log = &*ctx.log;
    // Nothing is registered yet: the timeline itself is unknown.
    let errors = invalid(log, vec![statement("USA", "deficit")]).await;
    assert!(
        errors.0.iter().any(|e| e.field == "events[0].timeline"),
        "{errors}"
    );
    world(log).await;
    let errors = invalid(
        log,
        vec![sample::demand(T, "USA", "FRA", "deficit", "2018-05-01")],
    )
    .await;
    assert_eq!(errors.0[0].field, "events[0].targets[0].party");
    assert!(errors.0[0].message.contains("unknown party FRA"));
    // An event may use what an earlier event of the same batch registers.
    let batch = vec![
        sample::register_party(T, "FRA"),
        sample::demand(T, "USA", "FRA", "deficit", "2018-05-01"),
    ];
    recorded(log, batch).await;
    assert_eq!(head(log).await, 8);
}

pub async fn references_outside_the_named_timelines_are_not_found(ctx: Ctx) {
    let log = &*ctx.log;
    world(log).await;
    let elsewhere = "elsewhere";
    recorded(log, vec![sample::register_timeline(elsewhere)]).await;
    let demand = sample::demand(elsewhere, "USA", "CHN", "deficit", "2018-05-01");
    let demand_id = demand.id;
    recorded(log, vec![demand]).await;
    let refusal = || sample::refusal(T, "CHN", "USA", "deficit", "2018-05-02", vec![demand_id]);
    let unknown = EventId::new_v7();
    let refusal_of_unknown =
        sample::refusal(T, "CHN", "USA", "deficit", "2018-05-02", vec![unknown]);
    let within = |events: Vec<NewEvent>| AppendRequest {
        refers_within: Some(vec![timeline()]),
        timeline: timeline(),
        expected: ExpectedVersion::Any,
        events,
    };
    let before = head(log).await;
    // Named within the request's timelines only, an event of another timeline is refused as an
    // event that is not in the log is, word for word but for its id.
    let hidden = match log.append(within(vec![refusal()])).await {
        Err(StoreError::Invalid(errors)) => errors,
        other => panic!("expected a validation error, got {other:?}"),
    };
    let absent = match log.append(within(vec![refusal_of_unknown])).await {
        Err(StoreError::Invalid(errors)) => errors,
        other => panic!("expected a validation error, got {other:?}"),
    };
    assert_eq!(hidden.0.len(), 1, "{hidden}");
    assert_eq!(hidden.0[0].field, absent.0[0].field);
    assert_eq!(
        hidden.0[0].message.replace(&demand_id.to_string(), "ID"),
        absent.0[0].message.replace(&unknown.to_string(), "ID")
    );
    assert_eq!(head(log).await, before, "nothing was written");
    // With every timeline open to it, the same refusal is recorded.
    recorded(log, vec![refusal()]).await;
    assert_eq!(head(log).await, before + 1);
}

pub async fn oversized_batches_are_refused(ctx: Ctx) {
    let log = &*ctx.log;
    world(log).await;
    let batch: Vec<_> = (0..=MAX_BATCH_EVENTS)
        .map(|_| statement("USA", "deficit"))
        .collect();
    let err = refused(log, batch).await;
    assert!(matches!(err, StoreError::Limit(_)), "{err}");
    assert_eq!(head(log).await, 6);
}

pub async fn reads_go_forward_and_backward_with_filters(ctx: Ctx) {
    let log = &*ctx.log;
    record_events_to_read(log).await;
    unfiltered_reads_page_both_ways(log).await;
    filtered_reads_keep_the_matching_events(log).await;
    reads_past_the_head_or_of_unknown_names_are_empty(log).await;
}

/// Records positions 1 to 12 for the read checks: the world (1-6), a statement by USA on the
/// deficit (7), a demand of USA on CHN on tariffs (8), a refusal of CHN to USA on the deficit
/// and tariffs (9), a statement by EU on tariffs (10), the `other` timeline (11) and a
/// statement by CHN on the deficit in it (12).
async fn record_events_to_read(log: &dyn EventLog) {
    world(log).await; // 1..=6
    let mut refusal = sample::refusal(T, "CHN", "USA", "deficit", "2018-05-02", vec![]);
    refusal.issues.push(sample_issue("tariffs"));
    let batch = vec![
        statement("USA", "deficit"),                              // 7
        sample::demand(T, "USA", "CHN", "tariffs", "2018-05-01"), // 8
        refusal,                                                  // 9: CHN -> USA, deficit+tariffs
        statement("EU", "tariffs"),                               // 10
    ];
    recorded(log, batch).await;
    append(
        log,
        ExpectedVersion::NoTimeline,
        sample::world("other", &[], &[]),
    )
    .await
    .unwrap(); // 11
    recorded(
        log,
        vec![sample::statement(
            "other",
            "CHN",
            &["deficit"],
            "2018-05-03",
        )],
    )
    .await; // 12
}

/// The positions a read answers.
async fn positions_read(
    log: &dyn EventLog,
    from: Position,
    direction: Direction,
    filter: EventFilter,
    limit: usize,
) -> Vec<Position> {
    log.read(ReadRequest {
        from,
        direction,
        filter,
        limit,
    })
    .await
    .unwrap()
    .iter()
    .map(|e| e.position())
    .collect()
}

/// A filter on timelines, parties, issues and kinds; an empty list does not filter.
fn filter(timelines: &[&str], parties: &[&str], issues: &[&str], kinds: &[Kind]) -> EventFilter {
    EventFilter {
        timelines: timelines.iter().map(|t| sample::timeline(t)).collect(),
        parties: parties.iter().map(|p| party(p)).collect(),
        issues: issues.iter().map(|i| sample_issue(i)).collect(),
        kinds: kinds.to_vec(),
    }
}

/// Without a filter, reads go either way from a position, at most `limit` events.
async fn unfiltered_reads_page_both_ways(log: &dyn EventLog) {
    use Direction::{Backward, Forward};
    let all = || filter(&[], &[], &[], &[]);
    assert_eq!(
        positions_read(log, 1, Forward, all(), 100).await,
        (1..=12).collect::<Vec<_>>()
    );
    assert_eq!(
        positions_read(log, 5, Forward, all(), 3).await,
        vec![5, 6, 7]
    );
    assert_eq!(
        positions_read(log, Position::MAX, Backward, all(), 3).await,
        vec![12, 11, 10]
    );
    assert_eq!(positions_read(log, 8, Backward, all(), 2).await, vec![8, 7]);
}

/// A filter keeps the events of any of its timelines, parties (as actor or target), issues and
/// kinds, and all of its lists at once; the limit counts matching events only.
async fn filtered_reads_keep_the_matching_events(log: &dyn EventLog) {
    use Direction::{Backward, Forward};
    let cases = [
        (
            1,
            Forward,
            filter(&["other"], &[], &[], &[]),
            100,
            vec![11, 12],
        ),
        (
            1,
            Forward,
            filter(&[], &["CHN"], &[], &[]),
            100,
            vec![8, 9, 12],
        ),
        (
            1,
            Forward,
            filter(&[], &["CHN", "EU"], &[], &[]),
            100,
            vec![8, 9, 10, 12],
        ),
        (
            Position::MAX,
            Backward,
            filter(&[], &["CHN"], &[], &[]),
            2,
            vec![12, 9],
        ),
        (
            1,
            Forward,
            filter(&[], &[], &["tariffs"], &[]),
            100,
            vec![8, 9, 10],
        ),
        (
            1,
            Forward,
            filter(&[T], &["USA"], &["deficit"], &[]),
            100,
            vec![7, 9],
        ),
        (
            1,
            Forward,
            filter(&[], &[], &[], &[Kind::Statement]),
            100,
            vec![7, 10, 12],
        ),
        (
            1,
            Forward,
            filter(&[], &["USA"], &[], &[Kind::Demand, Kind::Refusal]),
            100,
            vec![8, 9],
        ),
        (
            9,
            Backward,
            filter(&[], &[], &["tariffs"], &[]),
            100,
            vec![9, 8],
        ),
    ];
    for (from, direction, only, limit, expected) in cases {
        let what = format!("{direction:?} from {from}, {only:?}, at most {limit}");
        assert_eq!(
            positions_read(log, from, direction, only, limit).await,
            expected,
            "{what}"
        );
    }
}

/// A read from past the head, or for a timeline never recorded, finds nothing.
async fn reads_past_the_head_or_of_unknown_names_are_empty(log: &dyn EventLog) {
    use Direction::Forward;
    assert_eq!(
        positions_read(log, 13, Forward, filter(&[], &[], &[], &[]), 100).await,
        Vec::<Position>::new()
    );
    assert_eq!(
        positions_read(log, 1, Forward, filter(&["nowhere"], &[], &[], &[]), 100).await,
        Vec::<Position>::new()
    );
}

fn sample_issue(slug: &str) -> chancery_domain::IssueSlug {
    chancery_domain::IssueSlug::new(slug).unwrap()
}

pub async fn reads_of_one_timeline_start_at_a_version(ctx: Ctx) {
    let log = &*ctx.log;
    world(log).await;
    append(
        log,
        ExpectedVersion::NoTimeline,
        sample::world("other", &[], &[]),
    )
    .await
    .unwrap(); // position 7
    recorded(
        log,
        vec![statement("USA", "deficit"), statement("CHN", "deficit")],
    )
    .await; // 8, 9
    let events = log.read_timeline(timeline(), 6, 10).await.unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.version(), e.position()))
            .collect::<Vec<_>>(),
        vec![(6, 6), (7, 8), (8, 9)]
    );
    let events = log.read_timeline(timeline(), 1, 2).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.version()).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(
        log.read_timeline(sample::timeline("nothing"), 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn events_are_found_by_id(ctx: Ctx) {
    let log = &*ctx.log;
    world(log).await;
    let e = statement("USA", "deficit");
    let out = recorded(log, vec![e.clone()]).await;
    let found = log.event(e.id).await.unwrap().expect("the event is there");
    assert_eq!(found.event().unwrap(), &e);
    assert_eq!(found.position(), out.last_position());
    assert!(log.event(EventId::new_v7()).await.unwrap().is_none());
}

pub async fn the_registry_follows_registrations(ctx: Ctx) {
    let log = &*ctx.log;
    assert!(log.registry().await.unwrap().parties.is_empty());
    world(log).await;
    let registry = log.registry().await.unwrap();
    assert_eq!(
        registry
            .parties
            .keys()
            .map(|p| p.as_str())
            .collect::<Vec<_>>(),
        vec!["CHN", "EU", "USA"]
    );
    assert_eq!(registry.issues.len(), 2);
    assert!(registry.timelines.contains_key(&timeline()));
}

pub async fn the_hash_chain_links_every_event(ctx: Ctx) {
    let log = &*ctx.log;
    world(log).await;
    recorded(log, vec![statement("USA", "deficit")]).await;
    let records = all_events(log).await;
    assert_eq!(records.len(), 7);
    let mut prev = Hash::GENESIS;
    let mut last_time = None;
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.position(), i as u64 + 1);
        assert_eq!(
            record.prev_hash(),
            prev,
            "position {} links to the one before",
            record.position()
        );
        // The hash covers the canonical JSON: the line an export writes verifies on its own, and
        // reads back as the same record.
        let line = record.canonical_json().unwrap();
        let hash = verify_record_hash(&line).unwrap();
        assert_eq!(record.hash(), hash);
        assert_eq!(record.verify().unwrap(), hash);
        assert_eq!(&decode_record(&line).unwrap(), record);
        assert_eq!(&decode_record(record.stored()).unwrap(), record);
        assert!(
            last_time <= Some(record.recorded_at()),
            "recordedAt never decreases"
        );
        last_time = Some(record.recorded_at());
        prev = hash;
    }
    assert_eq!(log.head().await.unwrap().hash, prev);
}

pub async fn retractions_need_an_existing_unretracted_event(ctx: Ctx) {
    let log = &*ctx.log;
    world(log).await;
    let errors = invalid(log, vec![sample::retraction(T, EventId::new_v7())]).await;
    assert_eq!(errors.0[0].field, "events[0].payload.retracts");
    assert!(errors.0[0].message.contains("no event"));

    let e = statement("USA", "deficit");
    // Retracting an event recorded earlier in the same batch works.
    recorded(log, vec![e.clone(), sample::retraction(T, e.id)]).await;
    let err = refused(log, vec![sample::retraction(T, e.id)]).await;
    assert!(err.to_string().contains("already retracted"), "{err}");
    assert_eq!(head(log).await, 8);
}

/// The positions of the next `n` events `stream` yields; fails the test if it stalls for
/// [`PATIENCE`], ends or fails first.
pub async fn next_positions(stream: &mut crate::EventStream, n: usize) -> Vec<Position> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let item = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .expect("the subscription stalled");
        out.push(
            item.expect("the subscription ended")
                .expect("the subscription failed")
                .position(),
        );
    }
    out
}

pub async fn a_subscription_gives_history_then_live(ctx: Ctx) {
    let log = Arc::clone(&ctx.log);
    world(&*log).await;
    let mut sub = log.subscribe(0, EventFilter::all());
    assert_eq!(
        next_positions(&mut sub, 6).await,
        (1..=6).collect::<Vec<_>>()
    );
    recorded(
        &*log,
        vec![statement("USA", "deficit"), statement("CHN", "deficit")],
    )
    .await;
    assert_eq!(next_positions(&mut sub, 2).await, vec![7, 8]);
    recorded(&*log, vec![statement("EU", "deficit")]).await;
    assert_eq!(next_positions(&mut sub, 1).await, vec![9]);
}

pub async fn a_subscription_resumes_exactly_after_its_cursor(ctx: Ctx) {
    let log = Arc::clone(&ctx.log);
    world(&*log).await;
    let mut sub = log.subscribe(4, EventFilter::all());
    assert_eq!(next_positions(&mut sub, 2).await, vec![5, 6]);
    let mut at_head = log.subscribe(6, EventFilter::all());
    recorded(&*log, vec![statement("USA", "deficit")]).await;
    assert_eq!(next_positions(&mut at_head, 1).await, vec![7]);
    assert_eq!(next_positions(&mut sub, 1).await, vec![7]);
}

pub async fn a_subscription_filters_on_the_server(ctx: Ctx) {
    let log = Arc::clone(&ctx.log);
    world(&*log).await;
    let filter = EventFilter {
        parties: vec![party("CHN")],
        ..EventFilter::all()
    };
    let mut sub = log.subscribe(0, filter);
    let chn = statement("CHN", "deficit");
    recorded(
        &*log,
        vec![
            statement("USA", "deficit"),
            chn.clone(),
            statement("EU", "tariffs"),
        ],
    )
    .await;
    // A retraction passes party filters, so a filtered feed learns of it.
    recorded(
        &*log,
        vec![statement("USA", "tariffs"), sample::retraction(T, chn.id)],
    )
    .await;
    assert_eq!(next_positions(&mut sub, 2).await, vec![8, 11]);
}

pub async fn a_slow_subscriber_reads_from_storage_and_misses_nothing(ctx: Ctx) {
    let log = Arc::clone(&ctx.log);
    world(&*log).await;
    let mut sub = log.subscribe(0, EventFilter::all());
    assert_eq!(next_positions(&mut sub, 1).await, vec![1]);
    // The subscriber stops reading while far more events than the live buffer holds are appended.
    let total = 6 + LIVE_BUFFER * 5;
    while head(&*log).await < total as Position {
        let batch: Vec<_> = (0..LIVE_BUFFER / 2)
            .map(|_| statement("USA", "deficit"))
            .collect();
        recorded(&*log, batch).await;
    }
    let end = head(&*log).await;
    let got = next_positions(&mut sub, usize::try_from(end - 1).unwrap()).await;
    assert_eq!(got, (2..=end).collect::<Vec<_>>());
}

pub async fn concurrent_writers_on_one_timeline_get_one_winner_per_version(ctx: Ctx) {
    let log = Arc::clone(&ctx.log);
    world(&*log).await;
    const WRITERS: usize = 8;
    const WINS_EACH: usize = 10;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let log = Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            let mut wins = Vec::new();
            let mut conflicts = 0;
            while wins.len() < WINS_EACH {
                let version = log.timeline_version(timeline()).await.unwrap().unwrap();
                let e = statement(["USA", "CHN", "EU"][w % 3], "deficit");
                match append(&*log, ExpectedVersion::Exact(version), vec![e.clone()]).await {
                    Ok(out) => {
                        assert_eq!(out.last_version(), version + 1);
                        wins.push((e.id, out.events[0]));
                    }
                    Err(StoreError::WrongExpectedVersion {
                        actual: Some(actual),
                        ..
                    }) => {
                        assert!(actual > version, "a conflict reports a newer version");
                        conflicts += 1;
                    }
                    Err(other) => panic!("unexpected error: {other}"),
                }
            }
            (wins, conflicts)
        }));
    }
    let mut by_version = BTreeMap::new();
    for task in tasks {
        let (wins, _) = tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
        for (id, appended) in wins {
            assert!(
                by_version
                    .insert(appended.version, (id, appended.position))
                    .is_none(),
                "two winners for one version"
            );
        }
    }
    let expected_versions: Vec<u64> = (7..7 + (WRITERS * WINS_EACH) as u64).collect();
    assert_eq!(
        by_version.keys().copied().collect::<Vec<_>>(),
        expected_versions
    );
    let events = log.read_timeline(timeline(), 7, usize::MAX).await.unwrap();
    assert_eq!(
        events.len(),
        WRITERS * WINS_EACH,
        "no lost and no extra event"
    );
    for e in events {
        assert_eq!(by_version[&e.version()], (e.id(), e.position()));
    }
}

pub async fn a_subscriber_racing_live_appends_sees_every_position_once(ctx: Ctx) {
    let log = Arc::clone(&ctx.log);
    world(&*log).await;
    const WRITERS: usize = 4;
    const APPENDS_EACH: usize = 40;
    let total = 6 + (WRITERS * APPENDS_EACH) as Position;
    let reader = {
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            let mut sub = log.subscribe(0, EventFilter::all());
            let mut seen = Vec::new();
            while seen.last() != Some(&total) {
                let item = tokio::time::timeout(PATIENCE, sub.next())
                    .await
                    .expect("stalled")
                    .expect("ended")
                    .expect("failed");
                seen.push(item.position());
            }
            seen
        })
    };
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let log = Arc::clone(&log);
        writers.push(tokio::spawn(async move {
            for _ in 0..APPENDS_EACH {
                recorded(
                    &*log,
                    vec![statement(["USA", "CHN", "EU", "USA"][w], "tariffs")],
                )
                .await;
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let seen = tokio::time::timeout(PATIENCE, reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
}

pub async fn a_restore_reproduces_the_log_byte_for_byte(ctx: Ctx) {
    let log = &*ctx.log;
    world(log).await;
    let e = statement("USA", "deficit");
    recorded(log, vec![e.clone(), statement("CHN", "deficit")]).await;
    recorded(log, vec![sample::retraction(T, e.id)]).await;
    let raw = stored(log).await;
    let lines = export_lines(log).await;

    let copy = (ctx.fresh)().await;
    // In two parts, as an import in batches would: export lines, then stored records.
    copy.log.restore(lines[..4].to_vec()).await.unwrap();
    let out = copy.log.restore(raw[4..].to_vec()).await.unwrap();
    assert_eq!(out.restored, 5);
    assert_eq!(out.head, log.head().await.unwrap());
    assert_eq!(stored(&*copy.log).await, raw);
    assert_eq!(
        copy.log.registry().await.unwrap(),
        log.registry().await.unwrap()
    );
    assert_eq!(
        copy.log.timeline_version(timeline()).await.unwrap(),
        Some(9)
    );
    // The copy goes on where the original stopped.
    let next = append(
        &*copy.log,
        ExpectedVersion::Exact(9),
        vec![statement("EU", "deficit")],
    )
    .await
    .unwrap();
    assert_eq!(next.last_position(), 10);
    // A retraction restored is known: the event cannot be retracted twice.
    let err = refused(&*copy.log, vec![sample::retraction(T, e.id)]).await;
    assert!(err.to_string().contains("already retracted"), "{err}");
    drop(copy.guard);
}

pub async fn a_restore_with_a_broken_chain_writes_nothing(ctx: Ctx) {
    let log = &*ctx.log;
    world(log).await;
    let raw = stored(log).await;
    let lines = export_lines(log).await;
    let copy = (ctx.fresh)().await;

    // Skipping a record breaks positions and the chain.
    let gap = vec![raw[0].clone(), raw[2].clone()];
    let err = copy.log.restore(gap).await.unwrap_err();
    assert!(matches!(err, StoreError::Restore(_)), "{err}");
    // A changed byte breaks the hash, in an export line and in a stored record alike.
    let mut tampered = lines.clone();
    let text =
        String::from_utf8(tampered[1].clone())
            .unwrap()
            .replacen("Party USA", "Party USB", 1);
    tampered[1] = text.into_bytes();
    let err = copy.log.restore(tampered).await.unwrap_err();
    assert!(err.to_string().contains("hash"), "{err}");
    let mut tampered = raw.clone();
    let at = tampered[1]
        .windows(9)
        .position(|w| w == b"Party USA")
        .unwrap();
    tampered[1][at + 8] = b'B';
    let err = copy.log.restore(tampered).await.unwrap_err();
    assert!(err.to_string().contains("hash"), "{err}");
    // Records that do not continue this log's head are refused.
    copy.log.restore(raw[..2].to_vec()).await.unwrap();
    let err = copy.log.restore(raw[..2].to_vec()).await.unwrap_err();
    assert!(matches!(err, StoreError::Restore(_)), "{err}");
    assert_eq!(copy.log.head().await.unwrap().position, 2);
    let ids: HashSet<_> = all_events(&*copy.log)
        .await
        .iter()
        .map(|e| e.id())
        .collect();
    assert_eq!(ids.len(), 2);
    drop(copy.guard);
}
