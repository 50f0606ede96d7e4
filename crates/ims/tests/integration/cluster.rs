//! A cluster: `ims serve` processes sharing one PostgreSQL database (`storage.url`), started by
//! the test itself (store::testing). Small made images, OCR off: this tests the sharing, not
//! the models.

use crate::harness::{b64, burst, python, raw, single, textured_jpeg, Server};
use crate::tasks::{Receiver, LOCAL_CALLBACKS};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use store::testing::TempPostgres;

/// Every node of a cluster seals and opens API secrets with the same master key.
const MASTER_KEY: &str = "5eb63bbbe01eeed093cb22bb8f5acdc35eb63bbbe01eeed093cb22bb8f5acdc3";

fn node(url: &str) -> Server {
    Server::start_with(
        &[
            ("IMS_STORAGE__URL", url),
            ("IMS_MASTER_KEY", MASTER_KEY),
            ("IMS_INFERENCE__OCR", "false"),
            LOCAL_CALLBACKS,
            // A killed node's tasks are taken over 3 s after its last renewal, not 30.
            ("IMS_TASKS__LEASE_SECS", "3"),
        ],
        &[],
    )
}

/// A job of `action` on `server` signed with the given key.
fn job_as(server: &Server, (secret_id, secret_key): (&str, &str), action: &str, params: Value) -> Value {
    let mut job = server.job(params);
    job["action"] = json!(action);
    job["secret_id"] = json!(secret_id);
    job["secret_key"] = json!(secret_key);
    job
}

fn call_as(server: &Server, key: (&str, &str), action: &str, params: Value) -> Result<Value, (String, String)> {
    single(python(&job_as(server, key, action, params)))
}

