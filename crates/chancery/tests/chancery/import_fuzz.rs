//! Bounded fuzzing of `chancery import`'s event files (`exchange::import`): arbitrary bytes, and
//! lines of the demo scenario damaged byte by byte or field by field (a value replaced by any
//! JSON, a field dropped, an unknown one added, often under a fresh id so that the line is new).
//! Whatever the file, the import never panics; it either accepts the file, and then every line
//! reads back from the log as written, or refuses it with a line error and writes nothing.
//! Cases: `CHANCERY_FUZZ_CASES` (default 5,000, about 10 s in a debug build).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use chancery::exchange::{self, ExchangeError, Source};
use chancery_domain::NewEvent;
use chancery_store::EventLog;
use chancery_store_sled::{SledConfig, SledLog};
use chancery_testkit::SharedFixture;
use chancery_testkit::fuzz::{self, Damage, JsonChange, change_json, damage, json_change, uuid_v7};
use proptest::prelude::*;
use serde_json::Value;

const DEMO: &str = include_str!("../../demo/us-china-trade-2018.ndjson");

/// Who the fuzzed imports record their events by.
const OPERATOR: &str = "fuzz";

/// One log for every case, holding the demo scenario, so that mutated lines meet its registry and
/// events. A case that is accepted adds to it, which later cases then meet as well.
fn fixture() -> &'static SharedFixture<SledLog> {
    static FIXTURE: OnceLock<SharedFixture<SledLog>> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        SharedFixture::new(|runtime, dir| {
            // Durability is not under test here; skipping fdatasync keeps the cases fast.
            let log = SledLog::open(dir.join("log"), SledConfig::unsynced()).unwrap();
            runtime
                .block_on(exchange::import(
                    &log,
                    &Source::Text(DEMO),
                    OPERATOR,
                    &|_| {},
                ))
                .unwrap();
            log
        })
    })
}

fn demo_lines() -> Vec<&'static str> {
    DEMO.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// Any JSON value, weighted towards what the event format meets: strings (empty, long, codes,
/// dates, UUIDs), numbers at and past the limits, and small arrays and objects.
fn json_value() -> impl Strategy<Value = Value> + Clone {
    fuzz::json_value(vec![
        fuzz::number(&[1e16, 1e17, -0.0, 10_000.5, f64::MAX]),
        "[A-Z]{1,5}|[a-z-]{1,12}|[0-9]{4}(-[0-9]{2}){0,2}"
            .prop_map(Value::from)
            .boxed(),
        Just(Value::from("x".repeat(5_000))).boxed(),
    ])
}

/// One line of a generated event file.
#[derive(Debug, Clone)]
enum Line {
    Bytes(Vec<u8>),
    /// A demo line damaged byte by byte.
    Damaged {
        line: prop::sample::Index,
        damages: Vec<Damage>,
    },
    /// A demo line with fields changed, under a fresh id or its own.
    Mutated {
        line: prop::sample::Index,
        changes: Vec<(prop::sample::Index, JsonChange)>,
        fresh_id: Option<(u64, u64)>,
    },
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Line::Bytes),
        2 => (any::<prop::sample::Index>(), prop::collection::vec(damage(), 1..4))
            .prop_map(|(line, damages)| Line::Damaged { line, damages }),
        6 => (
            any::<prop::sample::Index>(),
            prop::collection::vec((any::<prop::sample::Index>(), json_change(json_value())), 1..3),
            prop::option::weighted(0.8, (any::<u64>(), any::<u64>())),
        )
            .prop_map(|(line, changes, fresh_id)| Line::Mutated { line, changes, fresh_id }),
    ]
}

