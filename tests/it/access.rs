//! Per-timeline grants from the outside, the leakage matrix: a store holds timelines `a` and `b`
//! with acts of the same parties on the same issues in both, and every read surface (queries,
//! subscriptions, the answer cache, `/export`) and every write is asked by tokens granted `a`
//! only and by tokens granted every timeline. What a restricted token gets must hold nothing of
//! `b` and must equal what an unrestricted one gets of `a` alone; a timeline it is not granted,
//! and the events of one, answer as what does not exist. Also: a token given as its SHA-256 digest is
//! accepted, and an expired one is refused over HTTP and WebSocket.

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::*;
use crate::ws::{self, Heard, Socket, json_until, said_so_far};

/// Granted every timeline: an admin, and a reader of the same role as the restricted one, so
/// that only the grant tells their kept answers and subscription groups apart.
const ADMIN_ALL: &str = "admin-all-token-0123456789";
const READER_ALL: &str = "reader-all-token-0123456789";
/// Granted timeline `a` only, each.
const READER_A: &str = "reader-a-token-0123456789";
const RECORDER_A: &str = "recorder-a-token-0123456789";
const ADMIN_A: &str = "admin-a-token-0123456789";
/// Granted `a` only, configured as its SHA-256 digest alone:
/// `printf %s hashed-reader-a-token-0123456789 | sha256sum`.
const HASHED_READER_A: &str = "hashed-reader-a-token-0123456789";
const HASHED_READER_A_DIGEST: &str =
    "eadd5b5acdd048d00d1d7b9819e69cf856d47ae10392417ccd70172ac35e8335";
/// Expired in 2020.
const EXPIRED_READER: &str = "expired-reader-token-0123456789";

/// The configuration file: the tokens as lines and as tables.
fn config() -> String {
    format!(
        r#"tokens = [
    "admin:{ADMIN_ALL}",
    "reader:{READER_ALL}",
    "reader:{READER_A}:a",
    "recorder:{RECORDER_A}:a",
    {{ role = "admin", token = "{ADMIN_A}", name = "admin-of-a", timelines = ["a"] }},
    {{ role = "reader", token = "sha256:{HASHED_READER_A_DIGEST}", name = "hashed-reader-of-a", timelines = ["a"] }},
    {{ role = "reader", token = "{EXPIRED_READER}", expires = 2020-01-01T00:00:00Z }},
]
"#
    )
}

/// The id of the `n`th event the tests record in `timeline` (`a` or `b`; `c` for ids never
/// recorded): every id of `b` holds [`B_MARK`].
fn id(timeline: char, n: u32) -> String {
    format!("01900000-0000-7000-8000-00000000{timeline}{n:03}")
}

/// What every id of an event of `b` holds, and no other string of an answer.
const B_MARK: &str = "-00000000b";

/// An event id that is not in the log.
fn unknown_id() -> String {
    id('c', 999)
}

/// A slug no timeline has: what `b` must look like to a token not granted it.
const NO_SUCH_TIMELINE: &str = "no-such-timeline";

/// Where `answer` shows something of timeline `b`: an id of one of its events, or the timeline
/// itself.
fn traces_of_b(answer: &Value) -> Vec<String> {
    fn walk(value: &Value, path: &str, found: &mut Vec<String>) {
        match value {
            Value::String(s) if s.contains(B_MARK) => found.push(format!("{path} = {s}")),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}[{i}]"), found);
                }
            }
            Value::Object(fields) => {
                if fields.get("slug") == Some(&json!("b")) {
                    found.push(format!("{path} is timeline b"));
                }
                for (name, field) in fields {
                    walk(field, &format!("{path}.{name}"), found);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(answer, "$", &mut found);
    found
}

/// `value` with every `from` in its strings written `to`: an answer about one thing read as if
/// it were about another.
fn renamed(value: &Value, from: &str, to: &str) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace(from, to)),
        Value::Array(items) => items.iter().map(|v| renamed(v, from, to)).collect(),
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| (k.clone(), renamed(v, from, to)))
            .collect(),
        other => other.clone(),
    }
}

/// One act of a party, as `recordEvents` takes it.
fn act(
    id: &str,
    start: &str,
    (actor, target): (&str, &str),
    issue: &str,
    summary: &str,
    act: Value,
) -> Value {
    json!({
        "id": id,
        "occurred": { "start": start },
        "actors": [{ "party": actor }],
        "targets": [{ "party": target }],
        "issues": [issue],
        "summary": summary,
        "sources": [{ "publication": "Test Wire", "attribution": "OFFICIAL" }],
        "act": act,
    })
}

const REGISTER_TIMELINE: &str = "mutation($id: ID, $slug: Slug!) { registerTimeline(input: { id: $id, slug: $slug, title: $slug }) { lastPosition } }";
const REGISTER_PARTY: &str = "mutation($id: ID, $timeline: Slug!, $code: PartyCode!) { registerParty(input: { id: $id, timeline: $timeline, code: $code, name: $code, kind: STATE }) { lastPosition } }";
const REGISTER_ISSUE: &str = "mutation($id: ID, $timeline: Slug!, $slug: Slug!) { registerIssue(input: { id: $id, timeline: $timeline, slug: $slug, title: $slug }) { lastPosition } }";
const RECORD: &str = "mutation($timeline: Slug!, $events: [EventInput!]!) { recordEvents(timeline: $timeline, events: $events) { lastPosition } }";

/// A served store with timelines `a` and `b`, configured by a file with the tokens above. Party
/// USA, issue tariffs and timeline `a` are registered in `a`; party CHN, issue trade-deficit
/// and timeline `b` in `b`; each timeline then holds acts of both parties on both issues (`b`
/// one more than `a`, so that their relations differ), recorded after `a`'s, so that the log
/// ends in `b`.
struct Store {
    server: Server,
    _config: TempDir,
}

