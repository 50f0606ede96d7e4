//! Asynchronous moderation: the task is checked and stored, moderated, and its result POSTed to
//! a local callback receiver that fails the first attempts; signatures verify; a server killed
//! with SIGKILL mid-queue delivers every task after its restart, none twice after a 2xx.

use crate::harness::{image_base64, Server};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One callback as received.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub headers: HashMap<String, String>,
    pub body: Value,
    pub raw: Vec<u8>,
    /// The status the receiver answered.
    pub status: u16,
    pub at: Instant,
}

/// A callback receiver on localhost: answers 500 to the first `failures` attempts of each task,
/// 200 after; keeps every delivery.
pub struct Receiver {
    pub port: u16,
    pub deliveries: Arc<Mutex<Vec<Delivery>>>,
    pub in_flight: Arc<Mutex<usize>>,
}

impl Receiver {
    pub fn start(failures: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let deliveries: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let in_flight: Arc<Mutex<usize>> = Arc::default();
        let (log, busy) = (deliveries.clone(), in_flight.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (log, busy) = (log.clone(), busy.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    *busy.lock().unwrap() += 1;
                    let mut headers = HashMap::new();
                    loop {
                        line.clear();
                        reader.read_line(&mut line).unwrap();
                        let Some((k, v)) = line.trim_end().split_once(": ") else { break };
                        headers.insert(k.to_ascii_lowercase(), v.to_string());
                    }
                    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
                    let mut raw = vec![0; length];
                    reader.read_exact(&mut raw).unwrap();
                    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
                    let task = headers.get("x-ims-task-id").cloned().unwrap_or_default();
                    let mut deliveries = log.lock().unwrap();
                    let earlier = deliveries.iter().filter(|d| d.headers.get("x-ims-task-id") == Some(&task)).count();
                    let status = if earlier < failures { 500 } else { 200 };
                    deliveries.push(Delivery { headers, body, raw, status, at: Instant::now() });
                    drop(deliveries);
                    let reason = if status == 200 { "OK" } else { "Internal Server Error" };
                    let _ =
                        write!(stream, "HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    let _ = stream.flush();
                    *busy.lock().unwrap() -= 1;
                });
            }
        });
        Receiver { port, deliveries, in_flight }
    }

    pub fn url(&self) -> String {
        format!("http://localhost:{}/callback", self.port)
    }

    pub fn snapshot(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap().clone()
    }

    /// The accepted (2xx) deliveries per DataId.
    pub fn accepted(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for d in self.snapshot().iter().filter(|d| d.status == 200) {
            *out.entry(d.body["Response"]["DataId"].as_str().unwrap_or("").to_string()).or_insert(0) += 1;
        }
        out
    }

    /// The accepted (2xx) deliveries per task id (`X-Ims-Task-Id`).
    pub fn accepted_tasks(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for d in self.snapshot().iter().filter(|d| d.status == 200) {
            *out.entry(d.headers.get("x-ims-task-id").cloned().unwrap_or_default()).or_insert(0) += 1;
        }
        out
    }

    /// Waits until every DataId was accepted at least once.
    pub fn wait_for(&self, data_ids: &[String], within: Duration) {
        let start = Instant::now();
        while start.elapsed() < within {
            let accepted = self.accepted();
            if data_ids.iter().all(|id| accepted.contains_key(id)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("not every task was delivered in {within:?}: accepted {:?}", self.accepted());
    }
}

/// The server's environment for callbacks to this machine (tests only: production refuses them).
pub const LOCAL_CALLBACKS: (&str, &str) = ("IMS_FETCH__ALLOW_INTERNAL_HOSTS", "[\"localhost\"]");

fn create_task(server: &Server, data_id: &str, callback: &str) -> Result<Value, (String, String)> {
    create_task_of(server, &image_base64(), data_id, callback)
}

fn create_task_of(server: &Server, image: &str, data_id: &str, callback: &str) -> Result<Value, (String, String)> {
    let params = json!({"FileContent": image, "DataId": data_id, "CallbackUrl": callback});
    let mut job = server.job(params);
    job["action"] = json!("CreateImageModerationAsyncTask");
    crate::harness::single(crate::harness::python(&job))
}

fn verify(secret_key: &str, delivery: &Delivery) {
    let header = &delivery.headers["x-ims-signature"];
    let (t, v1) = header.split_once(',').unwrap();
    let timestamp = t.strip_prefix("t=").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&delivery.raw);
    assert_eq!(v1.strip_prefix("v1=").unwrap(), hex::encode(mac.finalize().into_bytes()), "signature of {header}");
}

