//! API errors with Toxiproxy's messages and status codes.

use serde_json::{json, Value};

/// An error the API answers with: `{"error": message, "status": status}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_body(detail: impl std::fmt::Display) -> Self {
        Self::new(400, format!("bad request body: {detail}"))
    }

    pub fn missing_field(what: impl std::fmt::Display) -> Self {
        Self::new(400, format!("missing required field: {what}"))
    }

    pub fn invalid_stream() -> Self {
        Self::new(400, "stream was invalid, can be either upstream or downstream")
    }

    pub fn invalid_toxic_type() -> Self {
        Self::new(400, "invalid toxic type")
    }

    pub fn proxy_not_found() -> Self {
        Self::new(404, "proxy not found")
    }

    pub fn proxy_exists() -> Self {
        Self::new(409, "proxy already exists")
    }

    pub fn toxic_not_found() -> Self {
        Self::new(404, "toxic not found")
    }

    pub fn toxic_exists() -> Self {
        Self::new(409, "toxic already exists")
    }

    pub fn not_found() -> Self {
        Self::new(404, "not found")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(405, "method not allowed")
    }

    /// Failures of the machinery (a port that cannot be bound, an engine that stopped answering):
    /// Toxiproxy reports these as 500 with the underlying message.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    pub fn to_json(&self) -> Value {
        json!({"error": self.message, "status": self.status})
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (status {})", self.message, self.status)
    }
}
