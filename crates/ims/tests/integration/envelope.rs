//! The wire contract checked with raw HTTP: what no SDK would send, exact limits, headers,
//! and the operational endpoints.

use crate::harness::{image_base64, raw, Server, Tc3};
use serde_json::json;

const LIMIT: usize = 10_485_760;

#[test]
fn every_answer_is_200_with_exactly_application_json() {
    let server = Server::start();
    let ok = Tc3::new(&server, "ImageModeration")
        .post(&server, json!({"FileContent": image_base64()}).to_string().as_bytes());
    let bad = raw(&server.endpoint, "POST", "/", &[], b"{}");
    for response in [&ok, &bad] {
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("application/json"));
    }
    assert_eq!(ok.code(), "Success");
    assert_eq!(bad.code(), "AuthFailure.SignatureFailure");
    let request_id = bad.json()["Response"]["RequestId"].as_str().unwrap().to_string();
    assert_eq!(request_id.len(), 36);
}

/// A JSON body of exactly `size` bytes that moderates a real image (padded with whitespace).
fn body_of_size(size: usize) -> Vec<u8> {
    let mut body = json!({"FileContent": image_base64()}).to_string().into_bytes();
    body.pop();
    body.resize(size - 1, b' ');
    body.push(b'}');
    body
}

#[test]
fn request_size_limit_on_both_sides() {
    let server = Server::start();
    let signer = Tc3::new(&server, "ImageModeration");
    let at_limit = signer.post(&server, &body_of_size(LIMIT));
    assert_eq!(at_limit.code(), "Success", "{}", String::from_utf8_lossy(&at_limit.body));
    let over = signer.post(&server, &body_of_size(LIMIT + 1));
    assert_eq!(over.code(), "RequestSizeLimitExceeded");
    let message = over.json()["Response"]["Error"]["Message"].as_str().unwrap().to_string();
    assert!(message.contains("10485761") && message.contains("10485760"), "{message}");
}

#[test]
fn get_query_limit_on_both_sides() {
    let server = Server::start();
    let signer = Tc3::new(&server, "ImageModeration");
    for (len, expected) in [(32 * 1024, "MissingParameter"), (32 * 1024 + 1, "RequestSizeLimitExceeded")] {
        // A query of exactly `len` bytes; past the size check it fails for its content.
        let prefix = "DataId=";
        let query = format!("{prefix}{}", "a".repeat(len - prefix.len()));
        let headers = signer.headers("GET", &server.endpoint, &query, b"");
        let response = raw(&server.endpoint, "GET", &format!("/?{query}"), &headers, b"");
        let code = response.code();
        if expected == "RequestSizeLimitExceeded" {
            assert_eq!(code, expected);
        } else {
            assert_ne!(code, "RequestSizeLimitExceeded");
        }
    }
}

#[test]
fn protocol_errors() {
    let server = Server::start();
    let body = json!({"FileContent": image_base64()}).to_string();
    let put = raw(&server.endpoint, "PUT", "/", &[], body.as_bytes());
    assert_eq!((put.status, put.code().as_str()), (200, "UnsupportedProtocol"));
    let path = raw(&server.endpoint, "POST", "/v2/moderate", &[], body.as_bytes());
    assert_eq!((path.status, path.code().as_str()), (200, "UnsupportedProtocol"));

    let mut signer = Tc3::new(&server, "ImageModeration");
    signer.version = "2019-01-01".into();
    assert_eq!(signer.post(&server, body.as_bytes()).code(), "NoSuchVersion");
    let mut signer = Tc3::new(&server, "DescribeEverything");
    assert_eq!(signer.post(&server, body.as_bytes()).code(), "InvalidAction");
    // An action of the newer version only, called with the older one.
    signer.action = "CreateImageModerationAsyncTask".into();
    signer.version = "2020-07-13".into();
    assert_eq!(signer.post(&server, body.as_bytes()).code(), "InvalidAction");

    let signer = Tc3::new(&server, "ImageModeration");
    let mut headers = signer.headers("POST", &server.endpoint, "", body.as_bytes());
    headers.retain(|(k, _)| k != "x-tc-action");
    let response = raw(&server.endpoint, "POST", "/", &headers, body.as_bytes());
    assert_eq!(response.code(), "MissingParameter");

    let mut headers = signer.headers("POST", &server.endpoint, "", body.as_bytes());
    for (k, v) in headers.iter_mut() {
        if k == "authorization" {
            *v = "TC3-HMAC-SHA256 Credential=broken".into();
        }
    }
    assert_eq!(
        raw(&server.endpoint, "POST", "/", &headers, body.as_bytes()).code(),
        "AuthFailure.InvalidAuthorization"
    );
}

