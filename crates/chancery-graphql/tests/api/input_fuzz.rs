//! Bounded fuzzing of the event input (`recordEvent(event: EventInput!)`) through the schema's
//! coercion, the conversion to a domain event and validation: valid inputs of several kinds with
//! fields replaced by arbitrary JSON, dropped, or unknown ones added. Never a panic; a refusal
//! carries a code other than `INTERNAL` and writes nothing; an accepted input reads back from the
//! log as given, and sending it again is answered as a duplicate. Cases: `CHANCERY_FUZZ_CASES`
//! (default 3,000, about 10 s in a debug build).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use async_graphql::{Request, Variables};
use chancery_graphql::{
    Access, Api, Caller, Grant, Limits, Metrics, Role, Schemas, Timelines, TokenDigest,
};
use chancery_projections::{CheckpointPolicy, Projections};
use chancery_store::EventLog;
use chancery_store_sled::SledLog;
use chancery_testkit::SharedFixture;
use chancery_testkit::api::CLIENT_ERROR_CODES;
use chancery_testkit::fuzz::{self, change_json, json_change, uuid_v7};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The schema over one log holding the demo scenario, shared by every case.
struct Fixture {
    schemas: Schemas,
    log: Arc<SledLog>,
}

fn fixture() -> &'static SharedFixture<Fixture> {
    static FIXTURE: OnceLock<SharedFixture<Fixture>> = OnceLock::new();
    FIXTURE.get_or_init(|| SharedFixture::new(demo_schema))
}

fn demo_schema(runtime: &tokio::runtime::Runtime, dir: &Path) -> Fixture {
    let log = crate::loopback::demo_log(runtime, dir);
    let schemas = runtime.block_on(async {
        let dyn_log: Arc<dyn EventLog> = log.clone();
        let projections =
            Projections::open(Arc::clone(&dyn_log), None, CheckpointPolicy::default())
                .await
                .unwrap();
        chancery_graphql::build(Arc::new(Api {
            log: dyn_log,
            projections,
            access: Access::new([Grant::new(Role::Recorder, TokenDigest::of("fuzz"))], true),
            metrics: Arc::new(Metrics::default()),
            limits: Limits::default(),
            introspection: true,
        }))
    });
    Fixture { schemas, log }
}

const RECORD: &str = r#"
mutation($e: EventInput!) {
  recordEvent(timeline: "us-china-trade", event: $e) {
    deduplicated
    events {
      id
      kind
      recorded {
        summary location confidence
        occurred { start end modality }
        actors { party { code } actor { slug } }
        targets { party { code } actor { slug } }
        issues { slug }
        amounts { value unit measures }
        sources { publication title url published attribution quote }
      }
    }
  }
}"#;

/// Valid inputs of several kinds, as a client would send them.
fn templates() -> Vec<Value> {
    let source = json!({ "publication": "The New York Times", "published": "2018-04-30", "attribution": "NAMED" });
    vec![
        json!({
            "occurred": { "start": "2018-04-30" },
            "actors": [{ "party": "USA", "actor": "steven-mnuchin" }],
            "targets": [{ "party": "CHN" }],
            "issues": ["trade-deficit"],
            "amounts": [{ "value": 1e11, "unit": "USD", "measures": "cut in the deficit" }],
            "summary": "The United States restates its demand.",
            "sources": [source],
            "confidence": 0.9,
            "act": { "demand": { "terms": "Cut the deficit by $100 billion." } }
        }),
        json!({
            "occurred": { "start": "2018-05", "end": "2018-06", "modality": "PLANNED" },
            "actors": [{ "party": "CHN" }],
            "issues": ["tariffs"],
            "location": "Beijing",
            "summary": "China offers to cut tariffs on cars.",
            "sources": [{ "publication": "Reuters", "title": "Offer", "url": "https://example.invalid/x", "attribution": "ANONYMOUS", "quote": "a cut" }],
            "act": { "offer": { "terms": "Lower car tariffs.", "conditions": ["reciprocity"] } }
        }),
        json!({
            "occurred": { "start": "2018-04-03" },
            "actors": [{ "party": "USA", "actor": "donald-trump" }],
            "targets": [{ "party": "CHN" }],
            "issues": ["tariffs"],
            "amounts": [{ "value": 25, "unit": "PERCENT", "measures": "tariff rate" }],
            "summary": "Tariffs announced.",
            "sources": [source],
            "act": { "measure": { "terms": "Tariffs.", "instrument": "TARIFF", "announced": "2018-04-03", "effective": "2018-07-06", "ratePercent": 25 } }
        }),
        json!({
            "occurred": { "start": "2018-04-28", "end": "2018-04-30" },
            "actors": [{ "party": "CHN" }],
            "summary": "A seminar.",
            "sources": [source],
            "act": { "seminar": { "host": "CHN", "days": 3, "participants": ["officials"], "topic": "trade" } }
        }),
        json!({
            "occurred": { "start": "2018-05-03" },
            "actors": [{ "party": "USA" }, { "party": "CHN" }],
            "issues": ["trade-deficit", "made-in-china-2025"],
            "summary": "Talks in Beijing.",
            "sources": [source],
            "act": { "talks": { "participants": ["USA", "CHN"], "place": "Beijing", "rounds": 2 } }
        }),
    ]
}

