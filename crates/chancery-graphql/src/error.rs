//! Errors at the edge: every error the API returns carries a stable `extensions.code` and, when
//! one field is at fault, `extensions.field` (a path into the arguments). Internal errors are
//! masked: the client gets an id to quote, the server log gets the detail.

use async_graphql::ErrorExtensions;
use chancery_domain::ValidationErrors;
use chancery_projections::ProjectionError;
use chancery_store::StoreError;

/// The stable error codes of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Validation,
    Conflict,
    NotFound,
    Unauthorized,
    Forbidden,
    Limit,
    /// The server cannot do it now, through no fault of the request (a full disk); the same
    /// request may succeed later. `extensions.reason` says why.
    Unavailable,
    Internal,
}

impl Code {
    /// Every code; `INTERNAL` is last.
    pub const ALL: [Code; 8] = [
        Code::Validation,
        Code::Conflict,
        Code::NotFound,
        Code::Unauthorized,
        Code::Forbidden,
        Code::Limit,
        Code::Unavailable,
        Code::Internal,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Code::Validation => "VALIDATION",
            Code::Conflict => "CONFLICT",
            Code::NotFound => "NOT_FOUND",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Forbidden => "FORBIDDEN",
            Code::Limit => "LIMIT",
            Code::Unavailable => "UNAVAILABLE",
            Code::Internal => "INTERNAL",
        }
    }
}

/// An error the API returns. It has no `Display` on purpose: async-graphql converts anything that
/// displays into an error without extensions, and every error must keep its code.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub(crate) field: Option<String>,
    /// Every field at fault with its own message, when there are several (validation).
    pub(crate) problems: Vec<(String, String)>,
    /// Why the server cannot do it now (`extensions.reason`), for `UNAVAILABLE`.
    pub(crate) reason: Option<&'static str>,
    /// The reference of a masked internal error (`extensions.reference`), also in its message.
    pub(crate) reference: Option<String>,
}

/// The `extensions.reason` of a full disk.
pub const STORAGE_FULL: &str = "STORAGE_FULL";
/// The `extensions.reason` of a database that is being reopened, for a moment.
pub const REOPENING: &str = "REOPENING";

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            problems: Vec::new(),
            reason: None,
            reference: None,
        }
    }

    pub(crate) fn field(code: Code, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: Some(field.into()),
            problems: Vec::new(),
            reason: None,
            reference: None,
        }
    }

    /// Renames every field path (and rewrites the message to match).
    pub(crate) fn map_fields(mut self, rename: impl Fn(&str) -> String) -> Self {
        if self.problems.is_empty() {
            self.field = self.field.map(|f| rename(&f));
            return self;
        }
        self.problems = self
            .problems
            .into_iter()
            .map(|(f, m)| (rename(&f), m))
            .collect();
        self.field = self.problems.first().map(|(f, _)| f.clone());
        self.message = self
            .problems
            .iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect::<Vec<_>>()
            .join("; ");
        self
    }

    pub(crate) fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::field(Code::Validation, field, message)
    }

    /// Masks an unexpected failure: logged in full, reported by reference only.
    pub(crate) fn internal(detail: impl std::fmt::Display) -> Self {
        let reference = logged(&detail);
        ApiError {
            reference: Some(reference.clone()),
            ..Self::new(Code::Internal, masked_message(&reference))
        }
    }

    /// A stored record that cannot be read: the store is damaged, not the request.
    pub(crate) fn unreadable(detail: impl std::fmt::Display) -> Self {
        Self::internal(format!("a stored record cannot be read: {detail}"))
    }
}

/// Logs an unexpected failure in full under a new reference, and answers the reference.
fn logged(detail: &dyn std::fmt::Display) -> String {
    let reference = chancery_domain::EventId::new_v7().to_string();
    tracing::error!(%reference, %detail, "internal error");
    reference
}

/// What a client is told of an internal error: only where to look.
fn masked_message(reference: &str) -> String {
    format!("internal error (reference {reference}); the server log has the details")
}