#[test]
fn parameter_checks_follow_the_definitions() {
    let server = Server::start();
    let signer = Tc3::new(&server, "ImageModeration");
    let image = image_base64();
    let cases = [
        (json!({"FileContent": image, "Colour": "red"}), "UnknownParameter", "Colour"),
        (json!({"FileContent": image, "User": {"Shoe": 1}}), "UnknownParameter", "User.Shoe"),
        (json!({"FileContent": image, "Interval": "five"}), "InvalidParameter", "Interval"),
        (json!({"FileContent": 12}), "InvalidParameter", "FileContent"),
        (
            json!({"FileContent": image, "FileUrl": "https://example.com/a.jpg"}),
            "InvalidParameterValue.InvalidParameter",
            "FileUrl",
        ),
        (json!({"FileContent": image, "BizType": "no"}), "InvalidParameterValue.InvalidParameter", "BizType"),
        (json!({"FileContent": image, "Type": "VIDEO"}), "InvalidParameterValue.InvalidParameter", "Type"),
    ];
    for (params, code, mentioned) in cases {
        let response = signer.post(&server, params.to_string().as_bytes());
        assert_eq!(response.code(), code, "{params}");
        let message = response.json()["Response"]["Error"]["Message"].as_str().unwrap().to_string();
        assert!(message.contains(mentioned), "{message}");
    }
    let not_json = signer.post(&server, b"{\"FileContent\": ");
    assert_eq!(not_json.code(), "InvalidParameter");
    // The older version has no `Type`.
    let mut old = Tc3::new(&server, "ImageModeration");
    old.version = "2020-07-13".into();
    assert_eq!(
        old.post(&server, json!({"FileContent": image, "Type": "IMAGE"}).to_string().as_bytes()).code(),
        "UnknownParameter"
    );
}

