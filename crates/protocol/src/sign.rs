//! Request signatures of API 3.0: TC3-HMAC-SHA256 and the legacy HmacSHA1 / HmacSHA256.
//!
//! Only the arithmetic lives here; deciding which key to use, the timestamp window and the
//! retry without the port are the server's business.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const TC3_ALGORITHM: &str = "TC3-HMAC-SHA256";
/// Payload marker of `X-TC-Content-SHA256: UNSIGNED-PAYLOAD`: its hash replaces the body's.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The parsed `Authorization` header of a TC3 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc3Authorization {
    pub secret_id: String,
    /// `YYYY-MM-DD` as the client wrote it in the credential scope.
    pub date: String,
    /// The service of the credential scope: SDKs disagree (`ims`, or the endpoint's first label).
    pub service: String,
    /// Lower-case header names in the order the client listed them.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Authorization header: {0}")]
pub struct MalformedAuthorization(pub &'static str);

impl Tc3Authorization {
    /// Parses `TC3-HMAC-SHA256 Credential=<id>/<date>/<service>/tc3_request,
    /// SignedHeaders=<h1;h2>, Signature=<hex>`.
    pub fn parse(header: &str) -> Result<Self, MalformedAuthorization> {
        let rest =
            header.strip_prefix(TC3_ALGORITHM).ok_or(MalformedAuthorization("algorithm is not TC3-HMAC-SHA256"))?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (key, value) = part.trim().split_once('=').ok_or(MalformedAuthorization("a part is not key=value"))?;
            match key.trim() {
                "Credential" => credential = Some(value.trim()),
                "SignedHeaders" => signed = Some(value.trim()),
                "Signature" => signature = Some(value.trim()),
                _ => return Err(MalformedAuthorization("unknown part")),
            }
        }
        let credential = credential.ok_or(MalformedAuthorization("no Credential"))?;
        let signed = signed.ok_or(MalformedAuthorization("no SignedHeaders"))?;
        let signature = signature.ok_or(MalformedAuthorization("no Signature"))?;
        let scope: Vec<&str> = credential.split('/').collect();
        let [secret_id, date, service, terminator] = scope[..] else {
            return Err(MalformedAuthorization("Credential is not id/date/service/tc3_request"));
        };
        if terminator != "tc3_request" || secret_id.is_empty() || service.is_empty() {
            return Err(MalformedAuthorization("Credential is not id/date/service/tc3_request"));
        }
        if chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err() {
            return Err(MalformedAuthorization("Credential date is not YYYY-MM-DD"));
        }
        let signed_headers: Vec<String> = signed.split(';').map(|h| h.trim().to_ascii_lowercase()).collect();
        if signed_headers.iter().any(String::is_empty) {
            return Err(MalformedAuthorization("empty name in SignedHeaders"));
        }
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(MalformedAuthorization("Signature is not 64 hex digits"));
        }
        Ok(Tc3Authorization {
            secret_id: secret_id.to_string(),
            date: date.to_string(),
            service: service.to_string(),
            signed_headers,
            signature: signature.to_ascii_lowercase(),
        })
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The canonical request: method, `/`, query, one `name:value\n` line per signed header
/// (`headers` already in signed order, values trimmed here), the header list, the payload hash.
pub fn tc3_canonical_request(method: &str, query: &str, headers: &[(&str, &str)], payload_hash: &str) -> String {
    let lines: String =
        headers.iter().map(|(name, value)| format!("{}:{}\n", name.to_ascii_lowercase(), value.trim())).collect();
    let names: Vec<String> = headers.iter().map(|(name, _)| name.to_ascii_lowercase()).collect();
    format!("{method}\n/\n{query}\n{lines}\n{}\n{payload_hash}", names.join(";"))
}

/// The `Authorization` header of a JSON POST to `/` signed as the SDKs sign by default
/// (signed headers `content-type;host`), for clients of our own (the batch CLI).
pub fn tc3_authorization(
    secret_id: &str,
    secret_key: &str,
    timestamp: i64,
    date: &str,
    host: &str,
    content_type: &str,
    body: &[u8],
) -> String {
    let canonical =
        tc3_canonical_request("POST", "", &[("content-type", content_type), ("host", host)], &sha256_hex(body));
    let signature = tc3_signature(secret_key, timestamp, date, "ims", &canonical);
    format!("{TC3_ALGORITHM} Credential={secret_id}/{date}/ims/tc3_request, SignedHeaders=content-type;host, Signature={signature}")
}

/// The hex signature of a canonical request under a secret key.
pub fn tc3_signature(secret_key: &str, timestamp: i64, date: &str, service: &str, canonical_request: &str) -> String {
    let scope = format!("{date}/{service}/tc3_request");
    let string_to_sign = format!("{TC3_ALGORITHM}\n{timestamp}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()));
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(&k_date, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"tc3_request");
    hex::encode(hmac_sha256(&k_signing, string_to_sign.as_bytes()))
}

/// Compares two signatures without leaking where they differ.
pub fn signatures_match(expected: &[u8], given: &[u8]) -> bool {
    expected.len() == given.len() && bool::from(expected.ct_eq(given))
}

/// The legacy signature methods, named by the `SignatureMethod` parameter (default HmacSHA1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyMethod {
    HmacSha1,
    HmacSha256,
}

impl LegacyMethod {
    pub fn from_param(value: Option<&str>) -> Option<LegacyMethod> {
        match value {
            None | Some("HmacSHA1") => Some(LegacyMethod::HmacSha1),
            Some("HmacSHA256") => Some(LegacyMethod::HmacSha256),
            Some(_) => None,
        }
    }
}

/// `METHOD + host + "/?" + k=v` pairs sorted by key, joined by `&`, values not encoded;
/// the `Signature` parameter itself is left out.
pub fn legacy_string_to_sign(method: &str, host: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "Signature").collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{method}{host}/?{}", joined.join("&"))
}

