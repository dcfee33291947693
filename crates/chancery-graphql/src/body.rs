//! The JSON body of a GraphQL `POST` (one request or a batch), read in one pass: its variables
//! and extensions are decoded straight into async-graphql's values. A JSON tree first and a
//! copy of its variables then took a tenth of the server's CPU for a mutation of 100 events.

use std::fmt;

use async_graphql::{Name, Value, Variables};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One GraphQL request as the body gives it.
pub(crate) struct Incoming {
    pub query: String,
    pub operation_name: Option<String>,
    pub variables: Option<Variables>,
    pub extensions: Option<async_graphql::indexmap::IndexMap<Name, Value>>,
}

impl Incoming {
    /// The variables as the JSON the answer cache keys on, by name in order (two requests that
    /// differ only in the order they write their variables ask the same question).
    pub fn variables_json(&self) -> Option<String> {
        self.variables
            .as_ref()
            .and_then(|v| serde_json::to_string(v).ok())
    }
}

/// A request the body could not give: why, in words for the caller.
pub(crate) type Refused = String;

const NOT_AN_OBJECT: &str = "a GraphQL request is a JSON object";

/// A `POST` body: one request, or a batch of them.
pub(crate) enum Body {
    One(Result<Incoming, Refused>),
    Batch(Vec<Result<Incoming, Refused>>),
}

impl Body {
    /// The body of `bytes`, or (`Err`) why they are not JSON.
    pub fn parse(bytes: &[u8]) -> Result<Body, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BodyVisitor)
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Body;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a GraphQL request or a batch of them")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Body, A::Error> {
        RequestVisitor.visit_map(map).map(Body::One)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<BatchItem>()? {
            items.push(item.0);
        }
        Ok(Body::Batch(items))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Body, E> {
        Ok(Body::One(Err(NOT_AN_OBJECT.into())))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Body, E> {
        Ok(Body::One(Err(NOT_AN_OBJECT.into())))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Body, E> {
        Ok(Body::One(Err(NOT_AN_OBJECT.into())))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Body, E> {
        Ok(Body::One(Err(NOT_AN_OBJECT.into())))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Body, E> {
        Ok(Body::One(Err(NOT_AN_OBJECT.into())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Body, E> {
        Ok(Body::One(Err(NOT_AN_OBJECT.into())))
    }
}

/// One request of a batch: anything but an object is refused on its own, as a request.
struct BatchItem(Result<Incoming, Refused>);

impl<'de> Deserialize<'de> for BatchItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RequestVisitor).map(BatchItem)
    }
}

/// Reads one request's fields; any other JSON value is a refused request.
struct RequestVisitor;

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = Result<Incoming, Refused>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a GraphQL request")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Every field is read whole before any is judged, and a repeated field keeps its last
        // value, as a JSON object would; the checks then go in a fixed order.
        let mut query = None;
        let mut operation_name = None;
        let mut variables = None;
        let mut extensions = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "query" => query = Some(map.next_value::<Value>()?),
                "operationName" => operation_name = Some(map.next_value::<Value>()?),
                "variables" => variables = Some(map.next_value::<Value>()?),
                "extensions" => extensions = Some(map.next_value::<Value>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(request(query, operation_name, variables, extensions))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err(NOT_AN_OBJECT.into()))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(NOT_AN_OBJECT.into()))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(NOT_AN_OBJECT.into()))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(NOT_AN_OBJECT.into()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(NOT_AN_OBJECT.into()))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(NOT_AN_OBJECT.into()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err(NOT_AN_OBJECT.into()))
    }
}