#[test]
fn signature_variants_the_spec_requires() {
    let server = Server::start();
    let body = json!({"FileContent": image_base64()}).to_string();
    // Any list of signed headers is honoured.
    let mut signer = Tc3::new(&server, "ImageModeration");
    signer.signed = vec!["content-type".into(), "host".into(), "x-tc-action".into(), "x-tc-timestamp".into()];
    assert_eq!(signer.post(&server, body.as_bytes()).code(), "Success");
    // A charset in the signed content type (the Java SDK) is fine.
    let mut signer = Tc3::new(&server, "ImageModeration");
    signer.content_type = "application/json; charset=utf-8".into();
    assert_eq!(signer.post(&server, body.as_bytes()).code(), "Success");
    // UNSIGNED-PAYLOAD: the body is not hashed.
    let mut signer = Tc3::new(&server, "ImageModeration");
    signer.extra = vec![("x-tc-content-sha256".into(), "UNSIGNED-PAYLOAD".into())];
    assert_eq!(signer.post(&server, body.as_bytes()).code(), "Success");
    // The host signed without its port (as the Node SDK does) while the header carries it.
    let signer = Tc3::new(&server, "ImageModeration");
    let bare_host = server.endpoint.split(':').next().unwrap();
    let mut headers = signer.headers("POST", bare_host, "", body.as_bytes());
    for (k, v) in headers.iter_mut() {
        if k == "host" {
            *v = server.endpoint.clone();
        }
    }
    assert_eq!(raw(&server.endpoint, "POST", "/", &headers, body.as_bytes()).code(), "Success");
    // A body changed after signing fails.
    let headers = signer.headers("POST", &server.endpoint, "", body.as_bytes());
    let tampered = body.replace("FileContent", "FileContent ");
    assert_eq!(
        raw(&server.endpoint, "POST", "/", &headers, tampered.as_bytes()).code(),
        "AuthFailure.SignatureFailure"
    );
    // Temporary tokens are not issued here.
    let mut signer = Tc3::new(&server, "ImageModeration");
    signer.extra = vec![("x-tc-token".into(), "sts-token".into())];
    assert_eq!(signer.post(&server, body.as_bytes()).code(), "AuthFailure.TokenFailure");
    // A SecretId that cannot be one.
    let mut signer = Tc3::new(&server, "ImageModeration");
    signer.secret_id = "AKID with spaces".into();
    assert_eq!(signer.post(&server, body.as_bytes()).code(), "AuthFailure.InvalidSecretId");
    // Exactly at the 5-minute window edge: accepted; a second past it: expired.
    let mut signer = Tc3::new(&server, "ImageModeration");
    signer.timestamp -= 299;
    assert_eq!(signer.post(&server, body.as_bytes()).code(), "Success");
    signer.timestamp -= 3;
    assert_eq!(signer.post(&server, body.as_bytes()).code(), "AuthFailure.SignatureExpire");
}

#[test]
fn health_metrics_and_logs() {
    let server = Server::start_with(&[("IMS_LOG__FORMAT", "json")], &[]);
    let health = raw(&server.endpoint, "GET", "/healthz", &[], b"");
    assert_eq!((health.status, health.json()["status"].as_str()), (200, Some("ok")));
    let ready = raw(&server.endpoint, "GET", "/readyz", &[], b"").json();
    assert_eq!((ready["status"].as_str(), ready["database"].as_str()), (Some("ready"), Some("ok")), "{ready}");
    assert!(ready["models"].as_array().unwrap().contains(&json!("nsfwjs")), "{ready}");

    let image = image_base64();
    let ok = Tc3::new(&server, "ImageModeration").post(&server, json!({"FileContent": image}).to_string().as_bytes());
    let request_id = ok.json()["Response"]["RequestId"].as_str().unwrap().to_string();

    let metrics = String::from_utf8(raw(&server.endpoint, "GET", "/metrics", &[], b"").body).unwrap();
    assert!(metrics.contains(r#"ims_requests_total{action="ImageModeration",code="Success"} 1"#), "{metrics}");
    // Where the time went, stage by stage, as histograms (buckets, so they add up across servers).
    for stage in ["decode", "models", "hashes", "text", "codes", "keywords", "libraries", "history", "metering"] {
        let count = format!(r#"ims_stage_seconds_count{{stage="{stage}"}} 1"#);
        assert!(metrics.contains(&count), "{count} missing:\n{metrics}");
    }
    assert!(metrics.contains(r#"ims_stage_seconds_bucket{stage="models",le="0.1"}"#), "{metrics}");
    assert!(
        metrics.contains(r#"ims_stage_seconds_count{stage="run:ppocr-det-small"}"#),
        "each model's runs: {metrics}"
    );

    let log = server.log();
    let lines: Vec<serde_json::Value> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let of_request: Vec<_> = lines.iter().filter(|l| l["span"]["request_id"] == request_id.as_str()).collect();
    assert!(!of_request.is_empty(), "no log line carries the RequestId:\n{log}");
    assert!(of_request.iter().all(|l| l["span"]["request_id"] == request_id.as_str()));
    // Secrets and image content never reach the log.
    assert!(!log.contains(&server.secret_key), "the secret key was logged");
    assert!(!log.contains(&image[..40]), "image content was logged");
}
