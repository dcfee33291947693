//! A panic in a handler, or in a resolver it runs, answered over HTTP on loopback: `500` with a
//! masked `INTERNAL` error and its reference, and the same server answers the next request. The
//! panics are the test's own handlers and resolvers, wrapped by the router function the server
//! uses (`chancery_graphql::panics::catch_panics`); nothing in the product panics on purpose.

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use axum::extract::State;
use axum::routing::{get, post};
use chancery_graphql::panics::catch_panics;
use chancery_testkit::http::{Client, Reply};
use serde_json::{Value, json};

struct Root;

#[Object]
impl Root {
    /// A resolver with a bug.
    async fn broken(&self) -> i32 {
        bug("a resolver's bug")
    }

    async fn fine(&self) -> i32 {
        7
    }
}

/// Panics with `message`, as a bug would (the compiler cannot tell that it never returns).
fn bug<T: Default>(message: &str) -> T {
    if std::hint::black_box(true) {
        panic!("{message}");
    }
    T::default()
}

type TestSchema = Schema<Root, EmptyMutation, EmptySubscription>;

/// Runs the request's query on the schema, in the handler's task as the API's handler does.
async fn graphql(State(schema): State<TestSchema>, body: String) -> axum::Json<Value> {
    let request: Value = serde_json::from_str(&body).unwrap();
    let query = request["query"].as_str().unwrap().to_owned();
    let response = schema.execute(query).await;
    axum::Json(serde_json::to_value(response).unwrap())
}

/// Asserts the answer to a panic: `500`, JSON, one `INTERNAL` error whose message gives the
/// reference that `extensions.reference` holds, and nothing of the panic's own message.
fn assert_masked(reply: &Reply) -> String {
    assert_eq!(reply.status, 500, "{}", reply.text());
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        reply.header("content-type")
    );
    let body = reply.json().unwrap();
    assert!(body.get("data").is_none(), "{body}");
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{body}");
    let error = &errors[0];
    assert_eq!(error["extensions"]["code"], "INTERNAL", "{body}");
    let reference = error["extensions"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(uuid_shaped(&reference), "{reference}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("reference {reference}")),
        "{message}"
    );
    assert!(
        !message.contains("bug"),
        "the detail stays in the log: {message}"
    );
    reference
}

fn uuid_shaped(text: &str) -> bool {
    let groups: Vec<usize> = text.split('-').map(str::len).collect();
    groups == [8, 4, 4, 4, 12] && text.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[test]
fn a_panic_answers_internal_with_a_reference_and_the_server_goes_on() {
    let rt = chancery_testkit::runtime(2);
    let schema = Schema::new(Root, EmptyMutation, EmptySubscription);
    let router = catch_panics(
        axum::Router::new()
            .route("/graphql", post(graphql))
            .route("/handler", get(|| async { bug::<&str>("a handler's bug") }))
            .route("/healthz", get(|| async { "ok\n" }))
            .with_state(schema),
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let server = rt.spawn(async move { axum::serve(listener, router).await });
    let client = Client::new(&address);

    let first = assert_masked(&client.graphql(None, "{ broken }", &json!({})).unwrap());
    // The same server answers the next request, a good one, on a new connection.
    let fine = client.graphql(None, "{ fine }", &json!({})).unwrap();
    assert_eq!(fine.status, 200, "{}", fine.text());
    assert_eq!(fine.json().unwrap(), json!({ "data": { "fine": 7 } }));

    // A panic in a handler itself, and again: each gets its own reference.
    let second = assert_masked(&client.get("/handler").unwrap());
    let third = assert_masked(&client.graphql(None, "{ broken }", &json!({})).unwrap());
    assert!(first != second && second != third && first != third);
    assert_eq!(client.status("/healthz"), Some(200));
    assert!(!server.is_finished(), "the server still serves");
    server.abort();
}