/// An unexpected failure outside any resolver (a panic), as a response lists it: logged in full,
/// reported by reference only, as [`ApiError::internal`] reports those inside.
pub(crate) fn masked(detail: &str) -> serde_json::Value {
    let reference = logged(&detail);
    serde_json::json!({
        "message": masked_message(&reference),
        "extensions": { "code": Code::Internal.as_str(), "reference": reference },
    })
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.message.clone()).extend_with(|_, e| {
            e.set("code", self.code.as_str());
            if let Some(reason) = self.reason {
                e.set("reason", reason);
            }
            if let Some(reference) = &self.reference {
                e.set("reference", reference.as_str());
            }
            if let Some(field) = &self.field {
                e.set("field", field.as_str());
            }
            if self.problems.len() > 1 {
                let list: Vec<async_graphql::Value> = self
                    .problems
                    .iter()
                    .map(|(f, m)| {
                        let mut o = async_graphql::indexmap::IndexMap::new();
                        o.insert(
                            async_graphql::Name::new("field"),
                            async_graphql::Value::String(f.clone()),
                        );
                        o.insert(
                            async_graphql::Name::new("message"),
                            async_graphql::Value::String(m.clone()),
                        );
                        async_graphql::Value::Object(o)
                    })
                    .collect();
                e.set("problems", async_graphql::Value::List(list));
            }
        })
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        e.extend()
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        let field = errors.first().map(|e| e.field.clone()).unwrap_or_default();
        let problems = errors
            .0
            .iter()
            .map(|e| (e.field.clone(), e.message.clone()))
            .collect();
        ApiError {
            code: Code::Validation,
            message: errors.to_string(),
            field: Some(field),
            problems,
            reason: None,
            reference: None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(errors) => errors.into(),
            StoreError::WrongExpectedVersion { .. } => {
                ApiError::field(Code::Conflict, "expectedVersion", e.to_string())
            }
            StoreError::IdConflict { .. } => ApiError::field(Code::Conflict, "id", e.to_string()),
            StoreError::Limit(m) => ApiError::new(Code::Limit, m),
            StoreError::Restore(m) => ApiError::new(Code::Validation, m),
            // Not masked: the operator's remedy (free some space) is in the message, and the
            // client's is to retry later with the same ids.
            StoreError::StorageFull(m) => ApiError {
                reason: Some(STORAGE_FULL),
                ..ApiError::new(Code::Unavailable, format!("storage is full: {m}"))
            },
            // Not masked either: nothing is wrong but the moment, and the client's remedy is to
            // retry the same request.
            StoreError::Reopening(m) => ApiError {
                reason: Some(REOPENING),
                ..ApiError::new(Code::Unavailable, m)
            },
            StoreError::Corrupt { .. } | StoreError::Storage(_) | StoreError::Closed => {
                ApiError::internal(e)
            }
        }
    }
}

