//! The GraphQL API over HTTP, against the real server binary: every query, mutation and error
//! code, the GraphQL-over-HTTP rules, limits, access, and the committed SDL.

use std::sync::LazyLock;

use chancery_testkit::http::Reply;
use serde_json::{Value, json};

use crate::support::*;

/// The header of a JSON request body.
const JSON: (&str, &str) = ("Content-Type", "application/json");

/// The first error's code and field.
fn error_of(body: &Value) -> (String, String) {
    let e = &body["errors"][0];
    (
        e["extensions"]["code"].as_str().unwrap_or("").to_owned(),
        e["extensions"]["field"].as_str().unwrap_or("").to_owned(),
    )
}

/// The first error's message.
fn first_error_message(body: &Value) -> &str {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {body}"))
}

static STATEMENT: LazyLock<String> = LazyLock::new(|| {
    statement_mutation(
        "{ firstPosition lastPosition timelineVersion deduplicated events { id position kind content { codes { cameo goldstein } } } }",
    )
});

#[test]
fn the_committed_sdl_is_the_code_s_schema() {
    let out = chancery_ok(&workspace(), &["schema"]);
    let committed = std::fs::read_to_string(workspace().join("schema/chancery.graphql")).unwrap();
    assert!(
        out == committed,
        "schema/chancery.graphql is stale: run `cargo run -p chancery -- schema > schema/chancery.graphql`"
    );
}

