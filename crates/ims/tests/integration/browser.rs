//! A real browser for the console's tests: Debian's Chromium, headless, driven over WebDriver
//! by its own `chromedriver` (both installed by scripts/system-deps.sh) through `fantoccini`.
//! Each page a test visits can be kept as a screenshot under `target/console-screenshots/`.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    driver: Child,
    pub client: Client,
    /// The test's name: screenshot files start with it.
    name: String,
}

impl Browser {
    /// A fresh headless Chromium, or `None` (with one visible line; a failure under `CI=true`)
    /// where Chromium or its driver is not installed.
    pub async fn start(name: &str) -> Option<Browser> {
        if !std::path::Path::new(CHROMIUM).exists() || !std::path::Path::new(CHROMEDRIVER).exists() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true, but {CHROMIUM} or {CHROMEDRIVER} is missing: scripts/system-deps.sh installs them");
            }
            println!("SKIPPED: {CHROMIUM} or {CHROMEDRIVER} is missing (scripts/system-deps.sh installs them)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                // As root (CI) Chromium needs --no-sandbox; background networking off, so it
                // reaches nothing but the server under test.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--no-first-run", "--window-size=1400,1000",
                         "--lang=en-US"],
            }),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() > deadline => panic!("chromedriver did not answer: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        Some(Browser { driver, client, name: name.to_owned() })
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    /// The text of the element `css` selects, waiting up to 5 s for it (a page may still load).
    pub async fn text(&self, css: &str) -> String {
        let found = self.client.wait().at_most(Duration::from_secs(5)).for_element(Locator::Css(css)).await;
        match found {
            Ok(element) => element.text().await.unwrap(),
            Err(e) => {
                panic!("{css}: {e}\nat {}:\n{}", self.path().await, self.client.source().await.unwrap_or_default())
            }
        }
    }

    /// How many elements `css` selects.
    pub async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    /// Types `value` into a field (for a file input: the path of the file to send).
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        if field.attr("type").await.unwrap().as_deref() != Some("file") {
            field.clear().await.unwrap();
        }
        field.send_keys(value).await.unwrap();
    }

    /// Ticks a checkbox (nothing loads).
    pub async fn tick(&self, css: &str) {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
    }

    /// Clicks what `css` selects, a button or link that loads a page, and waits for that page.
    pub async fn click(&self, css: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        self.loading_next_page(async { element.click().await.unwrap() }, css).await;
    }

    /// Presses a key on the page (not in a field), one that loads a page, and waits for it.
    pub async fn press(&self, key: &str) {
        let body = self.client.find(Locator::Css("body")).await.unwrap();
        self.loading_next_page(async { body.send_keys(key).await.unwrap() }, key).await;
    }

    /// Does `action`, then waits until another page has replaced this one and loaded.
    async fn loading_next_page(&self, action: impl std::future::Future<Output = ()>, what: &str) {
        self.client.execute("window.imsOldPage = true", vec![]).await.unwrap();
        action.await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let loaded = self
                .client
                .execute("return !window.imsOldPage && document.readyState === 'complete'", vec![])
                .await
                .is_ok_and(|v| v == json!(true));
            if loaded {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: no page loaded within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Picks the option of the `<select>` `css` selects whose value is `value`.
    pub async fn select(&self, css: &str, value: &str) {
        let select = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        select.select_by_value(value).await.unwrap_or_else(|e| panic!("{css} = {value}: {e}"));
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// Runs a script in the page and returns its value.
    pub async fn script(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// The value of a cookie the server set (HttpOnly ones too: WebDriver sees every cookie).
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.client.get_named_cookie(name).await.ok().map(|c| c.value().to_owned())
    }

    /// Keeps the page as `target/console-screenshots/<test>-<step>.png`.
    pub async fn screenshot(&self, step: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{}-{step}.png", self.name)), png).unwrap();
    }

    /// Ends the browser session; dropping the `Browser` then stops the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

pub fn screenshots_dir() -> PathBuf {
    crate::harness::workspace_root().join("target/console-screenshots")
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
