//! Reads across many small segments: any range, forward or backward, gives each record of it
//! once and in order, the same record a read by id finds, whatever reads of other sizes came
//! before (a scan's buffer is reused by the next); any page of a filtered read (records read
//! together from the positions an index gives) is the same page of the filtered log.

use chancery_domain::{Kind, Position, sample};
use chancery_store::{Direction, EventFilter, EventLog, ReadRequest};
use chancery_store_sled::SledLog;

use crate::support::{T, append, many_segments, runtime, small_segments, t};

/// The positions, hashes and ids `log` answers for `request`.
async fn read(log: &SledLog, request: ReadRequest) -> Vec<(Position, String, String)> {
    log.read(request)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.position(), r.hash().to_string(), r.id().to_string()))
        .collect()
}

#[test]
fn every_range_reads_each_record_once_in_order_whatever_was_read_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let recorded = many_segments(&path, 240);
    let log = small_segments(&path);
    runtime().block_on(async {
        let head = log.head().await.unwrap().position;
        // What each position holds, read one record at a time; the statements' records are
        // checked against a read by id, which finds a record without scanning.
        let mut expected = Vec::new();
        for p in 1..=head {
            let one = read(&log, ReadRequest::forward(p, 1)).await;
            assert_eq!(one.len(), 1, "position {p}");
            expected.push(one[0].clone());
        }
        for (event, position) in &recorded {
            let by_id = log.event(event.id).await.unwrap().unwrap();
            let at = usize::try_from(*position - 1).unwrap();
            assert_eq!(
                expected[at].1,
                by_id.hash().to_string(),
                "position {position}"
            );
        }
        // Whole reads and small ones alternate, so a small read follows a large buffer.
        let ranges: [(Position, usize); 9] = [
            (1, usize::MAX),
            (7, 3),
            (1, 1),
            (20, 150),
            (head, 10),
            (2, usize::MAX),
            (head - 40, 41),
            (33, 1),
            (1, 500),
        ];
        for (from, limit) in ranges {
            let got = read(&log, ReadRequest::forward(from, limit)).await;
            let start = usize::try_from(from - 1).unwrap();
            let end = start.saturating_add(limit).min(expected.len());
            assert_eq!(got, expected[start..end], "forward from {from}, {limit}");
            let mut back = ReadRequest::forward(from, limit);
            back.direction = Direction::Backward;
            let got = read(&log, back).await;
            let first = usize::try_from(from).unwrap().saturating_sub(limit);
            let want: Vec<_> = expected[first..usize::try_from(from).unwrap()]
                .iter()
                .rev()
                .cloned()
                .collect();
            assert_eq!(got, want, "backward from {from}, {limit}");
        }
    });
}

#[test]
fn every_page_of_a_filtered_read_is_the_same_page_of_the_filtered_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    many_segments(&path, 240);
    let log = small_segments(&path);
    runtime().block_on(async {
        // Records longer than a single read's first guess (2 KiB), between ordinary ones.
        for day in ["2019-01-01", "2019-01-02", "2019-01-03"] {
            let mut long = sample::statement(T, "USA", &["deficit"], day);
            long.summary = "関税".repeat(900);
            let short = sample::statement(T, "USA", &["deficit"], day);
            append(&log, vec![long, short]).await;
        }
        let head = log.head().await.unwrap().position;
        let all = log.read(ReadRequest::forward(1, usize::MAX)).await.unwrap();
        assert_eq!(all.len() as u64, head);
        let filters = [
            EventFilter::timeline(t()),
            EventFilter {
                kinds: vec![Kind::Statement],
                ..EventFilter::default()
            },
            EventFilter {
                kinds: vec![Kind::PartyRegistered, Kind::IssueRegistered],
                ..EventFilter::default()
            },
        ];
        for filter in filters {
            let matching: Vec<_> = all
                .iter()
                .filter(|r| filter.matches_record(r))
                .map(|r| (r.position(), r.hash().to_string(), r.id().to_string()))
                .collect();
            assert!(!matching.is_empty(), "{filter:?}");
            let pages: [(Position, usize); 6] = [
                (1, 50),
                (1, usize::MAX),
                (37, 13),
                (head / 2, 500),
                (head - 4, 3),
                (head, 25),
            ];
            for (from, limit) in pages {
                let mut request = ReadRequest::forward(from, limit);
                request.filter = filter.clone();
                let want: Vec<_> = matching
                    .iter()
                    .filter(|(p, _, _)| *p >= from)
                    .take(limit)
                    .cloned()
                    .collect();
                assert_eq!(
                    read(&log, request.clone()).await,
                    want,
                    "{filter:?} forward from {from}, {limit}"
                );
                request.direction = Direction::Backward;
                let want: Vec<_> = matching
                    .iter()
                    .rev()
                    .filter(|(p, _, _)| *p <= from)
                    .take(limit)
                    .cloned()
                    .collect();
                assert_eq!(
                    read(&log, request).await,
                    want,
                    "{filter:?} backward from {from}, {limit}"
                );
            }
        }
    });
}