/// Any JSON value, weighted towards what the input meets: strings (empty, long, codes, slugs,
/// dates, enum names, UUIDs), numbers at and past the limits, small arrays and objects.
fn json_value() -> impl Strategy<Value = Value> + Clone {
    fuzz::json_value(vec![
        any::<u32>().prop_map(Value::from).boxed(),
        fuzz::number(&[1e16, 1e17, -1.0, 10_000.5, 1.5]),
        "[A-Z]{1,5}|[a-z-]{1,14}|[0-9]{1,5}(-[0-9]{1,2}){0,2}|[A-Z_]{3,12}"
            .prop_map(Value::from)
            .boxed(),
        prop::sample::select(vec![
            "USA",
            "CHN",
            "trade-deficit",
            "tariffs",
            "donald-trump",
            "xi-jinping",
            "OCCURRED",
            "PLANNED",
            "TARIFF",
            "NAMED",
            "2018-02-29",
            "2016-02-29",
            "0000-01-01",
            "9999-12-31",
        ])
        .prop_map(Value::from)
        .boxed(),
        Just(Value::from("x".repeat(20_000))).boxed(),
    ])
}

/// A template, changed at 0 to 3 places, with an id of its own.
fn event_input() -> impl Strategy<Value = Value> {
    (
        any::<prop::sample::Index>(),
        prop::collection::vec(
            (any::<prop::sample::Index>(), json_change(json_value())),
            0..4,
        ),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(template, changes, high, low)| {
            let all = templates();
            let mut input = all[template.index(all.len())].clone();
            input["id"] = Value::from(uuid_v7(high, low));
            for (at, change) in &changes {
                change_json(&mut input, *at, change);
            }
            input
        })
}

fn record(input: &Value) -> Value {
    let f = fixture();
    let request = Request::new(RECORD)
        .variables(Variables::from_json(json!({ "e": input })))
        .data(Caller {
            role: Some(Role::Recorder),
            name: Some("fuzz".into()),
            timelines: Timelines::All,
            expires: None,
        });
    // The document writes no enum value as a string: the plain schema is the one that runs it.
    let response = f
        .runtime
        .block_on(f.value.schemas.for_document(false).execute(request));
    let mut body = serde_json::to_value(&response).unwrap();
    // What both transports do to errors async-graphql raised itself (coercion among them).
    chancery_graphql::error::add_missing_codes(&mut body);
    body
}

fn head() -> u64 {
    let f = fixture();
    f.runtime.block_on(f.value.log.head()).unwrap().position
}

/// What the server should echo for an optional input field: the value given, or `default`.
fn given_or(input: &Value, key: &str, default: Value) -> Value {
    input.get(key).cloned().unwrap_or(default)
}

/// A list input as GraphQL coerces it: a single value stands for a list of one.
fn list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

fn participants(given: &Value) -> Value {
    Value::Array(
        list(given)
            .iter()
            .map(|p| {
                json!({
                    "party": { "code": p["party"] },
                    "actor": p.get("actor").filter(|a| !a.is_null()).map(|a| json!({ "slug": a })),
                })
            })
            .collect(),
    )
}