#[test]
fn the_demo_standoffs_show_the_deficit_deadlocked_with_each_side() {
    let api = demo(&[]);
    let data = api.query(r#"{ standoffs(timeline: "us-china-trade", issues: ["trade-deficit"]) { status issue { slug title } timeline { slug } sides { party { code name } stance } } }"#);
    let standoff = &data["standoffs"][0];
    assert_eq!(standoff["status"], "DEADLOCKED");
    assert_eq!(standoff["issue"]["slug"], "trade-deficit");
    assert_eq!(
        standoff["sides"],
        json!([{ "party": { "code": "CHN", "name": "China" }, "stance": "REFUSAL" }, { "party": { "code": "USA", "name": "United States" }, "stance": "DEMAND" }])
    );
}

#[test]
fn positions_answer_as_of_a_valid_time_and_show_amounts_and_history() {
    let api = demo(&[]);
    let now = api.query(r#"{ positions(timeline: "us-china-trade", parties: ["USA"], issues: ["trade-deficit", "tariffs"]) { issue { slug } stance amounts { value unit measures } firstStated reaffirmed attribution history { stance at } event { kind content { summary } } } }"#);
    let positions = now["positions"].as_array().unwrap();
    assert_eq!(positions.len(), 2);
    let deficit = positions
        .iter()
        .find(|p| p["issue"]["slug"] == "trade-deficit")
        .unwrap();
    assert_eq!(deficit["stance"], "DEMAND");
    assert_eq!(deficit["amounts"][0]["value"], 100e9);
    assert_eq!(deficit["firstStated"], "2018-03");
    assert_eq!(deficit["event"]["kind"], "DEMAND");
    let tariffs = positions
        .iter()
        .find(|p| p["issue"]["slug"] == "tariffs")
        .unwrap();
    assert_eq!(tariffs["stance"], "THREAT");

    let before = api.query(r#"{ positions(timeline: "us-china-trade", parties: ["CHN"], issues: ["trade-deficit"], asOf: { validAt: "2018-04-27" }) { stance } }"#);
    assert_eq!(
        before["positions"],
        json!([]),
        "China had no stance on the deficit before the seminar"
    );
}

#[test]
fn a_positions_lists_answer_alike_however_they_are_selected() {
    // The server computes `supporting` and `history` only when the selection asks for them;
    // fragments and aliases must still count as asking.
    let api = demo(&[]);
    let args = r#"timeline: "us-china-trade", parties: ["USA"], issues: ["trade-deficit"]"#;
    let direct = api.query(&format!(
        "{{ positions({args}) {{ stance supporting history {{ stance at event }} }} }}"
    ));
    let position = &direct["positions"][0];
    assert!(
        !position["supporting"].as_array().unwrap().is_empty(),
        "{direct}"
    );
    assert!(
        !position["history"].as_array().unwrap().is_empty(),
        "{direct}"
    );
    let spread = api.query(&format!(
        "{{ positions({args}) {{ stance ...Lists }} }} \
         fragment Lists on PartyPosition {{ supporting history {{ stance at event }} }}"
    ));
    assert_eq!(spread, direct);
    let inline = api.query(&format!(
        "{{ positions({args}) {{ stance ... on PartyPosition {{ supporting history {{ stance at event }} }} }} }}"
    ));
    assert_eq!(inline, direct);
    let aliased = api.query(&format!(
        "{{ positions({args}) {{ stance s: supporting h: history {{ stance at event }} }} }}"
    ));
    assert_eq!(aliased["positions"][0]["s"], position["supporting"]);
    assert_eq!(aliased["positions"][0]["h"], position["history"]);
    let bare = api.query(&format!("{{ positions({args}) {{ stance }} }}"));
    assert_eq!(bare["positions"][0]["stance"], position["stance"]);
}

#[test]
fn cached_answers_follow_the_log_and_the_clock() {
    let api = demo(&[]);
    let last = r#"{ events(last: 1) { edges { node { position } } } }"#;
    let hits = || api.metric("chancery_answer_cache_hits_total");
    let before = hits();
    assert_eq!(api.query(last), api.query(last));
    assert!(hits() > before, "the second answer came from the cache");

    // An answer that did not read the present (every asOf gives a valid time) holds past the
    // second it was asked in, until the store moves.
    let june = r#"{ standoffs(timeline: "us-china-trade", asOf: { validAt: "2018-06-01" }) { issue { slug } status } }"#;
    let unix_second = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let first = api.query(june);
    let asked_in = unix_second();
    while unix_second() <= asked_in {
        // The clock is what this waits for; nothing else can signal it.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before = hits();
    assert_eq!(api.query(june), first);
    assert_eq!(
        hits(),
        before + 1,
        "an answer with a valid time was computed again in a later second"
    );

    // A write moves the head: the next answer is computed again.
    api.graphql(
        Some(RECORDER),
        &STATEMENT,
        json!({ "summary": "moves the head" }),
    );
    api.query(r#"{ standoffs(atLeast: 29) { status } }"#);
    assert_eq!(
        api.query(last)["events"]["edges"][0]["node"]["position"],
        29
    );
    let before = hits();
    api.query(june);
    assert_eq!(
        hits(),
        before,
        "the log moved, and the kept answer was given"
    );

    // The present moves too: a measure taking effect in a few seconds reads as a threat until
    // then, and as a measure after, though the log does not change.
    let now = std::time::SystemTime::now();
    let instant =
        |t: std::time::SystemTime| chancery_domain::Timestamp::from_system_time(t).to_string();
    // On a whole second: the server reads the present to the second.
    let since_epoch = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let effective_at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(since_epoch + 3);
    let measure = format!(
        r#"mutation {{ recordEvent(timeline: "us-china-trade", event: {{
            occurred: {{ start: "{start}" }},
            actors: [{{ party: "USA" }}], targets: [{{ party: "CHN" }}], issues: ["tariffs"],
            summary: "Tariffs announced, effective in three seconds.",
            sources: [{{ publication: "Test Wire", attribution: OFFICIAL }}],
            act: {{ measure: {{ terms: "25% on listed goods", instrument: TARIFF, announced: "{start}", effective: "{effective}" }} }}
        }}) {{ lastPosition }} }}"#,
        start = instant(now - std::time::Duration::from_secs(60)),
        effective = instant(effective_at),
    );
    let written = api.graphql(Some(RECORDER), &measure, json!({})).json_body();
    let position = written["data"]["recordEvent"]["lastPosition"]
        .as_u64()
        .unwrap_or_else(|| panic!("{written}"));
    api.query(&format!(
        r#"{{ standoffs(atLeast: {position}) {{ status }} }}"#
    ));
    let stance = r#"{ positions(timeline: "us-china-trade", parties: ["USA"], issues: ["tariffs"]) { stance } }"#;
    let before = api.query(stance)["positions"][0]["stance"].clone();
    if std::time::SystemTime::now() < effective_at {
        assert_eq!(before, "THREAT");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let now_stance = api.query(stance)["positions"][0]["stance"].clone();
        if now_stance == "MEASURE" {
            assert!(
                std::time::SystemTime::now() >= effective_at,
                "a measure before its effective instant"
            );
            break;
        }
        assert_eq!(now_stance, "THREAT");
        assert!(
            std::time::Instant::now() < deadline,
            "the measure never took effect in the answers"
        );
        // The clock is what this waits for; nothing else can signal it.
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The positions of an `events` page's nodes, in the page's order.
fn page_positions(data: &Value) -> Vec<u64> {
    data["events"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no events page: {data}"))
        .iter()
        .map(|e| e["node"]["position"].as_u64().unwrap())
        .collect()
}

#[test]
fn events_page_forward_and_backward_by_log_and_by_valid_time() {
    let api = demo(&[]);
    let page = api.query(r#"{ events(first: 5) { edges { cursor node { position } } pageInfo { hasNextPage hasPreviousPage endCursor } } }"#);
    assert_eq!(page_positions(&page), vec![1, 2, 3, 4, 5]);
    assert_eq!(page["events"]["pageInfo"]["hasNextPage"], true);
    let end = page["events"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let next = api.query(&format!(r#"{{ events(first: 3, after: "{end}") {{ edges {{ node {{ position }} }} pageInfo {{ hasPreviousPage }} }} }}"#));
    assert_eq!(page_positions(&next), vec![6, 7, 8]);
    assert_eq!(next["events"]["pageInfo"]["hasPreviousPage"], true);

    let last = api.query(r#"{ events(last: 2) { edges { node { position } } pageInfo { hasPreviousPage hasNextPage } } }"#);
    assert_eq!(page_positions(&last), vec![27, 28]);
    assert_eq!(last["events"]["pageInfo"]["hasPreviousPage"], true);

    // By valid time: the demands of March come first, the hypothetical June visit last.
    let valid = api.query(r#"{ events(order: VALID_TIME, first: 100, filter: { timelines: ["us-china-trade"] }) { edges { node { kind content { occurred { start precision modality } } } } } }"#);
    let edges = valid["events"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 16, "the 16 acts, without the 12 registrations");
    assert_eq!(edges[0]["node"]["content"]["occurred"]["start"], "2018-03");
    assert_eq!(
        edges[0]["node"]["content"]["occurred"]["precision"],
        "MONTH"
    );
    assert_eq!(
        edges[15]["node"]["content"]["occurred"]["modality"],
        "HYPOTHETICAL"
    );

    // Filters: by party and kind, and by words of the summary.
    let filtered = api.query(r#"{ events(first: 50, filter: { parties: ["CHN"], kinds: [REFUSAL] }) { edges { node { kind } } } }"#);
    assert_eq!(filtered["events"]["edges"].as_array().unwrap().len(), 2);
    let text = api.query(
        r#"{ events(first: 50, filter: { text: "savings rates" }) { edges { node { kind } } } }"#,
    );
    assert_eq!(
        text["events"]["edges"],
        json!([{ "node": { "kind": "STATEMENT" } }])
    );
}

#[test]
fn an_event_exposes_its_codes_sources_and_payload() {
    let api = demo(&[]);
    let data = api.query(r#"{ event(id: "016318ff-b000-7000-8000-00000000000f") { kind position version recordedAt hash prevHash
        content { summary amounts { value unit } sources { publication attribution } codes { cameo cameoLabel ploverType ploverMode quadClass goldstein tableVersion }
          payload { ... on ThreatPayload { instrument terms } } } } }"#);
    let e = &data["event"];
    assert_eq!(e["kind"], "THREAT");
    assert_eq!(
        e["content"]["codes"],
        json!({ "cameo": "1312", "cameoLabel": "Threaten to boycott, embargo, or sanction", "ploverType": "THREATEN", "ploverMode": "restrict", "quadClass": "VERBAL_CONFLICT", "goldstein": -5.8, "tableVersion": 1 })
    );
    assert_eq!(e["content"]["payload"]["instrument"], "TARIFF");
    assert_eq!(e["hash"].as_str().unwrap().len(), 64);
    let missing = api.query(r#"{ event(id: "016318ff-b000-7000-8000-0000000000ff") { id } }"#);
    assert_eq!(missing["event"], Value::Null);
}

#[test]
fn the_registry_lists_timelines_parties_actors_and_issues() {
    let api = demo(&[]);
    let data = api.query(r#"{ timelines { slug title version } parties { code name kind } actors(party: "USA") { slug role party { code } } issues { slug } }"#);
    assert_eq!(
        data["timelines"],
        json!([{ "slug": "us-china-trade", "title": "US-China trade talks, 2018", "version": 28 }])
    );
    assert_eq!(data["parties"].as_array().unwrap().len(), 2);
    assert_eq!(data["actors"].as_array().unwrap().len(), 2);
    assert_eq!(data["issues"].as_array().unwrap().len(), 6);
}

#[test]
fn relations_are_bucketed_with_quad_classes_and_goldstein() {
    let api = demo(&[]);
    let data = api.query(r#"{ relations(a: "USA", b: "CHN", bucket: MONTH) { buckets { start events verbalConflict goldsteinSum } total { events goldsteinMean } } }"#);
    let buckets = data["relations"]["buckets"].as_array().unwrap();
    assert_eq!(
        buckets[0],
        json!({ "start": "2018-03-01", "events": 2, "verbalConflict": 2, "goldsteinSum": -10.0 })
    );
    assert_eq!(data["relations"]["total"]["events"], 13);
}

#[test]
fn recording_returns_positions_and_retries_are_idempotent() {
    let api = demo(&[]);
    let id = "01963f00-0000-7000-8000-000000000001";
    let vars = json!({ "id": id, "summary": "The US calls the talks constructive." });
    let body = api
        .graphql(Some(RECORDER), &STATEMENT, vars.clone())
        .json_body();
    let result = &body["data"]["recordEvent"];
    assert_eq!(result["firstPosition"], 29, "{body}");
    assert_eq!(result["timelineVersion"], 29);
    assert_eq!(result["deduplicated"], false);
    assert_eq!(result["events"][0]["content"]["codes"]["cameo"], "013");

    // Read your writes: the projections have it once they reach its position.
    let positions = api.query(r#"{ positions(timeline: "us-china-trade", parties: ["USA"], issues: ["tariffs"], atLeast: 29) { stance } }"#);
    assert_eq!(positions["positions"][0]["stance"], "STATEMENT");

    let again = api.graphql(Some(RECORDER), &STATEMENT, vars).json_body();
    assert_eq!(again["data"]["recordEvent"]["deduplicated"], true);
    assert_eq!(again["data"]["recordEvent"]["firstPosition"], 29);
    assert_eq!(api.head(), 29);

    let other = api
        .graphql(
            Some(RECORDER),
            &STATEMENT,
            json!({ "id": id, "summary": "Something else." }),
        )
        .json_body();
    assert_eq!(
        error_of(&other),
        ("CONFLICT".into(), "id".into()),
        "{other}"
    );
    assert_eq!(api.head(), 29);
}

#[test]
fn expected_versions_conflict_with_the_actual_version_named() {
    let api = demo(&[]);
    let batch = r#"mutation($v: Long!) { recordEvents(timeline: "us-china-trade", expectedVersion: { exact: $v }, events: [
        { occurred: { start: "2018-05-04" }, actors: [{ party: "CHN" }], summary: "a", sources: [{ publication: "W", attribution: NAMED }], act: { statement: { claim: "x" } } },
        { occurred: { start: "2018-05-04" }, actors: [{ party: "USA" }], summary: "b", sources: [{ publication: "W", attribution: NAMED }], act: { demand: { terms: "y" } } }
    ]) { lastPosition timelineVersion } }"#;
    let ok = api
        .graphql(Some(RECORDER), batch, json!({ "v": 28 }))
        .json_body();
    assert_eq!(
        ok["data"]["recordEvents"],
        json!({ "lastPosition": 30, "timelineVersion": 30 })
    );
    let stale = api
        .graphql(Some(RECORDER), batch, json!({ "v": 28 }))
        .json_body();
    let (code, field) = error_of(&stale);
    assert_eq!(
        (code.as_str(), field.as_str()),
        ("CONFLICT", "expectedVersion")
    );
    assert!(
        first_error_message(&stale).contains("it is at version 30"),
        "{stale}"
    );
    assert_eq!(api.head(), 30);
}

#[test]
fn bad_input_names_the_field_and_writes_nothing() {
    let api = demo(&[]);
    let record = |event: &str| {
        let q = format!(
            r#"mutation {{ recordEvent(timeline: "us-china-trade", event: {event}) {{ lastPosition }} }}"#
        );
        api.graphql(Some(RECORDER), &q, json!({})).json_body()
    };
    let base = |amount_unit: &str, target: &str, start: &str| {
        format!(
            r#"{{ occurred: {{ start: "{start}" }}, actors: [{{ party: "USA" }}], targets: [{{ party: "{target}" }}], issues: ["tariffs"],
                amounts: [{{ value: 5, unit: "{amount_unit}", measures: "goods" }}], summary: "s", sources: [{{ publication: "W", attribution: NAMED }}],
                act: {{ threat: {{ terms: "t", instrument: TARIFF }} }} }}"#
        )
    };
    let body = record(&base("USX", "CHN", "2018-05-05"));
    assert_eq!(
        error_of(&body),
        ("VALIDATION".into(), "event.amounts[0].unit".into()),
        "{body}"
    );
    let body = record(&base("USD", "FRA", "2018-05-05"));
    assert_eq!(
        error_of(&body),
        ("VALIDATION".into(), "event.targets[0].party".into()),
        "{body}"
    );
    // A malformed valid time is refused at coercion, with its path.
    let body = record(&base("USD", "CHN", "2018-02-30"));
    assert_eq!(error_of(&body).0, "VALIDATION", "{body}");
    assert!(first_error_message(&body).contains("no such day"), "{body}");
    // An end before the start; an act payload field.
    let body = record(
        r#"{ occurred: { start: "2018-05-05", end: "2018-05-01" }, actors: [{ party: "USA" }], summary: "s", sources: [{ publication: "W", attribution: NAMED }], act: { offer: { terms: "" } } }"#,
    );
    let fields: Vec<&str> = first_error_message(&body).split("; ").collect();
    assert_eq!(
        error_of(&body),
        ("VALIDATION".into(), "event.occurred.end".into()),
        "{body}"
    );
    assert!(
        fields
            .iter()
            .any(|f| f.starts_with("event.act.offer.terms: must not be empty")),
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["extensions"]["problems"][1]["field"], "event.act.offer.terms",
        "{body}"
    );
    // Two kinds at once break the @oneOf.
    let body = record(
        r#"{ occurred: { start: "2018-05-05" }, actors: [{ party: "USA" }], summary: "s", sources: [{ publication: "W", attribution: NAMED }], act: { offer: { terms: "a" }, demand: { terms: "b" } } }"#,
    );
    assert_eq!(error_of(&body).0, "VALIDATION", "{body}");
    assert_eq!(api.head(), 28, "nothing was written");
}

#[test]
fn writes_need_a_token_of_the_right_role() {
    let api = demo(&[]);
    let vars = json!({ "summary": "x" });
    let anonymous = api.graphql(None, &STATEMENT, vars.clone()).json_body();
    assert_eq!(error_of(&anonymous).0, "UNAUTHORIZED");
    let reader = api
        .graphql(Some(READER), &STATEMENT, vars.clone())
        .json_body();
    assert_eq!(error_of(&reader).0, "FORBIDDEN");
    let register = r#"mutation { registerParty(input: { timeline: "us-china-trade", code: "EU", name: "European Union", kind: ORGANIZATION }) { lastPosition } }"#;
    let recorder = api.graphql(Some(RECORDER), register, json!({})).json_body();
    assert_eq!(error_of(&recorder).0, "FORBIDDEN", "{recorder}");
    let admin = api.graphql(Some(ADMIN), register, json!({})).json_body();
    assert_eq!(
        admin["data"]["registerParty"]["lastPosition"], 29,
        "{admin}"
    );
    let forged = api.graphql(
        Some("not-a-token-at-all"),
        "{ head { position } }",
        json!({}),
    );
    assert_eq!(forged.status, 401);
    assert_eq!(error_of(&forged.json_body()).0, "UNAUTHORIZED");
    assert_eq!(api.head(), 29);
}

#[test]
fn closed_reads_need_a_token() {
    let api = demo(&["--open-reads", "false"]);
    let anonymous = api.anonymous("{ head { position } }");
    assert_eq!(error_of(&anonymous).0, "UNAUTHORIZED");
    let reader = api
        .graphql(Some(READER), "{ head { position } }", json!({}))
        .json_body();
    assert_eq!(reader["data"]["head"]["position"], 28);
}

#[test]
fn retractions_and_corrections_change_answers_from_then_on() {
    let api = demo(&[]);
    let refusal = "016318ff-b000-7000-8000-000000000015";
    let retract = format!(
        r#"mutation {{ retractEvent(input: {{ event: "{refusal}", reason: "misreported" }}) {{ lastPosition events {{ kind }} }} }}"#
    );
    let body = api.graphql(Some(RECORDER), &retract, json!({})).json_body();
    assert_eq!(
        body["data"]["retractEvent"]["events"][0]["kind"], "RETRACTION",
        "{body}"
    );
    let status = api.query(r#"{ standoffs(timeline: "us-china-trade", issues: ["trade-deficit"], atLeast: 29) { status } }"#);
    assert_eq!(status["standoffs"][0]["status"], "OPEN");
    let before = api.query(r#"{ standoffs(timeline: "us-china-trade", issues: ["trade-deficit"], asOf: { knownAt: 28 }) { status } }"#);
    assert_eq!(before["standoffs"][0]["status"], "DEADLOCKED");
    let event = api.query(&format!(r#"{{ event(id: "{refusal}") {{ retracted }} }}"#));
    assert_eq!(event["event"]["retracted"], true);

    let demand = "016318ff-b000-7000-8000-00000000000d";
    let correct = format!(
        r#"mutation {{ correctEvent(input: {{ event: "{demand}", reason: "the cut was $200 billion", changes: {{ amounts: [{{ value: 200e9, unit: "USD", measures: "cut" }}] }} }}) {{ lastPosition }} }}"#
    );
    let body = api.graphql(Some(RECORDER), &correct, json!({})).json_body();
    assert_eq!(body["data"]["correctEvent"]["lastPosition"], 30, "{body}");
    let corrected = api.query(&format!(r#"{{ event(id: "{demand}", atLeast: 30) {{ corrected content {{ amounts {{ value }} }} recorded {{ amounts {{ value }} }} }} }}"#));
    assert_eq!(corrected["event"]["corrected"], true);
    assert_eq!(corrected["event"]["content"]["amounts"][0]["value"], 200e9);
    assert_eq!(corrected["event"]["recorded"]["amounts"][0]["value"], 100e9);

    let missing = api.graphql(Some(RECORDER), r#"mutation { retractEvent(input: { event: "016318ff-b000-7000-8000-0000000000ff", reason: "x" }) { lastPosition } }"#, json!({})).json_body();
    assert_eq!(
        error_of(&missing),
        ("NOT_FOUND".into(), "input.event".into())
    );
}

#[test]
fn graphql_over_http_negotiates_media_types_and_refuses_what_it_must() {
    let api = demo(&[]);
    let get = api.get("/graphql?query=%7Bhead%7Bposition%7D%7D");
    assert_eq!(get.status, 200);
    assert_eq!(get.json_body()["data"]["head"]["position"], 28);
    let mutation = api.get("/graphql?query=mutation%7BregisterTimeline(input%3A%7Bslug%3A%22x%22%2Ctitle%3A%22x%22%7D)%7BlastPosition%7D%7D");
    assert_eq!(mutation.status, 405);
    assert_eq!(mutation.header("allow"), Some("POST"));
    let form = api.post_graphql(
        &[("Content-Type", "text/plain")],
        br#"{"query":"{head{position}}"}"#,
    );
    assert_eq!(form.status, 415);
    let broken = api.post_graphql(&[JSON], b"{\"query\":");
    assert_eq!(broken.status, 400);
    // A document that does not validate: 400 without data for graphql-response+json, 200 for json.
    let bad = br#"{"query":"{ nothing }"}"#;
    let strict = api.post_graphql(
        &[JSON, ("Accept", "application/graphql-response+json")],
        bad,
    );
    assert_eq!(strict.status, 400);
    assert!(
        strict
            .header("content-type")
            .unwrap()
            .starts_with("application/graphql-response+json")
    );
    assert!(strict.json_body().get("data").is_none());
    assert_eq!(error_of(&strict.json_body()).0, "VALIDATION");
    let legacy = api.post_graphql(&[JSON, ("Accept", "application/json")], bad);
    assert_eq!(legacy.status, 200);
    let unacceptable = api.post_graphql(&[JSON, ("Accept", "text/html")], bad);
    assert_eq!(unacceptable.status, 406);
    // Batches: answered in order, capped.
    let batch = api.post_graphql(
        &[JSON],
        br#"[{"query":"{head{position}}"},{"query":"{parties{code}}"}]"#,
    );
    let answers = batch.json_body();
    assert_eq!(answers[0]["data"]["head"]["position"], 28);
    assert_eq!(answers[1]["data"]["parties"].as_array().unwrap().len(), 2);
    let flood: Vec<Value> = (0..11)
        .map(|_| json!({ "query": "{head{position}}" }))
        .collect();
    let flood = api.post_graphql(&[JSON], Value::Array(flood).to_string().as_bytes());
    assert_eq!(error_of(&flood.json_body()).0, "LIMIT");
}

#[test]
fn each_limit_answers_with_a_limit_error() {
    let api = demo(&["--request-timeout-ms", "300", "--max-wait-ms", "60000"]);
    let code = |reply: Reply| error_of(&reply.json_body()).0;
    // Aliases.
    let aliases: String = (0..31)
        .map(|i| format!("a{i}: head {{ position }} "))
        .collect();
    assert_eq!(
        code(api.graphql(None, &format!("{{ {aliases} }}"), json!({}))),
        "LIMIT"
    );
    // Depth: the schema has no cycles, but introspection nests as deep as one likes.
    let deep = format!(
        "{{ __schema {{ types {{ fields {{ type {}name{} }} }} }} }}",
        "{ ofType ".repeat(14),
        " }".repeat(14)
    );
    assert_eq!(code(api.graphql(None, &deep, json!({}))), "LIMIT");
    // Page size.
    assert_eq!(
        code(api.graphql(
            None,
            "{ events(first: 501) { edges { cursor } } }",
            json!({})
        )),
        "LIMIT"
    );
    // Request body size.
    let big = format!(
        r#"{{"query":"{{head{{position}}}}","variables":{{"x":"{}"}}}}"#,
        "x".repeat(5 * 1024 * 1024)
    );
    let reply = api.post_graphql(&[JSON], big.as_bytes());
    assert_eq!(reply.status, 413);
    assert_eq!(code(reply), "LIMIT");
    // Per-request timeout: waiting (up to a minute) for a position that never comes outlasts 300 ms.
    let slow = api.anonymous("{ positions(atLeast: 999) { stance } }");
    assert_eq!(error_of(&slow).0, "LIMIT");
    assert!(
        first_error_message(&slow).contains("took longer than"),
        "{slow}"
    );
    // Batch size is in the HTTP test above; subscriptions and connections in the WebSocket tests.
}

#[test]
fn a_query_too_complex_for_the_limit_is_refused() {
    let api = demo(&["--max-complexity", "10"]);
    let small = api.anonymous("{ head { position hash } }");
    assert_eq!(small["data"]["head"]["position"], 28);
    let wide = api.anonymous("{ head { position hash recordedAt projected } parties { code name kind } issues { slug title description } timelines { slug title description version } }");
    assert_eq!(error_of(&wide).0, "LIMIT", "{wide}");
}

#[test]
fn the_standard_introspection_query_fits_the_limits() {
    let api = demo(&[]);
    let query = r#"query IntrospectionQuery { __schema { queryType { name } mutationType { name } subscriptionType { name }
      types { ...FullType } directives { name description locations args { ...InputValue } } } }
      fragment FullType on __Type { kind name description fields(includeDeprecated: true) { name description args { ...InputValue }
        type { ...TypeRef } isDeprecated deprecationReason } inputFields { ...InputValue } interfaces { ...TypeRef }
        enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason } possibleTypes { ...TypeRef } }
      fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
      fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }"#;
    let data = api.query(query);
    assert!(data["__schema"]["types"].as_array().unwrap().len() > 50);
    let off = demo(&["--introspection", "false"]);
    let body = off.anonymous("{ __schema { queryType { name } } }");
    assert!(
        body["data"]["__schema"].is_null(),
        "introspection can be switched off: {body}"
    );
}

#[test]
fn operations_endpoints_and_graphiql_are_served() {
    let api = demo(&[]);
    assert_eq!(api.get("/healthz").status, 200);
    let ready = api.get("/readyz");
    assert_eq!(
        ready.json_body(),
        json!({ "ready": true, "head": 28, "projected": 28 })
    );
    api.graphql(Some(RECORDER), &STATEMENT, json!({ "summary": "counted" }));
    let metrics = api.get("/metrics").text();
    for line in [
        "chancery_appends_total 1",
        "chancery_appended_events_total 1",
        "chancery_append_seconds_count 1",
        "chancery_open_subscriptions 0",
        "chancery_log_head 29",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in:\n{metrics}");
    }
    assert!(metrics.contains("chancery_requests_total{outcome=\"ok\"}"));
    let page = api.get("/graphiql");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    assert!(page.text().contains("/graphiql/assets/"));
    let script = api.get("/graphiql/assets/graphiql.min.js");
    assert_eq!(script.status, 200);
    assert!(script.body.len() > 500_000);
    assert_eq!(api.get("/graphiql/assets/../../etc/passwd").status, 404);
}

/// The name of [`RECORDER`]'s token: `recorder-` and the first 8 hex digits of
/// `printf %s recorder-token-0123456789 | sha256sum`.
const RECORDER_NAME: &str = "recorder-805f0aec";
/// The name of [`ADMIN`]'s token, from `printf %s admin-token-0123456789abc | sha256sum`.
const ADMIN_NAME: &str = "admin-64ea89f4";

/// `/export`, as an admin takes an online backup.
fn backup(api: &Server) -> String {
    let bearer = format!("Bearer {ADMIN}");
    let reply = api
        .http()
        .request("GET", "/export", &[("Authorization", &bearer)], None)
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.text()
}

/// Fails the test when `text` holds any token's secret.
fn assert_no_secret(text: &str) {
    for secret in [RECORDER, ADMIN, READER] {
        assert!(!text.contains(secret), "a token's secret is shown: {text}");
    }
}

#[test]
fn an_event_names_the_token_that_recorded_it_and_never_its_secret() {
    let api = demo(&[]);
    let id = "01963f00-0000-7000-8000-0000000000b1";
    let recorded = api
        .graphql(
            Some(RECORDER),
            &statement_mutation("{ lastPosition events { id recordedBy } }"),
            json!({ "id": id, "summary": "The US calls the talks constructive." }),
        )
        .text();
    assert_no_secret(&recorded);
    let recorded: Value = serde_json::from_str(&recorded).unwrap();
    let result = &recorded["data"]["recordEvent"];
    assert_eq!(
        result["events"][0]["recordedBy"], RECORDER_NAME,
        "{recorded}"
    );
    assert_eq!(result["lastPosition"], 29);

    // Corrected by another token: the event still names who recorded it, the correction who
    // corrected it.
    let correct = format!(
        r#"mutation {{ correctEvent(input: {{ event: "{id}", reason: "a typo", changes: {{ summary: "The US calls the talks very constructive." }} }}) {{ lastPosition events {{ kind recordedBy }} }} }}"#
    );
    let body = api.graphql(Some(ADMIN), &correct, json!({})).json_body();
    let correction = &body["data"]["correctEvent"];
    assert_eq!(correction["lastPosition"], 30, "{body}");
    assert_eq!(correction["events"][0]["recordedBy"], ADMIN_NAME);

    // Every way to an event: by id, in log order, in valid-time order (the projections'
    // chronology, corrected content), as a position's event, and the demo's own.
    let by_id = api.query(&format!(
        r#"{{ event(id: "{id}", atLeast: 30) {{ recordedBy corrected content {{ summary }} }} }}"#
    ));
    assert_eq!(by_id["event"]["recordedBy"], RECORDER_NAME);
    assert_eq!(by_id["event"]["corrected"], true);
    let in_log =
        api.query(r#"{ events(last: 2, atLeast: 30) { edges { node { kind recordedBy } } } }"#);
    assert_eq!(
        in_log["events"]["edges"],
        json!([
            { "node": { "kind": "STATEMENT", "recordedBy": RECORDER_NAME } },
            { "node": { "kind": "CORRECTION", "recordedBy": ADMIN_NAME } },
        ])
    );
    let by_valid_time = api.query(r#"{ events(order: VALID_TIME, first: 100, atLeast: 30, filter: { timelines: ["us-china-trade"] }) { edges { node { id corrected recordedBy content { summary } } } } }"#);
    let edges = by_valid_time["events"]["edges"].as_array().unwrap();
    let ours = edges
        .iter()
        .map(|e| &e["node"])
        .find(|n| n["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {by_valid_time}"));
    assert_eq!(ours["corrected"], true, "{ours}");
    assert_eq!(
        ours["content"]["summary"],
        "The US calls the talks very constructive."
    );
    assert_eq!(ours["recordedBy"], RECORDER_NAME);
    assert!(
        edges
            .iter()
            .filter(|e| e["node"]["id"] != id)
            .all(|e| e["node"]["recordedBy"] == "demo"),
        "the demo's events are recorded by the demo loader: {by_valid_time}"
    );
    let position = api.query(r#"{ positions(timeline: "us-china-trade", parties: ["USA"], issues: ["tariffs"], atLeast: 30) { event { id recordedBy } } }"#);
    assert_eq!(
        position["positions"][0]["event"],
        json!({ "id": id, "recordedBy": RECORDER_NAME })
    );

    // The names are in the hashed records a backup holds; the secrets are nowhere.
    let export = backup(&api);
    assert_no_secret(&export);
    let lines: Vec<&str> = export.lines().collect();
    assert_eq!(lines.len(), 31, "{export}");
    assert!(
        lines[1..29]
            .iter()
            .all(|l| l.contains(r#","recordedBy":"demo"},"hash":""#))
    );
    assert!(lines[29].contains(&format!(r#","recordedBy":"{RECORDER_NAME}"}},"hash":""#)));
    assert!(lines[30].contains(&format!(r#","recordedBy":"{ADMIN_NAME}"}},"hash":""#)));
}

#[test]
fn a_store_of_version_1_reads_as_recorded_by_nobody_known_and_goes_on_with_names() {
    let dir = tempfile::tempdir().unwrap();
    unpack_v1_store(dir.path());
    let mut api = Server::start_in(dir.path(), &with_tokens(&[]));
    api.wait_ready();
    let nodes = |data: &Value| -> Vec<Value> {
        data["events"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("no events: {data}"))
            .iter()
            .map(|e| e["node"].clone())
            .collect()
    };
    let all = api.query("{ events(first: 100) { edges { node { position recordedBy } } } }");
    let all = nodes(&all);
    assert_eq!(all.len(), 28);
    assert!(all.iter().all(|n| n["recordedBy"].is_null()), "{all:?}");
    let acts = api.query(r#"{ events(order: VALID_TIME, first: 100, filter: { timelines: ["us-china-trade"] }) { edges { node { recordedBy } } } }"#);
    let acts = nodes(&acts);
    assert_eq!(acts.len(), 16);
    assert!(acts.iter().all(|n| n["recordedBy"].is_null()), "{acts:?}");

    // An event recorded now, after them, carries its name; the chain goes on intact.
    let body = api
        .graphql(
            Some(RECORDER),
            &statement_mutation("{ lastPosition events { recordedBy } }"),
            json!({ "summary": "Recorded after the upgrade." }),
        )
        .json_body();
    assert_eq!(body["data"]["recordEvent"]["lastPosition"], 29, "{body}");
    assert_eq!(
        body["data"]["recordEvent"]["events"][0]["recordedBy"],
        RECORDER_NAME
    );
    let export = backup(&api);
    let fixture =
        std::fs::read_to_string(workspace().join("tests/fixtures/v1-demo-export.ndjson")).unwrap();
    let old_records: Vec<&str> = fixture.lines().skip(1).collect();
    let now: Vec<&str> = export.lines().skip(1).collect();
    assert_eq!(
        now[..28],
        old_records[..],
        "the old records keep their bytes"
    );
    assert!(now[28].contains(&format!(r#""recordedBy":"{RECORDER_NAME}""#)));
    api.stop();
    assert_eq!(verified(dir.path()).0, 29);
}

mod websocket {
    //! What only a WebSocket can show: a live subscription, and its two limits.

    use serde_json::{Value, json};

    use super::*;
    use crate::ws::{self, Socket, next_json};

    /// An initialised connection with `token`; `receive_buffer` shrinks the socket's receive
    /// buffer, so that a client that does not read falls behind after a few frames.
    async fn open(api: &Server, token: Option<&str>, receive_buffer: Option<u32>) -> Socket {
        ws::connect(api.address(), token, receive_buffer)
            .await
            .unwrap()
    }

    /// Subscribes with variables, and waits until the server has taken the subscription (a
    /// ping sent after it is answered after it).
    async fn subscribe_with(socket: &mut Socket, id: &str, query: &str, variables: Value) {
        ws::subscribe(socket, id, query, Some(&variables))
            .await
            .unwrap();
        ws::send(socket, &json!({ "type": "ping" })).await.unwrap();
        let pong = next_json(socket).await;
        assert_eq!(pong["type"], "pong", "{pong}");
    }

    /// The cursor of the log's last event.
    fn last_cursor(api: &Server) -> String {
        let data = api.query("{ events(last: 1) { edges { node { cursor } } } }");
        data["events"]["edges"][0]["node"]["cursor"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Reads `id`'s frames until one answers `position`, and returns every position `id` had.
    async fn positions_until(socket: &mut Socket, id: &str, position: u64) -> Vec<u64> {
        let mut seen = Vec::new();
        while seen.last() != Some(&position) {
            let m = next_json(socket).await;
            assert_eq!(m["type"], "next", "{m}");
            assert_eq!(m["id"], id, "{m}");
            seen.push(m["payload"]["data"]["events"]["position"].as_u64().unwrap());
        }
        seen
    }

    async fn subscribe(socket: &mut Socket, id: &str, query: &str) {
        ws::subscribe(socket, id, query, None).await.unwrap();
    }

    #[test]
    fn a_subscription_catches_up_then_follows_and_resumes_after_its_cursor() {
        let api = demo(&[]);
        runtime().block_on(async {
            let mut socket = open(&api, None, None).await;
            subscribe(&mut socket, "a", "subscription { events(filter: { kinds: [REFUSAL] }) { position cursor kind } }").await;
            let first = next_json(&mut socket).await;
            assert_eq!(first["type"], "next");
            assert_eq!(first["payload"]["data"]["events"]["kind"], "REFUSAL");
            let second = next_json(&mut socket).await;
            let cursor = second["payload"]["data"]["events"]["cursor"].as_str().unwrap().to_owned();
            let before = second["payload"]["data"]["events"]["position"].as_u64().unwrap();

            // A new subscription from that cursor gets only what comes after it: a live refusal.
            subscribe(&mut socket, "b", &format!(r#"subscription {{ events(after: "{cursor}") {{ position kind }} }}"#)).await;
            let refusal = r#"mutation { recordEvent(timeline: "us-china-trade", event: { occurred: { start: "2018-05-04" }, actors: [{ party: "USA" }], targets: [{ party: "CHN" }], issues: ["made-in-china-2025"], summary: "The US rejects China's view.", sources: [{ publication: "W", attribution: NAMED }], act: { refusal: { terms: "no", of: TO_ACCEPT } } }) { lastPosition } }"#;
            let written = api.graphql(Some(RECORDER), refusal, json!({})).json_body()["data"]["recordEvent"]["lastPosition"].as_u64().unwrap();
            let mut seen_b = Vec::new();
            let mut live_a = None;
            while seen_b.last() != Some(&written) || live_a.is_none() {
                let m = next_json(&mut socket).await;
                match m["id"].as_str() {
                    Some("b") => seen_b.push(m["payload"]["data"]["events"]["position"].as_u64().unwrap()),
                    Some("a") => live_a = m["payload"]["data"]["events"]["position"].as_u64(),
                    _ => panic!("unexpected {m}"),
                }
            }
            assert_eq!(seen_b, ((before + 1)..=written).collect::<Vec<_>>(), "every position after the cursor, once");
            assert_eq!(live_a, Some(written));
        });
    }

    #[test]
    fn a_subscribe_message_many_times_the_server_s_read_buffer_arrives_whole() {
        let api = demo(&[]);
        runtime().block_on(async {
            let mut socket = open(&api, None, None).await;
            // The server reads 4 KiB at a time; this message is over 60 KiB, most of it a comment.
            let query = format!(
                "subscription {{ events(filter: {{ kinds: [REFUSAL] }}) {{ position kind }} }}\n# {}",
                "padding ".repeat(8 * 1024)
            );
            subscribe(&mut socket, "long", &query).await;
            let first = next_json(&mut socket).await;
            assert_eq!(first["type"], "next", "{first}");
            assert_eq!(first["id"], "long");
            assert_eq!(first["payload"]["data"]["events"]["kind"], "REFUSAL");
            // The connection reads on after it: a ping is answered.
            ws::send(&mut socket, &json!({ "type": "ping" })).await.unwrap();
            let frames = ws::json_until(&mut socket, |m| m["type"] == "pong").await;
            assert!(frames.iter().all(|m| m["type"] != "error"), "{frames:?}");
        });
    }

    #[test]
    fn subscribers_share_an_execution_only_when_their_answers_cannot_differ() {
        let api = demo(&[]);
        let after = last_cursor(&api);
        let feed = "subscription($after: String, $kinds: [Kind!]) { events(after: $after, filter: { kinds: $kinds }) { position kind } }";
        let refusals = json!({ "after": after, "kinds": ["REFUSAL"] });
        let statements = json!({ "after": after, "kinds": ["STATEMENT"] });
        runtime().block_on(async {
            // One connection with two subscriptions that differ only in their variables.
            let mut one = open(&api, None, None).await;
            subscribe_with(&mut one, "refusals", feed, refusals.clone()).await;
            subscribe_with(&mut one, "statements", feed, statements).await;
            // The same ask as "refusals" from another connection, and from a reader's grants.
            let mut two = open(&api, None, None).await;
            subscribe_with(&mut two, "r", feed, refusals.clone()).await;
            let mut reader = open(&api, Some(READER), None).await;
            subscribe_with(&mut reader, "r", feed, refusals).await;

            let recorded = |kind_json: &str| {
                let mutation = format!(r#"mutation {{ recordEvent(timeline: "us-china-trade", event: {{ occurred: {{ start: "2018-05-04" }}, actors: [{{ party: "USA" }}], targets: [{{ party: "CHN" }}], issues: ["made-in-china-2025"], summary: "grouped feeds", sources: [{{ publication: "W", attribution: NAMED }}], act: {kind_json} }}) {{ lastPosition }} }}"#);
                api.graphql(Some(RECORDER), &mutation, json!({})).json_body()["data"]["recordEvent"]["lastPosition"].as_u64().unwrap()
            };
            let statement = recorded(r#"{ statement: { claim: "said" } }"#);
            let first_refusal = recorded(r#"{ refusal: { terms: "no", of: TO_ACCEPT } }"#);
            let second_refusal = recorded(r#"{ refusal: { terms: "still no", of: TO_ACCEPT } }"#);

            let mut by_id: std::collections::BTreeMap<String, Vec<(u64, String)>> = Default::default();
            while by_id.get("refusals").and_then(|v| v.last()).map(|e| e.0) != Some(second_refusal)
                || !by_id.contains_key("statements")
            {
                let m = next_json(&mut one).await;
                assert_eq!(m["type"], "next", "{m}");
                let event = &m["payload"]["data"]["events"];
                by_id.entry(m["id"].as_str().unwrap().to_owned()).or_default().push((
                    event["position"].as_u64().unwrap(),
                    event["kind"].as_str().unwrap().to_owned(),
                ));
            }
            assert_eq!(by_id["statements"], vec![(statement, "STATEMENT".to_owned())]);
            assert_eq!(
                by_id["refusals"],
                vec![(first_refusal, "REFUSAL".to_owned()), (second_refusal, "REFUSAL".to_owned())]
            );
            for socket in [&mut two, &mut reader] {
                assert_eq!(positions_until(socket, "r", second_refusal).await, vec![first_refusal, second_refusal]);
            }
            // "refusals" and the other anonymous one share a group; the statements and the reader's
            // have one each.
            let metrics = api.get("/metrics").text();
            for line in [
                "chancery_subscription_groups 3",
                "chancery_grouped_subscribers 4",
                "chancery_subscription_largest_group 2",
            ] {
                assert!(metrics.contains(line), "missing {line:?} in:\n{metrics}");
            }
        });
    }

    #[test]
    fn a_subscriber_that_falls_behind_its_group_goes_on_alone_and_misses_nothing() {
        let api = demo(&["--subscriber-queue", "4"]);
        let after = last_cursor(&api);
        // Frames of about 55 KB: a client that does not read holds up its connection after a few.
        let summaries: String = (1..30)
            .map(|i| format!("s{i}: content {{ summary }} "))
            .collect();
        let feed = format!(
            "subscription($after: String) {{ events(after: $after) {{ position {summaries} }} }}"
        );
        runtime().block_on(async {
            let mut slow = open(&api, None, Some(4096)).await;
            let mut fast = open(&api, None, None).await;
            subscribe_with(&mut slow, "feed", &feed, json!({ "after": after })).await;
            subscribe_with(&mut fast, "feed", &feed, json!({ "after": after })).await;

            let event = |n: usize| json!({ "occurred": { "start": "2018-05-04" }, "actors": [{ "party": "USA" }], "issues": ["made-in-china-2025"], "summary": format!("{n:04} {}", "x".repeat(1_890)), "sources": [{ "publication": "W", "attribution": "NAMED" }], "act": { "statement": { "claim": "long" } } });
            let mutation = "mutation($events: [EventInput!]!) { recordEvents(timeline: \"us-china-trade\", events: $events) { lastPosition } }";
            let mut last = 0;
            let reading = async {
                let mut seen = Vec::new();
                for batch in 0..4 {
                    let events: Vec<Value> = (0..30).map(|i| event(batch * 30 + i)).collect();
                    let reply = api.graphql(Some(RECORDER), mutation, json!({ "events": events })).json_body();
                    last = reply["data"]["recordEvents"]["lastPosition"].as_u64().unwrap_or_else(|| panic!("{reply}"));
                    seen.extend(positions_until(&mut fast, "feed", last).await);
                }
                seen
            };
            let fast_saw = reading.await;
            let all: Vec<u64> = (fast_saw[0]..=last).collect();
            assert_eq!(fast_saw.len(), 120);
            assert_eq!(fast_saw, all, "the reading member: every position once, in order");
            let metrics = api.get("/metrics").text();
            let detached = metrics
                .lines()
                .find_map(|l| l.strip_prefix("chancery_detached_subscribers_total "))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            assert!(detached >= 1, "the member that does not read left its group:\n{metrics}");
            let slow_saw = positions_until(&mut slow, "feed", last).await;
            assert_eq!(slow_saw, all, "the member that fell behind: every position once, in order");
        });
    }

    #[test]
    fn subscriptions_per_connection_and_connections_are_limited() {
        let api = demo(&[
            "--max-subscriptions-per-connection",
            "2",
            "--max-connections",
            "2",
        ]);
        runtime().block_on(async {
            let mut socket = open(&api, None, None).await;
            for id in ["1", "2", "3"] {
                subscribe(
                    &mut socket,
                    id,
                    "subscription { events(filter: { kinds: [AGREEMENT] }) { position } }",
                )
                .await;
            }
            let refused = next_json(&mut socket).await;
            assert_eq!(refused["type"], "error");
            assert_eq!(refused["id"], "3");
            assert_eq!(refused["payload"][0]["extensions"]["code"], "LIMIT");

            let _second = open(&api, None, None).await;
            let third = ws::connect(api.address(), None, None).await;
            let Err(refused) = third else {
                panic!("a third connection is refused")
            };
            assert!(refused.to_string().contains("503"), "{refused}");
        });
    }
}
