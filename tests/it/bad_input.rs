//! The bad-input catalogue: every kind of hostile or malformed request we know of, sent to a real
//! `chancery serve --demo`, each answered with a clear error (HTTP status, `extensions.code`, the
//! field at fault) and none of them moving the log's head. `--nocapture` prints the catalogue.

use std::time::{Duration, Instant};

use base64::Engine;
use chancery_testkit::http::Client;
use serde_json::{Value, json};

use crate::support::{ADMIN, READER, RECORDER, Server, demo};

/// The log's head as `{ position hash }`.
fn head(server: &Server) -> Value {
    server.query("{ head { position hash } }")["head"].clone()
}

/// What a case sends.
enum Send {
    /// A GraphQL request as JSON, with a token or none.
    Graphql {
        token: Option<&'static str>,
        query: String,
        variables: Value,
    },
    /// Bytes exactly as given.
    Raw {
        method: &'static str,
        headers: Vec<(&'static str, String)>,
        body: Option<Vec<u8>>,
    },
}

/// What a case must get back.
struct Expect {
    status: u16,
    code: &'static str,
    /// The field at fault, as `extensions.field` must name it.
    field: Option<&'static str>,
    /// What the message must mention instead, where async-graphql refuses a value while coercing
    /// it and names no field (the value at fault).
    mention: Option<String>,
}

struct Case {
    name: String,
    send: Send,
    expect: Expect,
}

fn gql(token: Option<&'static str>, query: impl Into<String>, variables: Value) -> Send {
    Send::Graphql {
        token,
        query: query.into(),
        variables,
    }
}

fn raw(content_type: &str, body: impl Into<Vec<u8>>) -> Send {
    Send::Raw {
        method: "POST",
        headers: vec![("Content-Type", content_type.to_owned())],
        body: Some(body.into()),
    }
}

/// A JSON body posted with one more header than its content type.
fn json_with_header(header: (&'static str, &str), body: &str) -> Send {
    Send::Raw {
        method: "POST",
        headers: vec![
            ("Content-Type", "application/json".into()),
            (header.0, header.1.to_owned()),
        ],
        body: Some(body.as_bytes().to_vec()),
    }
}

/// A GraphQL request without a token or variables.
fn anonymous(query: impl Into<String>) -> Send {
    gql(None, query, json!({}))
}

fn expect(status: u16, code: &'static str, field: Option<&'static str>) -> Expect {
    Expect {
        status,
        code,
        field,
        mention: None,
    }
}

/// A refusal by validation that names `field`.
fn invalid(field: &'static str) -> Expect {
    expect(200, "VALIDATION", Some(field))
}

/// An error that names no field but whose message must mention `what`.
fn mentioning(status: u16, code: &'static str, what: &str) -> Expect {
    Expect {
        status,
        code,
        field: None,
        mention: Some(what.to_owned()),
    }
}

/// A recordEvent mutation of a threat, with `fields` spliced into the event input (later fields
/// may not repeat earlier ones, so each case replaces what it breaks).
fn threat(fields: &str) -> String {
    format!(
        r#"mutation {{ recordEvent(timeline: "us-china-trade", event: {{ {fields} }}) {{ lastPosition }} }}"#
    )
}

/// The parts of a valid threat, to be combined with one broken part.
const OCCURRED: &str = r#"occurred: { start: "2018-05-05" }"#;
const ACTORS: &str = r#"actors: [{ party: "USA" }], targets: [{ party: "CHN" }]"#;
const ISSUES: &str = r#"issues: ["tariffs"]"#;
const SUMMARY: &str = r#"summary: "s""#;
const SOURCES: &str = r#"sources: [{ publication: "W", attribution: NAMED }]"#;
const ACT: &str = r#"act: { threat: { terms: "t", instrument: TARIFF } }"#;

/// A threat with every part valid except the one replaced.
fn threat_with(replace: &[(&str, &str)]) -> String {
    let parts = [OCCURRED, ACTORS, ISSUES, SUMMARY, SOURCES, ACT];
    let fields: Vec<String> = parts
        .iter()
        .map(|part| {
            replace
                .iter()
                .find(|(key, _)| part.starts_with(key))
                .map_or((*part).to_owned(), |(_, with)| (*with).to_owned())
        })
        .collect();
    threat(&fields.join(", "))
}

fn amount(value: &str, unit: &str) -> String {
    format!(r#"amounts: [{{ value: {value}, unit: "{unit}", measures: "goods" }}], {ISSUES}"#)
}

/// A query whose events page uses the given cursor.
fn page(order: &str, after: &str) -> String {
    format!(r#"{{ events(order: {order}, first: 2, after: "{after}") {{ edges {{ cursor }} }} }}"#)
}

/// Base64url without padding, as the server writes cursors: to forge one.
fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// [`threat_with`] sent by a recorder, without variables.
fn threat_sent(replace: &[(&str, &str)]) -> Send {
    gql(Some(RECORDER), threat_with(replace), json!({}))
}

/// The cursors the server gives, one of each ordering.
fn cursors(server: &Server) -> (String, String) {
    let first = |order: &str| {
        let data = server.query(&format!(
            "{{ events(order: {order}, first: 1) {{ edges {{ cursor }} }} }}"
        ));
        data["events"]["edges"][0]["cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("no cursor: {data}"))
            .to_owned()
    };
    (first("LOG"), first("VALID_TIME"))
}

fn http_cases(log_cursor: &str, valid_cursor: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |name: &str, send: Send, expect: Expect| {
        cases.push(Case {
            name: name.to_owned(),
            send,
            expect,
        })
    };
    let head_query = "{ head { position } }";

    // The body itself.
    add(
        "malformed JSON body",
        raw("application/json", &b"{\"query\":"[..]),
        expect(400, "VALIDATION", None),
    );
    add(
        "body not UTF-8",
        raw("application/json", &b"{\"query\":\"\xff\xfe\"}"[..]),
        expect(400, "VALIDATION", None),
    );
    add(
        "body a JSON number",
        raw("application/json", "42"),
        expect(400, "VALIDATION", None),
    );
    add(
        "query not a string",
        raw("application/json", r#"{"query":5}"#),
        expect(400, "VALIDATION", None),
    );
    add(
        "variables not an object",
        raw(
            "application/json",
            r#"{"query":"{ head { position } }","variables":[1]}"#,
        ),
        expect(400, "VALIDATION", None),
    );
    add(
        "NaN in variables (not JSON)",
        raw(
            "application/json",
            r#"{"query":"query($v: Long) { event(id: \"x\", atLeast: $v) { id } }","variables":{"v":NaN}}"#,
        ),
        expect(400, "VALIDATION", None),
    );
    add(
        "JSON nested 100,000 deep",
        raw(
            "application/json",
            format!(
                r#"{{"query":"{{ head {{ position }} }}","variables":{{"v":{}{}}}}}"#,
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
        ),
        expect(400, "VALIDATION", None),
    );
    add(
        "form content type",
        raw("text/plain", r#"{"query":"{ head { position } }"}"#),
        expect(415, "VALIDATION", None),
    );
    add(
        "Accept nothing we write",
        json_with_header(
            ("Accept", "text/html"),
            r#"{"query":"{ head { position } }"}"#,
        ),
        expect(406, "VALIDATION", None),
    );
    add(
        "body over 4 MiB",
        raw(
            "application/json",
            format!(
                r#"{{"query":"{{ head {{ position }} }}","variables":{{"x":"{}"}}}}"#,
                "x".repeat(5 * 1024 * 1024)
            ),
        ),
        expect(413, "LIMIT", None),
    );
    add(
        "mutation over GET",
        Send::Raw {
            method: "GET",
            headers: vec![],
            body: None,
        },
        expect(405, "VALIDATION", None),
    );

    // The document.
    add(
        "query does not parse",
        anonymous("{ head { position "),
        expect(200, "VALIDATION", None),
    );
    add(
        "query does not parse (graphql-response+json)",
        json_with_header(
            ("Accept", "application/graphql-response+json"),
            r#"{"query":"{ head { position "}"#,
        ),
        expect(400, "VALIDATION", None),
    );
    add(
        "unknown field",
        anonymous("{ head { position secret } }"),
        expect(200, "VALIDATION", None),
    );
    add(
        "unknown argument",
        anonymous("{ head(all: true) { position } }"),
        expect(200, "VALIDATION", None),
    );
    add(
        "fragment cycle",
        anonymous("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"),
        // async-graphql finds a cycle by its recursion limit (32 spreads deep): a LIMIT.
        mentioning(200, "LIMIT", "recursion depth"),
    );
    add(
        "500 anonymous operations",
        anonymous("{ head { position } } ".repeat(500)),
        expect(200, "VALIDATION", None),
    );
    add(
        "braces nested 10,000 deep",
        anonymous(format!(
            "{{ head {}{} }}",
            "{ position ".repeat(10_000),
            "}".repeat(10_000)
        )),
        expect(200, "VALIDATION", None),
    );
    add(
        "list literal nested 10,000 deep",
        anonymous(format!(
            "{{ positions(parties: {}{}) {{ stance }} }}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        )),
        expect(200, "VALIDATION", None),
    );

    // Variables and scalars.
    add(
        "wrong type in variables (string for Long)",
        gql(
            None,
            "query($v: Long) { head { position } event(id: \"x\", atLeast: $v) { id } }",
            json!({ "v": "twenty" }),
        ),
        mentioning(200, "VALIDATION", "\"twenty\""),
    );
    add(
        "wrong type in variables (object for String)",
        gql(
            Some(RECORDER),
            "mutation($s: String!) { recordEvent(timeline: \"us-china-trade\", event: { occurred: { start: \"2018-05-05\" }, actors: [{ party: \"USA\" }], summary: $s, sources: [{ publication: \"W\", attribution: NAMED }], act: { statement: { claim: \"c\" } } }) { lastPosition } }",
            json!({ "s": { "nested": true } }),
        ),
        invalid("event.summary"),
    );
    add(
        "negative Long",
        anonymous("{ event(id: \"x\", atLeast: -1) { id } }"),
        mentioning(200, "VALIDATION", "-1 is not an integer"),
    );
    add(
        "Long beyond 2^53",
        anonymous("{ event(id: \"x\", atLeast: 18446744073709551615) { id } }"),
        mentioning(200, "VALIDATION", "18446744073709551615 is not an integer"),
    );
    add(
        "unknown enum value (literal)",
        threat_sent(&[(
            "act:",
            r#"act: { threat: { terms: "t", instrument: NUKE } }"#,
        )]),
        invalid("event.act.threat.instrument"),
    );
    add(
        "unknown enum value (variable)",
        gql(
            None,
            "query($o: EventOrder!) { events(order: $o) { edges { cursor } } }",
            json!({ "o": "RANDOM" }),
        ),
        invalid("order"),
    );
    // An enum value is written bare in a document; a string there is refused, though
    // async-graphql would take it. In variables (JSON) enum values are strings, as above.
    add(
        "enum value written as a string (argument)",
        anonymous(r#"{ events(order: "VALID_TIME", first: 1) { edges { cursor } } }"#),
        invalid("order"),
    );
    add(
        "enum value written as a string (in a list in an input)",
        anonymous(r#"{ events(filter: { kinds: [OFFER, "DEMAND"] }) { edges { cursor } } }"#),
        invalid("filter.kinds[1]"),
    );
    add(
        "enum value written as a string (in an event)",
        threat_sent(&[(
            "act:",
            r#"act: { threat: { terms: "t", instrument: "TARIFF" } }"#,
        )]),
        invalid("event.act.threat.instrument"),
    );
    add(
        "bad slug",
        anonymous("{ timeline(slug: \"Not A Slug!\") { title } }"),
        mentioning(200, "VALIDATION", "invalid slug \"Not A Slug!\""),
    );
    add(
        "slug of 1 MB",
        anonymous(format!(
            "{{ timeline(slug: \"{}\") {{ title }} }}",
            "a".repeat(1_000_000)
        )),
        mentioning(200, "VALIDATION", "invalid slug \"aaaa"),
    );

    // Dates.
    for (name, start) in [
        ("invalid date (30 February)", "2018-02-30"),
        ("invalid date (month 13)", "2018-13"),
        ("invalid date (words)", "yesterday"),
        (
            "invalid date (instant without offset)",
            "2018-05-03T09:30:00",
        ),
        ("invalid date (year 0)", "0000"),
    ] {
        add(
            name,
            threat_sent(&[("occurred:", &format!(r#"occurred: {{ start: "{start}" }}"#))]),
            mentioning(200, "VALIDATION", &format!("invalid time \"{start}\"")),
        );
    }
    add(
        "end before start",
        threat_sent(&[(
            "occurred:",
            r#"occurred: { start: "2018-05-05", end: "2018-05-01" }"#,
        )]),
        invalid("event.occurred.end"),
    );
    add(
        "invalid asOf instant",
        anonymous("{ positions(asOf: { knownAtTime: \"last tuesday\" }) { stance } }"),
        mentioning(200, "VALIDATION", "invalid time \"last tuesday\""),
    );

    // Amounts and numbers.
    for (name, value, unit, field) in [
        ("negative amount", "-5", "USD", "event.amounts[0].value"),
        (
            "huge amount (1e17)",
            "1e17",
            "USD",
            "event.amounts[0].value",
        ),
        (
            "NaN amount (literal)",
            "NaN",
            "USD",
            "event.amounts[0].value",
        ),
        (
            "percent over 10,000",
            "20000",
            "PERCENT",
            "event.amounts[0].value",
        ),
        ("unknown currency", "5", "USX", "event.amounts[0].unit"),
    ] {
        add(
            name,
            threat_sent(&[("issues:", &amount(value, unit))]),
            invalid(field),
        );
    }
    add(
        "infinite amount (literal 1e400)",
        threat_sent(&[("issues:", &amount("1e400", "USD"))]),
        mentioning(200, "VALIDATION", "number out of range"),
    );
    add(
        "huge amount (variable, 1e300)",
        gql(
            Some(RECORDER),
            format!(
                r#"mutation($v: Float!) {{ recordEvent(timeline: "us-china-trade", event: {{ {OCCURRED}, {ACTORS}, amounts: [{{ value: $v, unit: "USD", measures: "m" }}], {SUMMARY}, {SOURCES}, {ACT} }}) {{ lastPosition }} }}"#
            ),
            json!({ "v": 1e300 }),
        ),
        invalid("event.amounts[0].value"),
    );
    add(
        "confidence above 1",
        threat_sent(&[("summary:", r#"summary: "s", confidence: 1.5"#)]),
        invalid("event.confidence"),
    );
    add(
        "atLeast a position never written",
        anonymous("{ positions(atLeast: 1000000) { stance } }"),
        expect(200, "LIMIT", Some("atLeast")),
    );
    add(
        "negative page size",
        anonymous("{ events(first: -1) { edges { cursor } } }"),
        invalid("first"),
    );
    add(
        "page size over 500",
        anonymous("{ events(first: 501) { edges { cursor } } }"),
        expect(200, "LIMIT", Some("first")),
    );
    add(
        "first and last together",
        anonymous("{ events(first: 1, last: 1) { edges { cursor } } }"),
        invalid("last"),
    );

    // References.
    add(
        "unknown acting party",
        threat_sent(&[(
            "actors:",
            r#"actors: [{ party: "FRA" }], targets: [{ party: "CHN" }]"#,
        )]),
        invalid("event.actors[0].party"),
    );
    add(
        "unknown actor of a party",
        threat_sent(&[(
            "actors:",
            r#"actors: [{ party: "USA", actor: "nobody-at-all" }], targets: [{ party: "CHN" }]"#,
        )]),
        invalid("event.actors[0].actor"),
    );
    add(
        "unknown issue",
        threat_sent(&[("issues:", r#"issues: ["fishing-rights"]"#)]),
        invalid("event.issues[0]"),
    );
    add(
        "unknown timeline",
        gql(
            Some(RECORDER),
            threat_with(&[]).replace("us-china-trade", "atlantis-talks"),
            json!({}),
        ),
        invalid("timeline"),
    );
    add(
        "retraction of an unknown event",
        gql(
            Some(RECORDER),
            r#"mutation { retractEvent(input: { event: "016318ff-b000-7000-8000-0000000000ff", reason: "x" }) { lastPosition } }"#,
            json!({}),
        ),
        expect(200, "NOT_FOUND", Some("input.event")),
    );
    add(
        "refusal of an unknown event",
        threat_sent(&[(
            "act:",
            r#"act: { refusal: { terms: "no", of: TO_ACCEPT, refuses: ["016318ff-b000-7000-8000-0000000000ff"] } }"#,
        )]),
        invalid("event.act.refusal.refuses[0]"),
    );
    add(
        "actor of an unknown party",
        gql(
            Some(ADMIN),
            r#"mutation { registerActor(input: { timeline: "us-china-trade", slug: "jean-dupont", name: "Jean Dupont", party: "FRA", role: "envoy" }) { lastPosition } }"#,
            json!({}),
        ),
        invalid("input.party"),
    );

    // Ids and versions.
    add(
        "id not a UUID",
        threat_sent(&[("occurred:", &format!(r#"id: "not-a-uuid", {OCCURRED}"#))]),
        invalid("event.id"),
    );
    add(
        "id a UUID v4",
        threat_sent(&[(
            "occurred:",
            &format!(r#"id: "2f1c7e3a-5b7d-4c1e-9a3f-6d2b8e4f0a11", {OCCURRED}"#),
        )]),
        invalid("event.id"),
    );
    add(
        "id of a demo event with other content",
        threat_sent(&[(
            "occurred:",
            &format!(r#"id: "016318ff-b000-7000-8000-00000000000f", {OCCURRED}"#),
        )]),
        expect(200, "CONFLICT", Some("id")),
    );
    add(
        "stale expected version",
        gql(
            Some(RECORDER),
            threat_with(&[]).replace("event: {", "expectedVersion: { exact: 3 }, event: {"),
            json!({}),
        ),
        expect(200, "CONFLICT", Some("expectedVersion")),
    );
    add(
        "two kinds in one act (@oneOf)",
        threat_sent(&[(
            "act:",
            r#"act: { offer: { terms: "a" }, demand: { terms: "b" } }"#,
        )]),
        invalid("event.act"),
    );
    add(
        "no kind in the act (@oneOf)",
        threat_sent(&[("act:", "act: {}")]),
        invalid("event.act"),
    );

    // Oversized and forbidden text, too many entries.
    add(
        "summary over 2,000 characters",
        threat_sent(&[("summary:", &format!(r#"summary: "{}""#, "x".repeat(2_001)))]),
        invalid("event.summary"),
    );
    add(
        "summary of 3 MB",
        gql(
            Some(RECORDER),
            threat_with(&[("summary:", "summary: $s")])
                .replace("mutation {", "mutation($s: String!) {"),
            json!({ "s": "x".repeat(3_000_000) }),
        ),
        invalid("event.summary"),
    );
    add(
        "control character in summary",
        gql(
            Some(RECORDER),
            threat_with(&[("summary:", r#"summary: "bell \u0007 here""#)]),
            json!({}),
        ),
        invalid("event.summary"),
    );
    add(
        "quote over 500 characters",
        threat_sent(&[(
            "sources:",
            &format!(
                r#"sources: [{{ publication: "W", attribution: NAMED, quote: "{}" }}]"#,
                "q".repeat(501)
            ),
        )]),
        invalid("event.sources[0].quote"),
    );
    add(
        "source URL not http",
        threat_sent(&[(
            "sources:",
            r#"sources: [{ publication: "W", attribution: NAMED, url: "javascript:alert(1)" }]"#,
        )]),
        invalid("event.sources[0].url"),
    );
    add(
        "33 sources",
        threat_sent(&[(
            "sources:",
            &format!(
                "sources: [{}]",
                vec![r#"{ publication: "W", attribution: NAMED }"#; 33].join(", ")
            ),
        )]),
        invalid("event.sources"),
    );
    add(
        "no source",
        threat_sent(&[("sources:", "sources: []")]),
        invalid("event.sources"),
    );
    add(
        "batch of 1,001 events",
        gql(
            Some(RECORDER),
            format!(
                r#"mutation {{ recordEvents(timeline: "us-china-trade", events: [{}]) {{ lastPosition }} }}"#,
                vec![format!("{{ {OCCURRED}, {ACTORS}, {SUMMARY}, {SOURCES}, {ACT} }}"); 1_001]
                    .join(", ")
            ),
            json!({}),
        ),
        expect(200, "LIMIT", Some("events")),
    );
    add(
        "batch with one bad event of 3",
        gql(
            Some(RECORDER),
            format!(
                r#"mutation {{ recordEvents(timeline: "us-china-trade", events: [{ok}, {ok}, {{ {OCCURRED}, {ACTORS}, {SUMMARY}, sources: [], {ACT} }}]) {{ lastPosition }} }}"#,
                ok = format!("{{ {OCCURRED}, {ACTORS}, {SUMMARY}, {SOURCES}, {ACT} }}")
            ),
            json!({}),
        ),
        invalid("events[2].sources"),
    );

    // Cost: depth, width, aliases, batches.
    add(
        "deep query (introspection, depth 18)",
        anonymous(format!(
            "{{ __schema {{ types {{ fields {{ type {}name{} }} }} }} }}",
            "{ ofType ".repeat(14),
            " }".repeat(14)
        )),
        expect(200, "LIMIT", None),
    );
    add(
        "wide query (one field repeated 6,000 times)",
        anonymous(format!("{{ {} }}", "head { position } ".repeat(6_000))),
        expect(200, "LIMIT", None),
    );
    add(
        "alias flood (31 aliases)",
        anonymous(format!(
            "{{ {} }}",
            (0..31)
                .map(|i| format!("a{i}: head {{ position }} "))
                .collect::<String>()
        )),
        expect(200, "LIMIT", None),
    );
    add(
        "alias flood through fragments (15 x 15)",
        anonymous(format!(
            "{{ ...A }} fragment A on Query {{ {} }} fragment B on Head {{ {} }}",
            (0..15)
                .map(|i| format!("a{i}: head {{ ...B }} "))
                .collect::<String>(),
            (0..15)
                .map(|i| format!("b{i}: position "))
                .collect::<String>()
        )),
        expect(200, "LIMIT", None),
    );
    add(
        "fragment chain 5,000 long",
        anonymous(format!(
            "{{ ...F0 }} {}fragment F5000 on Query {{ head {{ position }} }}",
            (0..5_000)
                .map(|i| format!(
                    "fragment F{i} on Query {{ head {{ position }} ...F{} }} ",
                    i + 1
                ))
                .collect::<String>()
        )),
        expect(200, "LIMIT", None),
    );
    add(
        "HTTP batch of 11",
        raw(
            "application/json",
            Value::Array(vec![json!({ "query": head_query }); 11]).to_string(),
        ),
        expect(400, "LIMIT", None),
    );
    add(
        "empty HTTP batch",
        raw("application/json", "[]"),
        expect(400, "VALIDATION", None),
    );

    // Cursors.
    add(
        "garbage cursor",
        anonymous(page("LOG", "!!not-a-cursor!!")),
        invalid("after"),
    );
    add(
        "cursor of another ordering (valid time for LOG)",
        anonymous(page("LOG", valid_cursor)),
        invalid("after"),
    );
    add(
        "cursor of another ordering (log for VALID_TIME)",
        anonymous(page("VALID_TIME", log_cursor)),
        invalid("after"),
    );
    add(
        "forged cursor (position 2^64-1)",
        anonymous(page("LOG", &base64url(b"log:18446744073709551615"))),
        invalid("after"),
    );
    add(
        "forged cursor (bad precision)",
        anonymous(page("VALID_TIME", &base64url(b"valid:0:9:1:1"))),
        invalid("after"),
    );

    // Access.
    let register = r#"mutation { registerParty(input: { timeline: "us-china-trade", code: "EU", name: "European Union", kind: ORGANIZATION }) { lastPosition } }"#;
    add(
        "forged token",
        gql(Some("forged-token-0000000000000"), head_query, json!({})),
        expect(401, "UNAUTHORIZED", None),
    );
    add(
        "token one character off",
        gql(Some("recorder-token-bad-input-0002"), head_query, json!({})),
        expect(401, "UNAUTHORIZED", None),
    );
    add(
        "expired or revoked token (not configured here)",
        gql(Some("recorder-token-of-last-year-01"), register, json!({})),
        expect(401, "UNAUTHORIZED", None),
    );
    add(
        "token in another scheme (Basic)",
        json_with_header(
            ("Authorization", "Basic cmVjb3JkZXI6Ug=="),
            r#"{"query":"{ head { position } }"}"#,
        ),
        expect(401, "UNAUTHORIZED", None),
    );
    add(
        "no token on a mutation",
        anonymous(threat_with(&[])),
        expect(200, "UNAUTHORIZED", None),
    );
    add(
        "reader token on a mutation",
        gql(Some(READER), threat_with(&[]), json!({})),
        expect(200, "FORBIDDEN", None),
    );
    add(
        "recorder token on registerParty",
        gql(Some(RECORDER), register, json!({})),
        expect(200, "FORBIDDEN", None),
    );
    add(
        "recorder token on registerTimeline",
        gql(
            Some(RECORDER),
            r#"mutation { registerTimeline(input: { slug: "eu-china-trade", title: "EU-China" }) { lastPosition } }"#,
            json!({}),
        ),
        expect(200, "FORBIDDEN", None),
    );
    add(
        "recorder token on registerIssue",
        gql(
            Some(RECORDER),
            r#"mutation { registerIssue(input: { timeline: "us-china-trade", slug: "steel", title: "Steel" }) { lastPosition } }"#,
            json!({}),
        ),
        expect(200, "FORBIDDEN", None),
    );
    add(
        "HTTP batch of 10 mutations without a token",
        raw(
            "application/json",
            Value::Array(vec![json!({ "query": threat_with(&[]) }); 10]).to_string(),
        ),
        expect(200, "UNAUTHORIZED", None),
    );
    cases
}

/// Sends one case and checks its answer; returns the line it prints.
fn run_http_case(http: &Client, case: &Case) -> Result<String, String> {
    let reply = match &case.send {
        Send::Graphql {
            token,
            query,
            variables,
        } => http.graphql(*token, query, variables),
        Send::Raw {
            method,
            headers,
            body,
        } => {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let path = if *method == "GET" {
                "/graphql?query=mutation%7BregisterTimeline(input%3A%7Bslug%3A%22x%22%2Ctitle%3A%22x%22%7D)%7BlastPosition%7D%7D"
            } else {
                "/graphql"
            };
            http.request(method, path, &headers, body.as_deref())
        }
    }
    .map_err(|e| format!("no answer: {e}"))?;
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    let body = reply
        .json()
        .map_err(|_| format!("status {}, body not JSON: {text:.300}", reply.status))?;
    // A batch answers with an array: every answer in it must be the expected error.
    let answers: Vec<&Value> = match &body {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    let mut line = String::new();
    for answer in answers {
        line = check_error(answer, &case.expect)?;
    }
    if reply.status != case.expect.status {
        return Err(format!(
            "status {} (expected {}): {text:.300}",
            reply.status, case.expect.status
        ));
    }
    Ok(format!("{:>3}  {line}", reply.status))
}

/// Checks one GraphQL answer's first error: its code, the field it names (`extensions.field`),
/// what its message must mention, and that the message neither shows the server's insides nor
/// echoes a huge input. Returns "CODE field".
fn check_error(answer: &Value, expect: &Expect) -> Result<String, String> {
    let error = &answer["errors"][0];
    let code = error["extensions"]["code"].as_str().unwrap_or("(none)");
    let message = error["message"].as_str().unwrap_or("");
    let shown = format!("{answer}");
    if code != expect.code {
        return Err(format!(
            "code {code} (expected {}): {shown:.400}",
            expect.code
        ));
    }
    for leak in [
        ".rs:",
        "panicked",
        "thread '",
        "sled",
        "os error",
        "RUST_BACKTRACE",
    ] {
        if message.contains(leak) {
            return Err(format!("the message shows internals ({leak}): {message}"));
        }
    }
    if message.len() > 4_096 {
        return Err(format!(
            "a message of {} bytes: {message:.200}",
            message.len()
        ));
    }
    let field = error["extensions"]["field"].as_str();
    if field != expect.field {
        return Err(format!(
            "field {field:?} (expected {:?}): {shown:.400}",
            expect.field
        ));
    }
    if let Some(mention) = expect
        .mention
        .as_ref()
        .filter(|m| !message.contains(m.as_str()))
    {
        return Err(format!("the message does not mention {mention}: {message}"));
    }
    let named = match (field, &expect.mention) {
        (Some(f), _) => f.to_owned(),
        (None, Some(m)) => format!("(message: {m})"),
        (None, None) => String::new(),
    };
    Ok(format!("{code:<12} {named}"))
}

/// A case's line with the time its answer took.
fn timed(line: String, started: Instant) -> String {
    format!("{line:<48} {:>6} ms", started.elapsed().as_millis())
}

/// Runs one case, then checks that the head has not moved; prints its line, returns whether it
/// passed.
fn report(server: &Server, before: &Value, name: &str, outcome: Result<String, String>) -> bool {
    let now = head(server);
    let outcome = outcome.and_then(|line| {
        if now == *before {
            Ok(line)
        } else {
            Err(format!("the head moved from {before} to {now}"))
        }
    });
    match outcome {
        Ok(line) => {
            println!("  ok    {name:<52} {line}");
            true
        }
        Err(why) => {
            println!("  FAIL  {name:<52} {why}");
            false
        }
    }
}

#[test]
fn every_bad_request_is_refused_clearly_and_writes_nothing() {
    let server = demo(&["--max-wait-ms", "500", "--ws-init-timeout", "1"]);
    let (address, http) = (server.address(), server.http());
    let (log_cursor, valid_cursor) = cursors(&server);
    let before = head(&server);
    assert_eq!(before["position"], 28, "the demo is loaded");
    let mut failed = Vec::new();
    println!("\nbad input over HTTP (case, status, code, field at fault):");
    let cases = http_cases(&log_cursor, &valid_cursor);
    for case in &cases {
        let started = Instant::now();
        let outcome = run_http_case(&http, case).map(|line| timed(line, started));
        if !report(&server, &before, &case.name, outcome) {
            failed.push(case.name.clone());
        }
    }
    println!("\nbad input over WebSocket (case, what the server answered):");
    let runtime = crate::support::runtime();
    for name in websocket::CASES {
        let started = Instant::now();
        let outcome = runtime
            .block_on(websocket::run_case(address, &valid_cursor, name))
            .map(|line| timed(format!(" ws  {line}"), started));
        if !report(&server, &before, name, outcome) {
            failed.push((*name).to_owned());
        }
    }
    let total = cases.len() + websocket::CASES.len();
    println!(
        "\n{total} bad-input cases ({} over HTTP, {} over WebSocket), {} failed",
        cases.len(),
        websocket::CASES.len(),
        failed.len()
    );
    let log = server.log();
    assert!(
        !log.to_ascii_lowercase().contains("panic"),
        "the server panicked:\n{log}"
    );
    assert!(failed.is_empty(), "failed cases: {failed:?}");
}

mod websocket {
    //! The same catalogue over `/graphql/ws`: floods of subscriptions and of `connection_init`,
    //! connections that never initialise, protocol violations, and bad operations.

    use futures_util::SinkExt;
    use serde_json::{Value, json};
    use tokio_tungstenite::tungstenite::Message;

    use super::*;
    use crate::ws::{self, Heard, PATIENCE, Socket, hear};

    async fn open(address: &str) -> Socket {
        ws::open(address, None).await.unwrap()
    }

    /// Sends a message. A failure is not checked here: the server may already have closed the
    /// connection (as it must after a second `connection_init`), which `hear` then reports.
    async fn send(socket: &mut Socket, value: Value) {
        let _ = ws::send(socket, &value).await;
    }

    /// An initialised connection, with a token or none.
    async fn connect(address: &str, token: Option<&str>) -> Socket {
        ws::connect(address, token, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends a ping and collects every message until its pong: what the server said to the
    /// messages sent before it (it handles a connection's messages in order).
    async fn until_pong(socket: &mut Socket) -> Result<Vec<Value>, String> {
        send(socket, json!({ "type": "ping" })).await;
        let mut heard = Vec::new();
        loop {
            match hear(socket).await {
                Heard::Json(m) if m["type"] == "pong" => return Ok(heard),
                Heard::Json(m) => heard.push(m),
                Heard::Closed(code) => return Err(format!("closed with {code} before the pong")),
                Heard::Text(text) => return Err(format!("a message that is not JSON: {text}")),
                Heard::Silent => return Err("no pong within a minute".into()),
            }
        }
    }

    /// Expects the connection to be closed with `code` (after any number of messages).
    async fn closed_with(socket: &mut Socket, code: u16) -> Result<String, String> {
        loop {
            match hear(socket).await {
                Heard::Closed(c) if c == code => return Ok(format!("closed {c}")),
                Heard::Closed(c) => return Err(format!("closed with {c}, expected {code}")),
                Heard::Silent => return Err(format!("no close {code} within a minute")),
                Heard::Json(m) if m["type"] == "connection_ack" || m["type"] == "pong" => {}
                Heard::Json(m) => return Err(format!("unexpected {m} before close {code}")),
                Heard::Text(t) => return Err(format!("unexpected {t} before close {code}")),
            }
        }
    }

    /// Subscribes with `query` and expects the operation's first answer to be an error with
    /// `code` (an `error` message, or a `next` whose payload has errors and no data).
    async fn refused(
        address: &str,
        token: Option<&str>,
        query: &str,
        code: &'static str,
        field: Option<&'static str>,
    ) -> Result<String, String> {
        let mut socket = connect(address, token).await;
        send(
            &mut socket,
            json!({ "type": "subscribe", "id": "op", "payload": { "query": query } }),
        )
        .await;
        let message = match hear(&mut socket).await {
            Heard::Json(message) => message,
            other => return Err(format!("no answer to the operation: {other:?}")),
        };
        let answer = match message["type"].as_str() {
            Some("error") => json!({ "errors": message["payload"] }),
            Some("next") => message["payload"].clone(),
            _ => return Err(format!("unexpected {message}")),
        };
        let line = check_error(&answer, &expect(200, code, field))?;
        Ok(format!("{} {line}", message["type"].as_str().unwrap_or("")))
    }

    /// 150 subscriptions on one connection: the first 100 run, each one after is refused with
    /// `LIMIT`, and completing one makes room for one more.
    async fn subscription_flood(address: &str) -> Result<String, String> {
        let mut socket = connect(address, None).await;
        let quiet = "subscription { events(filter: { kinds: [AGREEMENT] }) { position } }";
        for i in 1..=150 {
            send(
                &mut socket,
                json!({ "type": "subscribe", "id": i.to_string(), "payload": { "query": quiet } }),
            )
            .await;
        }
        let heard = until_pong(&mut socket).await?;
        let refused: Vec<&Value> = heard.iter().filter(|m| m["type"] == "error").collect();
        let limited = refused
            .iter()
            .filter(|m| m["payload"][0]["extensions"]["code"] == "LIMIT")
            .count();
        let first_refused = refused.first().map(|m| m["id"].clone());
        if heard.len() != 50 || limited != 50 || first_refused != Some(json!("101")) {
            return Err(format!(
                "{} messages, {limited} LIMIT errors, first refused {first_refused:?}: {:?}",
                heard.len(),
                heard.first()
            ));
        }
        send(&mut socket, json!({ "type": "complete", "id": "1" })).await;
        send(
            &mut socket,
            json!({ "type": "subscribe", "id": "151", "payload": { "query": quiet } }),
        )
        .await;
        let after = until_pong(&mut socket).await?;
        if !after.is_empty() {
            return Err(format!(
                "after a complete, a new subscription got {after:?}"
            ));
        }
        Ok("error LIMIT x50 (100 running)".into())
    }

    /// 20 `connection_init` in a burst: one ack, then close 4429.
    async fn init_flood(address: &str) -> Result<String, String> {
        let mut socket = open(address).await;
        for _ in 0..20 {
            send(&mut socket, json!({ "type": "connection_init" })).await;
        }
        match hear(&mut socket).await {
            Heard::Json(m) if m["type"] == "connection_ack" => {}
            other => return Err(format!("no ack first: {other:?}")),
        }
        closed_with(&mut socket, 4429).await
    }

    /// 50 connections that never send `connection_init`: each is closed with 4408 once the
    /// (1 s) timeout passes, and the server holds none of them afterwards.
    async fn silent_connections(address: &str) -> Result<String, String> {
        let mut sockets = Vec::new();
        for _ in 0..50 {
            sockets.push(open(address).await);
        }
        let mut codes = Vec::new();
        for socket in &mut sockets {
            codes.push(match hear(socket).await {
                Heard::Closed(c) => c,
                other => return Err(format!("a silent connection heard {other:?}")),
            });
        }
        if codes.iter().any(|c| *c != 4408) {
            return Err(format!("close codes {codes:?}"));
        }
        // The server drops its side once the close is sent; wait for its gauge to say so.
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = Client::new(address)
                .get("/metrics")
                .map_or_else(|e| e.to_string(), |metrics| metrics.text());
            if text.contains("\nchancery_open_websockets 0\n") {
                break;
            }
            if Instant::now() > deadline {
                return Err("chancery_open_websockets did not come back to 0".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok("closed 4408 x50, none left open".into())
    }

    pub(super) async fn run_case(
        address: &str,
        valid_cursor: &str,
        name: &str,
    ) -> Result<String, String> {
        let events_after =
            |after: &str| format!(r#"subscription {{ events(after: "{after}") {{ position }} }}"#);
        match name {
            "subscription flood (150 on one connection)" => subscription_flood(address).await,
            "connection_init flood (20 on one connection)" => init_flood(address).await,
            "50 connections without connection_init" => silent_connections(address).await,
            "subscribe before connection_init" => {
                let mut socket = open(address).await;
                send(&mut socket, json!({ "type": "subscribe", "id": "1", "payload": { "query": "subscription { events { position } }" } })).await;
                closed_with(&mut socket, 4401).await
            }
            "forged token in connection_init" => {
                let mut socket = open(address).await;
                send(&mut socket, json!({ "type": "connection_init", "payload": { "authorization": "Bearer forged-token-0000000000000" } })).await;
                closed_with(&mut socket, 4403).await
            }
            "duplicate subscription id" => {
                let mut socket = connect(address, None).await;
                let subscribe = json!({ "type": "subscribe", "id": "same", "payload": { "query": "subscription { events(filter: { kinds: [AGREEMENT] }) { position } }" } });
                send(&mut socket, subscribe.clone()).await;
                send(&mut socket, subscribe).await;
                closed_with(&mut socket, 4409).await
            }
            "binary frame" => {
                let mut socket = connect(address, None).await;
                let _ = socket.send(Message::binary(vec![0u8, 159, 146, 150])).await;
                closed_with(&mut socket, 4400).await
            }
            "message not JSON" => {
                let mut socket = connect(address, None).await;
                let _ = socket.send(Message::text("{\"type\":")).await;
                closed_with(&mut socket, 4400).await
            }
            "unknown message type" => {
                let mut socket = connect(address, None).await;
                send(&mut socket, json!({ "type": "subscribe_all" })).await;
                closed_with(&mut socket, 4400).await
            }
            "subscribe without a query" => {
                let mut socket = connect(address, None).await;
                send(&mut socket, json!({ "type": "subscribe", "id": "1", "payload": {} })).await;
                closed_with(&mut socket, 4400).await
            }
            "mutation over WebSocket without a token" => {
                refused(address, None, &threat_with(&[]), "UNAUTHORIZED", None).await
            }
            "mutation over WebSocket with a reader token" => {
                refused(address, Some(READER), &threat_with(&[]), "FORBIDDEN", None).await
            }
            "recorder token on registerParty over WebSocket" => {
                refused(
                    address,
                    Some(RECORDER),
                    r#"mutation { registerParty(input: { timeline: "us-china-trade", code: "EU", name: "European Union", kind: ORGANIZATION }) { lastPosition } }"#,
                    "FORBIDDEN",
                    None,
                )
                .await
            }
            "invalid event over WebSocket" => {
                refused(
                    address,
                    Some(RECORDER),
                    &threat_with(&[("issues:", &amount("-5", "USD"))]),
                    "VALIDATION",
                    Some("event.amounts[0].value"),
                )
                .await
            }
            "alias flood in a subscription" => {
                let aliases: String = (0..31).map(|i| format!("a{i}: events {{ position }} ")).collect();
                refused(address, None, &format!("subscription {{ {aliases} }}"), "LIMIT", None).await
            }
            "deep query over WebSocket" => {
                let deep = format!(
                    "{{ __schema {{ types {{ fields {{ type {}name{} }} }} }} }}",
                    "{ ofType ".repeat(14),
                    " }".repeat(14)
                );
                refused(address, None, &deep, "LIMIT", None).await
            }
            "garbage cursor in a subscription" => {
                refused(address, None, &events_after("!!not-a-cursor!!"), "VALIDATION", Some("after")).await
            }
            "valid-time cursor in a subscription" => {
                refused(address, None, &events_after(valid_cursor), "VALIDATION", Some("after")).await
            }
            "forged cursor (position 2^64-1) in a subscription" => {
                let forged = base64url(b"log:18446744073709551615");
                refused(address, None, &events_after(&forged), "VALIDATION", Some("after")).await
            }
            "subscription document that does not parse" => {
                let deep = format!("subscription {{ events {}", "{ position ".repeat(5_000));
                refused(address, None, &deep, "VALIDATION", None).await
            }
            "enum value written as a string in a subscription" => {
                refused(address, None, r#"subscription { events(filter: { kinds: ["OFFER"] }) { position } }"#, "VALIDATION", Some("filter.kinds[0]")).await
            }
            "unknown enum value in a subscription" => {
                refused(address, None, "subscription { events(filter: { kinds: [PARLEY] }) { position } }", "VALIDATION", Some("filter.kinds[0]")).await
            }
            other => panic!("no such case: {other}"),
        }
    }

    pub(super) const CASES: &[&str] = &[
        "subscription flood (150 on one connection)",
        "connection_init flood (20 on one connection)",
        "50 connections without connection_init",
        "subscribe before connection_init",
        "forged token in connection_init",
        "duplicate subscription id",
        "binary frame",
        "message not JSON",
        "unknown message type",
        "subscribe without a query",
        "mutation over WebSocket without a token",
        "mutation over WebSocket with a reader token",
        "recorder token on registerParty over WebSocket",
        "invalid event over WebSocket",
        "alias flood in a subscription",
        "deep query over WebSocket",
        "garbage cursor in a subscription",
        "valid-time cursor in a subscription",
        "forged cursor (position 2^64-1) in a subscription",
        "unknown enum value in a subscription",
        "enum value written as a string in a subscription",
        "subscription document that does not parse",
    ];
}

/// Token configurations a server must refuse to start with, each naming what is wrong and where,
/// before it listens: `(what, arguments, config file or none, what the message must say)`.
fn bad_token_configurations() -> Vec<(
    &'static str,
    Vec<&'static str>,
    Option<&'static str>,
    &'static str,
)> {
    vec![
        (
            "a token shorter than 16 characters",
            vec!["--token", "admin:short"],
            None,
            "at least 16 characters",
        ),
        (
            "an unknown role",
            vec!["--token", "root:0123456789abcdef"],
            None,
            "unknown role \"root\"",
        ),
        (
            "a timeline list with no token line before it",
            vec!["--token", "trade-war"],
            None,
            "role:token",
        ),
        (
            "a timeline after a token granted every timeline",
            vec!["--token", "admin:0123456789abcdef,g20"],
            None,
            "role:token",
        ),
        (
            "a granted timeline that is not a slug",
            vec!["--token", "reader:0123456789abcdef:Trade War"],
            None,
            "timeline \"Trade War\"",
        ),
        (
            "a hashed token that is not 64 hex digits",
            vec![],
            Some(r#"tokens = [{ role = "reader", token = "sha256:abc" }]"#),
            "tokens[0]: a hashed token is written sha256:<64 lowercase hex digits>",
        ),
        (
            "an expiry that is not an instant",
            vec![],
            Some(
                r#"tokens = [{ role = "reader", token = "0123456789abcdef", expires = "next week" }]"#,
            ),
            "tokens[0]: expires \"next week\" is not an RFC 3339 instant",
        ),
        (
            "an expiry without a time of day",
            vec![],
            Some(
                r#"tokens = [{ role = "reader", token = "0123456789abcdef", expires = 2027-01-31 }]"#,
            ),
            "tokens[0]: expires \"2027-01-31\"",
        ),
        (
            "an empty list of timelines",
            vec![],
            Some(r#"tokens = [{ role = "reader", token = "0123456789abcdef", timelines = [] }]"#),
            "timelines is empty",
        ),
        (
            "an unknown field in a token table",
            vec![],
            Some(r#"tokens = [{ role = "reader", token = "0123456789abcdef", scope = "all" }]"#),
            "unknown field \"scope\"",
        ),
        (
            "an empty token name",
            vec![],
            Some(r#"tokens = [{ role = "reader", token = "0123456789abcdef", name = "" }]"#),
            "name is 1 to 64 characters",
        ),
        (
            "a token that is neither a line nor a table",
            vec![],
            Some("tokens = [42]"),
            "tokens[0]: a token is a string role:token or a table",
        ),
    ]
}

#[test]
fn a_bad_token_configuration_stops_the_server_before_it_listens_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, (what, args, file, says)) in bad_token_configurations().into_iter().enumerate() {
        let mut args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        if let Some(text) = file {
            let path = dir.path().join(format!("config-{i}.toml"));
            std::fs::write(&path, text).unwrap();
            args.extend(["--config".to_owned(), path.to_string_lossy().into_owned()]);
        }
        let data = dir.path().join(format!("data-{i}"));
        let command = crate::support::serve_command(&data, "127.0.0.1:0", &args);
        let process = chancery_testkit::server::Process::spawn("chancery serve", &command).unwrap();
        let exit = process.wait_exit(crate::support::READY_PATIENCE);
        let log = process.log();
        let outcome = match exit {
            Ok(Some(code))
                if code != 0 && log.contains(says) && !log.contains(crate::support::LISTENING) =>
            {
                println!(
                    "refused at start: {what}: {}",
                    log.lines().last().unwrap_or_default()
                );
                continue;
            }
            other => {
                format!("{what}: exit {other:?}, expected a refusal saying {says:?}; log:\n{log}")
            }
        };
        failures.push(outcome);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
