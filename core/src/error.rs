//! The one error type every capability returns, mapped to MLflow's `{"error_code","message"}`
//! body and HTTP status in a single exhaustive match.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde::Serialize;

/// MLflow's `ErrorCode` names (mlflow/protos/databricks.proto) that ferroflow answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InternalError,
    InvalidParameterValue,
    ResourceDoesNotExist,
    ResourceAlreadyExists,
    InvalidState,
    BadRequest,
    EndpointNotFound,
    TemporarilyUnavailable,
    PermissionDenied,
    /// No or bad credentials (401), with `WWW-Authenticate` so browsers prompt.
    Unauthenticated,
    RequestLimitExceeded,
    /// MLflow's answer when a capability does not exist for this configuration (presigned
    /// S3 access on a local store, for one); MLflow clients fall back on seeing it.
    NotImplemented,
}

impl ErrorCode {
    /// The wire name MLflow clients match on.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::InvalidParameterValue => "INVALID_PARAMETER_VALUE",
            ErrorCode::ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
            ErrorCode::ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
            ErrorCode::InvalidState => "INVALID_STATE",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            ErrorCode::TemporarilyUnavailable => "TEMPORARILY_UNAVAILABLE",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::RequestLimitExceeded => "REQUEST_LIMIT_EXCEEDED",
            ErrorCode::NotImplemented => "NOT_IMPLEMENTED",
        }
    }

    /// HTTP status as in `mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS`.
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InvalidState => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InvalidParameterValue => StatusCode::BAD_REQUEST,
            ErrorCode::ResourceAlreadyExists => StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::ResourceDoesNotExist => StatusCode::NOT_FOUND,
            ErrorCode::EndpointNotFound => StatusCode::NOT_FOUND,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::RequestLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        }
    }
}

/// An error with an MLflow error code and a message naming the offending field or id.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceDoesNotExist, message)
    }
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceAlreadyExists, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }
    /// A storage failure with the operation that failed as context; details go to the log.
    pub fn storage(context: &str, err: sqlx::Error) -> Self {
        tracing::error!(error = %err, "{context}");
        Self::internal(format!("{context}: {err}"))
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error_code: &'a str,
    message: &'a str,
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        self.code.http_status()
    }
    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        if self.code == ErrorCode::Unauthenticated {
            res.insert_header(("WWW-Authenticate", "Basic realm=\"mlflow\""));
        }
        res.json(ErrorBody {
            error_code: self.code.as_str(),
            message: &self.message,
        })
    }
}

/// Adds operation context to storage results: `.context("failed to insert metrics")?`.
pub trait StorageContext<T> {
    fn context(self, what: &str) -> Result<T>;
}

impl<T> StorageContext<T> for std::result::Result<T, sqlx::Error> {
    fn context(self, what: &str) -> Result<T> {
        self.map_err(|e| Error::storage(what, e))
    }
}