#[test]
fn tasks_are_delivered_signed_and_retried_until_accepted() {
    let receiver = Receiver::start(2);
    let server = Server::start_with(&[LOCAL_CALLBACKS], &[]);
    let ids: Vec<String> = (0..3).map(|i| format!("task-{i}")).collect();
    for id in &ids {
        let created = create_task(&server, id, &receiver.url()).unwrap();
        assert_eq!(created["DataId"], id.as_str(), "{created}");
        assert!(!created["RequestId"].as_str().unwrap().is_empty());
    }
    receiver.wait_for(&ids, Duration::from_secs(60));
    let deliveries = receiver.snapshot();
    for id in &ids {
        let mine: Vec<&Delivery> = deliveries.iter().filter(|d| d.body["Response"]["DataId"] == id.as_str()).collect();
        assert_eq!(mine.iter().map(|d| d.status).collect::<Vec<_>>(), [500, 500, 200], "{id}: retried after failures");
        let attempts: Vec<&str> = mine.iter().map(|d| d.headers["x-ims-attempt"].as_str()).collect();
        assert_eq!(attempts, ["1", "2", "3"]);
        for d in &mine {
            verify(&server.secret_key, d);
            assert_eq!(d.headers["x-ims-secretid"], server.secret_id);
            assert_eq!(d.headers["content-type"], "application/json");
            assert_eq!(d.body["Response"]["Suggestion"], "Pass", "{}", d.body);
            assert!(d.body["Response"]["LabelResults"].is_array());
        }
        // The backoff doubles: 1 s, then 2 s.
        assert!(mine[2].at - mine[1].at >= Duration::from_millis(1500), "{:?}", mine[2].at - mine[1].at);
    }
    // A task is metered once, when its result is made, not per delivery attempt.
    assert_eq!(server.metered(1), ids.len() as u64);
    // Results of tasks are in the history, as asynchronous.
    let listed =
        server.call("DescribeImsList", json!({"Filters": [{"Name": "DataId", "Values": ["task-1"]}]})).unwrap();
    assert_eq!(listed["ImsDetailSet"][0]["Source"], "async", "{listed}");
}

#[test]
fn task_requests_are_checked_like_the_sync_call_plus_the_callback() {
    let server = Server::start();
    let code = |params: Value| {
        let mut job = server.job(params);
        job["action"] = json!("CreateImageModerationAsyncTask");
        crate::harness::error_code(crate::harness::python(&job))
    };
    let image = image_base64();
    for callback in ["ftp://example.com/cb", "http://127.0.0.1:9/cb", "http://localhost:9/cb", "not a url"] {
        assert_eq!(
            code(json!({"FileContent": image, "CallbackUrl": callback})),
            "InvalidParameterValue.InvalidCallbackUrl",
            "{callback}"
        );
    }
    assert_eq!(code(json!({"FileContent": image})), "MissingParameter");
    assert_eq!(code(json!({"CallbackUrl": "https://example.com/cb"})), "InvalidParameterValue.InvalidContent");
    assert_eq!(
        code(json!({"FileContent": "%%%", "CallbackUrl": "https://example.com/cb"})),
        "InvalidParameterValue.InvalidContent"
    );
    assert_eq!(
        code(json!({"FileContent": image, "CallbackUrl": "https://example.com/cb", "DataId": "a b"})),
        "InvalidParameterValue.InvalidDataId"
    );
    assert_eq!(
        code(json!({"FileContent": image, "CallbackUrl": "https://example.com/cb", "MaxFrames": 6})),
        "InvalidParameterValue.InvalidParameter"
    );
    // The moderation agent's inputs are refused, not dropped.
    for agent_only in [json!({"FileUrlList": ["https://example.com/a.jpg"]}), json!({"TextContent": "aGVsbG8="})] {
        let mut params = json!({"FileContent": image, "CallbackUrl": "https://example.com/cb"});
        params.as_object_mut().unwrap().extend(agent_only.as_object().unwrap().clone());
        assert_eq!(code(params), "UnsupportedOperation", "{agent_only}");
    }
    let mut job = server.job(json!({"FileContent": image, "CallbackUrl": "https://example.com/cb", "MaxFrames": 5}));
    job["action"] = json!("CreateImageModerationAsyncTask");
    crate::harness::single(crate::harness::python(&job)).unwrap();
}

