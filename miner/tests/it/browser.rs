//! The labeler form in a real headless Chromium (Debian's `chromium` + `chromium-driver`), driven
//! through chromedriver's W3C WebDriver HTTP API: sign in from the link, label one task by click
//! and one by key, reload and keep the progress, see a `<script>` prompt as text, and a layout
//! that stacks the answers on a phone-sized screen.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use subnet_common::protocol::Choice;
use subnet_miner::labeling::LabelingConfig;

use crate::labels::spawn_label_app;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process with one browser session; both end on drop.
struct Driver {
    http: reqwest::Client,
    base: String,
    session: String,
    process: Child,
    _profile: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Self {
        for path in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: install Debian's packages with \
                 `apt-get install -y chromium chromium-driver` (scripts/test.sh does)"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let base = format!("http://127.0.0.1:{port}");
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(res) = http.get(format!("{base}/status")).send().await
                && res.status().is_success()
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not answer on port {port}");
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        }}});
        let res = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session");
        let status = res.status();
        let body: Value = res.json().await.expect("session json");
        assert!(
            status.is_success(),
            "chromedriver refused a session: {body}"
        );
        let session = body["value"]["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        Self {
            http,
            base,
            session,
            process,
            _profile: profile,
        }
    }

    /// A WebDriver command; returns `value`, panicking on a WebDriver error.
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.try_cmd(method, path, body).await;
        assert!(status.is_success(), "WebDriver {path}: {value}");
        value
    }

    async fn try_cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let request = self.http.request(method.clone(), url);
        let request = match body {
            Some(b) => request.json(&b),
            None if method == reqwest::Method::POST => request.json(&json!({})),
            None => request,
        };
        let res = request.send().await.expect("webdriver request");
        let status = res.status();
        let value: Value = res.json().await.expect("webdriver json");
        (status, value["value"].clone())
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        let v = self
            .cmd(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await;
        v.as_str().expect("text").to_string()
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.cmd(reqwest::Method::POST, &format!("/element/{id}/click"), None)
            .await;
    }

    async fn press(&self, key: &str) {
        let actions = json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": [
            { "type": "keyDown", "value": key }, { "type": "keyUp", "value": key }
        ]}]});
        self.cmd(reqwest::Method::POST, "/actions", Some(actions))
            .await;
    }

    async fn script(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// The text of an open alert, if any.
    async fn alert(&self) -> Option<String> {
        let (status, value) = self
            .try_cmd(reqwest::Method::GET, "/alert/text", None)
            .await;
        status.is_success().then(|| value.to_string())
    }

    /// Waits (up to 10 s) until the element's text contains `needle`; returns the text.
    async fn wait_text(&self, css: &str, needle: &str) -> String {
        let mut last = String::new();
        for _ in 0..100 {
            let (status, found) = self
                .try_cmd(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({ "using": "css selector", "value": css })),
                )
                .await;
            if status.is_success()
                && let Some(id) = found[ELEMENT].as_str()
            {
                let (status, text) = self
                    .try_cmd(reqwest::Method::GET, &format!("/element/{id}/text"), None)
                    .await;
                if status.is_success() {
                    last = text.as_str().unwrap_or_default().to_string();
                    if last.contains(needle) {
                        return last;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never showed {needle:?}; last text {last:?}");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Ending the WebDriver session closes Chromium (also when the test panicked); a plain
        // blocking request, since drop cannot await. Then chromedriver itself is stopped.
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.session
        );
        if let Ok(mut stream) =
            std::net::TcpStream::connect(self.base.trim_start_matches("http://"))
        {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

const XSS_PROMPT: &str = "<script>alert(\"xss\")</script> 1+1=";

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn a_labeler_signs_in_and_labels_by_click_and_by_key_in_chromium(pool: PgPool) {
    let app = spawn_label_app(pool, LabelingConfig::without_reading_floor()).await;
    let tasks = json!({ "batch_id": "b1", "deadline_block": 400, "tasks": [
        { "task_id": "t0", "prompt": XSS_PROMPT, "a": "2", "b": "<b>3</b>" },
        { "task_id": "t1", "prompt": "reverse(abc)=", "a": "abc", "b": "cba" },
        { "task_id": "t2", "prompt": "next(9)=", "a": "10", "b": "11" },
        { "task_id": "t3", "prompt": "Why is the sky blue?", "a": "Because.", "b": "It is green." },
        { "task_id": "t4", "prompt": "Name a Dravidian language.", "a": "Tamil", "b": "Telugu" },
    ]});
    assert_eq!(app.send_batch(&tasks).await, StatusCode::ACCEPTED);
    let link = app.add_labeler("ann").await;

    let driver = Driver::start().await;
    driver
        .cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": 1200, "height": 900 })),
        )
        .await;
    driver.goto(&link).await;
    driver.click("#sign-in").await;
    driver.wait_text("#labeler", "ann").await;

    // The script prompt is text: visible verbatim, never run.
    assert_eq!(driver.text("#prompt").await, XSS_PROMPT);
    assert_eq!(driver.text("#answer-b").await, "<b>3</b>");
    assert_eq!(driver.alert().await, None, "no alert may open");
    assert_eq!(
        driver
            .script("return document.querySelectorAll('#prompt script, #answer-b b').length;")
            .await,
        json!(0)
    );
    // The session cookie is HttpOnly: invisible to page scripts.
    assert_eq!(driver.script("return document.cookie;").await, json!(""));
    // Wide screen: A and B side by side.
    let side_by_side = driver
        .script("const a = document.getElementById('answer-a').getBoundingClientRect(); const b = document.getElementById('answer-b').getBoundingClientRect(); return b.left > a.right - 1 && Math.abs(a.top - b.top) < 2;")
        .await;
    assert_eq!(side_by_side, json!(true));
    assert!(driver.text("#progress").await.contains("Done 0 / 5"));
    assert!(driver.text("#deadline").await.contains("block 400"));
    // Short guidelines, open on the first task; no batch or task id in the labeler's face.
    assert!(driver.text("#guidelines").await.contains("Both bad"));
    let body = driver.text("body").await;
    assert!(!body.contains("t0") && !body.contains("b1"), "{body}");

    // By click.
    driver.click("#choose-a").await;
    driver.wait_text("#progress", "Done 1 / 5").await;
    assert!(driver.text("#prompt").await.contains("reverse(abc)="));

    // By key: 2 is "B is better".
    driver.press("2").await;
    driver.wait_text("#progress", "Done 2 / 5").await;
    assert_eq!(driver.text("#prompt").await, "next(9)=");

    // A reload keeps the progress and shows the same open task.
    driver.cmd(reqwest::Method::POST, "/refresh", None).await;
    driver.wait_text("#progress", "Done 2 / 5").await;
    assert_eq!(driver.text("#prompt").await, "next(9)=");

    // Tie by key, "both bad" by click, "skip" by key 5.
    driver.press("3").await;
    driver.wait_text("#progress", "Done 3 / 5").await;
    driver.click("#choose-both-bad").await;
    driver.wait_text("#progress", "Done 4 / 5").await;
    assert_eq!(driver.text("#prompt").await, "Name a Dravidian language.");

    // Phone-sized screen: the answers stack.
    driver
        .cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": 390, "height": 844 })),
        )
        .await;
    let stacked = driver
        .script("const a = document.getElementById('answer-a').getBoundingClientRect(); const b = document.getElementById('answer-b').getBoundingClientRect(); return b.top >= a.bottom && document.documentElement.scrollWidth <= window.innerWidth;")
        .await;
    assert_eq!(stacked, json!(true));

    driver.press("5").await;
    driver.wait_text("body", "No open tasks").await;

    // Validators get "both bad" as a tie and nothing for the skipped task.
    let labels = app.labels("b1").await.labels;
    let got: Vec<(&str, Choice, &str)> = labels
        .iter()
        .map(|l| (l.task_id.as_str(), l.choice, l.labeler.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("t0", Choice::A, "ann"),
            ("t1", Choice::B, "ann"),
            ("t2", Choice::Tie, "ann"),
            ("t3", Choice::Tie, "ann"),
        ]
    );
}
