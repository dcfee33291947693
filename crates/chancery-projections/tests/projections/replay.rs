//! Property tests over random logs with late reports, planned events, retractions and
//! corrections: incremental state equals a rebuild from scratch, and every as-of answer for a
//! past `knownAt` equals the present answer of the log truncated there.

use std::sync::Arc;
use std::time::Duration;

use chancery_domain::payload::*;
use chancery_domain::sample::{self, act, payloads};
use chancery_domain::{
    EventId, Modality, NewEvent, Occurred, Participant, PartyCode, TimelineSlug, ValidTime,
};
use chancery_projections::{
    AsOf, Bucket, ChronologyRequest, PositionLists, PositionQuery, PositionView,
};
use chancery_store::ReadRequest;
use chancery_testkit::fuzz;
use proptest::prelude::*;

use crate::support::*;

const PARTIES: [&str; 3] = ["USA", "CHN", "EU"];
const ISSUES: [&str; 3] = ["x", "y", "z"];
const TIMELINES: [&str; 2] = ["a", "b"];

#[derive(Debug, Clone)]
enum Op {
    Act {
        timeline: usize,
        kind: u8,
        actor: usize,
        target: usize,
        issues: u8,
        day: u16,
        modality: u8,
        delay: u8,
    },
    Retract {
        pick: usize,
    },
    Correct {
        pick: usize,
        day: Option<u16>,
        issues: Option<u8>,
        modality: Option<u8>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..2usize, 0..10u8, 0..3usize, 0..3usize, 1..8u8, 0..150u16, 0..8u8, 0..40u8)
            .prop_map(|(timeline, kind, actor, target, issues, day, modality, delay)| Op::Act { timeline, kind, actor, target, issues, day, modality, delay }),
        1 => any::<usize>().prop_map(|pick| Op::Retract { pick }),
        1 => (any::<usize>(), prop::option::of(0..150u16), prop::option::of(1..8u8), prop::option::of(0..8u8))
            .prop_map(|(pick, day, issues, modality)| Op::Correct { pick, day, issues, modality }),
    ]
}

fn date(day: u16) -> ValidTime {
    let d = time::Date::from_ordinal_date(2018, 1).unwrap() + time::Duration::days(i64::from(day));
    if day % 7 == 0 {
        ValidTime::Month(d.year(), d.month())
    } else {
        ValidTime::Day(d)
    }
}

fn modality(m: u8) -> Modality {
    match m {
        5 => Modality::Planned,
        6 => Modality::Hypothetical,
        7 => Modality::Denied,
        _ => Modality::Occurred,
    }
}

fn issues(mask: u8) -> Vec<&'static str> {
    (0..3)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| ISSUES[i])
        .collect()
}

fn party(i: usize) -> PartyCode {
    PartyCode::new(PARTIES[i]).unwrap()
}

/// Turns operations into a valid log: registrations first, then acts, retractions and corrections
/// of acts that are still live.
fn events(ops: &[Op]) -> Vec<NewEvent> {
    let mut out = Vec::new();
    for t in TIMELINES {
        out.extend(sample::world(t, &[], &[]));
    }
    out.extend(PARTIES.iter().map(|p| sample::register_party("a", p)));
    out.extend(ISSUES.iter().map(|i| sample::register_issue("a", i)));
    let mut live: Vec<(EventId, TimelineSlug, Kind)> = Vec::new();
    for op in ops {
        match *op {
            Op::Act {
                timeline,
                kind,
                actor,
                target,
                issues: mask,
                day,
                modality: m,
                delay,
            } => {
                let tl = TIMELINES[timeline];
                let start = date(day);
                let payload = match kind {
                    0 => payloads::offer(if delay % 2 == 0 {
                        vec![]
                    } else {
                        vec!["c".into()]
                    }),
                    1 => payloads::demand(DemandType::PolicyChange),
                    2 => payloads::refusal(RefusalOf::ToDiscuss, vec![]),
                    3 => payloads::concession(ConcessionType::AccedeToDemand),
                    4 => payloads::threat(Instrument::Tariff),
                    5 => payloads::statement(Tone::Neutral),
                    6 | 7 => payloads::measure(
                        if kind == 6 {
                            MeasureAction::Impose
                        } else {
                            MeasureAction::Ease
                        },
                        Instrument::Tariff,
                        start,
                        (delay > 0).then(|| date(day + u16::from(delay))),
                    ),
                    8 => payloads::agreement(AgreementForm::JointStatement),
                    _ => payloads::talks(
                        &[PARTIES[actor], PARTIES[(actor + 1) % 3]],
                        TalksFormat::Consultation,
                    ),
                };
                let target = if target == actor {
                    (target + 1) % 3
                } else {
                    target
                };
                let mut e = act(
                    tl,
                    payload,
                    PARTIES[actor],
                    Some(PARTIES[target]),
                    &issues(mask),
                    "2018-01-01",
                );
                e.occurred = Some(Occurred {
                    start,
                    end: None,
                    modality: modality(m),
                });
                if kind == 8 {
                    e.actors.push(Participant::party(party(target)));
                    e.targets.clear();
                }
                live.push((e.id, e.timeline.clone(), e.kind()));
                out.push(e);
            }
            Op::Retract { pick } => {
                if live.is_empty() {
                    continue;
                }
                let (id, tl, _) = live.remove(pick % live.len());
                out.push(sample::retraction(tl.as_str(), id));
            }
            Op::Correct {
                pick,
                day,
                issues: mask,
                modality: m,
            } => {
                if live.is_empty() {
                    continue;
                }
                let (id, tl, _) = live[pick % live.len()].clone();
                let changes = CorrectionChanges {
                    occurred: day.map(|d| Occurred {
                        start: date(d),
                        end: None,
                        modality: modality(m.unwrap_or(0)),
                    }),
                    issues: mask
                        .map(|m| issues(m).into_iter().map(|i| i.parse().unwrap()).collect()),
                    summary: Some("corrected".into()),
                    ..Default::default()
                };
                out.push(sample::correction(tl.as_str(), id, changes));
            }
        }
    }
    out
}

