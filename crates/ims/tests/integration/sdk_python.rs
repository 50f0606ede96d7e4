//! The real Python SDK against the real server: every version, method and signature method,
//! and every authentication failure the SDK can provoke.

use crate::harness::{burst, error_code, image_base64, python, single, Server};
use serde_json::{json, Value};

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn good_calls_parse_for_both_versions_both_methods_and_all_signatures() {
    let server = Server::start();
    let image = image_base64();
    let md5 = {
        use md5::Digest;
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &image).unwrap();
        hex::encode(md5::Md5::digest(bytes))
    };
    for version in ["2020-12-29", "2020-07-13"] {
        for method in ["POST", "GET"] {
            for sign in ["TC3-HMAC-SHA256", "HmacSHA1", "HmacSHA256"] {
                let mut job = server.job(json!({"FileContent": image, "DataId": "post-42_a@b#c", "BizType": ""}));
                job["version"] = json!(version);
                job["method"] = json!(method);
                job["sign"] = json!(sign);
                let what = format!("{version} {method} {sign}");
                let response = single(python(&job)).unwrap_or_else(|e| panic!("{what}: {e:?}"));
                assert_eq!(response["Suggestion"], "Pass", "{what}");
                assert_eq!(response["Label"], "Normal", "{what}");
                assert_eq!(response["DataId"], "post-42_a@b#c", "{what}");
                assert!(is_uuid(response["RequestId"].as_str().unwrap()), "{what}");
                assert!(response["LabelResults"].is_array(), "{what}");
                if version == "2020-12-29" {
                    assert_eq!(response["FileMD5"], md5.as_str(), "{what}");
                } else {
                    assert_eq!(response["HitFlag"], 0, "{what}");
                    assert!(response.get("FileMD5").is_none_or(Value::is_null), "{what}: no FileMD5 in 2020-07-13");
                }
            }
        }
    }
}

#[test]
fn authentication_failures() {
    let server = Server::start();
    let params = json!({"FileContent": image_base64()});
    for sign in ["TC3-HMAC-SHA256", "HmacSHA1", "HmacSHA256"] {
        for method in ["POST", "GET"] {
            let what = format!("{sign} {method}");
            let mut job = server.job(params.clone());
            job["sign"] = json!(sign);
            job["method"] = json!(method);

            let mut wrong_secret = job.clone();
            wrong_secret["secret_key"] = json!("x".repeat(32));
            assert_eq!(error_code(python(&wrong_secret)), "AuthFailure.SignatureFailure", "{what}");

            let mut unknown = job.clone();
            unknown["secret_id"] = json!("AKIDthisKeyWasNeverIssued000000000000");
            assert_eq!(error_code(python(&unknown)), "AuthFailure.SecretIdNotFound", "{what}");

            for offset in [-400, 400] {
                let mut skewed = job.clone();
                skewed["time_offset"] = json!(offset);
                assert_eq!(error_code(python(&skewed)), "AuthFailure.SignatureExpire", "{what} {offset}");
            }
            let mut within = job.clone();
            within["time_offset"] = json!(-240);
            assert!(single(python(&within)).is_ok(), "{what}: 4 minutes of skew are accepted");
        }
    }
}

#[test]
fn sub_accounts_need_a_full_grant() {
    let server = Server::start();
    let main = server.cli_json(&["account", "list"])[0]["id"].as_i64().unwrap();
    for (access, expected) in
        [("none", Some("UnauthorizedOperation")), ("read-only", Some("UnauthorizedOperation")), ("full", None)]
    {
        let (_, secret_id, secret_key) = server.sub_account(main, &format!("sub-{access}"), access);
        let result = single(python(&server.image_job_as(&secret_id, &secret_key)));
        match expected {
            Some(code) => assert_eq!(result.unwrap_err().0, code, "{access}"),
            None => assert_eq!(result.unwrap()["Suggestion"], "Pass", "{access}"),
        }
    }
}

#[test]
fn a_grant_changed_by_the_cli_applies_at_once() {
    let server = Server::start();
    let main = server.cli_json(&["account", "list"])[0]["id"].as_i64().unwrap();
    let (sub, secret_id, secret_key) = server.sub_account(main, "ops", "read-only");
    let job = server.image_job_as(&secret_id, &secret_key);
    assert_eq!(error_code(python(&job)), "UnauthorizedOperation");
    server.cli(&["account", "grant", &sub.to_string(), "--access", "full"]).unwrap();
    assert!(single(python(&job)).is_ok());
}

#[test]
fn a_burst_over_an_account_limit_is_refused_for_exactly_the_surplus() {
    let server = Server::start();
    let (id, secret_id, secret_key) = server.main_account("limited");
    server.cli(&["account", "limits", &id.to_string(), "--sync", "12"]).unwrap();
    // Cheap calls (no image): what is counted is admission, not the work behind it.
    let mut cheap = server.job(json!({}));
    cheap["secret_id"] = json!(secret_id);
    cheap["secret_key"] = json!(secret_key);
    assert_eq!(burst(&cheap, 30), (12, 18));
    // Another account is not affected by this one's burst.
    assert_eq!(burst(&server.job(json!({})), 5), (5, 0));
}

#[test]
fn the_default_limit_comes_from_configuration() {
    let server = Server::start_with(&[("IMS_SERVER__SYNC_PER_SECOND", "7")], &[]);
    assert_eq!(burst(&server.job(json!({})), 20), (7, 13));
}

#[test]
fn the_built_in_default_of_100_per_second_holds_under_150_parallel_clients() {
    let server = Server::start();
    assert_eq!(burst(&server.job(json!({})), 150), (100, 50));
}

#[test]
fn parameter_errors_through_the_sdk() {
    let server = Server::start();
    let cases = [
        (json!({"FileContent": "%%% not base64 %%%"}), "InvalidParameterValue.InvalidContent"),
        (json!({}), "InvalidParameterValue.InvalidContent"),
        (json!({"FileContent": image_base64(), "DataId": "a".repeat(65)}), "InvalidParameterValue.InvalidDataId"),
        (json!({"FileContent": image_base64(), "DataId": "no spaces"}), "InvalidParameterValue.InvalidDataId"),
        (json!({"FileContent": "AAAAAAAAAAAAAAAAAAAA"}), "InvalidParameter.ImageDataTooSmall"),
        (
            json!({"FileContent": "PGh0bWw+PGJvZHk+aGVsbG88L2JvZHk+PC9odG1sPg=="}),
            "InvalidParameter.InvalidImageContent",
        ),
    ];
    for (params, code) in cases {
        assert_eq!(error_code(python(&server.job(params.clone()))), code, "{params}");
    }
    // 64 characters is still a valid DataId.
    assert!(single(python(&server.job(json!({"FileContent": image_base64(), "DataId": "a".repeat(64)})))).is_ok());
}

#[test]
fn messages_follow_the_requested_language() {
    let server = Server::start();
    let mut job = server.job(json!({"FileContent": image_base64(), "DataId": "bad id"}));
    job["language"] = json!("zh-CN");
    let (_, zh) = single(python(&job)).unwrap_err();
    assert!(zh.contains("DataId") && zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{zh}");
    job["language"] = json!("en-US");
    let (_, en) = single(python(&job)).unwrap_err();
    assert!(en.is_ascii() && en.contains("DataId"), "{en}");
}
