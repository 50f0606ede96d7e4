//! Accounts and keys managed with the CLI while the server runs, and configuration layers.

use crate::harness::{burst, error_code, python, single, Server};
use serde_json::json;

#[test]
fn two_active_keys_both_work_and_a_third_is_refused() {
    let server = Server::start();
    let (id, first_id, first_key) = server.main_account("acme");
    let (second_id, second_key) = server.new_key(id);
    assert!(single(python(&server.image_job_as(&first_id, &first_key))).is_ok());
    assert!(single(python(&server.image_job_as(&second_id, &second_key))).is_ok());
    let third = server.cli(&["key", "create", &id.to_string()]).unwrap_err();
    assert!(third.contains("already has 2 active keys"), "{third}");

    server.cli(&["key", "disable", &first_id]).unwrap();
    assert_eq!(error_code(python(&server.image_job_as(&first_id, &first_key))), "AuthFailure.SecretIdNotFound");
    let (third_id, third_key) = server.new_key(id);
    assert!(single(python(&server.image_job_as(&third_id, &third_key))).is_ok());
    assert!(server.cli(&["key", "enable", &first_id]).is_err(), "re-enabling would make three active keys");
    server.cli(&["key", "delete", &third_id]).unwrap();
    assert_eq!(error_code(python(&server.image_job_as(&third_id, &third_key))), "AuthFailure.SecretIdNotFound");
    server.cli(&["key", "enable", &first_id]).unwrap();
    assert!(single(python(&server.image_job_as(&first_id, &first_key))).is_ok());

    let keys = server.cli_json(&["key", "list", "--account", &id.to_string()]);
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert!(!keys.to_string().contains(&first_key), "listing never shows secrets");
}

#[test]
fn account_listing_and_invalid_operations() {
    let server = Server::start();
    let accounts = server.cli_json(&["account", "list"]);
    assert_eq!(accounts[0]["name"], "default");
    assert_eq!(accounts[0]["access"], "full");
    let main = accounts[0]["id"].as_i64().unwrap();
    let sub = server.cli_json(&["account", "create", "--name", "ops", "--parent", &main.to_string()]);
    assert_eq!(sub[0]["access"], "none");
    assert_eq!(sub[0]["parent"], main);
    let sub_id = sub[0]["id"].as_i64().unwrap().to_string();
    assert!(server.cli(&["account", "create", "--name", "x", "--parent", &sub_id]).is_err());
    assert!(server.cli(&["account", "grant", &main.to_string(), "--access", "read-only"]).is_err());
    assert!(server.cli(&["account", "grant", &sub_id, "--access", "admin"]).is_err());
    assert!(server.cli(&["account", "limits", &sub_id, "--sync", "0"]).is_err());
    let limited = server.cli_json(&["account", "limits", &sub_id, "--sync", "50", "--async", "5"]);
    assert_eq!(limited[0]["limits"], json!({"sync_per_second": 50, "async_per_second": 5}));
    let reset = server.cli_json(&["account", "limits", &sub_id, "--sync", "default"]);
    assert_eq!(reset[0]["limits"], json!({"sync_per_second": null, "async_per_second": 5}));
    let text = server.cli(&["account", "list"]).unwrap();
    assert!(text.lines().any(|l| l.contains("ops") && l.contains("none")), "{text}");
}

#[test]
fn configuration_layers_file_environment_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ims.toml");
    std::fs::write(&file, "[server]\nsync_per_second = 3\nlisten = \"127.0.0.1:1\"\n").unwrap();
    let config = file.to_str().unwrap();
    // The file sets the limit and an address; the flag's address wins over the file's.
    let server = Server::start_with(&[("IMS_CONFIG", config)], &["--listen", "127.0.0.1:0"]);
    assert!(!server.endpoint.ends_with(":1"));
    assert_eq!(burst(&server.job(json!({})), 6), (3, 3), "the file's limit applies");
    drop(server);
    // The environment wins over the file.
    let server = Server::start_with(
        &[("IMS_CONFIG", config), ("IMS_SERVER__SYNC_PER_SECOND", "5")],
        &["--listen", "127.0.0.1:0"],
    );
    assert_eq!(burst(&server.job(json!({})), 8), (5, 3), "the environment's limit applies");
}

#[test]
fn printed_configuration_hides_the_master_key() {
    let server = Server::start();
    let key = "ab".repeat(32);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ims"))
        .args(["config"])
        .env("IMS_MASTER_KEY", &key)
        .env("IMS_DATA_DIR", server.data_dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("master_key = \"<redacted>\"") && !text.contains(&key), "{text}");
    assert!(text.contains(server.data_dir.path().to_str().unwrap()));
}