#[test]
fn a_server_killed_mid_queue_delivers_every_task_once_after_restart() {
    let receiver = Receiver::start(0);
    // The restarted server takes over the task the killed one was moderating once its lease
    // ends: 3 s here instead of 30.
    let env = [LOCAL_CALLBACKS, ("IMS_TASKS__WORKERS", "1"), ("IMS_TASKS__LEASE_SECS", "3")];
    let server = Server::start_with(&env, &[]);
    // Photo-sized images, so that each task takes a while and the queue is still long.
    let photo = crate::harness::b64(&crate::harness::textured_jpeg(1600, 1200, 0));
    let ids: Vec<String> = (0..16).map(|i| format!("crash-{i}")).collect();
    for id in &ids {
        create_task_of(&server, &photo, id, &receiver.url()).unwrap();
    }
    // Kill when some tasks are delivered and others are not, at a moment when no callback is in
    // flight (a 2xx whose recording a crash interrupts is the one case that may be repeated).
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(60), "no deliveries: {}", server.log());
        let delivered = receiver.accepted().len();
        let quiet = *receiver.in_flight.lock().unwrap() == 0
            && receiver.snapshot().last().is_some_and(|d| d.at.elapsed() > Duration::from_millis(15));
        if delivered >= 3 && quiet {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = receiver.accepted().len();
    assert!(before < ids.len(), "the kill must come mid-queue ({before} of {} delivered)", ids.len());
    let restarted = server.kill_and_restart(&env);
    receiver.wait_for(&ids, Duration::from_secs(120));
    let accepted = receiver.accepted();
    for id in &ids {
        assert_eq!(accepted[id], 1, "{id} delivered {} times: {accepted:?}", accepted[id]);
    }
    // A task moderated again after the crash is metered once (by its TaskId).
    assert_eq!(restarted.metered(1), ids.len() as u64);
}

#[test]
fn callbacks_stop_at_their_deadline_and_unstorable_tasks_are_refused() {
    let receiver = Receiver::start(usize::MAX);
    let env = [LOCAL_CALLBACKS, ("IMS_TASKS__DELIVERY_DEADLINE_SECS", "3")];
    let server = Server::start_with(&env, &[]);
    create_task(&server, "doomed", &receiver.url()).unwrap();
    // Attempts at about 0, 1, 3 s; the next would be past the deadline.
    std::thread::sleep(Duration::from_secs(6));
    let attempts = receiver.snapshot().len();
    assert!((2..=4).contains(&attempts), "{attempts} attempts");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(receiver.snapshot().len(), attempts, "no attempt after the deadline");
    assert!(server.log().contains("callback abandoned after its deadline"), "{}", server.log());

    // A database that refuses the write (as a full disk would): the task is not accepted.
    let db = server.data_dir.path().join("ims.db");
    let status = Command::new("python3")
        .arg("-c")
        .arg("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(\"CREATE TRIGGER no_room BEFORE INSERT ON tasks BEGIN SELECT RAISE(FAIL, 'disk full'); END\"); c.commit()")
        .arg(&db)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(create_task(&server, "refused", &receiver.url()).unwrap_err().0, "ResourceUnavailable.InQueueError");
}