/// A request from its fields as read, or why it is refused.
fn request(
    query: Option<Value>,
    operation_name: Option<Value>,
    variables: Option<Value>,
    extensions: Option<Value>,
) -> Result<Incoming, Refused> {
    let query = match query {
        Some(Value::String(q)) => q,
        Some(_) => return Err("`query` must be a string".into()),
        None => return Err("the request has no `query`".into()),
    };
    let operation_name = match operation_name {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err("`operationName` must be a string".into()),
    };
    let variables = match variables {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(Variables::from_value(v)),
        Some(_) => return Err("`variables` must be an object".into()),
    };
    let extensions = match extensions {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => return Err("`extensions` must be an object".into()),
    };
    Ok(Incoming {
        query,
        operation_name,
        variables,
        extensions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(body: &str) -> Result<Incoming, Refused> {
        match Body::parse(body.as_bytes()).expect("JSON") {
            Body::One(one) => one,
            Body::Batch(_) => panic!("a batch: {body}"),
        }
    }

    fn refusal(body: &str) -> String {
        match one(body) {
            Ok(_) => panic!("accepted: {body}"),
            Err(why) => why,
        }
    }

    #[test]
    fn a_request_keeps_its_fields_and_its_variables_by_name() {
        let body = r#"{"query":"query($t: Slug){ x }","operationName":"Op","variables":{"t":"a","n":[1,2.5,{"k":null}]},"extensions":{"e":true},"other":[{"ignored":1}]}"#;
        let request = one(body).expect("a request");
        assert_eq!(request.query, "query($t: Slug){ x }");
        assert_eq!(request.operation_name.as_deref(), Some("Op"));
        assert_eq!(
            request.variables_json().as_deref(),
            Some(r#"{"n":[1,2.5,{"k":null}],"t":"a"}"#)
        );
        let extensions = request.extensions.expect("extensions");
        assert_eq!(extensions.get("e"), Some(&Value::Boolean(true)));
    }

    #[test]
    fn nulls_are_absent_fields_and_a_repeated_field_keeps_its_last_value() {
        let request =
            one(r#"{"query":"{ a }","query":"{ b }","operationName":null,"variables":null}"#)
                .expect("a request");
        assert_eq!(request.query, "{ b }");
        assert!(request.operation_name.is_none());
        assert!(request.variables.is_none());
        assert!(request.extensions.is_none());
    }

    #[test]
    fn each_wrong_field_is_named() {
        assert_eq!(refusal(r#"{"query":5}"#), "`query` must be a string");
        assert_eq!(refusal(r#"{"variables":{}}"#), "the request has no `query`");
        assert_eq!(
            refusal(r#"{"query":"{ a }","operationName":3}"#),
            "`operationName` must be a string"
        );
        assert_eq!(
            refusal(r#"{"query":"{ a }","variables":[1]}"#),
            "`variables` must be an object"
        );
        assert_eq!(
            refusal(r#"{"query":"{ a }","extensions":"x"}"#),
            "`extensions` must be an object"
        );
        // The query is judged first, wherever it is written.
        assert_eq!(
            refusal(r#"{"variables":[1],"query":5}"#),
            "`query` must be a string"
        );
        for body in ["42", "\"q\"", "true", "null", "-1.5"] {
            assert_eq!(refusal(body), NOT_AN_OBJECT, "{body}");
        }
    }

    #[test]
    fn a_batch_judges_each_request_alone() {
        let Body::Batch(items) =
            Body::parse(br#"[{"query":"{ a }"},[1,[2]],7,{"query":{}}]"#).expect("JSON")
        else {
            panic!("not a batch");
        };
        let judged: Vec<Result<String, String>> =
            items.into_iter().map(|i| i.map(|r| r.query)).collect();
        assert_eq!(
            judged,
            vec![
                Ok("{ a }".to_owned()),
                Err(NOT_AN_OBJECT.to_owned()),
                Err(NOT_AN_OBJECT.to_owned()),
                Err("`query` must be a string".to_owned()),
            ]
        );
    }

    #[test]
    fn what_is_not_json_is_an_error() {
        for body in [&b"{\"query\":"[..], b"{\"v\":NaN}", b"[1,]", b"{} {}"] {
            assert!(
                Body::parse(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
