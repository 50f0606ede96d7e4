//! `ims moderate`: a directory of images in process and against the running server, as JSON
//! Lines and CSV; what cannot be moderated is reported per image and fails the command.

use crate::harness::{artifacts_dir, textured_jpeg, Server};
use serde_json::Value;
use std::process::Command;

fn batch_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("more")).unwrap();
    std::fs::write(dir.path().join("a.jpg"), textured_jpeg(300, 200, 1)).unwrap();
    std::fs::write(dir.path().join("more/b.jpg"), textured_jpeg(300, 200, 2)).unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"this is not an image at all").unwrap();
    dir
}

fn ims(server: &Server, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ims"))
        .arg("--data-dir")
        .arg(server.data_dir.path())
        .args(args)
        .env_remove("IMS_CONFIG")
        .env("IMS_INFERENCE__ARTIFACTS_DIR", artifacts_dir())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_directory_is_moderated_in_process_and_against_the_server() {
    let server = Server::start();
    let dir = batch_dir();
    let path = dir.path().to_str().unwrap();

    // In process, on the server's own data directory: the same account, policies and history.
    let (ok, out, err) = ims(&server, &["moderate", "--concurrency", "2", path]);
    assert!(!ok, "a file that is not an image fails the batch: {err}");
    let rows: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 3, "{out}");
    let by_input = |suffix: &str| rows.iter().find(|r| r["Input"].as_str().unwrap().ends_with(suffix)).unwrap().clone();
    assert_eq!(by_input("a.jpg")["Suggestion"], "Pass");
    assert_eq!(by_input("more/b.jpg")["Suggestion"], "Pass");
    assert_eq!(by_input("notes.txt")["Error"]["Code"], "InvalidParameter.InvalidImageContent", "{out}");
    assert!(err.contains("3 images; Pass: 2, error InvalidParameter.InvalidImageContent: 1"), "{err}");

    // Against the running server, as CSV.
    let (ok, out, err) = ims(
        &server,
        &[
            "moderate",
            "--server",
            &server.endpoint,
            "--secret-id",
            &server.secret_id,
            "--secret-key",
            &server.secret_key,
            "--format",
            "csv",
            &dir.path().join("a.jpg").display().to_string(),
        ],
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Input,Suggestion,Label,SubLabel,Score,RequestId,Error");
    assert!(lines[1].contains(",Pass,Normal,,0,"), "{out}");
    let (ok, _, err) = ims(
        &server,
        &["moderate", "--server", &server.endpoint, "--secret-id", &server.secret_id, "--secret-key", "wrong", path],
    );
    assert!(!ok && err.contains("could not be moderated"), "{err}");

    // Both runs are in the history: 2 in process, 1 through the server.
    let listed = server.call("DescribeImsList", serde_json::json!({})).unwrap();
    assert_eq!(listed["TotalCount"], 3, "{listed}");
}
