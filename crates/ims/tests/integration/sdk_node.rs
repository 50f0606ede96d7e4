//! The real Node SDK: it signs with the endpoint's first label as the service ("127") and the
//! host without its port, though it sends the port in the Host header.

use crate::harness::{error_code, image_base64, node, single, Server};
use serde_json::json;

#[test]
fn happy_path_for_both_versions_and_methods() {
    let server = Server::start();
    for version in ["2020-12-29", "2020-07-13"] {
        for method in ["POST", "GET"] {
            let mut job = server.job(json!({"FileContent": image_base64(), "DataId": "node-1"}));
            job["version"] = json!(version);
            job["method"] = json!(method);
            let response = single(node(&job)).unwrap_or_else(|e| panic!("{version} {method}: {e:?}"));
            assert_eq!(response["Suggestion"], "Pass", "{version} {method}");
            assert_eq!(response["DataId"], "node-1", "{version} {method}");
        }
    }
}

#[test]
fn legacy_signature_and_failures() {
    let server = Server::start();
    let mut job = server.job(json!({"FileContent": image_base64()}));
    job["sign"] = json!("HmacSHA256");
    assert!(single(node(&job)).is_ok());
    let mut wrong = server.job(json!({"FileContent": image_base64()}));
    wrong["secret_key"] = json!("y".repeat(32));
    assert_eq!(error_code(node(&wrong)), "AuthFailure.SignatureFailure");
}
