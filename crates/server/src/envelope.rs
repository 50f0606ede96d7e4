//! The answer envelope. Always HTTP 200 and `Content-Type: application/json` exactly: with a
//! charset the Python SDK silently returns an empty success, and with another status every SDK
//! reports a network error instead of the code.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use protocol::{ApiError, Lang};
use serde_json::{Map, Value};

pub const CONTENT_TYPE: &str = "application/json";

fn json(value: &Value) -> Response {
    let mut response = Response::new(Body::from(serde_json::to_vec(value).expect("a JSON value serialises")));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// `{"Response": {...fields, "RequestId"}}`: also the body of an asynchronous task's callback.
pub fn success_body(mut fields: Map<String, Value>, request_id: &str) -> Value {
    fields.insert("RequestId".into(), Value::from(request_id));
    serde_json::json!({ "Response": fields })
}

pub fn success(fields: Map<String, Value>, request_id: &str) -> Response {
    json(&success_body(fields, request_id))
}

/// `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`.
pub fn failure(error: &ApiError, lang: Lang, request_id: &str) -> Response {
    json(&error.envelope(lang, request_id))
}