#[test]
fn two_nodes_on_one_database_are_one_service() {
    let Some(postgres) = TempPostgres::start() else { return };
    let url = postgres.create_database("cluster");
    let (a, b) = (node(&url), node(&url));
    assert_eq!((&a.secret_id, &a.secret_key), (&b.secret_id, &b.secret_key), "one first account for both");

    // An account and key made through node A's command line sign calls to node B.
    let (account, secret_id, secret_key) = a.main_account("acme");
    let key = (secret_id.as_str(), secret_key.as_str());
    let image = b64(&textured_jpeg(320, 240, 7));
    let first = call_as(&b, key, "ImageModeration", json!({"FileContent": image, "DataId": "on-b"}))
        .unwrap_or_else(|e| panic!("{e:?}\n{}", b.log()));
    assert_eq!(first["Suggestion"], "Pass", "{first}");

    // A console session opened on node A is served by node B (sessions are in the database),
    // with the result just moderated there; signed out on B, it is over on A too.
    let form = format!("secret_id={secret_id}&secret_key={secret_key}");
    let form_header = [("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned())];
    let signed = raw(&a.endpoint, "POST", "/console/sign-in", &form_header, form.as_bytes());
    assert_eq!(signed.status, 303);
    let token = signed.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let cookie = [("Cookie".to_owned(), token)];
    let listing = raw(&b.endpoint, "GET", "/console/results", &cookie, b"");
    assert_eq!(listing.status, 200);
    assert!(String::from_utf8_lossy(&listing.body).contains(">on-b<"), "node B lists the result");
    let page = String::from_utf8_lossy(&listing.body).into_owned();
    let at = page.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
    let csrf = page[at..].split('"').next().unwrap();
    let headers = [cookie[0].clone(), form_header[0].clone()];
    assert_eq!(raw(&b.endpoint, "POST", "/console/sign-out", &headers, format!("csrf={csrf}").as_bytes()).status, 303);
    assert_eq!(raw(&a.endpoint, "GET", "/console/results", &cookie, b"").status, 303, "signed out everywhere");

    // A block list filled through node A applies on node B at once.
    let lib =
        call_as(&a, key, "CreateImageLib", json!({"LibName": "banned", "Label": "Ad", "Action": "Block"})).unwrap();
    let lib_id = lib["LibId"].as_str().unwrap();
    let sample = json!({"LibId": lib_id, "Images": [{"Name": "x", "FileContent": image}]});
    call_as(&a, key, "CreateImageSamples", sample).unwrap();
    let second = call_as(&b, key, "ImageModeration", json!({"FileContent": image, "DataId": "on-b-again"})).unwrap();
    assert_eq!((second["Suggestion"].as_str(), second["Label"].as_str()), (Some("Block"), Some("Ad")), "{second}");

    // The history of calls to B reads the same from A, thumbnails included, and a correction
    // made through A reads the same from B.
    let listed = call_as(&a, key, "DescribeImsList", json!({"PageSize": 10})).unwrap();
    let data_ids = |page: &Value| -> Vec<String> {
        page["ImsDetailSet"].as_array().unwrap().iter().map(|r| r["DataId"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(data_ids(&listed), ["on-b-again", "on-b"], "{listed}");
    let from_b = call_as(&b, key, "DescribeImsList", json!({"PageSize": 10})).unwrap();
    assert_eq!(from_b["ImsDetailSet"][0]["Thumbnail"], listed["ImsDetailSet"][0]["Thumbnail"]);
    assert!(!listed["ImsDetailSet"][0]["Thumbnail"].as_str().unwrap().is_empty());
    let correction = json!({"ContentId": second["RequestId"], "Suggestion": "Pass", "Note": "our own ad"});
    call_as(&a, key, "CreateImsCorrection", correction).unwrap();
    let filter = json!({"Filters": [{"Name": "Corrected", "Values": ["true"]}]});
    let corrected = call_as(&b, key, "DescribeImsList", filter).unwrap();
    assert_eq!(corrected["ImsDetailSet"][0]["Correction"]["Note"], "our own ad", "{corrected}");

    // A policy made through A decides on B: one that applies no image library passes the image
    // the block list stops.
    call_as(&a, key, "CreateBizConfig", json!({"BizType": "no_libraries", "ImageLibs": []})).unwrap();
    let params = json!({"FileContent": image, "BizType": "no_libraries"});
    let under_policy = call_as(&b, key, "ImageModeration", params).unwrap();
    assert_eq!(under_policy["Suggestion"], "Pass", "{under_policy}");

    // A burst split across both nodes is limited as one account: 40 calls at once, 20 a second.
    a.cli(&["account", "limits", &account.to_string(), "--sync", "20"]).unwrap();
    std::thread::sleep(Duration::from_millis(1100)); // the calls above leave the window
    let mut spread = job_as(&a, key, "DescribeImsList", json!({"PageSize": 1}));
    spread["endpoints"] = json!([a.endpoint, b.endpoint]);
    let (admitted, limited) = burst(&spread, 40);
    println!("burst of 40 across two nodes, limit 20: {admitted} admitted, {limited} refused");
    assert!((19..=21).contains(&admitted), "within 5% of the limit: {admitted} admitted");
    a.cli(&["account", "limits", &account.to_string(), "--sync", "default"]).unwrap();
    std::thread::sleep(Duration::from_millis(1100));

    // Image search (tiia) is one index for the cluster: a picture filed through node A is found
    // through node B at once; removed through B, A no longer finds it (3 calls metered).
    let tiia = |server: &Server, action: &str, params: Value| {
        let mut job = job_as(server, key, action, params);
        (job["service"], job["version"]) = (json!("tiia"), json!("2019-05-29"));
        single(python(&job))
    };
    tiia(&a, "CreateGroup", json!({"GroupId": "shared", "GroupName": "shared", "MaxCapacity": 10})).unwrap();
    let picture = json!({"GroupId": "shared", "EntityId": "e", "PicName": "p", "ImageBase64": image});
    tiia(&a, "CreateImage", picture).unwrap();
    let search = json!({"GroupId": "shared", "ImageBase64": image});
    let found = tiia(&b, "SearchImage", search.clone()).unwrap();
    assert_eq!((found["Count"].as_i64(), found["ImageInfos"][0]["Score"].as_i64()), (Some(1), Some(100)), "{found}");
    tiia(&b, "DeleteImages", json!({"GroupId": "shared", "EntityId": "e"})).unwrap();
    assert_eq!(tiia(&a, "SearchImage", search).unwrap()["Count"], 0);

    // 200 tasks queued through both nodes; node A is killed mid-queue; node B finishes them all.
    a.cli(&["account", "limits", &account.to_string(), "--async", "1000"]).unwrap();
    let receiver = Receiver::start(0);
    let mut queue =
        job_as(&a, key, "CreateImageModerationAsyncTask", json!({"FileContent": image, "CallbackUrl": receiver.url()}));
    queue["endpoints"] = json!([a.endpoint, b.endpoint]);
    queue["count"] = json!(200);
    queue["concurrency"] = json!(4);
    let ids: Vec<String> = python(&queue)
        .iter()
        .map(|r| r["ok"]["RequestId"].as_str().unwrap_or_else(|| panic!("not queued: {r}")).to_string())
        .collect();
    let start = Instant::now();
    while receiver.accepted_tasks().len() < 20 {
        assert!(start.elapsed() < Duration::from_secs(120), "no deliveries: {}", a.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = receiver.accepted_tasks().len();
    drop(a); // SIGKILL: no shutdown of any kind
    assert!(before < ids.len(), "the kill must come mid-queue ({before} delivered)");
    let start = Instant::now();
    while !ids.iter().all(|id| receiver.accepted_tasks().contains_key(id)) {
        assert!(start.elapsed() < Duration::from_secs(300), "not all delivered: {}", receiver.accepted_tasks().len());
        std::thread::sleep(Duration::from_millis(100));
    }
    let accepted = receiver.accepted_tasks();
    let repeated: Vec<_> = accepted.iter().filter(|(_, n)| **n > 1).collect();
    println!("200 tasks, node A killed after {before} deliveries: all delivered, repeated {repeated:?}");
    // Only a delivery whose 2xx was in flight when A died may come twice: at most A's 8 at once.
    assert!(repeated.iter().all(|(_, n)| **n == 2) && repeated.len() <= 8, "{repeated:?}");

    // Metering: each successful call once, tasks taken over included (3 moderations, 3 search
    // calls, 200 tasks).
    assert_eq!(b.metered(account), 206);

    // The database goes down: calls fail with ServiceUnavailable within their deadline, and the
    // node says it is not ready; it serves again by itself once the database is back.
    postgres.stop();
    let asked = Instant::now();
    let refused = call_as(&b, key, "ImageModeration", json!({"FileContent": image})).unwrap_err();
    assert_eq!(refused.0, "ServiceUnavailable", "{refused:?}");
    assert!(asked.elapsed() < Duration::from_secs(15), "answered in {:?}", asked.elapsed());
    let ready = raw(&b.endpoint, "GET", "/readyz", &[], b"");
    assert_eq!((ready.status, ready.json()["database"].as_str()), (503, Some("unreachable")));
    assert_eq!(raw(&b.endpoint, "GET", "/healthz", &[], b"").status, 200, "alive all the same");
    postgres.start_again();
    let back = call_as(&b, key, "ImageModeration", json!({"FileContent": image})).unwrap();
    assert_eq!(back["Suggestion"], "Block", "{back}");
    assert_eq!(raw(&b.endpoint, "GET", "/readyz", &[], b"").status, 200);
    assert_eq!(b.metered(account), 207, "the refused call was not metered");

    // A database too slow to answer (here: a table locked by another session) is the same: the
    // statement is cancelled after 10 s, the call answered ServiceUnavailable within the 15 s
    // deadline; then the lock goes, and so does the error.
    let mut other = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    other.batch_execute("BEGIN; LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE").unwrap();
    let asked = Instant::now();
    let stuck = call_as(&b, key, "ImageModeration", json!({"FileContent": image})).unwrap_err();
    let waited = asked.elapsed();
    assert_eq!(stuck.0, "ServiceUnavailable", "{stuck:?}");
    assert!(waited >= Duration::from_secs(9) && waited < Duration::from_secs(15), "answered in {waited:?}");
    other.batch_execute("ROLLBACK").unwrap();
    call_as(&b, key, "ImageModeration", json!({"FileContent": image})).unwrap();
    assert_eq!(b.metered(account), 208);
}

/// A single node's SQLite deployment grows into a cluster: `ims storage copy` moves it into
/// PostgreSQL, and a node on the copy serves the same keys, history and usage.
#[test]
fn a_sqlite_deployment_is_copied_into_postgres() {
    let Some(postgres) = TempPostgres::start() else { return };
    let url = postgres.create_database("grown");
    let mut single_node = Server::start_with(&[("IMS_INFERENCE__OCR", "false")], &[]);
    let image = b64(&textured_jpeg(320, 240, 9));
    single_node.call("ImageModeration", json!({"FileContent": image, "DataId": "before"})).unwrap();
    let key = (single_node.secret_id.clone(), single_node.secret_key.clone());
    let data_dir = std::mem::replace(&mut single_node.data_dir, tempfile::tempdir().unwrap());
    drop(single_node); // stopped before the copy

    let copy = std::process::Command::new(env!("CARGO_BIN_EXE_ims"))
        .args(["--data-dir"])
        .arg(data_dir.path())
        .args(["storage", "copy", "--to", &url])
        .env_remove("IMS_CONFIG")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&copy.stdout);
    assert!(copy.status.success(), "{said}{}", String::from_utf8_lossy(&copy.stderr));
    assert!(said.contains("results") && said.contains("counts compared"), "{said}");

    let master_key = std::fs::read_to_string(data_dir.path().join("master.key")).unwrap();
    let grown = Server::start_with(&[("IMS_STORAGE__URL", &url), ("IMS_MASTER_KEY", &master_key)], &[]);
    assert_eq!((&grown.secret_id, &grown.secret_key), (&key.0, &key.1), "the same first account and key");
    let listed = grown.call("DescribeImsList", json!({"PageSize": 10})).unwrap();
    assert_eq!(listed["ImsDetailSet"][0]["DataId"], "before", "{listed}");
    assert_eq!(grown.metered(1), 1);
}