use chancery_domain::Kind;

/// The position of party 0 on the issue `x` in the timeline `a`, as of `as_of`, with `lists`.
fn party_on_x(as_of: AsOf, lists: PositionLists) -> PositionQuery {
    PositionQuery {
        timeline: Some("a".parse().unwrap()),
        parties: vec![party(0)],
        issues: vec!["x".parse().unwrap()],
        as_of,
        lists,
    }
}

/// Two answers say the same of each position: its stance, its event, when it was first stated
/// and last reaffirmed, and how often.
fn same_positions(a: &[PositionView], b: &[PositionView]) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(b) {
        prop_assert_eq!(
            (
                a.stance,
                a.event_position,
                a.first_stated,
                a.last_reaffirmed,
                a.reaffirmed
            ),
            (
                b.stance,
                b.event_position,
                b.first_stated,
                b.last_reaffirmed,
                b.reaffirmed
            )
        );
    }
    Ok(())
}

/// `PROPTEST_CASES` cases (256 unless it says otherwise).
fn config() -> ProptestConfig {
    fuzz::config("PROPTEST_CASES", 256, 200)
}

proptest! {
    #![proptest_config(config())]

    /// Projections kept up incrementally, live and across a checkpoint save and reload, equal
    /// projections rebuilt from position 1.
    #[test]
    fn incremental_state_equals_a_rebuild(ops in prop::collection::vec(op(), 0..40), cut in 0.0f64..1.0) {
        runtime().block_on(async {
            let all = events(&ops);
            let (log, dir) = log_holding(vec![]).await;
            let checkpoints = dir.path().join("projections");
            let split = ((all.len() as f64) * cut) as usize;
            let (first, second) = all.split_at(split);

            let live = open_projections(&log, Some(&checkpoints)).await;
            let follower = Arc::clone(&live);
            let task = tokio::spawn(async move { follower.follow().await });
            append_all(&*log, first.to_vec()).await;
            let head = log.head().await.unwrap().position;
            live.wait_for(head, Duration::from_secs(60)).await.unwrap();
            task.abort();
            let _ = task.await;
            live.close().unwrap();
            drop(live);

            let resumed = open_projections(&log, Some(&checkpoints)).await;
            prop_assert_eq!(resumed.applied(), head);
            append_all(&*log, second.to_vec()).await;
            resumed.catch_up(&|_, _| {}).await.unwrap();

            prop_assert!(resumed.same_state_as(&*rebuilt(&log).await));
            Ok(())
        })?;
    }

    /// Asking the full log "as known at position K" answers as the log cut at K answers now.
    #[test]
    fn as_of_answers_equal_a_rebuild_of_the_truncated_log(ops in prop::collection::vec(op(), 1..40), k in 0.0f64..1.0, days in prop::collection::vec(prop::option::of(0..160u16), 1..4)) {
        runtime().block_on(async {
            let (log, _dir) = log_holding(events(&ops)).await;
            let full = rebuilt(&log).await;

            let head = log.head().await.unwrap().position;
            let known = ((head as f64) * k).ceil().max(1.0) as u64;
            let raw: Vec<Vec<u8>> = log.read(ReadRequest::forward(1, usize::try_from(known).unwrap())).await.unwrap().into_iter().map(|r| r.stored().to_vec()).collect();
            let (cut_log, _cut_dir) = log_holding(vec![]).await;
            cut_log.restore(raw).await.unwrap();
            let cut = rebuilt(&cut_log).await;

            for day in days {
                let valid_at = day.map(date);
                let past = AsOf { valid_at, ..known_at(known) };
                let present = AsOf { valid_at, known_at: None };
                let q = |as_of| PositionQuery { as_of, ..PositionQuery::default() };
                prop_assert_eq!(full.positions(&q(past)).await.unwrap(), cut.positions(&q(present)).await.unwrap());
                prop_assert_eq!(full.standoffs(None, &[], &past).unwrap(), cut.standoffs(None, &[], &present).unwrap());
                for (a, b) in [("USA", "CHN"), ("USA", "EU"), ("CHN", "EU")] {
                    let r = |as_of| relations_between(a, b, Bucket::Month, as_of);
                    prop_assert_eq!(full.relations(&r(past)).unwrap(), cut.relations(&r(present)).unwrap());
                }
                let c = |as_of| ChronologyRequest { as_of, limit: 1000, include_retracted: true, ..ChronologyRequest::default() };
                let full_page = full.chronology(&c(past)).await.unwrap();
                let cut_page = cut.chronology(&c(present)).await.unwrap();
                prop_assert_eq!(full_page, cut_page);
            }
            Ok(())
        })?;
    }
}