/// The raw HMAC of a legacy string to sign (base64 of it is what clients send).
pub fn legacy_signature(method: LegacyMethod, secret_key: &str, string_to_sign: &str) -> Vec<u8> {
    match method {
        LegacyMethod::HmacSha1 => {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret_key.as_bytes()).expect("any key length");
            mac.update(string_to_sign.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        LegacyMethod::HmacSha256 => hmac_sha256(secret_key.as_bytes(), string_to_sign.as_bytes()),
    }
}

pub fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";

    /// The official TC3 vector (spec/api.md).
    #[test]
    fn tc3_official_vector() {
        let body = r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        let payload_hash = sha256_hex(body.as_bytes());
        assert_eq!(payload_hash, "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064");
        let canonical = tc3_canonical_request(
            "POST",
            "",
            &[("content-type", "application/json; charset=utf-8"), ("host", "cvm.tencentcloudapi.com")],
            &payload_hash,
        );
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        let signature = tc3_signature(KEY, 1551113065, "2019-02-25", "cvm", &canonical);
        assert_eq!(signature, "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168");
    }

    /// The official legacy vector (spec/api.md).
    #[test]
    fn legacy_official_vector() {
        let params: Vec<(String, String)> = [
            ("Action", "DescribeInstances"),
            ("InstanceIds.0", "ins-09dx96dg"),
            ("Limit", "20"),
            ("Nonce", "11886"),
            ("Offset", "0"),
            ("Region", "ap-guangzhou"),
            ("SecretId", "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"),
            ("Timestamp", "1465185768"),
            ("Version", "2017-03-12"),
            ("Signature", "ignored"),
        ]
        .into_iter()
        .rev() // order of arrival must not matter
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let s = legacy_string_to_sign("GET", "cvm.tencentcloudapi.com", &params);
        assert_eq!(
            s,
            "GETcvm.tencentcloudapi.com/?Action=DescribeInstances&InstanceIds.0=ins-09dx96dg&Limit=20&Nonce=11886&Offset=0&Region=ap-guangzhou&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE&Timestamp=1465185768&Version=2017-03-12"
        );
        assert_eq!(base64_encode(&legacy_signature(LegacyMethod::HmacSha1, KEY, &s)), "EliP9YW3pW28FpsEdkXt/+WcGeI=");
        // SHA-256 gives a different, 32-byte MAC.
        assert_eq!(legacy_signature(LegacyMethod::HmacSha256, KEY, &s).len(), 32);
    }

    #[test]
    fn parses_authorization_with_any_signed_headers() {
        let h = "TC3-HMAC-SHA256 Credential=AKIDabc/2019-02-25/ims/tc3_request, SignedHeaders=content-type;host;x-tc-action, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168";
        let a = Tc3Authorization::parse(h).unwrap();
        assert_eq!(a.secret_id, "AKIDabc");
        assert_eq!(a.service, "ims");
        assert_eq!(a.signed_headers, ["content-type", "host", "x-tc-action"]);
    }

    #[test]
    fn rejects_malformed_authorization() {
        let sig = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168";
        for bad in [
            "".to_string(),
            format!("HMAC Credential=a/2019-02-25/ims/tc3_request, SignedHeaders=host, Signature={sig}"),
            format!("TC3-HMAC-SHA256 Credential=a/2019-02-25/ims, SignedHeaders=host, Signature={sig}"),
            format!("TC3-HMAC-SHA256 Credential=a/2019-13-25/ims/tc3_request, SignedHeaders=host, Signature={sig}"),
            format!("TC3-HMAC-SHA256 Credential=a/2019-02-25/ims/tc3_request, Signature={sig}"),
            "TC3-HMAC-SHA256 Credential=a/2019-02-25/ims/tc3_request, SignedHeaders=host, Signature=zz".to_string(),
            format!("TC3-HMAC-SHA256 Credential=a/2019-02-25/ims/tc3_request, SignedHeaders=host;, Signature={sig}"),
        ] {
            assert!(Tc3Authorization::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn constant_time_compare() {
        assert!(signatures_match(b"abc", b"abc"));
        assert!(!signatures_match(b"abc", b"abd"));
        assert!(!signatures_match(b"abc", b"abcd"));
    }
}
