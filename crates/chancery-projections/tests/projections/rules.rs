//! Each rule of `chancery_projections::rules`, given events, when asked, then answered.

use chancery_domain::payload::*;
use chancery_domain::sample::{self, act, day, payloads};
use chancery_domain::{Modality, NewEvent, Participant, PartyCode, Payload};
use chancery_projections::{AsOf, Bucket, KnownAt, Stance, StandoffStatus};

use crate::support::*;

const T: &str = "t";

fn given() -> Vec<NewEvent> {
    sample::world(T, &["USA", "CHN", "EU"], &["x", "y"])
}

fn statement(actor: &str, date: &str) -> NewEvent {
    sample::statement(T, actor, &["x"], date)
}

fn offer(actor: &str, date: &str, conditions: Vec<String>) -> NewEvent {
    act(
        T,
        payloads::offer(conditions),
        actor,
        Some("USA"),
        &["x"],
        date,
    )
}

fn demand(actor: &str, date: &str) -> NewEvent {
    sample::demand(T, actor, "CHN", "x", date)
}

fn refusal(actor: &str, date: &str) -> NewEvent {
    sample::refusal(T, actor, "USA", "x", date, vec![])
}

fn measure(actor: &str, date: &str, action: MeasureAction, effective: Option<&str>) -> NewEvent {
    act(
        T,
        Payload::Measure(Measure {
            terms: "tariffs".into(),
            instrument: Instrument::Tariff,
            action,
            announced: day(date),
            effective: effective.map(day),
            rate_percent: Some(25.0),
        }),
        actor,
        Some("CHN"),
        &["x"],
        date,
    )
}

fn with_modality(mut e: NewEvent, modality: Modality) -> NewEvent {
    e.occurred.as_mut().unwrap().modality = modality;
    e
}

/// The timeline, parties and issues every test starts from, then `events`.
fn given_with(events: Vec<NewEvent>) -> Vec<NewEvent> {
    let mut all = given();
    all.extend(events);
    all
}

async fn run(events: Vec<NewEvent>) -> World {
    world(given_with(events)).await
}

#[test]
fn a_joint_agreement_sets_both_parties_and_agrees_the_issue() {
    let mut deal = act(
        T,
        payloads::agreement(AgreementForm::SignedDeal),
        "USA",
        None,
        &["x"],
        "2018-06-01",
    );
    deal.actors
        .push(Participant::party(PartyCode::new("CHN").unwrap()));
    let events = vec![
        demand("USA", "2018-05-01"),
        refusal("CHN", "2018-05-02"),
        deal,
    ];
    with_projections(given_with(events), async |p| {
        assert_stances(
            p,
            T,
            &[
                ("USA", "x", AsOf::NOW, Some(Stance::Agreed)),
                ("CHN", "x", AsOf::NOW, Some(Stance::Agreed)),
            ],
        )
        .await;
        assert_statuses(
            p,
            T,
            &[
                ("x", AsOf::NOW, Some(StandoffStatus::Agreed)),
                ("x", at("2018-05-31"), Some(StandoffStatus::Deadlocked)),
            ],
        );
    });
}

#[test]
fn an_offer_with_conditions_is_a_conditional_offer_and_two_offers_converge() {
    let events = vec![
        offer("CHN", "2018-05-01", vec!["if tariffs are lifted".into()]),
        offer("EU", "2018-05-02", vec![]),
    ];
    with_projections(given_with(events), async |p| {
        let chn = position(p, T, "CHN", "x", AsOf::NOW).await.unwrap();
        assert_eq!(chn.stance, Stance::ConditionalOffer);
        assert_eq!(chn.conditions, vec!["if tariffs are lifted".to_owned()]);
        assert_eq!(
            stance(p, T, "EU", "x", AsOf::NOW).await,
            Some(Stance::Offer)
        );
        assert_eq!(
            status(p, T, "x", AsOf::NOW),
            Some(StandoffStatus::Converging)
        );
    });
}

#[test]
fn a_measure_reads_as_a_threat_until_it_takes_effect() {
    let events = vec![
        demand("USA", "2018-05-01"),
        measure(
            "USA",
            "2018-06-15",
            MeasureAction::Impose,
            Some("2018-07-06"),
        ),
    ];
    with_projections(given_with(events), async |p| {
        assert_stances(
            p,
            T,
            &[
                ("USA", "x", at("2018-06-01"), Some(Stance::Demand)),
                ("USA", "x", at("2018-06-20"), Some(Stance::Threat)),
            ],
        )
        .await;
        assert_eq!(
            status(p, T, "x", at("2018-06-20")),
            Some(StandoffStatus::Escalating)
        );
        let now = position(p, T, "USA", "x", AsOf::NOW).await.unwrap();
        assert_eq!(now.stance, Stance::Measure);
        let changes: Vec<(Stance, String)> = now
            .history
            .iter()
            .map(|c| (c.stance, c.at.to_string()))
            .collect();
        assert_eq!(
            changes,
            vec![
                (Stance::Demand, "2018-05-01".into()),
                (Stance::Threat, "2018-06-15".into()),
                (Stance::Measure, "2018-07-06".into())
            ]
        );
    });
}

