//! Errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with the HTTP
//! status a client library maps to the right exception (400 bad request, 401, 404, 413, 503).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A request parameter with a bad value (400).
    pub fn bad_param(param: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: Some(param.to_string()),
            code: Some("invalid_value"),
        }
    }

    /// A body that is not the JSON the route expects (400).
    pub fn bad_body(message: impl Into<String>) -> ApiError {
        ApiError {
            param: None,
            code: Some("invalid_json"),
            ..ApiError::bad_param("", message)
        }
    }

    /// A request field the route does not take (400), in OpenAI's words.
    pub fn unknown_field(name: &str) -> ApiError {
        ApiError {
            code: Some("unknown_parameter"),
            ..ApiError::bad_param(
                name,
                format!("Unrecognized request argument supplied: {name}"),
            )
        }
    }

    pub fn context_exceeded(tokens: usize, ctx: usize) -> ApiError {
        ApiError {
            code: Some("context_length_exceeded"),
            ..ApiError::bad_param(
                "prompt",
                format!("the prompt is {tokens} tokens; this model's context is {ctx}, and the answer needs at least one"),
            )
        }
    }

    pub fn unknown_model(name: &str, known: &[String]) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: Some("model_not_found"),
            ..ApiError::bad_param(
                "model",
                format!(
                    "the model `{name}` does not exist; this run serves: {}",
                    known.join(", ")
                ),
            )
        }
    }

    pub fn unauthorized() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "missing or wrong API key: send `Authorization: Bearer KEY`".into(),
            kind: "invalid_request_error",
            param: None,
            code: Some("invalid_api_key"),
        }
    }

    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: Some("request_too_large"),
            ..ApiError::bad_body(message)
        }
    }

    /// The stage's queue is full: the client should retry later (503).
    pub fn busy(stage: &str) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("the model `{stage}` has too many requests waiting; retry shortly"),
            kind: "server_error",
            param: None,
            code: Some("overloaded"),
        }
    }

    /// Something failed on our side (a worker died, a file could not be written).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }});
        (self.status, Json(body)).into_response()
    }
}
