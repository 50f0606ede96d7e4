//! Who is calling: the timestamp window, the key, the signature.
//!
//! The service and date of a TC3 signature are taken from its credential scope, because SDKs
//! disagree on the service (`ims`, or the endpoint's first label) and the signature only proves
//! knowledge of the key anyway. When a signature fails with the host as sent, it is checked
//! again with the port removed: the Node SDK signs the host without the port it sends.

use crate::call::{Call, Proof};
use crate::error::OrApiError;
use engine::accounts::{is_well_formed_secret_id, Account, AccountRepository, Credential};
use protocol::sign::{legacy_signature, legacy_string_to_sign, signatures_match, tc3_canonical_request, tc3_signature};
use protocol::{ApiError, Code};
use std::sync::Arc;

/// How far a request's timestamp may be from the server's clock, either way.
pub const TIMESTAMP_WINDOW_SECS: i64 = 300;

/// The host as sent, then without its port when it has one (`[::1]:80` gives `[::1]`).
fn host_variants(host: &str) -> Vec<&str> {
    let mut variants = vec![host];
    if let Some((name, port)) = host.rsplit_once(':') {
        let bracketed_v6 = name.starts_with('[') && name.ends_with(']');
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && (bracketed_v6 || !name.contains(':')) {
            variants.push(name);
        }
    }
    variants
}

/// Whether the call's proof was made with this secret key.
pub fn signature_matches(call: &Call, secret_key: &str) -> bool {
    host_variants(&call.host).into_iter().any(|host| match &call.proof {
        Proof::Tc3 { authorization, signed_values, method, query, payload_hash } => {
            let headers: Vec<(&str, &str)> = authorization
                .signed_headers
                .iter()
                .zip(signed_values)
                .map(|(name, value)| (name.as_str(), if name == "host" { host } else { value.as_str() }))
                .collect();
            let canonical = tc3_canonical_request(method, query, &headers, payload_hash);
            let expected =
                tc3_signature(secret_key, call.timestamp, &authorization.date, &authorization.service, &canonical);
            signatures_match(expected.as_bytes(), authorization.signature.as_bytes())
        }
        Proof::Legacy { method, signature, http_method, params } => {
            let expected = legacy_signature(*method, secret_key, &legacy_string_to_sign(http_method, host, params));
            signatures_match(&expected, signature)
        }
    })
}

/// Checks a call's proof and returns the account of its key.
pub async fn authenticate(accounts: Arc<dyn AccountRepository>, call: &Call, now: i64) -> Result<Account, ApiError> {
    if (now - call.timestamp).abs() > TIMESTAMP_WINDOW_SECS {
        return Err(ApiError::with_message(
            Code::AuthFailureSignatureExpire,
            format!(
                "The request timestamp {} is more than {TIMESTAMP_WINDOW_SECS} seconds from the server time {now}.",
                call.timestamp
            ),
            format!("签名过期：请求时间戳 {} 与服务器时间 {now} 相差超过 {TIMESTAMP_WINDOW_SECS} 秒。", call.timestamp),
        ));
    }
    if call.token.is_some() {
        return Err(ApiError::new(Code::AuthFailureTokenFailure));
    }
    if !is_well_formed_secret_id(&call.secret_id) {
        return Err(ApiError::new(Code::AuthFailureInvalidSecretId));
    }
    let secret_id = call.secret_id.clone();
    let credential: Option<Credential> = tokio::task::spawn_blocking(move || accounts.credential(&secret_id))
        .await
        .map_err(|_| ApiError::new(Code::InternalError))?
        .api()?;
    let Some(credential) = credential else {
        return Err(ApiError::new(Code::AuthFailureSecretIdNotFound));
    };
    if !signature_matches(call, credential.secret_key.expose()) {
        return Err(ApiError::new(Code::AuthFailureSignatureFailure));
    }
    Ok(credential.account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped_only_from_host_port_forms() {
        assert_eq!(host_variants("127.0.0.1:8080"), ["127.0.0.1:8080", "127.0.0.1"]);
        assert_eq!(host_variants("ims.example.com"), ["ims.example.com"]);
        assert_eq!(host_variants("[::1]:80"), ["[::1]:80", "[::1]"]);
        assert_eq!(host_variants("[::1]"), ["[::1]"]);
        assert_eq!(host_variants("host:"), ["host:"]);
    }
}