impl Store {
    fn start() -> Store {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("chancery.toml");
        std::fs::write(&file, config()).unwrap();
        let server = Server::start(&["--config", file.to_str().unwrap()]);
        server.wait_ready();
        let store = Store {
            server,
            _config: dir,
        };
        for (mutation, variables) in [
            (REGISTER_TIMELINE, json!({ "id": id('a', 1), "slug": "a" })),
            (REGISTER_TIMELINE, json!({ "id": id('b', 1), "slug": "b" })),
            (
                REGISTER_PARTY,
                json!({ "id": id('a', 2), "timeline": "a", "code": "USA" }),
            ),
            (
                REGISTER_PARTY,
                json!({ "id": id('b', 2), "timeline": "b", "code": "CHN" }),
            ),
            (
                REGISTER_ISSUE,
                json!({ "id": id('a', 3), "timeline": "a", "slug": "tariffs" }),
            ),
            (
                REGISTER_ISSUE,
                json!({ "id": id('b', 3), "timeline": "b", "slug": "trade-deficit" }),
            ),
        ] {
            store.write(ADMIN_ALL, mutation, variables);
        }
        let (us, china) = (("USA", "CHN"), ("CHN", "USA"));
        let in_a = [
            act(
                &id('a', 11),
                "2018-03-01",
                us,
                "trade-deficit",
                "The US demands a cut.",
                json!({ "demand": { "terms": "cut the deficit by $100 billion" } }),
            ),
            act(
                &id('a', 12),
                "2018-03-10",
                china,
                "trade-deficit",
                "China refuses the cut.",
                json!({ "refusal": { "terms": "no mandatory cut", "of": "TO_ACCEPT", "refuses": [id('a', 11)] } }),
            ),
            act(
                &id('a', 13),
                "2018-04-01",
                us,
                "tariffs",
                "The US threatens tariffs.",
                json!({ "threat": { "terms": "tariffs on $50 billion of goods", "instrument": "TARIFF" } }),
            ),
            act(
                &id('a', 14),
                "2018-04-05",
                china,
                "tariffs",
                "China calls the talks constructive.",
                json!({ "statement": { "claim": "the talks were constructive", "tone": "OPTIMISTIC" } }),
            ),
        ];
        let in_b = [
            act(
                &id('b', 11),
                "2018-03-05",
                us,
                "trade-deficit",
                "The US offers a deal.",
                json!({ "offer": { "terms": "buy more US goods" } }),
            ),
            act(
                &id('b', 12),
                "2018-03-15",
                china,
                "trade-deficit",
                "China refuses the deal.",
                json!({ "refusal": { "terms": "not on these terms", "of": "TO_DISCUSS", "refuses": [id('b', 11)] } }),
            ),
            act(
                &id('b', 13),
                "2018-04-03",
                us,
                "tariffs",
                "The US imposes tariffs.",
                json!({ "measure": { "terms": "25% on listed goods", "instrument": "TARIFF", "announced": "2018-04-03" } }),
            ),
            act(
                &id('b', 14),
                "2018-04-07",
                china,
                "tariffs",
                "China accuses the US.",
                json!({ "accusation": { "claim": "the tariffs break WTO rules", "form": "ACCUSE" } }),
            ),
            act(
                &id('b', 15),
                "2018-04-20",
                us,
                "tariffs",
                "Talks in Beijing.",
                json!({ "talks": { "participants": ["USA", "CHN"], "place": "Beijing" } }),
            ),
        ];
        store.write(
            ADMIN_ALL,
            RECORD,
            json!({ "timeline": "a", "events": in_a }),
        );
        store.write(
            ADMIN_ALL,
            RECORD,
            json!({ "timeline": "b", "events": in_b }),
        );
        store.synced();
        store
    }

    /// The answer, errors and all, to `query` asked with `token`.
    fn ask(&self, token: &str, query: &str, variables: Value) -> Value {
        self.server
            .graphql(Some(token), query, variables)
            .json_body()
    }

    /// The data of a query that must answer without errors.
    fn read(&self, token: &str, query: &str) -> Value {
        let body = self.ask(token, query, json!({}));
        assert!(body.get("errors").is_none(), "{query}: {body}");
        body["data"].clone()
    }

    /// Writes with a mutation that must succeed; the log position it wrote last.
    fn write(&self, token: &str, mutation: &str, variables: Value) -> u64 {
        let body = self.ask(token, mutation, variables);
        body["data"]
            .as_object()
            .and_then(|data| data.values().next())
            .and_then(|result| result["lastPosition"].as_u64())
            .unwrap_or_else(|| panic!("{mutation}: {body}"))
    }

    /// Records one act in `timeline` with the admin granted every timeline.
    fn record(&self, timeline: &str, event: Value) {
        let events = json!({ "timeline": timeline, "events": [event] });
        self.write(ADMIN_ALL, RECORD, events);
    }

    /// Waits until the projections have applied the whole log.
    fn synced(&self) {
        let head = self.server.head();
        self.read(
            ADMIN_ALL,
            &format!("{{ positions(atLeast: {head}) {{ stance }} }}"),
        );
    }
}

/// One row of the matrix: questions a token granted `a` only asks, which must all answer
/// `reference` as the admin granted every timeline gets it, and hold nothing of `b`.
struct Case {
    surface: &'static str,
    restricted: Vec<String>,
    reference: String,
    /// What the reference answer is read as (the unrestricted list of timelines, kept to `a`).
    keep: fn(Value) -> Value,
    /// The restricted question asked unrestricted: it must answer otherwise (it holds `b`), or
    /// the row would prove nothing.
    unrestricted: Option<String>,
}

fn as_is(answer: Value) -> Value {
    answer
}

fn only_timeline_a(mut answer: Value) -> Value {
    answer["timelines"]
        .as_array_mut()
        .unwrap()
        .retain(|t| t["slug"] == "a");
    answer
}