fn render(line: &Line) -> Vec<u8> {
    let demo = demo_lines();
    match line {
        Line::Bytes(bytes) => bytes.clone(),
        Line::Damaged { line, damages } => {
            let mut bytes = demo[line.index(demo.len())].as_bytes().to_vec();
            for damage in damages {
                damage.apply(&mut bytes);
            }
            bytes
        }
        Line::Mutated {
            line,
            changes,
            fresh_id,
        } => {
            let mut value: Value = serde_json::from_str(demo[line.index(demo.len())]).unwrap();
            if let Some((high, low)) = fresh_id {
                value["id"] = Value::from(uuid_v7(*high, *low));
            }
            for (at, change) in changes {
                change_json(&mut value, *at, change);
            }
            serde_json::to_vec(&value).unwrap()
        }
    }
}

/// The lines `import` reads from a file: split at newlines, a trailing CR dropped, blank ones
/// skipped.
fn file_lines(file: &[u8]) -> Vec<&[u8]> {
    file.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .collect()
}

/// Imports `file` into the shared log and checks the outcome.
fn check_import(file: &[u8]) -> Result<(), TestCaseError> {
    static CASES: AtomicU64 = AtomicU64::new(0);
    // One import at a time: the checks compare the log's head before and after.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let fixture = fixture();
    let case = CASES.fetch_add(1, Ordering::Relaxed);
    let path = fixture.dir.path().join(format!("case-{case}.ndjson"));
    std::fs::write(&path, file).unwrap();
    fixture.runtime.block_on(async {
        let log = &fixture.value;
        let before = log.head().await.unwrap().position;
        let outcome = exchange::import(log, &Source::File(path), OPERATOR, &|_| {}).await;
        let after = log.head().await.unwrap().position;
        match outcome {
            Ok(summary) => {
                prop_assert_eq!(after, before + summary.written);
                if summary.restored {
                    return Ok(());
                }
                // Accepted: every line is in the log exactly as the file gave it, recorded by
                // the operator (every import here is by the same one), whatever the line says.
                let lines = file_lines(file);
                prop_assert_eq!(summary.read, lines.len() as u64);
                for line in lines {
                    let event: NewEvent = serde_json::from_slice(line).unwrap();
                    let stored = log.event(event.id).await.unwrap();
                    let stored = stored.map(|s| s.event().unwrap().clone());
                    prop_assert!(
                        stored.as_ref().is_some_and(|s| s.same_content(&event)),
                        "{:?} is stored as {:?}",
                        event,
                        stored
                    );
                    prop_assert_eq!(
                        stored.and_then(|s| s.recorded_by),
                        Some(OPERATOR.to_owned())
                    );
                }
            }
            Err(ExchangeError::Line { .. }) => {
                prop_assert_eq!(after, before, "a refused file wrote")
            }
            Err(ExchangeError::Io(message)) if message.contains("holds no events") => {
                prop_assert!(file_lines(file).is_empty());
                prop_assert_eq!(after, before);
            }
            Err(other) => {
                prop_assert!(false, "neither accepted nor a line error: {other}");
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(fuzz::config("CHANCERY_FUZZ_CASES", 5_000, 300))]

    /// Files of one to three generated lines.
    #[test]
    fn import_accepts_or_names_the_bad_line(lines in prop::collection::vec(line(), 1..4)) {
        let file = lines.iter().map(render).collect::<Vec<_>>().join(&b'\n');
        check_import(&file)?;
    }
}

/// Mutated demo lines can be accepted at all: a new id and a new summary make a new event that
/// imports and reads back (so the property above reaches both outcomes).
#[test]
fn a_demo_line_under_a_fresh_id_is_accepted_and_reads_back() {
    let mut value: Value = serde_json::from_str(demo_lines()[16]).unwrap();
    value["id"] = Value::from(uuid_v7(0x0190_0000_0000_0001, 42));
    value["summary"] = Value::from("A restatement, imported again under a new id.");
    let line = serde_json::to_vec(&value).unwrap();
    check_import(&line).unwrap();
    let id = serde_json::from_slice::<NewEvent>(&line).unwrap().id;
    let fixture = fixture();
    let stored = fixture.runtime.block_on(fixture.value.event(id)).unwrap();
    assert_eq!(
        stored.map(|s| s.event().unwrap().summary.clone()),
        Some(value["summary"].as_str().unwrap().to_owned())
    );
}
