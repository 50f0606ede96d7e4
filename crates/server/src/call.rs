//! From an HTTP request to a [`Call`]: the action, version, language, parameters and the proof
//! of who signed it. Nothing is trusted yet; [`crate::auth`] checks the proof.
//!
//! Two forms arrive on `/`:
//! - TC3-HMAC-SHA256: an `Authorization` header, `X-TC-*` headers, JSON body (POST) or
//!   flattened parameters in the query (GET);
//! - legacy HmacSHA1/HmacSHA256: every parameter, the common ones included, in the query (GET)
//!   or a form-encoded body (POST), with `Signature`.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use protocol::sign::{LegacyMethod, Tc3Authorization, TC3_ALGORITHM};
use protocol::{ApiError, Code, Lang};
use std::time::Duration;

/// Largest request body accepted (the cloud's 10 MB).
pub const MAX_BODY_BYTES: u64 = 10_485_760;
/// Largest query string of a GET request.
pub const MAX_GET_BYTES: usize = 32 * 1024;
/// An oversized body is still read (and discarded) up to this size, so the client finishes
/// sending and reads the error instead of a reset connection.
const DRAIN_LIMIT_BYTES: u64 = 4 * MAX_BODY_BYTES;

/// Parameters every legacy request carries beside the action's own.
pub const LEGACY_COMMON: &[&str] = &[
    "Action",
    "Version",
    "Region",
    "Timestamp",
    "Nonce",
    "SecretId",
    "SignatureMethod",
    "Signature",
    "Token",
    "Language",
    "RequestClient",
];

/// The action's parameters, not yet checked against its definition.
#[derive(Debug)]
pub enum Params {
    /// A TC3 POST body.
    Json(Bytes),
    /// Flattened `name=value` pairs (TC3 GET, and legacy requests once common ones are removed).
    Flat(Vec<(String, String)>),
}

/// What a client offers as proof of its key.
#[derive(Debug)]
pub enum Proof {
    Tc3 {
        authorization: Tc3Authorization,
        /// The request's values of the signed headers, in signed order (absent ones empty).
        signed_values: Vec<String>,
        method: String,
        /// The raw query for GET, empty for POST.
        query: String,
        payload_hash: String,
    },
    Legacy {
        method: LegacyMethod,
        signature: Vec<u8>,
        http_method: String,
        /// Every parameter as received (decoded), which is what was signed.
        params: Vec<(String, String)>,
    },
}

#[derive(Debug)]
pub struct Call {
    pub action: String,
    pub version: String,
    pub timestamp: i64,
    pub secret_id: String,
    /// A temporary-credential token; this deployment issues none.
    pub token: Option<String>,
    pub host: String,
    pub params: Params,
    pub proof: Proof,
}

/// Reads and parses a request. The language is returned even when parsing fails, so the error
/// is answered in the language the client asked for.
pub async fn read(request: Request, body_timeout: Duration) -> (Lang, Result<Call, ApiError>) {
    let (parts, body) = request.into_parts();
    let mut lang = Lang::from_tag(header(&parts.headers, "x-tc-language"));
    let result = async {
        if parts.uri.path() != "/" {
            return Err(ApiError::with_message(
                Code::UnsupportedProtocol,
                format!("The API is served on `/`, not on `{}`.", parts.uri.path()),
                format!("接口路径只能是 `/`，不能是 `{}`。", parts.uri.path()),
            ));
        }
        let query = parts.uri.query().unwrap_or("").to_string();
        let body = match parts.method {
            Method::GET => {
                if query.len() > MAX_GET_BYTES {
                    return Err(ApiError::with_message(
                        Code::RequestSizeLimitExceeded,
                        format!(
                            "The GET query is {} bytes, over the limit of {MAX_GET_BYTES} bytes; use POST.",
                            query.len()
                        ),
                        format!("GET 请求参数 {} 字节，超过上限 {MAX_GET_BYTES} 字节，请使用 POST。", query.len()),
                    ));
                }
                Bytes::new()
            }
            Method::POST => read_body(body, content_length(&parts.headers), body_timeout).await?,
            _ => return Err(ApiError::new(Code::UnsupportedProtocol)),
        };
        let host = header(&parts.headers, "host").unwrap_or("").to_string();
        match header(&parts.headers, "authorization") {
            Some(auth) if auth.starts_with(TC3_ALGORITHM) => {
                tc3(&parts.method, &parts.headers, query, body, host, auth)
            }
            Some(_) => Err(ApiError::new(Code::AuthFailureInvalidAuthorization)),
            None => {
                let pairs = if parts.method == Method::GET { parse_form(query.as_bytes()) } else { parse_form(&body) };
                if let Some((_, tag)) = pairs.iter().find(|(k, _)| k == "Language") {
                    lang = Lang::from_tag(Some(tag));
                }
                legacy(&parts.method, pairs, host)
            }
        }
    }
    .await;
    (lang, result)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    header(headers, "content-length").and_then(|v| v.parse().ok())
}