/// The query `shape` with its arguments, `{}`, replaced by `args` (none: without parentheses).
fn asking(shape: &str, args: &str) -> String {
    if args.is_empty() {
        shape.replace("({})", "").replace("{}", "")
    } else {
        shape.replace("{}", args)
    }
}

const EVENTS: &str = "{ events({}) { edges { cursor node { id position version kind timeline { slug version } recordedAt hash prevHash retracted corrected content { summary occurred { start precision } actors { party { code } } issues { slug } codes { cameo goldstein } } } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";
const EVENT: &str = "{ event({}) { id position timeline { slug } kind content { summary } } }";
const POSITIONS: &str = "{ positions({}) { timeline { slug } party { code } issue { slug } stance event { id timeline { slug } } amounts { value } conditions firstStated lastReaffirmed reaffirmed supporting attribution confidence history { stance at event } } }";
const STANDOFFS: &str = "{ standoffs({}) { timeline { slug } issue { slug } status sides { party { code } stance event } } }";
const RELATIONS: &str = "{ relations(a: \"USA\", b: \"CHN\"{}) { a { code } b { code } bucket buckets { start events verbalCooperation materialCooperation verbalConflict materialConflict goldsteinSum goldsteinMean } total { events verbalCooperation materialCooperation verbalConflict materialConflict goldsteinSum goldsteinMean } } }";
const REGISTRY: &str =
    "{ parties { code name kind } actors { slug } issues { slug title description } }";
const TIMELINES: &str = "{ timelines { slug title description version } }";
const TIMELINE: &str = "{ timeline({}) { slug title description version } }";