#[test]
fn easing_a_measure_withdraws_it_once_effective() {
    let events = vec![
        measure("USA", "2018-06-15", MeasureAction::Impose, None),
        measure("USA", "2019-01-10", MeasureAction::Ease, Some("2019-02-01")),
    ];
    with_projections(given_with(events), async |p| {
        assert_stances(
            p,
            T,
            &[
                ("USA", "x", at("2019-01-20"), Some(Stance::Measure)),
                ("USA", "x", AsOf::NOW, Some(Stance::Withdrawn)),
            ],
        )
        .await;
    });
}

#[test]
fn seminars_visits_talks_and_accusations_set_no_stance_but_count_in_relations() {
    let events = [
        (payloads::seminar("CHN"), "CHN", "USA", "2018-05-01"),
        (payloads::visit("USA", "CHN"), "USA", "CHN", "2018-05-03"),
        (
            payloads::talks(&["USA", "CHN"], TalksFormat::Negotiation),
            "USA",
            "CHN",
            "2018-05-04",
        ),
        (
            payloads::accusation(AccusationForm::Accuse),
            "CHN",
            "USA",
            "2018-05-05",
        ),
    ];
    let events = events
        .into_iter()
        .map(|(payload, actor, target, date)| act(T, payload, actor, Some(target), &["x"], date))
        .collect();
    with_projections(given_with(events), async |p| {
        assert_stances(
            p,
            T,
            &[("USA", "x", AsOf::NOW, None), ("CHN", "x", AsOf::NOW, None)],
        )
        .await;
        assert!(p.standoffs(None, &[], &AsOf::NOW).unwrap().is_empty());
        let q = relations_between("USA", "CHN", Bucket::Week, AsOf::NOW);
        let buckets = p.relations(&q).unwrap();
        let weeks: Vec<(String, u32)> = buckets
            .iter()
            .map(|b| (b.start.to_string(), b.totals.events))
            .collect();
        // 1 May 2018 was a Tuesday: its ISO week starts on Monday 30 April.
        assert_eq!(weeks, vec![("2018-04-30".into(), 4)]);
        assert!((buckets[0].totals.goldstein_sum - (0.0 + 1.9 + 7.0 - 2.0)).abs() < 1e-9);
    });
}

#[test]
fn planned_hypothetical_and_denied_events_set_no_stance() {
    let events = vec![
        statement("CHN", "2018-05-01"),
        with_modality(offer("CHN", "2018-05-02", vec![]), Modality::Planned),
        with_modality(offer("CHN", "2018-05-03", vec![]), Modality::Hypothetical),
        with_modality(offer("CHN", "2018-05-04", vec![]), Modality::Denied),
    ];
    in_world(given_with(events), async |w| {
        assert_eq!(
            stance(&w.projections, T, "CHN", "x", AsOf::NOW).await,
            Some(Stance::Statement)
        );
    });
}

#[test]
fn the_newer_event_by_valid_time_supersedes_whatever_the_recording_order() {
    // Recorded refusal first, then an older offer reported late: the refusal stays newer.
    let events = vec![
        refusal("CHN", "2018-05-10"),
        offer("CHN", "2018-05-01", vec![]),
    ];
    in_world(given_with(events), async |w| {
        assert_stances(
            &w.projections,
            T,
            &[
                ("CHN", "x", AsOf::NOW, Some(Stance::Refusal)),
                ("CHN", "x", at("2018-05-05"), Some(Stance::Offer)),
            ],
        )
        .await;
        // Same valid time: the later position wins. Same start, coarser span first: the day wins.
        let w = run(vec![
            offer("CHN", "2018-05-01", vec![]),
            refusal("CHN", "2018-05-01"),
            offer("EU", "2018-05-01", vec![]),
            refusal("EU", "2018-05"),
        ])
        .await;
        assert_stances(
            &w.projections,
            T,
            &[
                ("CHN", "x", AsOf::NOW, Some(Stance::Refusal)),
                ("EU", "x", AsOf::NOW, Some(Stance::Offer)),
            ],
        )
        .await;
    });
}

#[test]
fn a_restatement_reaffirms() {
    let events = vec![
        demand("USA", "2018-03"),
        statement("USA", "2018-04-01"),
        demand("USA", "2018-05-01"),
        demand("USA", "2018-05-20"),
    ];
    in_world(given_with(events), async |w| {
        let pos = held(&w.projections, T, "USA", "x").await;
        assert_eq!(pos.stance, Stance::Demand);
        assert_eq!(pos.reaffirmed, 1);
        assert_eq!(
            pos.first_stated.to_string(),
            "2018-05-01",
            "the statement broke the first run"
        );
        assert_eq!(pos.last_reaffirmed.to_string(), "2018-05-20");
        assert_eq!(pos.supporting.len(), 2);
        let stances: Vec<Stance> = pos.history.iter().map(|c| c.stance).collect();
        assert_eq!(
            stances,
            vec![Stance::Demand, Stance::Statement, Stance::Demand]
        );
    });
}