fn too_large(size: u64, exact: bool) -> ApiError {
    let (en, zh) = if exact {
        (format!("{size} bytes"), format!("{size} 字节"))
    } else {
        (format!("more than {size} bytes"), format!("超过 {size} 字节"))
    };
    ApiError::with_message(
        Code::RequestSizeLimitExceeded,
        format!("The request body is {en}, over the limit of {MAX_BODY_BYTES} bytes."),
        format!("请求包体为 {zh}，超过上限 {MAX_BODY_BYTES} 字节。"),
    )
}

fn unreadable_body(reason: &str) -> ApiError {
    ApiError::with_message(
        Code::InvalidParameter,
        format!("The request body could not be read: {reason}."),
        format!("无法读取请求包体：{reason}。"),
    )
}

/// Reads the body up to [`MAX_BODY_BYTES`]; past it, counts (and discards) the rest up to a
/// bound so the error can state the size received.
async fn read_body(body: Body, declared: Option<u64>, timeout: Duration) -> Result<Bytes, ApiError> {
    let read = async {
        let mut body = body;
        let mut buffer = BytesMut::new();
        let mut total: u64 = 0;
        let drain_only = declared.is_some_and(|n| n > MAX_BODY_BYTES);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| unreadable_body(&e.to_string()))?;
            let Ok(chunk) = frame.into_data() else { continue };
            total += chunk.len() as u64;
            if total > DRAIN_LIMIT_BYTES {
                return Err(too_large(declared.unwrap_or(total).max(total), declared.is_some_and(|n| n > total)));
            }
            if !drain_only && total <= MAX_BODY_BYTES {
                buffer.extend_from_slice(&chunk);
            }
        }
        if total > MAX_BODY_BYTES || drain_only {
            return Err(too_large(declared.unwrap_or(total).max(total), true));
        }
        Ok(buffer.freeze())
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| Err(unreadable_body(&format!("not received within {} s", timeout.as_secs()))))
}