/// The rows: every query the API answers.
fn read_cases() -> Vec<Case> {
    let row =
        |surface, restricted: Vec<String>, reference: String, unrestricted: Option<String>| Case {
            surface,
            restricted,
            reference,
            keep: as_is,
            unrestricted,
        };
    let only_a = r#"filter: { timelines: ["a"] }"#;
    let nowhere = format!(r#"filter: {{ timelines: ["{NO_SUCH_TIMELINE}"] }}"#);
    let (b_act, a_act) = (id('b', 13), id('a', 13));
    let chinese_acts = r#"parties: ["CHN"], issues: ["trade-deficit", "tariffs"], kinds: [REFUSAL, STATEMENT, ACCUSATION]"#;
    let then = r#"parties: ["USA", "CHN"], issues: ["tariffs", "trade-deficit"], asOf: { validAt: "2018-04-02" }"#;
    vec![
        row(
            "event(id) of an event of b: null, as an id not in the log",
            vec![asking(EVENT, &format!(r#"id: "{b_act}""#))],
            asking(EVENT, &format!(r#"id: "{}""#, unknown_id())),
            Some(asking(EVENT, &format!(r#"id: "{b_act}""#))),
        ),
        row(
            "event(id) of a registration in b: null",
            vec![asking(EVENT, &format!(r#"id: "{}""#, id('b', 2)))],
            asking(EVENT, &format!(r#"id: "{}""#, unknown_id())),
            Some(asking(EVENT, &format!(r#"id: "{}""#, id('b', 2)))),
        ),
        row(
            "event(id) of an event of a",
            vec![asking(EVENT, &format!(r#"id: "{a_act}""#))],
            asking(EVENT, &format!(r#"id: "{a_act}""#)),
            None,
        ),
        row(
            "events without a filter, and filtered to [a] or [a, b]: a's",
            vec![
                asking(EVENTS, ""),
                asking(EVENTS, only_a),
                asking(EVENTS, r#"filter: { timelines: ["a", "b"] }"#),
            ],
            asking(EVENTS, only_a),
            Some(asking(EVENTS, "")),
        ),
        row(
            "events filtered to [b]: none, as for a timeline that does not exist",
            vec![asking(EVENTS, r#"filter: { timelines: ["b"] }"#)],
            asking(EVENTS, &nowhere),
            Some(asking(EVENTS, r#"filter: { timelines: ["b"] }"#)),
        ),
        row(
            "events by valid time: a's, in the same order",
            [
                "order: VALID_TIME",
                r#"order: VALID_TIME, filter: { timelines: ["a", "b"] }"#,
            ]
            .iter()
            .map(|args| asking(EVENTS, args))
            .collect(),
            asking(EVENTS, &format!("order: VALID_TIME, {only_a}")),
            Some(asking(EVENTS, "order: VALID_TIME")),
        ),
        row(
            "events by valid time, first page: a's",
            vec![asking(EVENTS, "order: VALID_TIME, first: 4")],
            asking(EVENTS, &format!("order: VALID_TIME, first: 4, {only_a}")),
            Some(asking(EVENTS, "order: VALID_TIME, first: 4")),
        ),
        row(
            "events, the last page of the log (which ends in b): a's last",
            vec![asking(EVENTS, "last: 3")],
            asking(EVENTS, &format!("last: 3, {only_a}")),
            Some(asking(EVENTS, "last: 3")),
        ),
        row(
            "events by party, issue and kind: a's",
            vec![asking(EVENTS, &format!("filter: {{ {chinese_acts} }}"))],
            asking(
                EVENTS,
                &format!(r#"filter: {{ timelines: ["a"], {chinese_acts} }}"#),
            ),
            Some(asking(EVENTS, &format!("filter: {{ {chinese_acts} }}"))),
        ),
        row(
            "events as known at a past position: a's",
            vec![asking(EVENTS, "asOf: { knownAt: 12 }")],
            asking(EVENTS, &format!("asOf: {{ knownAt: 12 }}, {only_a}")),
            Some(asking(EVENTS, "asOf: { knownAt: 12 }")),
        ),
        Case {
            surface: "timelines: a alone",
            restricted: vec![TIMELINES.into()],
            reference: TIMELINES.into(),
            keep: only_timeline_a,
            unrestricted: Some(TIMELINES.into()),
        },
        row(
            "timeline(slug: b): null, as a timeline that does not exist",
            vec![asking(TIMELINE, r#"slug: "b""#)],
            asking(TIMELINE, &format!(r#"slug: "{NO_SUCH_TIMELINE}""#)),
            Some(asking(TIMELINE, r#"slug: "b""#)),
        ),
        row(
            "timeline(slug: a)",
            vec![asking(TIMELINE, r#"slug: "a""#)],
            asking(TIMELINE, r#"slug: "a""#),
            None,
        ),
        row(
            "positions, of every timeline or of a: a's",
            vec![asking(POSITIONS, ""), asking(POSITIONS, r#"timeline: "a""#)],
            asking(POSITIONS, r#"timeline: "a""#),
            Some(asking(POSITIONS, "")),
        ),
        row(
            "positions of parties on issues, as of a valid time: a's",
            vec![asking(POSITIONS, then)],
            asking(POSITIONS, &format!(r#"timeline: "a", {then}"#)),
            Some(asking(POSITIONS, then)),
        ),
        row(
            "positions(timeline: b): [], as for a timeline that does not exist",
            vec![asking(POSITIONS, r#"timeline: "b""#)],
            asking(POSITIONS, &format!(r#"timeline: "{NO_SUCH_TIMELINE}""#)),
            Some(asking(POSITIONS, r#"timeline: "b""#)),
        ),
        row(
            "standoffs, of every timeline or of a: a's",
            vec![asking(STANDOFFS, ""), asking(STANDOFFS, r#"timeline: "a""#)],
            asking(STANDOFFS, r#"timeline: "a""#),
            Some(asking(STANDOFFS, "")),
        ),
        row(
            "standoffs on an issue: a's",
            vec![asking(STANDOFFS, r#"issues: ["trade-deficit"]"#)],
            asking(STANDOFFS, r#"timeline: "a", issues: ["trade-deficit"]"#),
            Some(asking(STANDOFFS, r#"issues: ["trade-deficit"]"#)),
        ),
        row(
            "standoffs(timeline: b): [], as for a timeline that does not exist",
            vec![asking(STANDOFFS, r#"timeline: "b""#)],
            asking(STANDOFFS, &format!(r#"timeline: "{NO_SUCH_TIMELINE}""#)),
            Some(asking(STANDOFFS, r#"timeline: "b""#)),
        ),
        row(
            "relations, over every timeline or a: a's totals",
            vec![
                asking(RELATIONS, ""),
                asking(RELATIONS, r#", timeline: "a""#),
            ],
            asking(RELATIONS, r#", timeline: "a""#),
            Some(asking(RELATIONS, "")),
        ),
        row(
            "relations by week: a's",
            vec![asking(RELATIONS, ", bucket: WEEK")],
            asking(RELATIONS, r#", bucket: WEEK, timeline: "a""#),
            Some(asking(RELATIONS, ", bucket: WEEK")),
        ),
        row(
            "relations(timeline: b): none, as for a timeline that does not exist",
            vec![asking(RELATIONS, r#", timeline: "b""#)],
            asking(RELATIONS, &format!(r#", timeline: "{NO_SUCH_TIMELINE}""#)),
            Some(asking(RELATIONS, r#", timeline: "b""#)),
        ),
        row(
            "parties, actors and issues: the shared registry, alike for all",
            vec![REGISTRY.into()],
            REGISTRY.into(),
            None,
        ),
        row(
            "head: the global log position, alike for all (documented)",
            vec!["{ head { position projected } }".into()],
            "{ head { position projected } }".into(),
            None,
        ),
    ]
}

#[test]
fn every_query_answers_a_restricted_token_with_its_timelines_alone() {
    let store = Store::start();
    let mut failures = Vec::new();
    for case in read_cases() {
        let reference = (case.keep)(store.read(ADMIN_ALL, &case.reference));
        let leaks = traces_of_b(&reference);
        assert!(
            leaks.is_empty(),
            "{}: the reference itself shows b: {leaks:?}",
            case.surface
        );
        if let Some(unrestricted) = &case.unrestricted {
            let everything = store.read(ADMIN_ALL, unrestricted);
            assert_ne!(
                everything, reference,
                "{}: the store does not tell the timelines apart here ({unrestricted})",
                case.surface
            );
        }
        for (token, who) in [
            (READER_A, "reader of a"),
            (HASHED_READER_A, "hashed reader of a"),
        ] {
            for question in &case.restricted {
                let answer = store.read(token, question);
                let leaks = traces_of_b(&answer);
                if !leaks.is_empty() {
                    failures.push(format!(
                        "{} [{who}]: {question}\n  shows b: {leaks:?}",
                        case.surface
                    ));
                } else if answer != reference {
                    failures.push(format!(
                        "{} [{who}]: {question}\n  answers {answer}\n  not {reference} ({})",
                        case.surface, case.reference
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} answers differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_answer_cache_keeps_answers_apart_by_grant() {
    let store = Store::start();
    // Events, positions, standoffs and relations with the arguments given, and timelines, in
    // one document.
    let together = |events: &str, timeline: &str, relations: &str| {
        [
            asking(EVENTS, events),
            asking(POSITIONS, timeline),
            asking(STANDOFFS, timeline),
            asking(RELATIONS, relations),
            TIMELINES.to_owned(),
        ]
        .iter()
        .map(|query| {
            let field = query.strip_prefix("{ ").and_then(|q| q.strip_suffix(" }"));
            field.unwrap().to_owned()
        })
        .collect::<Vec<_>>()
        .join(" ")
    };
    let of_a = together(
        r#"filter: { timelines: ["a"] }"#,
        r#"timeline: "a""#,
        r#", timeline: "a""#,
    );
    let reference = only_timeline_a(store.read(ADMIN_ALL, &format!("{{ {of_a} }}")));
    // The same document from two readers, without atLeast (documents with atLeast are not
    // cached), the one granted every timeline first. An attempt is conclusive when the cache
    // answered that reader again after the restricted one asked: the restricted question came
    // while the unrestricted answer was kept. A new first field makes each attempt's document
    // new to the cache.
    let hits = || store.server.metric("chancery_answer_cache_hits_total");
    for attempt in 0..20 {
        let tag = format!("attempt{attempt}");
        let question = format!("{{ {tag}: __typename {} }}", together("", "", ""));
        let before = hits();
        let unrestricted = store.read(READER_ALL, &question);
        assert!(!traces_of_b(&unrestricted).is_empty(), "{unrestricted}");
        let mut restricted = store.read(READER_A, &question);
        let after_restricted = hits();
        let again = store.read(READER_ALL, &question);
        let after_again = hits();
        let leaks = traces_of_b(&restricted);
        assert!(leaks.is_empty(), "the answer cache gave b away: {leaks:?}");
        assert_eq!(
            after_restricted, before,
            "the restricted question was answered from a kept answer"
        );
        restricted.as_object_mut().unwrap().remove(&tag);
        assert_eq!(restricted, reference, "the restricted answer is a's");
        assert_eq!(again, unrestricted);
        if after_again == after_restricted + 1 {
            return;
        }
    }
    panic!("the answer cache never kept an answer across three requests");
}

/// A WebSocket connection initialised with `token`.
async fn connected(store: &Store, token: &str) -> Socket {
    ws::connect(store.server.address(), Some(token), None)
        .await
        .unwrap()
}

async fn subscribe(socket: &mut Socket, id: &str, query: &str) {
    ws::subscribe(socket, id, query, None).await.unwrap();
}

/// The payloads of the `next` frames of subscription `id`, its root field `field`.
fn payloads<'a>(frames: &'a [Value], id: &'a str, field: &'a str) -> Vec<&'a Value> {
    frames
        .iter()
        .filter(|m| m["id"] == id && m["type"] == "next")
        .map(|m| &m["payload"]["data"][field])
        .collect()
}

/// Whether `m` is a frame of subscription `id` about the event `event` (an event, or a position
/// that it holds).
fn frame_of(m: &Value, id: &str, field: &str, event: &str) -> bool {
    let payload = &m["payload"]["data"][field];
    m["id"] == id && (payload["id"] == event || payload["event"]["id"] == event)
}

/// A statement of the USA on tariffs, as the live event of a subscription test.
fn live(id: &str, start: &str) -> Value {
    let payload = json!({ "statement": { "claim": "live" } });
    act(id, start, ("USA", "CHN"), "tariffs", "Live.", payload)
}

const FEED: &str =
    "subscription { events { id position kind timeline { slug } content { summary } } }";
const FEED_OF_B: &str = r#"subscription { events(filter: { timelines: ["b"] }) { id } }"#;

#[test]
fn the_events_feed_of_a_restricted_token_holds_its_timelines_alone_live_too() {
    let store = Store::start();
    runtime().block_on(async {
        // The same document on two connections of readers, one per grant, and a feed of b
        // alone; then a live event of b followed by one of a.
        let mut restricted = connected(&store, READER_A).await;
        let mut unrestricted = connected(&store, READER_ALL).await;
        subscribe(&mut restricted, "b-only", FEED_OF_B).await;
        subscribe(&mut restricted, "feed", FEED).await;
        subscribe(&mut unrestricted, "feed", FEED).await;
        let (live_b, live_a) = (id('b', 21), id('a', 21));
        store.record("b", live(&live_b, "2018-05-01"));
        store.record("a", live(&live_a, "2018-05-02"));

        let up_to_a = |m: &Value| frame_of(m, "feed", "events", &live_a);
        let heard = json_until(&mut restricted, up_to_a).await;
        let everything = json_until(&mut unrestricted, up_to_a).await;
        let leaks = traces_of_b(&Value::Array(heard.clone()));
        assert!(leaks.is_empty(), "the restricted feed shows b: {leaks:?}");
        assert!(
            heard.iter().all(|m| m["id"] == "feed"),
            "only the feed of every timeline says something: {heard:?}"
        );
        let all = payloads(&everything, "feed", "events");
        assert!(
            all.iter().any(|e| e["id"] == live_b.as_str()),
            "the unrestricted reader's feed has the live event of b (it is not the restricted \
             one's group): {all:?}"
        );
        let of_a: Vec<&Value> = all
            .into_iter()
            .filter(|e| e["timeline"]["slug"] == "a")
            .collect();
        assert_eq!(
            payloads(&heard, "feed", "events"),
            of_a,
            "the restricted feed is a's part of the whole, live events included"
        );
        assert_eq!(said_so_far(&mut restricted).await, Vec::<Value>::new());
    });
}

/// `positionChanged` of the USA on tariffs in `timeline`.
fn position_changed(timeline: &str) -> String {
    format!(
        r#"subscription {{ positionChanged(timeline: "{timeline}", party: "USA", issue: "tariffs") {{ timeline {{ slug }} party {{ code }} issue {{ slug }} stance event {{ id }} supporting }} }}"#
    )
}

#[test]
fn position_changes_in_a_timeline_not_granted_say_nothing() {
    let store = Store::start();
    runtime().block_on(async {
        // b's first, so that a's first frame comes after anything b's would have said at once.
        let mut restricted = connected(&store, READER_A).await;
        let mut unrestricted = connected(&store, READER_ALL).await;
        subscribe(&mut restricted, "pb", &position_changed("b")).await;
        subscribe(&mut restricted, "pa", &position_changed("a")).await;
        subscribe(
            &mut unrestricted,
            "none",
            &position_changed(NO_SUCH_TIMELINE),
        )
        .await;
        subscribe(&mut unrestricted, "pb", &position_changed("b")).await;
        subscribe(&mut unrestricted, "pa", &position_changed("a")).await;
        let first = json_until(&mut restricted, |m| m["id"] == "pa").await;
        assert_eq!(first.len(), 1, "{first:?}");
        let (mut a_now, mut b_now) = (None, None);
        let unrestricted_first = json_until(&mut unrestricted, |m| {
            match m["id"].as_str() {
                Some("pa") => a_now = Some(m.clone()),
                Some("pb") => b_now = Some(m.clone()),
                _ => {}
            }
            a_now.is_some() && b_now.is_some()
        })
        .await;
        assert_eq!(unrestricted_first.len(), 2, "{unrestricted_first:?}");
        assert_eq!(
            Some(&first[0]),
            a_now.as_ref(),
            "a's position alike for both"
        );
        let b_now = &b_now.unwrap()["payload"]["data"]["positionChanged"];
        assert_eq!(b_now["event"]["id"], id('b', 13).as_str(), "{b_now}");

        // A change in b, then one in a.
        let offer = |id: &str| {
            let payload =
                json!({ "offer": { "terms": "lift the tariffs", "conditions": ["a deal"] } });
            act(
                id,
                "2018-05-10",
                ("USA", "CHN"),
                "tariffs",
                "An offer.",
                payload,
            )
        };
        let (offer_b, offer_a) = (id('b', 22), id('a', 22));
        store.record("b", offer(&offer_b));
        store.record("a", offer(&offer_a));
        let up_to_a = |m: &Value| frame_of(m, "pa", "positionChanged", &offer_a);
        let heard = json_until(&mut restricted, up_to_a).await;
        assert!(
            heard.iter().all(|m| m["id"] == "pa"),
            "only a's position: {heard:?}"
        );
        let (mut saw_a, mut saw_b) = (false, false);
        let everything = json_until(&mut unrestricted, |m| {
            saw_a |= frame_of(m, "pa", "positionChanged", &offer_a);
            saw_b |= frame_of(m, "pb", "positionChanged", &offer_b);
            saw_a && saw_b
        })
        .await;
        assert!(
            everything.iter().all(|m| m["id"] != "none"),
            "a timeline that does not exist says nothing: {everything:?}"
        );
        assert_eq!(
            payloads(&heard, "pa", "positionChanged"),
            payloads(&everything, "pa", "positionChanged")
        );
        assert_eq!(said_so_far(&mut restricted).await, Vec::<Value>::new());
    });
}

/// `replay` of `timeline`.
fn replay(timeline: &str) -> String {
    format!(
        r#"subscription {{ replay(timeline: "{timeline}") {{ step event {{ id timeline {{ slug }} kind }} positions {{ timeline {{ slug }} party {{ code }} issue {{ slug }} stance event {{ id }} }} standoffs {{ timeline {{ slug }} issue {{ slug }} status sides {{ party {{ code }} stance event }} }} }} }}"#
    )
}

/// Subscribes `id` to the replay of `timeline`; every frame up to its `complete`.
async fn replayed(socket: &mut Socket, id: &str, timeline: &str) -> Vec<Value> {
    subscribe(socket, id, &replay(timeline)).await;
    json_until(socket, |m| m["id"] == id && m["type"] == "complete").await
}

#[test]
fn a_replay_of_a_timeline_not_granted_has_no_step() {
    let store = Store::start();
    runtime().block_on(async {
        let mut restricted = connected(&store, READER_A).await;
        let mut unrestricted = connected(&store, READER_ALL).await;
        let complete = |id: &str| vec![json!({ "type": "complete", "id": id })];
        assert_eq!(replayed(&mut restricted, "rb", "b").await, complete("rb"));
        assert_eq!(
            replayed(&mut unrestricted, "r", NO_SUCH_TIMELINE).await,
            complete("r"),
            "as a timeline that does not exist"
        );
        let of_b = replayed(&mut unrestricted, "rb", "b").await;
        assert_eq!(payloads(&of_b, "rb", "replay").len(), 5, "{of_b:?}");

        let of_a = replayed(&mut restricted, "ra", "a").await;
        let leaks = traces_of_b(&Value::Array(of_a.clone()));
        assert!(leaks.is_empty(), "the replay of a shows b: {leaks:?}");
        assert_eq!(payloads(&of_a, "ra", "replay").len(), 4, "{of_a:?}");
        assert_eq!(of_a, replayed(&mut unrestricted, "ra", "a").await);
    });
}

/// One refused write: what a token granted `a` only asks of `b`, and what the same mutation asks
/// of something that does not exist.
struct Refused {
    what: &'static str,
    token: &'static str,
    mutation: &'static str,
    of_b: Value,
    of_nothing: Value,
    /// What the answer about what does not exist names, read as the thing of `b`.
    read_as: (String, String),
}

const RECORD_ONE: &str = "mutation($timeline: Slug!, $event: EventInput!) { recordEvent(timeline: $timeline, event: $event) { lastPosition } }";
const RECORD_AT_VERSION: &str = "mutation($timeline: Slug!, $event: EventInput!) { recordEvent(timeline: $timeline, event: $event, expectedVersion: { exact: 3 }) { lastPosition } }";
const RETRACT: &str = r#"mutation($event: ID!) { retractEvent(input: { event: $event, reason: "wrong" }) { lastPosition } }"#;
const CORRECT: &str = r#"mutation($event: ID!) { correctEvent(input: { event: $event, reason: "wrong", changes: { summary: "corrected" } }) { lastPosition } }"#;
const PARTY_EU: &str = r#"mutation($timeline: Slug!) { registerParty(input: { timeline: $timeline, code: "EU", name: "European Union", kind: ORGANIZATION }) { lastPosition } }"#;
const ISSUE_STEEL: &str = r#"mutation($timeline: Slug!) { registerIssue(input: { timeline: $timeline, slug: "steel", title: "Steel" }) { lastPosition } }"#;

/// A statement for the writes that are refused.
fn statement(id: &str) -> Value {
    let payload = json!({ "statement": { "claim": "x" } });
    act(
        id,
        "2018-06-01",
        ("USA", "CHN"),
        "tariffs",
        "Elsewhere.",
        payload,
    )
}

fn refused_writes() -> Vec<Refused> {
    let (one, two) = (statement(&id('c', 1)), statement(&id('c', 2)));
    let in_timeline = |timeline: &str| json!({ "timeline": timeline });
    let with_event = |timeline: &str| json!({ "timeline": timeline, "event": one });
    let with_events =
        |timeline: &str, events: &[&Value]| json!({ "timeline": timeline, "events": events });
    let of_event = |event: &str| json!({ "event": event });
    let timeline_b = || (NO_SUCH_TIMELINE.to_owned(), "b".to_owned());
    let event_b = || (unknown_id(), id('b', 13));
    let refused = |what, token, mutation, of_b, of_nothing, read_as| Refused {
        what,
        token,
        mutation,
        of_b,
        of_nothing,
        read_as,
    };
    vec![
        refused(
            "recordEvent into b",
            RECORDER_A,
            RECORD_ONE,
            with_event("b"),
            with_event(NO_SUCH_TIMELINE),
            timeline_b(),
        ),
        refused(
            "recordEvent into b at an expected version",
            RECORDER_A,
            RECORD_AT_VERSION,
            with_event("b"),
            with_event(NO_SUCH_TIMELINE),
            timeline_b(),
        ),
        refused(
            "recordEvents (two) into b",
            RECORDER_A,
            RECORD,
            with_events("b", &[&one, &two]),
            with_events(NO_SUCH_TIMELINE, &[&one, &two]),
            timeline_b(),
        ),
        refused(
            "recordEvents (one) into b by an admin of a",
            ADMIN_A,
            RECORD,
            with_events("b", &[&one]),
            with_events(NO_SUCH_TIMELINE, &[&one]),
            timeline_b(),
        ),
        refused(
            "retractEvent of an event of b",
            RECORDER_A,
            RETRACT,
            of_event(&id('b', 13)),
            of_event(&unknown_id()),
            event_b(),
        ),
        refused(
            "correctEvent of an event of b",
            RECORDER_A,
            CORRECT,
            of_event(&id('b', 13)),
            of_event(&unknown_id()),
            event_b(),
        ),
        refused(
            "registerParty in b by an admin of a",
            ADMIN_A,
            PARTY_EU,
            in_timeline("b"),
            in_timeline(NO_SUCH_TIMELINE),
            timeline_b(),
        ),
        refused(
            "registerIssue in b by an admin of a",
            ADMIN_A,
            ISSUE_STEEL,
            in_timeline("b"),
            in_timeline(NO_SUCH_TIMELINE),
            timeline_b(),
        ),
    ]
}

#[test]
fn writes_outside_a_grant_answer_as_for_what_does_not_exist() {
    let store = Store::start();
    let head = store.server.head();
    let b_version = store.read(ADMIN_ALL, r#"{ timeline(slug: "b") { version } }"#);
    let mut failures = Vec::new();
    for case in refused_writes() {
        let what = case.what;
        let (from, to) = &case.read_as;
        let reply = store
            .server
            .graphql(Some(case.token), case.mutation, case.of_b.clone());
        let answer = reply.json_body();
        // Asked by the admin granted every timeline: the answer b must be given.
        let reference_reply =
            store
                .server
                .graphql(Some(ADMIN_ALL), case.mutation, case.of_nothing.clone());
        let reference = renamed(&reference_reply.json_body(), from, to);
        assert!(
            reference.get("errors").is_some(),
            "{what}: the reference is refused: {reference}"
        );
        // Asked by the same token: b must not stand out among what it cannot see.
        let own = store.ask(case.token, case.mutation, case.of_nothing.clone());
        let own = renamed(&own, from, to);
        if answer != own {
            failures.push(format!(
                "{what}: b stands out: {answer}\n  not, as for what does not exist, {own}"
            ));
        }
        if answer != reference || reply.status != reference_reply.status {
            failures.push(format!(
                "{what}: {} {answer}\n  not, as the admin granted every timeline is told of what \
                 does not exist, {} {reference}",
                reply.status, reference_reply.status
            ));
        }
    }
    for mutation in [RETRACT, CORRECT] {
        let answer = store.ask(RECORDER_A, mutation, json!({ "event": id('b', 13) }));
        let error = &answer["errors"][0]["extensions"];
        assert_eq!(error["code"], "NOT_FOUND", "{mutation}: {answer}");
        assert_eq!(error["field"], "input.event", "{mutation}: {answer}");
    }

    // Opening a timeline outside the grant is refused outright, b as c.
    let register = |slug: &str| store.ask(ADMIN_A, REGISTER_TIMELINE, json!({ "slug": slug }));
    let c = register("c");
    assert_eq!(c["errors"][0]["extensions"]["code"], "FORBIDDEN", "{c}");
    assert_eq!(c["errors"][0]["extensions"]["field"], "input.slug", "{c}");
    assert_eq!(renamed(&c, "timeline c,", "timeline b,"), register("b"));

    assert_eq!(store.server.head(), head, "nothing was written");
    let b_now = store.read(ADMIN_ALL, r#"{ timeline(slug: "b") { version } }"#);
    assert_eq!(b_now, b_version);
    // Within the grant, the same tokens write.
    let in_a = json!({ "timeline": "a", "event": statement(&id('a', 31)) });
    store.write(RECORDER_A, RECORD_ONE, in_a);
    store.write(ADMIN_A, PARTY_EU, json!({ "timeline": "a" }));
    assert!(
        failures.is_empty(),
        "{} answers differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The act of a payload that names an earlier event.
type Naming = fn(&str) -> Value;

#[test]
fn references_to_events_of_other_timelines_answer_as_if_they_did_not_exist() {
    let store = Store::start();
    let head = store.server.head();
    let unknown = unknown_id();
    // (what, the act of a that names an earlier event, the event of b it names).
    let cases: [(&str, Naming, String); 4] = [
        (
            "a refusal of an act of b",
            |refused| json!({ "refusal": { "terms": "no", "of": "TO_ACCEPT", "refuses": [refused] } }),
            id('b', 11),
        ),
        (
            "a concession answering an act of b",
            |answered| json!({ "concession": { "terms": "some", "answers": [answered] } }),
            id('b', 12),
        ),
        (
            "an offer restating an offer of b",
            |offer| json!({ "offer": { "terms": "again", "reaffirms": offer } }),
            id('b', 11),
        ),
        (
            "an offer restating talks of b",
            |talks| json!({ "offer": { "terms": "again", "reaffirms": talks } }),
            id('b', 15),
        ),
    ];
    let mut failures = Vec::new();
    for (n, (what, naming, of_b)) in (41..).zip(cases) {
        let event = |named: &str| {
            let summary = format!("China answers {named}.");
            act(
                &id('a', n),
                "2018-06-01",
                ("CHN", "USA"),
                "tariffs",
                &summary,
                naming(named),
            )
        };
        // The id not in the log first: refused, it writes nothing, and the same event id
        // serves for b's.
        let reference = store.ask(
            RECORDER_A,
            RECORD,
            json!({ "timeline": "a", "events": [event(&unknown)] }),
        );
        assert!(reference.get("errors").is_some(), "{what}: {reference}");
        let answer = store.ask(
            RECORDER_A,
            RECORD,
            json!({ "timeline": "a", "events": [event(&of_b)] }),
        );
        let reference = renamed(&reference, &unknown, &of_b);
        if answer != reference {
            failures.push(format!("{what}: {answer}\n  not {reference}"));
        }
    }
    assert!(
        failures.is_empty(),
        "a recorder granted a can tell events of b from ids not in the log:\n{}",
        failures.join("\n")
    );
    assert_eq!(store.server.head(), head, "nothing was written");
}

#[test]
fn only_an_admin_granted_every_timeline_takes_a_backup() {
    let store = Store::start();
    let export = |token: &str| {
        let bearer = format!("Bearer {token}");
        let http = store.server.http();
        http.request("GET", "/export", &[("Authorization", &bearer)], None)
            .unwrap()
    };
    let backup = export(ADMIN_ALL);
    assert_eq!(backup.status, 200, "{}", backup.text());
    assert!(backup.text().contains(&id('b', 15)), "the backup holds b");
    for (token, status) in [
        (ADMIN_A, 403),
        (READER_A, 403),
        (RECORDER_A, 403),
        (READER_ALL, 403),
        (EXPIRED_READER, 401),
    ] {
        let refused = export(token);
        assert_eq!(refused.status, status, "{token}: {}", refused.text());
        assert!(!refused.text().contains(B_MARK), "{}", refused.text());
    }
}

#[test]
fn a_token_given_by_its_digest_is_accepted_and_an_expired_one_refused() {
    let store = Store::start();
    // The token configured by its digest alone is accepted, with its grant.
    let timelines = "{ timelines { slug } }";
    let only_a = json!({ "timelines": [{ "slug": "a" }] });
    assert_eq!(store.read(HASHED_READER_A, timelines), only_a);

    // The expired one is refused whatever it asks: 401 over HTTP.
    for question in [timelines, "{ head { position } }"] {
        let reply = store
            .server
            .graphql(Some(EXPIRED_READER), question, json!({}));
        let body = reply.json_body();
        assert_eq!(reply.status, 401, "{body}");
        let code = &body["errors"][0]["extensions"]["code"];
        assert_eq!(code, "UNAUTHORIZED", "{body}");
        assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    }

    runtime().block_on(async {
        // Over WebSocket: the hashed token is acknowledged, the expired one closed with 4403.
        let address = store.server.address();
        ws::connect(address, Some(HASHED_READER_A), None)
            .await
            .unwrap();
        let mut socket = ws::open(address, None).await.unwrap();
        let bearer = format!("Bearer {EXPIRED_READER}");
        let init = json!({ "type": "connection_init", "payload": { "authorization": bearer } });
        ws::send(&mut socket, &init).await.unwrap();
        match ws::hear(&mut socket).await {
            Heard::Closed(4403) => {}
            other => panic!("an expired token's connection_init is closed with 4403: {other:?}"),
        }
    });
}

#[test]
fn a_timeline_s_timelinejs_file_is_served_to_readers_granted_it_alone() {
    let store = Store::start();
    let published = |token: &str, slug: &str| {
        let bearer = format!("Bearer {token}");
        let http = store.server.http();
        let path = format!("/timelines/{slug}/timelinejs.json");
        http.request("GET", &path, &[("Authorization", &bearer)], None)
            .unwrap()
    };
    let of_a = published(READER_A, "a");
    assert_eq!(of_a.status, 200, "{}", of_a.text());
    let file: Value = serde_json::from_str(&of_a.text()).unwrap();
    assert!(!file["events"].as_array().unwrap().is_empty(), "{file}");
    assert_eq!(traces_of_b(&file), Vec::<String>::new());
    let unrestricted = published(READER_ALL, "a");
    assert_eq!(
        unrestricted.text(),
        of_a.text(),
        "the same file as a token granted every timeline gets"
    );

    // b, to every token not granted it, is what a timeline that does not exist is.
    let absent = published(READER_ALL, NO_SUCH_TIMELINE);
    assert_eq!(absent.status, 404, "{}", absent.text());
    for token in [READER_A, RECORDER_A, ADMIN_A, HASHED_READER_A] {
        let refused = published(token, "b");
        assert_eq!(refused.status, 404, "{token}: {}", refused.text());
        assert_eq!(
            refused.text().replace("b\n", ""),
            absent.text().replace(&format!("{NO_SUCH_TIMELINE}\n"), ""),
            "{token}"
        );
    }
    let of_b = published(READER_ALL, "b");
    assert_eq!(of_b.status, 200, "{}", of_b.text());
    assert!(of_b.text().contains(B_MARK), "{}", of_b.text());
    assert_eq!(published(EXPIRED_READER, "a").status, 401);
}