impl From<ProjectionError> for ApiError {
    fn from(e: ProjectionError) -> Self {
        match e {
            ProjectionError::Store(s) => s.into(),
            ProjectionError::NotYet { .. } => {
                ApiError::field(Code::Limit, "atLeast", e.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The code for an error async-graphql raised itself (it has no `extensions.code`): its depth and
/// complexity limits are `LIMIT`, everything else (parse, validation, coercion) `VALIDATION`.
pub(crate) fn code_for_library_error(message: &str) -> Code {
    if message.contains("nested too deep")
        || message.contains("too complex")
        || message.contains("recursive depth")
        || message.contains("recursion depth")
    {
        Code::Limit
    } else {
        Code::Validation
    }
}

/// Why a document does not parse, without the line of it that pest's message quotes: a document
/// of one long line would otherwise come back whole in the error.
pub(crate) fn parse_error_message(error: &async_graphql::parser::Error) -> String {
    let text = error.to_string();
    let kept: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.contains('|'))
        .map(|line| line.trim_start_matches("= "))
        .collect();
    format!("the query does not parse: {}", kept.join(" "))
}

/// The argument an error async-graphql raised at validation names in its message
/// (`Invalid value for argument "event.amounts.0.value", ...`), written as our field paths are
/// (`event.amounts[0].value`).
fn field_of_library_error(message: &str) -> Option<String> {
    let rest = message.strip_prefix("Invalid value for argument \"")?;
    let (path, _) = rest.split_once('"')?;
    let mut field = String::with_capacity(path.len() + 2);
    for segment in path.split('.') {
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            field.push_str(&format!("[{segment}]"));
        } else {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(segment);
        }
    }
    Some(field)
}

/// One error as a response lists it: its message and its code.
pub(crate) fn error_value(code: Code, message: &str) -> serde_json::Value {
    serde_json::json!({ "message": message, "extensions": { "code": code.as_str() } })
}

/// A response of one error and no `data`.
pub(crate) fn errors_value(code: Code, message: &str) -> serde_json::Value {
    serde_json::json!({ "errors": [error_value(code, message)] })
}

/// Whether a response is a request error: the document was refused before execution (it does not
/// validate, say), so there is no `data`. Errors before execution have no path; a field error
/// always has one.
pub(crate) fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// Gives every error of a serialized response an `extensions.code`, and an `extensions.field`
/// where async-graphql's own message names the argument.
pub fn add_missing_codes(body: &mut serde_json::Value) {
    if let Some(serde_json::Value::Array(errors)) = body.get_mut("errors") {
        for e in errors {
            if let serde_json::Value::Object(err) = e {
                let message = err.get("message").and_then(|m| m.as_str()).unwrap_or("");
                let code = code_for_library_error(message);
                let field = field_of_library_error(message);
                if let serde_json::Value::Object(ext) = err
                    .entry("extensions")
                    .or_insert_with(|| serde_json::json!({}))
                {
                    if ext.contains_key("code") {
                        continue;
                    }
                    ext.insert("code".into(), code.as_str().into());
                    if let Some(field) = field {
                        ext.entry("field").or_insert_with(|| field.into());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moment_s_unavailability_says_why_and_is_not_masked() {
        let reopening: ApiError = ProjectionError::Store(StoreError::Reopening(
            "the projections' database is being reopened; retry shortly".into(),
        ))
        .into();
        assert_eq!(reopening.code, Code::Unavailable);
        assert_eq!(reopening.reason, Some(REOPENING));
        assert_eq!(reopening.reference, None, "not masked: nothing is broken");
        assert!(reopening.message.contains("retry"), "{}", reopening.message);
        let full: ApiError = StoreError::StorageFull("the log's disk".into()).into();
        assert_eq!(
            (full.code, full.reason),
            (Code::Unavailable, Some(STORAGE_FULL))
        );
        let broken: ApiError = StoreError::Storage("a bad sector".into()).into();
        assert_eq!(broken.code, Code::Internal);
        assert!(broken.reference.is_some(), "masked");
    }

    #[test]
    fn parse_errors_say_where_without_quoting_the_document() {
        let long = format!("{{ head {{ position {} ", "x ".repeat(10_000));
        let error = async_graphql::parser::parse_query(&long).unwrap_err();
        let message = parse_error_message(&error);
        assert!(
            message.starts_with("the query does not parse: --> 1:"),
            "{message}"
        );
        assert!(message.contains("expected"), "{message}");
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn library_errors_get_a_code_and_the_argument_they_name() {
        let mut body = serde_json::json!({ "errors": [
            { "message": "Invalid value for argument \"event.amounts.0.value\", expected type \"Float\"" },
            { "message": "Query is nested too deep." },
            { "message": "mine", "extensions": { "code": "CONFLICT", "field": "id" } },
        ] });
        add_missing_codes(&mut body);
        assert_eq!(
            body["errors"],
            serde_json::json!([
                { "message": "Invalid value for argument \"event.amounts.0.value\", expected type \"Float\"", "extensions": { "code": "VALIDATION", "field": "event.amounts[0].value" } },
                { "message": "Query is nested too deep.", "extensions": { "code": "LIMIT" } },
                { "message": "mine", "extensions": { "code": "CONFLICT", "field": "id" } },
            ])
        );
    }
}