fn parse_form(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn missing(name: &str) -> ApiError {
    ApiError::with_message(
        Code::MissingParameter,
        format!("The required parameter `{name}` is missing."),
        format!("缺少必需参数 `{name}`。"),
    )
}

fn parse_timestamp(value: &str, name: &str) -> Result<i64, ApiError> {
    value.trim().parse().map_err(|_| {
        ApiError::with_message(
            Code::InvalidParameter,
            format!("`{name}` must be a Unix timestamp in seconds."),
            format!("`{name}` 必须是以秒为单位的 Unix 时间戳。"),
        )
    })
}

fn tc3(
    method: &Method,
    headers: &HeaderMap,
    query: String,
    body: Bytes,
    host: String,
    auth: &str,
) -> Result<Call, ApiError> {
    let authorization = Tc3Authorization::parse(auth).map_err(|e| {
        ApiError::with_message(
            Code::AuthFailureInvalidAuthorization,
            format!("The Authorization header is malformed: {}.", e.0),
            format!("Authorization 头部不符合规范：{}。", e.0),
        )
    })?;
    // Content type and host must be signed, as every SDK does; any further headers are honoured.
    if !["content-type", "host"].iter().all(|h| authorization.signed_headers.iter().any(|s| s == h)) {
        return Err(ApiError::with_message(
            Code::AuthFailureInvalidAuthorization,
            "SignedHeaders must include content-type and host.",
            "SignedHeaders 必须包含 content-type 和 host。",
        ));
    }
    let required = |name: &str| header(headers, name).ok_or_else(|| missing(&canonical_name(name)));
    let action = required("x-tc-action")?.to_string();
    let version = required("x-tc-version")?.to_string();
    let timestamp = parse_timestamp(required("x-tc-timestamp")?, "X-TC-Timestamp")?;
    let signed_values =
        authorization.signed_headers.iter().map(|h| header(headers, h).unwrap_or("").to_string()).collect();
    let payload_hash = if header(headers, "x-tc-content-sha256") == Some(protocol::sign::UNSIGNED_PAYLOAD) {
        protocol::sign::sha256_hex(protocol::sign::UNSIGNED_PAYLOAD.as_bytes())
    } else {
        protocol::sign::sha256_hex(&body)
    };
    let is_get = method == Method::GET;
    let params = if is_get { Params::Flat(parse_form(query.as_bytes())) } else { Params::Json(body) };
    Ok(Call {
        action,
        version,
        timestamp,
        secret_id: authorization.secret_id.clone(),
        token: header(headers, "x-tc-token").filter(|t| !t.is_empty()).map(str::to_string),
        host,
        params,
        proof: Proof::Tc3 {
            authorization,
            signed_values,
            method: method.as_str().to_string(),
            query: if is_get { query } else { String::new() },
            payload_hash,
        },
    })
}

/// `x-tc-action` as clients write it: `X-TC-Action`.
fn canonical_name(name: &str) -> String {
    name.split('-')
        .map(|part| if part == "tc" { "TC".to_string() } else { part[..1].to_uppercase() + &part[1..] })
        .collect::<Vec<_>>()
        .join("-")
}

fn legacy(method: &Method, pairs: Vec<(String, String)>, host: String) -> Result<Call, ApiError> {
    let common = |name: &str| -> Result<Option<&str>, ApiError> {
        let mut found = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let first = found.next();
        if found.next().is_some() {
            return Err(ApiError::with_message(
                Code::InvalidParameter,
                format!("The parameter `{name}` is given more than once."),
                format!("参数 `{name}` 重复。"),
            ));
        }
        Ok(first)
    };
    let Some(signature) = common("Signature")? else {
        return Err(ApiError::with_message(
            Code::AuthFailureSignatureFailure,
            "The request is not signed: send a TC3-HMAC-SHA256 Authorization header or the legacy Signature parameter.",
            "请求未签名：请使用 TC3-HMAC-SHA256 Authorization 头部或旧版 Signature 参数。",
        ));
    };
    let required = |name: &str| common(name)?.ok_or_else(|| missing(name));
    let action = required("Action")?.to_string();
    let version = required("Version")?.to_string();
    let timestamp = parse_timestamp(required("Timestamp")?, "Timestamp")?;
    let secret_id = required("SecretId")?.to_string();
    required("Nonce")?;
    let sign_method = LegacyMethod::from_param(common("SignatureMethod")?).ok_or_else(|| {
        ApiError::with_message(
            Code::AuthFailureSignatureFailure,
            "SignatureMethod must be HmacSHA1 or HmacSHA256.",
            "SignatureMethod 只能是 HmacSHA1 或 HmacSHA256。",
        )
    })?;
    // An undecodable signature cannot match; it fails the same way a wrong one does.
    let signature = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, signature).unwrap_or_default();
    let token = common("Token")?.filter(|t| !t.is_empty()).map(str::to_string);
    let own: Vec<(String, String)> =
        pairs.iter().filter(|(k, _)| !LEGACY_COMMON.contains(&k.as_str())).cloned().collect();
    Ok(Call {
        action,
        version,
        timestamp,
        secret_id,
        token,
        host,
        params: Params::Flat(own),
        proof: Proof::Legacy {
            method: sign_method,
            signature,
            http_method: method.as_str().to_string(),
            params: pairs,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_as_clients_write_them() {
        assert_eq!(canonical_name("x-tc-action"), "X-TC-Action");
        assert_eq!(canonical_name("x-tc-timestamp"), "X-TC-Timestamp");
    }

    async fn body_of(size: usize, declared: bool) -> Result<Bytes, ApiError> {
        let body = Body::from(vec![b'x'; size]);
        read_body(body, declared.then_some(size as u64), Duration::from_secs(5)).await
    }

    #[tokio::test]
    async fn body_limit_on_both_sides() {
        assert_eq!(body_of(MAX_BODY_BYTES as usize, true).await.unwrap().len(), MAX_BODY_BYTES as usize);
        assert_eq!(body_of(MAX_BODY_BYTES as usize, false).await.unwrap().len(), MAX_BODY_BYTES as usize);
        for declared in [true, false] {
            let err = body_of(MAX_BODY_BYTES as usize + 1, declared).await.unwrap_err();
            assert_eq!(err.code, Code::RequestSizeLimitExceeded);
            let message = err.message(Lang::En);
            assert!(message.contains("10485761") && message.contains("10485760"), "{message}");
        }
    }
}
