//! Metering and billing through the real server: the actions with the Python SDK, the
//! operator's CLI, suspension in arrears and resumption, exact metering under concurrency and
//! across a crash.

use crate::harness::{b64, bmp, python, single, try_raw, unix_now, Server, Tc3};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn call_as(server: &Server, key: &(String, String), action: &str, params: Value) -> Result<Value, (String, String)> {
    let mut job = server.job(params);
    job["action"] = json!(action);
    job["secret_id"] = json!(key.0);
    job["secret_key"] = json!(key.1);
    single(python(&job))
}

fn moderate_as(server: &Server, key: &(String, String), params: Value) -> Result<Value, (String, String)> {
    let mut job = server.job(params);
    job["secret_id"] = json!(key.0);
    job["secret_key"] = json!(key.1);
    single(python(&job))
}

fn image() -> Value {
    json!({"FileContent": crate::harness::image_base64()})
}

/// The RFC 3339 time `days` from now: settling "then" closes today.
fn days_ahead(days: i64) -> String {
    chrono::DateTime::from_timestamp(unix_now() + days * 86_400, 0).unwrap().to_rfc3339()
}

#[test]
fn customers_see_prices_balance_packages_usage_and_bills() {
    let server = Server::start();
    let (id, sid, skey) = server.main_account("shop");
    let key = (sid, skey);
    let status = call_as(&server, &key, "DescribeAccountBalance", json!({})).unwrap()["Status"].clone();
    assert_eq!(status["State"], "Active", "{status}");
    assert_eq!((status["PriceList"].as_str(), status["Balance"].as_str()), (Some("cn"), Some("0.00")));
    assert_eq!(status["PrepaidImagesLeft"], 3000, "the trial");

    let lists = call_as(&server, &key, "DescribePriceLists", json!({"Name": "cn"})).unwrap();
    let offers: Vec<_> =
        lists["PriceLists"][0]["Packages"].as_array().unwrap().iter().map(|p| p["Price"].clone()).collect();
    assert_eq!(offers, ["4000.00", "14000.00", "63000.00", "225000.00", "360000.00"]);

    let (code, message) = call_as(&server, &key, "CreatePackage", json!({"Offer": "1.8M"})).unwrap_err();
    assert_eq!(code, "ResourceInsufficient", "{message}");
    let (code, _) = call_as(&server, &key, "CreatePackage", json!({"Offer": "2M"})).unwrap_err();
    assert_eq!(code, "InvalidParameterValue");
    server.cli(&["billing", "top-up", &id.to_string(), "4000"]).unwrap();
    let bought = call_as(&server, &key, "CreatePackage", json!({"Offer": "1.8M"})).unwrap()["Package"].clone();
    assert_eq!((bought["Images"].as_u64(), bought["Status"].as_str()), (Some(1_800_000), Some("Active")));
    let packages = call_as(&server, &key, "DescribePackages", json!({})).unwrap();
    assert_eq!(packages["Packages"].as_array().unwrap().len(), 2);
    let refunded = call_as(&server, &key, "RefundPackage", json!({"PackageId": bought["PackageId"]})).unwrap();
    assert_eq!(refunded["Package"]["Status"], "Refunded");
    let (code, _) = call_as(&server, &key, "RefundPackage", json!({"PackageId": bought["PackageId"]})).unwrap_err();
    assert_eq!(code, "OperationDenied");
    let status = call_as(&server, &key, "DescribeAccountBalance", json!({})).unwrap()["Status"].clone();
    assert_eq!(status["Balance"], "4000.00");

    moderate_as(&server, &key, image()).unwrap();
    moderate_as(&server, &key, json!({"FileContent": crate::harness::image_base64(), "Type": "IMAGE_AIGC"})).unwrap();
    let today = server.cli_json(&["billing", "usage", &id.to_string()]).as_array().unwrap()[0]["day"]
        .as_str()
        .unwrap()
        .to_string();
    let usage = call_as(&server, &key, "DescribeUsage", json!({"StartDate": today, "EndDate": today})).unwrap();
    let rows: Vec<_> = usage["Usage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r["Service"].as_str().unwrap().to_string(), r["TrialImages"].as_u64(), r["PayAsYouGoImages"].as_u64())
        })
        .collect();
    assert_eq!(rows, [("IMAGE".to_string(), Some(1), Some(0)), ("AIGC".to_string(), Some(0), Some(1))]);
    let (code, _) =
        call_as(&server, &key, "DescribeUsage", json!({"StartDate": "2026-02-30", "EndDate": today})).unwrap_err();
    assert_eq!(code, "InvalidParameterValue");

    // Settled as if two days had passed: the AIGC image costs 0.10 CNY, the trial image nothing.
    server.cli(&["billing", "settle", "--at", &days_ahead(2)]).unwrap();
    // The settlement's balance change is dated two days ahead too.
    let ahead = chrono::DateTime::from_timestamp(unix_now() + 3 * 86_400, 0).unwrap();
    let ahead = ahead.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).format("%Y-%m-%d").to_string();
    let bills = call_as(&server, &key, "DescribeBills", json!({"StartDate": today, "EndDate": ahead})).unwrap();
    assert_eq!(bills["Total"], "0.10", "{bills}");
    assert_eq!(bills["Bills"].as_array().unwrap().len(), 2);
    let monthly =
        call_as(&server, &key, "DescribeBills", json!({"StartDate": today, "EndDate": today, "Granularity": "Month"}))
            .unwrap();
    assert_eq!(monthly["Bills"][0]["Period"].as_str().unwrap().len(), 7);
    let kinds: Vec<_> = bills["BalanceChanges"].as_array().unwrap().iter().map(|c| c["Type"].clone()).collect();
    assert_eq!(kinds, ["TopUp", "Purchase", "Refund", "Settlement"]);

    // Billing is the main account's: a sub-account sees only its own usage.
    let (_, ssid, sskey) = server.sub_account(id, "clerk", "full");
    let sub = (ssid, sskey);
    let (code, _) = call_as(&server, &sub, "DescribeAccountBalance", json!({})).unwrap_err();
    assert_eq!(code, "UnauthorizedOperation");
    let own = call_as(&server, &sub, "DescribeUsage", json!({"StartDate": today, "EndDate": today})).unwrap();
    assert_eq!(own["Usage"], json!([]));
    moderate_as(&server, &sub, image()).unwrap();
    let own = call_as(&server, &sub, "DescribeUsage", json!({"StartDate": today, "EndDate": today})).unwrap();
    assert_eq!(own["Usage"].as_array().unwrap().len(), 1);
    assert_eq!(server.metered(id), 3, "the sub-account's image rolls up to its main account");

    let metrics = crate::harness::raw(&server.endpoint, "GET", "/metrics", &[], b"");
    let text = String::from_utf8_lossy(&metrics.body).to_string();
    assert!(text.contains(&format!("ims_billing_balance_minor{{account=\"{id}\",currency=\"CNY\"}} 399990")), "{text}");
    assert!(
        text.contains(&format!("ims_billing_images_total{{account=\"{id}\",service=\"IMAGE\",source=\"trial\"}} 2")),
        "{text}"
    );
}

