//! The demo scenario: where each side stands before the May 2018 talks.

use chancery_domain::payload::Payload;
use chancery_domain::{Attribution, Kind, sample};
use chancery_projections::StandoffStatus::{Deadlocked, Escalating, Open};
use chancery_projections::{AsOf, Bucket, Stance};

use crate::support::*;

const T: &str = "us-china-trade";

#[test]
fn the_demo_positions_are_as_the_story_tells() {
    with_projections(demo_events(), async |p| {
        let usa_deficit = held(p, T, "USA", "trade-deficit").await;
        assert_eq!(usa_deficit.stance, Stance::Demand);
        assert!(
            usa_deficit
                .amounts
                .iter()
                .any(|a| a.value == 100e9 && a.unit == "USD"),
            "{:?}",
            usa_deficit.amounts
        );

        assert_eq!(
            stance(p, T, "CHN", "trade-deficit", AsOf::NOW).await,
            Some(Stance::Refusal)
        );
        let chn_mic = held(p, T, "CHN", "made-in-china-2025").await;
        assert_eq!(chn_mic.stance, Stance::Refusal);
        assert_eq!(
            chn_mic.reaffirmed, 1,
            "the senior official restates the refusal"
        );
        assert_eq!(chn_mic.attribution, vec![Attribution::Anonymous]);

        let usa_tariffs = position(p, T, "USA", "tariffs", AsOf::NOW).await.unwrap();
        assert_eq!(usa_tariffs.stance, Stance::Threat);
        assert!(
            usa_tariffs.amounts.iter().any(|a| a.value == 150e9),
            "{:?}",
            usa_tariffs.amounts
        );

        for issue in ["financial-sector-access", "auto-sector-access"] {
            let offer = position(p, T, "CHN", issue, AsOf::NOW).await.unwrap();
            assert_eq!(offer.stance, Stance::Offer, "{issue}");
            assert_eq!(
                offer.reaffirmed, 1,
                "{issue}: the seminar reaffirms the earlier offer"
            );
            assert_eq!(offer.first_stated.to_string(), "2018-04");
            assert_eq!(offer.last_reaffirmed.to_string(), "2018-04-28");
            assert_eq!(offer.supporting.len(), 2);
        }

        assert_statuses(
            p,
            T,
            &[
                ("trade-deficit", AsOf::NOW, Some(Deadlocked)),
                ("made-in-china-2025", AsOf::NOW, Some(Deadlocked)),
                ("tariffs", AsOf::NOW, Some(Escalating)),
                ("financial-sector-access", AsOf::NOW, Some(Open)),
            ],
        );
        let deficit = p
            .standoffs(
                Some(&timeline(T)),
                &["trade-deficit".parse().unwrap()],
                &AsOf::NOW,
            )
            .unwrap();
        let sides: Vec<(String, Stance)> = deficit[0]
            .sides
            .iter()
            .map(|s| (s.party.to_string(), s.stance))
            .collect();
        assert_eq!(
            sides,
            vec![
                ("CHN".into(), Stance::Refusal),
                ("USA".into(), Stance::Demand)
            ]
        );
    });
}

#[test]
fn the_hypothetical_return_visit_sets_no_stance() {
    with_projections(demo_events(), async |p| {
        // CHN's newest event on the deficit is the hypothetical June visit; the refusal still holds.
        let chn = held(p, T, "CHN", "trade-deficit").await;
        assert_eq!(chn.stance, Stance::Refusal);
        assert_eq!(chn.event.kind(), Kind::Refusal);
        // Nor does the planned US visit: the US position on tariffs stays the threat.
        assert_eq!(
            stance(p, T, "USA", "tariffs", AsOf::NOW).await,
            Some(Stance::Threat)
        );
        // As of the hypothetical visit's month, nothing changes either.
        assert_eq!(
            stance(p, T, "CHN", "trade-deficit", at("2018-06-30")).await,
            Some(Stance::Refusal)
        );
    });
}

#[test]
fn before_the_seminar_china_held_no_refusal() {
    with_projections(demo_events(), async |p| {
        let before = at("2018-04-27");
        assert_stances(
            p,
            T,
            &[
                ("CHN", "trade-deficit", before, None),
                ("USA", "trade-deficit", before, Some(Stance::Demand)),
                // The threat came in April.
                ("USA", "tariffs", at("2018-03-31"), None),
            ],
        )
        .await;
        assert_eq!(status(p, T, "trade-deficit", before), Some(Open));
    });
}

#[test]
fn retracting_the_refusal_reopens_the_deficit_standoff_but_not_in_the_past() {
    in_world(demo_events(), async |w| {
        let p = &w.projections;
        let before_retraction = w.log.head().await.unwrap().position;
        let refusal = demo_events()
            .into_iter()
            .find(|e| matches!(&e.payload, Payload::Refusal(r) if r.refuses.len() == 2))
            .unwrap();
        append_all(&*w.log, vec![sample::retraction(T, refusal.id)]).await;
        p.catch_up(&|_, _| {}).await.unwrap();

        assert_statuses(
            p,
            T,
            &[
                ("trade-deficit", AsOf::NOW, Some(Open)),
                (
                    "trade-deficit",
                    known_at(before_retraction),
                    Some(Deadlocked),
                ),
                // Made in China 2025 keeps the official's own refusal.
                ("made-in-china-2025", AsOf::NOW, Some(Deadlocked)),
            ],
        );
        // China's latest word on the deficit is then its savings-rate statement.
        assert_eq!(
            stance(p, T, "CHN", "trade-deficit", AsOf::NOW).await,
            Some(Stance::Statement)
        );
    });
}

#[test]
fn relations_between_the_two_sides_cool_by_month() {
    in_world(demo_events(), async |w| {
        let q = relations_between("USA", "CHN", Bucket::Month, AsOf::NOW);
        let buckets = w.projections.relations(&q).unwrap();
        let months: Vec<String> = buckets.iter().map(|b| b.start.to_string()).collect();
        assert_eq!(
            months,
            vec!["2018-03-01", "2018-04-01"],
            "planned and hypothetical visits do not count"
        );
        let march = &buckets[0].totals;
        assert_eq!(
            (march.events, march.goldstein_sum),
            (2, -10.0),
            "two demands (1042, -5.0 each)"
        );
        assert_eq!(march.by_quad_class, [0, 0, 2, 0]);
        // April: the threat (-5.8), the earlier and reaffirmed offers and the IP offer (+5.2 each),
        // the contact with Mnuchin (+1.0), his and China's optimistic remarks (+0.4 each), two
        // neutral statements (0), the two refusals (-5.0, -4.0). The seminar has no target.
        let april = &buckets[1].totals;
        assert_eq!(april.events, 11);
        assert!((april.goldstein_sum - 2.6).abs() < 1e-9, "{april:?}");
        assert_eq!(april.by_quad_class, [8, 0, 3, 0]);
    });
}