/// Acts of one party on one issue, many more than a block holds, with late reports, retractions
/// and corrections among them.
fn one_key_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..9u8, 0..150u16, 0..6u8, 0..40u8)
            .prop_map(|(kind, day, modality, delay)| Op::Act { timeline: 0, kind, actor: 0, target: 1, issues: 1, day, modality, delay }),
        1 => any::<usize>().prop_map(|pick| Op::Retract { pick }),
        1 => (any::<usize>(), prop::option::of(0..150u16))
            .prop_map(|(pick, day)| Op::Correct { pick, day, issues: None, modality: None }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..config() })]

    /// A position as known now, read from the block that holds its valid time and the sweep state
    /// kept at the block's start, equals the same position swept from the first slot: over lists
    /// long enough to split into blocks, built across a checkpoint, with slots inserted and ended
    /// behind the last block.
    #[test]
    fn a_position_read_from_its_block_equals_one_swept_from_the_start(
        ops in prop::collection::vec(one_key_op(), 250..500),
        cut in 0.0f64..1.0,
        days in prop::collection::vec(0..200u16, 1..6),
    ) {
        runtime().block_on(async {
            let all = events(&ops);
            let split = ((all.len() as f64) * cut) as usize;
            let (first, second) = all.split_at(split);
            let (log, dir) = log_holding(first.to_vec()).await;
            let checkpoints = dir.path().join("projections");
            let projections = open_projections(&log, Some(&checkpoints)).await;
            projections.catch_up(&|_, _| {}).await.unwrap();
            projections.close().unwrap();
            drop(projections);
            append_all(&*log, second.to_vec()).await;
            let projections = open_projections(&log, Some(&checkpoints)).await;
            projections.catch_up(&|_, _| {}).await.unwrap();

            for day in days {
                let as_of = AsOf { valid_at: Some(date(day)), known_at: None };
                let query = |lists| party_on_x(as_of, lists);
                let swept = projections.positions(&query(PositionLists { supporting: true, history: true })).await.unwrap();
                let read = projections.positions(&query(PositionLists { supporting: false, history: false })).await.unwrap();
                same_positions(&swept, &read)?;
            }
            Ok::<(), TestCaseError>(())
        })?;
    }

    /// Lists read between appends (so that their block directories are in memory) while they
    /// grow and split keep every block in view: the live state equals the state reopened from
    /// its checkpoint (directories read from sled afresh) and a rebuild. A position asked past
    /// every slot between appends, read from the fold its last block keeps, equals the same
    /// position swept from the first slot: the fold made before an append is not used after it.
    #[test]
    fn lists_read_while_they_split_keep_every_block(
        ops in prop::collection::vec(one_key_op(), 250..500),
        chunk in 5..60usize,
    ) {
        runtime().block_on(async {
            let all = events(&ops);
            let (log, dir) = log_holding(vec![]).await;
            let checkpoints = dir.path().join("projections");
            let live = open_projections(&log, Some(&checkpoints)).await;
            let query = party_on_x(
                AsOf { valid_at: Some(date(75)), known_at: None },
                PositionLists { supporting: true, history: true },
            );
            let past_every_slot = AsOf { valid_at: Some(date(199)), known_at: None };
            for part in all.chunks(chunk) {
                append_all(&*log, part.to_vec()).await;
                live.catch_up(&|_, _| {}).await.unwrap();
                live.positions(&query).await.unwrap();
                let folded = live.positions(&party_on_x(past_every_slot, PositionLists { supporting: false, history: false })).await.unwrap();
                let swept = live.positions(&party_on_x(past_every_slot, PositionLists { supporting: true, history: true })).await.unwrap();
                same_positions(&swept, &folded)?;
            }
            let answer = live.positions(&query).await.unwrap();
            let rebuilt = rebuilt(&log).await;
            prop_assert!(live.same_state_as(&rebuilt));
            live.close().unwrap();
            drop(live);
            let reopened = open_projections(&log, Some(&checkpoints)).await;
            prop_assert!(reopened.same_state_as(&rebuilt));
            let again = rebuilt.positions(&query).await.unwrap();
            same_positions(&answer, &again)?;
            Ok(())
        })?;
    }
}