#[test]
fn a_retraction_acts_as_if_the_event_had_never_been_recorded() {
    runtime().block_on(async {
        let wrong = refusal("CHN", "2018-05-10");
        let base = vec![
            demand("USA", "2018-05-01"),
            offer("CHN", "2018-05-02", vec![]),
        ];
        let mut with = base.clone();
        with.push(wrong.clone());
        with.push(sample::retraction(T, wrong.id));
        let retracted = run(with).await;
        let never = run(base).await;
        for (party, date) in [("CHN", None), ("USA", None), ("CHN", Some("2018-05-15"))] {
            let as_of = date.map_or(AsOf::NOW, at);
            let a = position(&retracted.projections, T, party, "x", as_of)
                .await
                .map(|p| (p.stance, p.event.id, p.history.len()));
            let b = position(&never.projections, T, party, "x", as_of)
                .await
                .map(|p| (p.stance, p.event.id, p.history.len()));
            assert_eq!(a, b, "{party} {date:?}");
        }
        assert_eq!(
            status(&retracted.projections, T, "x", AsOf::NOW),
            status(&never.projections, T, "x", AsOf::NOW)
        );
    });
}

#[test]
fn a_correction_applies_from_its_position_on() {
    let misfiled = refusal("CHN", "2018-05-10");
    let events = vec![demand("USA", "2018-05-01"), misfiled.clone()];
    in_world(given_with(events), async |w| {
        let before = w.log.head().await.unwrap().position;
        // The refusal was about issue y, and on 2018-04-10.
        let changes = CorrectionChanges {
            issues: Some(vec!["y".parse().unwrap()]),
            occurred: Some(chancery_domain::Occurred {
                start: day("2018-04-10"),
                end: None,
                modality: Modality::Occurred,
            }),
            ..Default::default()
        };
        let correction = sample::correction(T, misfiled.id, changes);
        append_all(&*w.log, vec![correction]).await;
        w.projections.catch_up(&|_, _| {}).await.unwrap();
        let p = &*w.projections;
        assert_eq!(stance(p, T, "CHN", "x", AsOf::NOW).await, None);
        let y = position(p, T, "CHN", "y", AsOf::NOW).await.unwrap();
        assert_eq!(y.stance, Stance::Refusal);
        assert_eq!(y.first_stated.to_string(), "2018-04-10");
        assert_eq!(
            y.event.issues,
            vec!["y".parse().unwrap()],
            "the event reads as corrected"
        );
        let then = known_at(before);
        assert_eq!(stance(p, T, "CHN", "x", then).await, Some(Stance::Refusal));
        assert_eq!(stance(p, T, "CHN", "y", then).await, None);
        assert_eq!(status(p, T, "x", then), Some(StandoffStatus::Deadlocked));
        assert_eq!(status(p, T, "x", AsOf::NOW), Some(StandoffStatus::Open));
    });
}

#[test]
fn a_late_report_changes_the_past_only_for_later_knowledge() {
    let events = vec![
        demand("USA", "2018-05-01"),
        offer("CHN", "2018-05-10", vec![]),
    ];
    in_world(given_with(events), async |w| {
        let known_before = w.log.head().await.unwrap().position;
        // Reported late: CHN refused on 2018-05-05.
        append_all(&*w.log, vec![refusal("CHN", "2018-05-05")]).await;
        w.projections.catch_up(&|_, _| {}).await.unwrap();
        let p = &*w.projections;
        let may7_now = at("2018-05-07");
        let may7_then = AsOf {
            known_at: Some(KnownAt::Position(known_before)),
            ..may7_now
        };
        assert_eq!(
            status(p, T, "x", may7_now),
            Some(StandoffStatus::Deadlocked)
        );
        assert_eq!(status(p, T, "x", may7_then), Some(StandoffStatus::Open));
        // The present is unchanged: the offer of 2018-05-10 is still China's newest word.
        assert_eq!(
            stance(p, T, "CHN", "x", AsOf::NOW).await,
            Some(Stance::Offer)
        );
    });
}

#[test]
fn threats_outrank_a_deadlock() {
    let threat = act(
        T,
        payloads::threat(Instrument::Tariff),
        "EU",
        Some("CHN"),
        &["x"],
        "2018-05-03",
    );
    let events = vec![
        demand("USA", "2018-05-01"),
        refusal("CHN", "2018-05-02"),
        threat,
    ];
    in_world(given_with(events), async |w| {
        assert_statuses(
            &w.projections,
            T,
            &[
                ("x", AsOf::NOW, Some(StandoffStatus::Escalating)),
                ("x", at("2018-05-02"), Some(StandoffStatus::Deadlocked)),
            ],
        );
    });
}