#[test]
fn arrears_suspend_a_top_up_resumes_and_after_seven_days_activation_is_destroyed() {
    let server = Server::start();
    let accounts: Vec<_> = ["late", "later"].iter().map(|n| server.main_account(n)).collect();
    for (_, sid, skey) in &accounts {
        // AI-generated detection is pay-as-you-go only: 0.10 CNY against a zero balance.
        let aigc = json!({"FileContent": crate::harness::image_base64(), "Type": "IMAGE_AIGC"});
        moderate_as(&server, &(sid.clone(), skey.clone()), aigc).unwrap();
    }
    let out = server.cli(&["billing", "settle", "--at", &days_ahead(2)]).unwrap();
    assert_eq!(out.matches("suspended").count(), 2, "{out}");
    for (id, sid, skey) in &accounts {
        let key = (sid.clone(), skey.clone());
        let (code, message) = moderate_as(&server, &key, image()).unwrap_err();
        assert_eq!(code, "UnauthorizedOperation.Unauthorized", "{message}");
        // The SDK asks for Chinese messages.
        assert!(message.contains("欠费") && message.contains("-0.10 CNY"), "{message}");
        let status = call_as(&server, &key, "DescribeAccountBalance", json!({})).unwrap()["Status"].clone();
        assert_eq!(status["State"], "Suspended", "reads still work: {status}");
        assert_eq!(server.cli_json(&["billing", "status", &id.to_string()])["State"], "suspended");
    }
    // The first pays within the week and is served again at once.
    let (first, sid, skey) = &accounts[0];
    let first_key = (sid.clone(), skey.clone());
    server.cli(&["billing", "top-up", &first.to_string(), "0.05"]).unwrap();
    assert!(moderate_as(&server, &first_key, image()).is_err(), "0.05 does not clear 0.10 of arrears");
    server.cli(&["billing", "top-up", &first.to_string(), "0.05"]).unwrap();
    moderate_as(&server, &first_key, image()).unwrap();

    // The second does not: seven days after its suspension the activation is destroyed.
    let out = server.cli(&["billing", "settle", "--at", &days_ahead(9)]).unwrap();
    assert!(out.contains("destroyed the activation"), "{out}");
    let (second, sid, skey) = &accounts[1];
    let second_key = (sid.clone(), skey.clone());
    let (code, message) = moderate_as(&server, &second_key, image()).unwrap_err();
    assert_eq!(code, "UnauthorizedOperation.Unauthorized");
    assert!(message.contains("销毁"), "{message}");
    let (code, _) = call_as(&server, &second_key, "ActivateService", json!({})).unwrap_err();
    assert_eq!(code, "OperationDenied", "activation again needs the arrears cleared");
    server.cli(&["billing", "top-up", &second.to_string(), "1"]).unwrap();
    assert!(moderate_as(&server, &second_key, image()).is_err(), "money alone does not reactivate");
    let status = call_as(&server, &second_key, "ActivateService", json!({})).unwrap()["Status"].clone();
    assert_eq!((status["State"].as_str(), status["Balance"].as_str()), (Some("Active"), Some("0.90")));
    moderate_as(&server, &second_key, image()).unwrap();
}

