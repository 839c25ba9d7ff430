//! A headless Chromium (Debian's `chromium` + `chromium-driver`) driven through chromedriver's
//! W3C WebDriver HTTP API: the miner's labeler-form tests use it, and the devnet's end-to-end test
//! of a person labelling includes this file by path (`devnet/tests/it/main.rs`).
// Each including crate uses a different part of it.
#![allow(dead_code)]

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process with one browser session; both end on drop.
pub struct Driver {
    http: reqwest::Client,
    base: String,
    session: String,
    process: Child,
    _profile: tempfile::TempDir,
}

impl Driver {
    pub async fn start() -> Self {
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
    pub async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.try_cmd(method, path, body).await;
        assert!(status.is_success(), "WebDriver {path}: {value}");
        value
    }

    pub async fn try_cmd(
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

    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn find(&self, css: &str) -> String {
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

    pub async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        let v = self
            .cmd(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await;
        v.as_str().expect("text").to_string()
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.cmd(reqwest::Method::POST, &format!("/element/{id}/click"), None)
            .await;
    }

    pub async fn press(&self, key: &str) {
        let actions = json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": [
            { "type": "keyDown", "value": key }, { "type": "keyUp", "value": key }
        ]}]});
        self.cmd(reqwest::Method::POST, "/actions", Some(actions))
            .await;
    }

    pub async fn script(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Sets the browser window's size in CSS pixels (headless: the viewport's size).
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// Makes the page's viewport (`innerWidth` × `innerHeight`) exactly `width` × `height` CSS
    /// pixels at device scale 1, as a phone (`mobile`: the page's `<meta name="viewport">`
    /// counts) or a desktop; through the DevTools protocol, since headless Chromium's window is
    /// larger than its viewport and has a minimum width.
    pub async fn set_viewport_size(&self, width: u32, height: u32, mobile: bool) {
        self.set_window_size(width.max(500), height + 200).await;
        self.cmd(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({
                "cmd": "Emulation.setDeviceMetricsOverride",
                "params": {
                    "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile,
                },
            })),
        )
        .await;
    }

    /// A PNG of the viewport (WebDriver's screenshot, decoded from base64).
    pub async fn screenshot(&self) -> Vec<u8> {
        let value = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        decode_base64(value.as_str().expect("screenshot base64"))
    }

    /// The text of an open alert, if any.
    pub async fn alert(&self) -> Option<String> {
        let (status, value) = self
            .try_cmd(reqwest::Method::GET, "/alert/text", None)
            .await;
        status.is_success().then(|| value.to_string())
    }

    /// Waits (up to 10 s) until the element's text contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
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

/// Standard base64 (with padding, whitespace ignored), as WebDriver sends screenshots.
fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {:?}", char::from(c)),
        }
    };
    let symbols: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(symbols.len() * 3 / 4);
    for chunk in symbols.chunks(4) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &c)| acc | (value(c) << (18 - 6 * i)));
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
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
