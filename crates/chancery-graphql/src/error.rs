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
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Validation => "VALIDATION",
            Code::Conflict => "CONFLICT",
            Code::NotFound => "NOT_FOUND",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Forbidden => "FORBIDDEN",
            Code::Limit => "LIMIT",
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
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn field(code: Code, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::field(Code::Validation, field, message)
    }

    /// Masks an unexpected failure: logged in full, reported by reference only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let reference = chancery_domain::EventId::new_v7();
        tracing::error!(%reference, %detail, "internal error");
        Self::new(
            Code::Internal,
            format!("internal error (reference {reference}); the server log has the details"),
        )
    }

    /// Prefixes the field path, e.g. with the argument name.
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = Some(match self.field {
            Some(f) if !f.is_empty() => format!("{prefix}.{f}"),
            _ => prefix.to_owned(),
        });
        self
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.message.clone()).extend_with(|_, e| {
            e.set("code", self.code.as_str());
            if let Some(field) = &self.field {
                e.set("field", field.as_str());
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
        ApiError::field(Code::Validation, field, errors.to_string())
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
            StoreError::StorageFull(m) => {
                ApiError::new(Code::Internal, format!("storage is full: {m}"))
            }
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
