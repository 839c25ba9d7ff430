//! The labeler form in a real headless Chromium (Debian's `chromium` + `chromium-driver`), driven
//! through chromedriver's W3C WebDriver HTTP API: sign in from the link, label one task by click
//! and one by key, reload and keep the progress, see a `<script>` prompt as text, and a layout
//! that stacks the answers on a phone-sized screen.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use subnet_common::protocol::Choice;
use subnet_miner::labeling::LabelingConfig;

use crate::labels::spawn_label_app;
use crate::webdriver::Driver;

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
