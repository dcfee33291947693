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
use proptest::prelude::*;
use serde_json::Value;

const DEMO: &str = include_str!("../../demo/us-china-trade-2018.ndjson");

fn fuzz_config() -> ProptestConfig {
    let cases = std::env::var("CHANCERY_FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(5_000);
    ProptestConfig {
        cases,
        max_shrink_iters: 300,
        ..ProptestConfig::default()
    }
}

/// One log for every case, holding the demo scenario, so that mutated lines meet its registry and
/// events. A case that is accepted adds to it, which later cases then meet as well.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    log: SledLog,
    dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        // Durability is not under test here; skipping fdatasync keeps the cases fast.
        let config = SledConfig {
            durable: false,
            ..SledConfig::default()
        };
        let log = SledLog::open(dir.path().join("log"), config).unwrap();
        runtime
            .block_on(exchange::import(&log, &Source::Text(DEMO), &|_| {}))
            .unwrap();
        Fixture { runtime, log, dir }
    })
}

fn demo_lines() -> Vec<&'static str> {
    DEMO.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// A UUID v7 made of generated bits, so that a case replays the same.
fn uuid_v7(high: u64, low: u64) -> String {
    format!(
        "{:08x}-{:04x}-7{:03x}-{:x}{:03x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xfff,
        8 + (low >> 62),
        (low >> 48) & 0xfff,
        low & 0xffff_ffff_ffff
    )
}

/// Any JSON value, weighted towards what the event format meets: strings (empty, long, codes,
/// dates, UUIDs), numbers at and past the limits, and small arrays and objects.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            any::<f64>(),
            Just(1e16),
            Just(1e17),
            Just(-0.0),
            Just(10_000.5),
            Just(f64::MAX)
        ]
        .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,30}".prop_map(Value::from),
        "[A-Z]{1,5}|[a-z-]{1,12}|[0-9]{4}(-[0-9]{2}){0,2}".prop_map(Value::from),
        Just(Value::from("x".repeat(5_000))),
        (any::<u64>(), any::<u64>()).prop_map(|(h, l)| Value::from(uuid_v7(h, l))),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every path into a JSON value, the root included.
fn paths(value: &Value, at: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                at.push(PathStep::Key(key.clone()));
                paths(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                at.push(PathStep::Index(i));
                paths(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn at_path<'a>(value: &'a mut Value, path: &[PathStep]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, step| match step {
        PathStep::Key(k) => v.get_mut(k.as_str()),
        PathStep::Index(i) => v.get_mut(*i),
    })
}

/// A change to one place of a line's JSON.
#[derive(Debug, Clone)]
enum FieldChange {
    Replace(Value),
    Remove,
    AddUnknown(String, Value),
}

fn field_change() -> impl Strategy<Value = FieldChange> {
    prop_oneof![
        6 => json_value().prop_map(FieldChange::Replace),
        2 => Just(FieldChange::Remove),
        1 => ("[a-zA-Z]{1,10}", json_value()).prop_map(|(k, v)| FieldChange::AddUnknown(k, v)),
    ]
}

/// One line of a generated event file.
#[derive(Debug, Clone)]
enum Line {
    Bytes(Vec<u8>),
    /// A demo line with bytes replaced, inserted or deleted.
    Damaged {
        line: prop::sample::Index,
        edits: Vec<(prop::sample::Index, u8, u8)>,
    },
    /// A demo line with fields changed, under a fresh id or its own.
    Mutated {
        line: prop::sample::Index,
        changes: Vec<(prop::sample::Index, FieldChange)>,
        fresh_id: Option<(u64, u64)>,
    },
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Line::Bytes),
        2 => (any::<prop::sample::Index>(), prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..4))
            .prop_map(|(line, edits)| Line::Damaged { line, edits }),
        6 => (
            any::<prop::sample::Index>(),
            prop::collection::vec((any::<prop::sample::Index>(), field_change()), 1..3),
            prop::option::weighted(0.8, (any::<u64>(), any::<u64>())),
        )
            .prop_map(|(line, changes, fresh_id)| Line::Mutated { line, changes, fresh_id }),
    ]
}

fn render(line: &Line) -> Vec<u8> {
    let demo = demo_lines();
    match line {
        Line::Bytes(bytes) => bytes.clone(),
        Line::Damaged { line, edits } => {
            let mut bytes = demo[line.index(demo.len())].as_bytes().to_vec();
            for (at, op, byte) in edits {
                match op {
                    0 if !bytes.is_empty() => {
                        let i = at.index(bytes.len());
                        bytes[i] = *byte;
                    }
                    1 => bytes.insert(at.index(bytes.len() + 1), *byte),
                    _ if !bytes.is_empty() => {
                        bytes.remove(at.index(bytes.len()));
                    }
                    _ => {}
                }
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
                let mut all = Vec::new();
                paths(&value, &mut Vec::new(), &mut all);
                let path = &all[at.index(all.len())];
                match change {
                    FieldChange::Replace(new) => {
                        if let Some(place) = at_path(&mut value, path) {
                            *place = new.clone();
                        }
                    }
                    FieldChange::Remove => {
                        if let Some((last, parent)) = path.split_last() {
                            match (at_path(&mut value, parent), last) {
                                (Some(Value::Object(map)), PathStep::Key(k)) => {
                                    map.shift_remove(k);
                                }
                                (Some(Value::Array(items)), PathStep::Index(i)) => {
                                    items.remove(*i);
                                }
                                _ => {}
                            }
                        }
                    }
                    FieldChange::AddUnknown(key, new) => {
                        if let Some(Value::Object(map)) = at_path(&mut value, path) {
                            map.insert(key.clone(), new.clone());
                        }
                    }
                }
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
        let log = &fixture.log;
        let before = log.head().await.unwrap().position;
        let outcome = exchange::import(log, &Source::File(path), &|_| {}).await;
        let after = log.head().await.unwrap().position;
        match outcome {
            Ok(summary) => {
                prop_assert_eq!(after, before + summary.written);
                if summary.restored {
                    return Ok(());
                }
                // Accepted: every line is in the log exactly as the file gave it.
                let lines = file_lines(file);
                prop_assert_eq!(summary.read, lines.len() as u64);
                for line in lines {
                    let event: NewEvent = serde_json::from_slice(line).unwrap();
                    let stored = log.event(event.id).await.unwrap();
                    prop_assert_eq!(stored.map(|s| s.event().unwrap().clone()), Some(event));
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
    #![proptest_config(fuzz_config())]

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
    let stored = fixture.runtime.block_on(fixture.log.event(id)).unwrap();
    assert_eq!(
        stored.map(|s| s.event().unwrap().summary.clone()),
        Some(value["summary"].as_str().unwrap().to_owned())
    );
}
