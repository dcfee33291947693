//! Reads across many small segments: any range, forward or backward, gives each record of it
//! once and in order, the same record a read by id finds, whatever reads of other sizes came
//! before (a scan's buffer is reused by the next).

use chancery_domain::Position;
use chancery_store::{Direction, EventLog, ReadRequest};
use chancery_store_sled::SledLog;

use crate::support::{many_segments, runtime, small_segments};

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