#[test]
fn parallel_calls_are_metered_exactly_and_failed_ones_are_free() {
    const GOOD: usize = 24;
    const BAD: usize = 16;
    let server = Server::start();
    let (id, sid, skey) = server.main_account("busy");
    let mut good = server.image_job_as(&sid, &skey);
    good["count"] = json!(GOOD);
    good["concurrency"] = json!(GOOD);
    let mut bad = server.job(json!({"FileContent": b64(&bmp(16, 16))}));
    bad["secret_id"] = json!(sid);
    bad["secret_key"] = json!(skey);
    bad["count"] = json!(BAD);
    bad["concurrency"] = json!(BAD);
    let (good, bad) = std::thread::scope(|s| {
        let bad = s.spawn(|| python(&bad));
        (python(&good), bad.join().unwrap())
    });
    assert_eq!(good.iter().filter(|r| r.get("ok").is_some()).count(), GOOD, "{good:?}");
    assert!(bad.iter().all(|r| r["error"]["code"] == "InvalidParameter.ImageSizeTooSmall"), "{bad:?}");
    assert_eq!(server.metered(id), GOOD as u64);
    let status = server.cli_json(&["billing", "status", &id.to_string()]);
    assert_eq!(status["Packages"][0]["remaining"], 3000 - GOOD as u64);
}

#[test]
fn after_a_crash_mid_burst_the_ledger_equals_the_answers_received() {
    let server = Server::start();
    let (id, secret_id, secret_key) = server.main_account("crashy");
    let body = json!({"FileContent": crate::harness::image_base64()}).to_string();
    let (received, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (endpoint, body, received, stop) =
                (server.endpoint.clone(), body.clone(), received.clone(), stop.clone());
            let mut signer = Tc3::new(&server, "ImageModeration");
            (signer.secret_id, signer.secret_key) = (secret_id.clone(), secret_key.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    signer.timestamp = unix_now();
                    let headers = signer.headers("POST", &endpoint, "", body.as_bytes());
                    let Ok(answer) = try_raw(&endpoint, "POST", "/", &headers, body.as_bytes()) else { return };
                    let complete: Option<Value> = serde_json::from_slice(&answer.body).ok();
                    match complete {
                        Some(v) if v["Response"]["Suggestion"].is_string() => {
                            received.fetch_add(1, Ordering::SeqCst);
                        }
                        Some(v) if v["Response"]["Error"].is_object() => panic!("unexpected error: {v}"),
                        _ => return,
                    }
                }
            })
        })
        .collect();
    let start = Instant::now();
    while received.load(Ordering::SeqCst) < 20 {
        assert!(start.elapsed() < Duration::from_secs(120), "too slow: {}", server.log());
        std::thread::sleep(Duration::from_millis(3));
    }
    // SIGKILL while the four clients have calls in flight.
    let restarted = server.kill_and_restart(&[]);
    stop.store(true, Ordering::SeqCst);
    clients.into_iter().for_each(|c| c.join().unwrap());
    let received = received.load(Ordering::SeqCst) as u64;
    // Every answer received is in the ledger. A call whose metering committed in the instant
    // before the kill reached its answer's write is charged unanswered (docs/billing.md): at
    // most one per client, as each has one call in flight.
    let metered = restarted.metered(id);
    assert!(
        (received..=received + 4).contains(&metered),
        "{metered} metered for {received} answers received by 4 clients"
    );
}