/// Checks that an accepted input reads back as given.
fn check_round_trip(input: &Value, event: &Value) -> Result<(), TestCaseError> {
    let recorded = &event["recorded"];
    // Without an id the server makes one.
    if given_or(input, "id", Value::Null).is_null() {
        prop_assert!(event["id"].is_string());
    } else {
        prop_assert_eq!(&event["id"], &input["id"]);
    }
    let act = input["act"]
        .as_object()
        .and_then(|a| a.keys().next().cloned())
        .unwrap_or_default();
    let kind = act.to_uppercase();
    prop_assert_eq!(event["kind"].as_str(), Some(kind.as_str()));
    prop_assert_eq!(&recorded["summary"], &input["summary"]);
    prop_assert_eq!(
        &recorded["location"],
        &given_or(input, "location", Value::Null)
    );
    let confidence = given_or(input, "confidence", Value::Null).as_f64();
    prop_assert_eq!(recorded["confidence"].as_f64(), confidence);
    let occurred = &input["occurred"];
    prop_assert_eq!(&recorded["occurred"]["start"], &occurred["start"]);
    prop_assert_eq!(
        &recorded["occurred"]["end"],
        &given_or(occurred, "end", Value::Null)
    );
    prop_assert_eq!(
        &recorded["occurred"]["modality"],
        &given_or(occurred, "modality", Value::from("OCCURRED"))
    );
    prop_assert_eq!(&recorded["actors"], &participants(&input["actors"]));
    prop_assert_eq!(
        &recorded["targets"],
        &participants(&given_or(input, "targets", json!([])))
    );
    let issues: Vec<Value> = list(&given_or(input, "issues", json!([])))
        .iter()
        .map(|s| json!({ "slug": s }))
        .collect();
    prop_assert_eq!(&recorded["issues"], &Value::Array(issues));
    let amounts = list(&given_or(input, "amounts", json!([])));
    let read = recorded["amounts"].as_array().cloned().unwrap_or_default();
    prop_assert_eq!(read.len(), amounts.len());
    for (read, given) in read.iter().zip(&amounts) {
        prop_assert_eq!(read["value"].as_f64(), given["value"].as_f64());
        prop_assert_eq!(&read["unit"], &given["unit"]);
        prop_assert_eq!(&read["measures"], &given["measures"]);
    }
    let sources = list(&input["sources"]);
    let read = recorded["sources"].as_array().cloned().unwrap_or_default();
    prop_assert_eq!(read.len(), sources.len());
    for (read, given) in read.iter().zip(&sources) {
        for field in ["publication", "attribution"] {
            prop_assert_eq!(&read[field], &given[field]);
        }
        for field in ["title", "url", "published", "quote"] {
            prop_assert_eq!(&read[field], &given_or(given, field, Value::Null));
        }
    }
    Ok(())
}

/// One input at a time: the checks compare the log's head before and after.
fn exclusive() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn check(input: &Value) -> Result<(), TestCaseError> {
    let _turn = exclusive();
    let before = head();
    let response = record(input);
    let errors = response["errors"].as_array().cloned().unwrap_or_default();
    if !errors.is_empty() {
        for error in &errors {
            let code = error["extensions"]["code"].as_str().unwrap_or("<none>");
            prop_assert!(
                CLIENT_ERROR_CODES.contains(&code),
                "error code {} for {}: {}",
                code,
                input,
                error
            );
        }
        prop_assert_eq!(head(), before, "a refused input wrote: {}", input);
        return Ok(());
    }
    let events = response["data"]["recordEvent"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    prop_assert_eq!(events.len(), 1, "{}", response);
    prop_assert_eq!(head(), before + 1);
    check_round_trip(input, &events[0])?;
    if given_or(input, "id", Value::Null).is_null() {
        return Ok(());
    }
    // The same input again, same id: a duplicate, answered with the original.
    let again = record(input);
    prop_assert_eq!(
        &again["data"]["recordEvent"]["deduplicated"],
        &Value::Bool(true),
        "{}",
        again
    );
    prop_assert_eq!(&again["data"]["recordEvent"]["events"][0], &events[0]);
    prop_assert_eq!(head(), before + 1);
    Ok(())
}

proptest! {
    #![proptest_config(fuzz::config("CHANCERY_FUZZ_CASES", 3_000, 300))]

    #[test]
    fn event_inputs_are_refused_with_a_code_or_read_back_as_given(input in event_input()) {
        check(&input)?;
    }
}

/// Every template is accepted as it stands, so the property above reaches both outcomes.
#[test]
fn every_template_is_accepted_and_reads_back() {
    let _turn = exclusive();
    for (i, mut input) in templates().into_iter().enumerate() {
        input["id"] = Value::from(uuid_v7(0x0190_0000_0000_0000 + i as u64, 7));
        let response = record(&input);
        assert!(response["errors"].is_null(), "template {i}: {response}");
        check_round_trip(&input, &response["data"]["recordEvent"]["events"][0]).unwrap();
    }
}
