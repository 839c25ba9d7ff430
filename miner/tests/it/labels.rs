//! The RLHF label track over real HTTP: validators' batch and label routes, the labeler form's
//! sign-in, sessions and one-time CSRF tokens, deadlines, `miner labelers` through the binary and
//! the simulated labeler. Each test gets a fresh migrated database (`#[sqlx::test]`).

use std::{sync::Arc, time::Duration};

use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use sqlx::PgPool;
use subnet_common::{
    btauth::{AllowAnySigner, SignedClient},
    keys::Keypair,
    protocol::{Choice, LabelsResponse},
};
use subnet_miner::{
    db,
    labeling::{self, Labeling, LabelingConfig, ManualClock},
    startup::{Application, ServerConfig},
};

/// A miner (`//Bob`) collecting labels into `pool`, with a validator client (`//Alice`).
pub struct LabelApp {
    pub base: String,
    pub miner: Keypair,
    pub validator: SignedClient,
    pub pool: PgPool,
    pub clock: Arc<ManualClock>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl LabelApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST path` signed by `client` with a JSON body.
    pub async fn signed(
        &self,
        client: &SignedClient,
        path: &str,
        body: &Value,
    ) -> reqwest::Response {
        client
            .post_json(
                reqwest::Url::parse(&self.url(path)).expect("url"),
                &self.miner.account_id(),
                body,
            )
            .expect("json")
            .send()
            .await
            .expect("send")
    }

    /// Sends a batch as `//Alice`; returns the status.
    pub async fn send_batch(&self, batch: &Value) -> StatusCode {
        self.signed(&self.validator, "/v1/rlhf/tasks", batch)
            .await
            .status()
    }

    /// Adds a labeler and returns their sign-in link.
    pub async fn add_labeler(&self, name: &str) -> String {
        let token = labeling::new_secret();
        db::add_labeler(&self.pool, name, &db::hash_secret(&token), 3600)
            .await
            .expect("add labeler");
        labeling::login_link(&self.base, &token)
    }

    /// Labels of `//Alice`'s batch.
    pub async fn labels(&self, batch_id: &str) -> LabelsResponse {
        let res = self
            .signed(
                &self.validator,
                "/v1/rlhf/labels",
                &json!({ "batch_id": batch_id }),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.expect("labels json")
    }
}

pub async fn spawn_label_app(pool: PgPool, config: LabelingConfig) -> LabelApp {
    let miner = Keypair::from_uri("//Bob").expect("dev key");
    let server = ServerConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        max_body_bytes: 1 << 20,
        auth_max_age: Duration::from_secs(10),
        model: None,
    };
    let clock = Arc::new(ManualClock::at(100));
    let labeling = Labeling {
        pool: pool.clone(),
        clock: Arc::clone(&clock) as Arc<dyn labeling::BlockClock>,
        config,
    };
    let app = Application::build_with_labeling(
        &server,
        miner.clone(),
        AllowAnySigner,
        Some(Arc::new(labeling)),
    )
    .await
    .expect("build app");
    let addr = app.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    LabelApp {
        base: format!("http://{addr}"),
        miner,
        validator: signed_client("//Alice"),
        pool,
        clock,
        _shutdown: tx,
    }
}

pub fn signed_client(uri: &str) -> SignedClient {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    SignedClient::new(http, Keypair::from_uri(uri).expect("dev key"))
}

/// A batch of `n` arithmetic tasks: answer A is correct, B off by one.
pub fn batch(batch_id: &str, deadline_block: u64, n: usize) -> Value {
    let tasks: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "task_id": format!("t{i}"),
                "prompt": format!("{i}+1="),
                "a": (i + 1).to_string(),
                "b": (i + 2).to_string(),
            })
        })
        .collect();
    json!({ "batch_id": batch_id, "deadline_block": deadline_block, "tasks": tasks })
}

/// A browser-like client: keeps the session cookie, does not follow redirects.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    pub cookie: Option<String>,
}

/// A page: status and body.
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub html: String,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            base: base.to_string(),
            cookie: None,
        }
    }

    async fn page(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(c) => request.header(header::COOKIE, c),
            None => request,
        };
        let res = request.send().await.expect("send");
        for value in res.headers().get_all(header::SET_COOKIE) {
            let value = value.to_str().expect("ascii cookie");
            assert!(value.contains("HttpOnly"), "{value}");
            assert!(value.contains("SameSite=Strict"), "{value}");
            self.cookie = value.split(';').next().map(str::to_string);
        }
        Page {
            status: res.status(),
            location: res
                .headers()
                .get(header::LOCATION)
                .map(|v| v.to_str().expect("ascii").to_string()),
            html: res.text().await.expect("body"),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let request = self.http.get(url);
        self.page(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.http.post(format!("{}{path}", self.base)).form(form);
        self.page(request).await
    }

    /// Opens the link and presses "Sign in".
    pub async fn sign_in(&mut self, link: &str) -> Page {
        let page = self.get(link).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        let token = link.split_once("token=").expect("token").1.to_string();
        assert!(page.html.contains(&token));
        self.post("/label/login", &[("token", &token)]).await
    }

    /// `GET /label`, which must show a task; returns its CSRF token and task id.
    pub async fn open_task(&mut self) -> (String, String, Page) {
        let page = self.get("/label").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        let task = labeling::simulate::parse_task(&page.html).expect("a task on the page");
        (task.csrf, task.task_id, page)
    }

    pub async fn answer(&mut self, csrf: &str, choice: &str) -> Page {
        self.post(
            "/label/answer",
            &[("csrf", csrf), ("choice", choice), ("note", "")],
        )
        .await
    }
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn a_batch_is_accepted_once_and_resending_it_changes_nothing(pool: PgPool) {
    let app = spawn_label_app(pool, LabelingConfig::without_reading_floor()).await;
    assert_eq!(
        app.send_batch(&batch("b1", 200, 3)).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.send_batch(&batch("b1", 999, 5)).await,
        StatusCode::ACCEPTED
    );
    let link = app.add_labeler("ann").await;
    let mut browser = Browser::new(&app.base);
    browser.sign_in(&link).await;
    let (_, task_id, page) = browser.open_task().await;
    assert_eq!(task_id, "t0");
    assert!(
        page.html.contains("Done <strong>0</strong> / 3"),
        "{}",
        page.html
    );
    assert!(
        page.html.contains("Deadline: block 200 · 100 blocks left"),
        "{}",
        page.html
    );
    assert!(app.labels("b1").await.labels.is_empty());
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn oversized_and_malformed_batches_get_json_errors(pool: PgPool) {
    let config = LabelingConfig {
        limits: labeling::BatchLimits {
            max_tasks: 4,
            max_text_bytes: 64,
            max_id_bytes: 16,
        },
        ..LabelingConfig::without_reading_floor()
    };
    let app = spawn_label_app(pool, config).await;
    let res = app
        .signed(&app.validator, "/v1/rlhf/tasks", &batch("big", 200, 5))
        .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "payload_too_large");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("at most 4")
    );

    let mut long = batch("long", 200, 1);
    long["tasks"][0]["a"] = json!("x".repeat(65));
    assert_eq!(app.send_batch(&long).await, StatusCode::PAYLOAD_TOO_LARGE);

    let mut twice = batch("twice", 200, 2);
    twice["tasks"][1]["task_id"] = json!("t0");
    let res = app.signed(&app.validator, "/v1/rlhf/tasks", &twice).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "bad_request");

    let res = app
        .signed(
            &app.validator,
            "/v1/rlhf/tasks",
            &json!({ "batch_id": "x" }),
        )
        .await;
    assert!(res.status().is_client_error());
    let body: Value = res.json().await.expect("error json");
    assert!(body["error"].is_string());
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn a_validator_reads_only_its_own_batches(pool: PgPool) {
    let app = spawn_label_app(pool, LabelingConfig::without_reading_floor()).await;
    assert_eq!(
        app.send_batch(&batch("shared-id", 200, 1)).await,
        StatusCode::ACCEPTED
    );
    let charlie = signed_client("//Charlie");
    let res = app
        .signed(
            &charlie,
            "/v1/rlhf/labels",
            &json!({ "batch_id": "shared-id" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "not_found");
    // Charlie may use the same batch_id for a batch of his own.
    let res = app
        .signed(&charlie, "/v1/rlhf/tasks", &batch("shared-id", 200, 2))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn labels_come_back_once_per_task_and_labeler_with_their_seconds(pool: PgPool) {
    let app = spawn_label_app(pool, LabelingConfig::without_reading_floor()).await;
    app.send_batch(&batch("b1", 200, 2)).await;
    for (name, choices) in [("ann", ["a", "tie"]), ("bob", ["b", "a"])] {
        let mut browser = Browser::new(&app.base);
        let signed_in = browser.sign_in(&app.add_labeler(name).await).await;
        assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
        assert_eq!(signed_in.location.as_deref(), Some("/label"));
        for choice in choices {
            let (csrf, _, _) = browser.open_task().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let page = browser.answer(&csrf, choice).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
            assert_eq!(page.location.as_deref(), Some("/label?saved=1"));
        }
        let done = browser.get("/label?saved=1").await;
        assert!(done.html.contains("No open tasks"), "{}", done.html);
        assert!(
            done.html.contains("Done <strong>2</strong> / 2"),
            "{}",
            done.html
        );
    }
    let labels = app.labels("b1").await.labels;
    let got: Vec<(&str, Choice, &str)> = labels
        .iter()
        .map(|l| (l.task_id.as_str(), l.choice, l.labeler.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("t0", Choice::A, "ann"),
            ("t0", Choice::B, "bob"),
            ("t1", Choice::Tie, "ann"),
            ("t1", Choice::A, "bob"),
        ]
    );
    for label in &labels {
        assert!((0.04..10.0).contains(&label.seconds), "{label:?}");
    }
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn a_reused_csrf_token_gets_a_clear_page_and_changes_nothing(pool: PgPool) {
    let app = spawn_label_app(pool, LabelingConfig::without_reading_floor()).await;
    app.send_batch(&batch("b1", 200, 2)).await;
    let mut browser = Browser::new(&app.base);
    browser.sign_in(&app.add_labeler("ann").await).await;
    let (csrf, _, _) = browser.open_task().await;
    assert_eq!(
        browser.answer(&csrf, "a").await.status,
        StatusCode::SEE_OTHER
    );
    let again = browser.answer(&csrf, "b").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.html.contains("already submitted"), "{}", again.html);
    assert!(again.html.contains("nothing was changed"), "{}", again.html);
    let labels = app.labels("b1").await.labels;
    assert_eq!(labels.len(), 1);
    assert_eq!(
        (labels[0].task_id.as_str(), labels[0].choice),
        ("t0", Choice::A)
    );
    // The next task is still open and answerable.
    let (next, task_id, _) = browser.open_task().await;
    assert_eq!(task_id, "t1");
    assert_eq!(
        browser.answer(&next, "tie").await.status,
        StatusCode::SEE_OTHER
    );
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn a_double_submit_stores_one_label(pool: PgPool) {
    let app = spawn_label_app(pool, LabelingConfig::without_reading_floor()).await;
    app.send_batch(&batch("b1", 200, 1)).await;
    let mut browser = Browser::new(&app.base);
    browser.sign_in(&app.add_labeler("ann").await).await;
    let (csrf, _, _) = browser.open_task().await;
    let mut second = Browser::new(&app.base);
    second.cookie = browser.cookie.clone();
    let (first, other) = tokio::join!(browser.answer(&csrf, "a"), second.answer(&csrf, "b"));
    let mut statuses = [first.status, other.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::SEE_OTHER, StatusCode::CONFLICT]);
    assert_eq!(app.labels("b1").await.labels.len(), 1);
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn answering_the_same_task_from_two_tabs_keeps_the_first(pool: PgPool) {
    let app = spawn_label_app(pool, LabelingConfig::without_reading_floor()).await;
    app.send_batch(&batch("b1", 200, 2)).await;
    let mut browser = Browser::new(&app.base);
    browser.sign_in(&app.add_labeler("ann").await).await;
    let (tab1, _, _) = browser.open_task().await;
    let (tab2, _, _) = browser.open_task().await;
    assert_ne!(tab1, tab2, "every rendering has its own token");
    assert_eq!(
        browser.answer(&tab1, "a").await.status,
        StatusCode::SEE_OTHER
    );
    let page = browser.answer(&tab2, "b").await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert!(
        page.html.contains("already answered this task"),
        "{}",
        page.html
    );
    let labels = app.labels("b1").await.labels;
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].choice, Choice::A);
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn a_token_of_another_session_is_refused(pool: PgPool) {
    let app = spawn_label_app(pool, LabelingConfig::without_reading_floor()).await;
    app.send_batch(&batch("b1", 200, 1)).await;
    let mut ann = Browser::new(&app.base);
    ann.sign_in(&app.add_labeler("ann").await).await;
    let mut eve = Browser::new(&app.base);
    eve.sign_in(&app.add_labeler("eve").await).await;
    let (ann_token, _, _) = ann.open_task().await;
    let page = eve.answer(&ann_token, "b").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.html.contains("not valid"), "{}", page.html);
    let page = eve.answer("", "b").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(app.labels("b1").await.labels.is_empty());
    // Ann's token is still good for Ann.
    assert_eq!(
        ann.answer(&ann_token, "a").await.status,
        StatusCode::SEE_OTHER
    );
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn a_sign_in_link_works_once(pool: PgPool) {
    let app = spawn_label_app(pool, LabelingConfig::without_reading_floor()).await;
    let link = app.add_labeler("ann").await;
    assert_eq!(
        Browser::new(&app.base).sign_in(&link).await.status,
        StatusCode::SEE_OTHER
    );
    let second = Browser::new(&app.base).sign_in(&link).await;
    assert_eq!(second.status, StatusCode::UNAUTHORIZED);
    assert!(second.html.contains("used already"), "{}", second.html);
    assert!(
        second.html.contains("miner labelers link"),
        "{}",
        second.html
    );
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn a_sign_in_posted_from_another_site_is_refused_and_keeps_the_link(pool: PgPool) {
    let app = spawn_label_app(pool, LabelingConfig::without_reading_floor()).await;
    let link = app.add_labeler("ann").await;
    let token = link.split_once("token=").expect("token").1;
    let res = reqwest::Client::new()
        .post(app.url("/label/login"))
        .header(header::ORIGIN, "https://evil.example")
        .form(&[("token", token)])
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(
        Browser::new(&app.base).sign_in(&link).await.status,
        StatusCode::SEE_OTHER
    );
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn no_or_bad_or_expired_sessions_get_a_page_saying_how_to_sign_in(pool: PgPool) {
    let config = LabelingConfig {
        session_ttl: Duration::from_secs(1),
        ..LabelingConfig::without_reading_floor()
    };
    let app = spawn_label_app(pool, config).await;
    app.send_batch(&batch("b1", 200, 1)).await;

    let page = Browser::new(&app.base).get("/label").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.html.contains("not signed in"), "{}", page.html);
    assert!(page.html.contains("miner labelers link"), "{}", page.html);

    let mut forged = Browser::new(&app.base);
    forged.cookie = Some(format!("{}=deadbeef", labeling::SESSION_COOKIE));
    let page = forged.get("/label").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.html.contains("session is not valid"), "{}", page.html);

    let mut browser = Browser::new(&app.base);
    browser.sign_in(&app.add_labeler("ann").await).await;
    let (csrf, _, _) = browser.open_task().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let page = browser.get("/label").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.html.contains("session has expired"), "{}", page.html);
    let page = browser.answer(&csrf, "a").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(app.labels("b1").await.labels.is_empty());
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn answers_faster_than_the_pair_can_be_read_are_kept_but_not_sent(pool: PgPool) {
    // The default floor: 50 characters a second. Each task here is 6 characters ("0+1=", "1",
    // "2"): 0.12 s to read.
    let app = spawn_label_app(pool.clone(), LabelingConfig::default()).await;
    app.send_batch(&batch("b1", 200, 2)).await;
    let mut browser = Browser::new(&app.base);
    browser.sign_in(&app.add_labeler("ann").await).await;
    let (csrf, _, _) = browser.open_task().await;
    assert_eq!(
        browser.answer(&csrf, "a").await.status,
        StatusCode::SEE_OTHER
    );
    let (csrf, _, _) = browser.open_task().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        browser.answer(&csrf, "b").await.status,
        StatusCode::SEE_OTHER
    );
    let sent = app.labels("b1").await.labels;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].task_id.as_str(), sent[0].choice),
        ("t1", Choice::B)
    );
    assert!(sent[0].seconds >= 0.3, "{sent:?}");
    // Both are stored: the operator sees what the labeler did.
    let listed = db::list_labelers(&pool).await.expect("list");
    assert_eq!(listed[0].labels, 2);
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn tasks_past_their_deadline_are_neither_shown_nor_stored(pool: PgPool) {
    let app = spawn_label_app(pool, LabelingConfig::without_reading_floor()).await;
    app.send_batch(&batch("late", 105, 1)).await;
    app.send_batch(&batch("later", 300, 1)).await;
    let mut browser = Browser::new(&app.base);
    browser.sign_in(&app.add_labeler("ann").await).await;
    let (csrf, _, page) = browser.open_task().await;
    // The batch "late" first: its deadline is 5 blocks away.
    assert!(
        page.html.contains("5 blocks left (≈ 60 s)"),
        "{}",
        page.html
    );
    app.clock.set(106);
    let refused = browser.answer(&csrf, "a").await;
    assert_eq!(refused.status, StatusCode::GONE);
    assert!(refused.html.contains("Not counted"), "{}", refused.html);
    let (_, _, page) = browser.open_task().await;
    // The batch "later": 194 blocks away.
    assert!(page.html.contains("194 blocks left"), "{}", page.html);
    assert!(
        page.html.contains("Done <strong>0</strong> / 1"),
        "{}",
        page.html
    );
    assert!(app.labels("late").await.labels.is_empty());
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn disabling_a_labeler_ends_their_session_and_keeps_their_labels(pool: PgPool) {
    let app = spawn_label_app(pool, LabelingConfig::without_reading_floor()).await;
    app.send_batch(&batch("b1", 200, 2)).await;
    let mut browser = Browser::new(&app.base);
    browser.sign_in(&app.add_labeler("ann").await).await;
    let (csrf, _, _) = browser.open_task().await;
    browser.answer(&csrf, "a").await;
    assert!(
        db::disable_labeler(&app.pool, "ann")
            .await
            .expect("disable")
    );
    let page = browser.get("/label").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.labels("b1").await.labels.len(), 1);
    let listed = db::list_labelers(&app.pool).await.expect("list");
    assert!(listed[0].disabled);
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn the_simulated_labeler_answers_through_the_form_as_accurately_as_asked(pool: PgPool) {
    let app = spawn_label_app(pool, LabelingConfig::without_reading_floor()).await;
    app.send_batch(&batch("b1", 200, 12)).await;
    let mut out = Vec::new();
    let report = labeling::simulate::run(
        &labeling::simulate::Simulation {
            link: app.add_labeler("sim").await,
            answerer: labeling::simulate::Answerer::Person { accuracy: 1.0 },
            count: 100,
            seed: Some(3),
            truth_dir: None,
            record: None,
        },
        &mut out,
    )
    .await
    .expect("simulation");
    assert_eq!(
        (report.answered, report.judged, report.correct),
        (12, 12, 12)
    );
    let out = String::from_utf8(out).expect("utf8");
    assert!(out.starts_with("SIMULATION"), "{out}");
    let labels = app.labels("b1").await.labels;
    assert_eq!(labels.len(), 12);
    assert!(
        labels
            .iter()
            .all(|l| l.choice == Choice::A && l.labeler == "sim")
    );
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn with_a_truth_dir_the_simulated_labeler_follows_the_validators_truth(pool: PgPool) {
    let app = spawn_label_app(pool, LabelingConfig::without_reading_floor()).await;
    // The checker would say A on every task; the validator's truth says B on the even ones and
    // nothing (open pairs) on the odd ones, and the truth wins. On open pairs 1 and 5 the
    // better-ranked model's answer is B: a simulated person prefers it.
    app.send_batch(&batch("b1", 200, 8)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let truth = subnet_common::protocol::SimulationTruth {
        batch_id: "b1".into(),
        tasks: (0..8u32)
            .map(|i| (format!("t{i}"), i.is_multiple_of(2).then_some(Choice::B)))
            .collect(),
        open_better: [("t1".to_string(), Choice::B), ("t5".to_string(), Choice::B)].into(),
    };
    std::fs::write(
        dir.path().join("b1.json"),
        serde_json::to_vec(&truth).expect("json"),
    )
    .expect("write");
    // A half-written file of a writer's is skipped.
    std::fs::write(dir.path().join(".b2.json.tmp"), "{").expect("write");
    let mut out = Vec::new();
    let report = labeling::simulate::run(
        &labeling::simulate::Simulation {
            link: app.add_labeler("sim").await,
            answerer: labeling::simulate::Answerer::Person { accuracy: 1.0 },
            count: 100,
            seed: Some(3),
            truth_dir: Some(dir.path().to_path_buf()),
            record: None,
        },
        &mut out,
    )
    .await
    .expect("simulation");
    assert_eq!((report.answered, report.judged, report.correct), (8, 4, 4));
    let labels = app.labels("b1").await.labels;
    for label in &labels {
        let i: usize = label.task_id[1..].parse().expect("t<i>");
        if i.is_multiple_of(2) || i == 1 || i == 5 {
            assert_eq!(label.choice, Choice::B, "{label:?}");
        }
    }
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn built_in_bots_answer_as_named_and_a_replay_repeats_a_recording(pool: PgPool) {
    use labeling::simulate::{Answerer, Bot, Simulation};
    let app = spawn_label_app(pool, LabelingConfig::without_reading_floor()).await;
    app.send_batch(&batch("b1", 200, 6)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let recording = dir.path().join("person.txt");
    let sim = |link: String, answerer: Answerer, record: Option<std::path::PathBuf>| Simulation {
        link,
        answerer,
        count: 100,
        seed: Some(9),
        truth_dir: None,
        record,
    };
    let run = |sim: Simulation| async move {
        let mut out = Vec::new();
        labeling::simulate::run(&sim, &mut out)
            .await
            .expect("simulation")
    };
    // Every labeler of the miner sees every task: each answers all six.
    for (name, bot, expected) in [
        ("a", Bot::AlwaysA, Some(Choice::A)),
        ("tie", Bot::AlwaysTie, Some(Choice::Tie)),
        // "i+1=" against answers i+1 and i+2: the same prompt words (none), B is longer or
        // equal, so A unless B has more characters.
        ("shallow", Bot::Shallow, None),
        ("random", Bot::Random, None),
    ] {
        let report = run(sim(app.add_labeler(name).await, Answerer::Bot(bot), None)).await;
        assert_eq!(report.answered, 6, "{name}");
        let mine: Vec<Choice> = app
            .labels("b1")
            .await
            .labels
            .into_iter()
            .filter(|l| l.labeler == name)
            .map(|l| l.choice)
            .collect();
        assert_eq!(mine.len(), 6);
        if let Some(expected) = expected {
            assert!(mine.iter().all(|&c| c == expected), "{name}: {mine:?}");
        }
        if bot == Bot::Random {
            assert!(mine.iter().all(|&c| c != Choice::Tie));
        }
    }
    // A person records; a replay on the same tasks repeats the choices in order.
    let person = run(sim(
        app.add_labeler("person").await,
        Answerer::Person { accuracy: 0.5 },
        Some(recording.clone()),
    ))
    .await;
    assert_eq!(person.answered, 6);
    let replay = run(sim(
        app.add_labeler("replay").await,
        Answerer::Replay(recording.clone()),
        None,
    ))
    .await;
    assert_eq!(replay.answered, 6);
    let labels = app.labels("b1").await.labels;
    let of = |name: &str| -> Vec<(String, Choice)> {
        labels
            .iter()
            .filter(|l| l.labeler == name)
            .map(|l| (l.task_id.clone(), l.choice))
            .collect()
    };
    let recorded: Vec<String> = std::fs::read_to_string(&recording)
        .expect("recorded")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(recorded.len(), 6);
    let replayed: Vec<&str> = of("replay")
        .iter()
        .map(|(_, c)| subnet_miner::db::choice_str(*c))
        .collect();
    let mut recorded_sorted = recorded.clone();
    recorded_sorted.sort();
    let mut replayed_sorted = replayed.clone();
    replayed_sorted.sort();
    assert_eq!(recorded_sorted, replayed_sorted, "the same choices");
    // A replay past the end of its recording stops instead of inventing answers.
    app.send_batch(&batch("b2", 200, 2)).await;
    let more = run(sim(
        app.add_labeler("replay2").await,
        Answerer::Replay(dir.path().join("empty.txt")),
        None,
    ))
    .await;
    assert_eq!(more.answered, 0);
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn a_program_answers_through_the_form_with_each_task_on_its_stdin(pool: PgPool) {
    let app = spawn_label_app(pool, LabelingConfig::without_reading_floor()).await;
    app.send_batch(&batch("b1", 200, 6)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let seen = dir.path().join("seen.jsonl");
    // Keeps what it was given, answers B.
    let program = format!("cat >> {}; echo B", seen.display());
    let simulation = |answer_with: String| labeling::simulate::Simulation {
        link: String::new(),
        answerer: labeling::simulate::Answerer::Program(answer_with),
        count: 100,
        seed: None,
        truth_dir: None,
        record: None,
    };
    let mut out = Vec::new();
    let report = labeling::simulate::run(
        &labeling::simulate::Simulation {
            link: app.add_labeler("bot").await,
            ..simulation(program.clone())
        },
        &mut out,
    )
    .await
    .expect("simulation");
    assert_eq!(report.answered, 6);
    let labels = app.labels("b1").await.labels;
    assert_eq!(labels.len(), 6);
    assert!(labels.iter().all(|l| l.choice == Choice::B));
    let tasks: Vec<serde_json::Value> = std::fs::read_to_string(&seen)
        .expect("the program saw the tasks")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON task per line"))
        .collect();
    assert_eq!(tasks.len(), 6);
    assert!(tasks.iter().all(|t| t["prompt"].is_string()
        && t["a"].is_string()
        && t["b"].is_string()
        && t["task_id"].is_string()));

    // A program that prints something else is named in the error, and nothing is stored for it.
    app.send_batch(&batch("b2", 200, 2)).await;
    let mut out = Vec::new();
    let err = labeling::simulate::run(
        &labeling::simulate::Simulation {
            link: app.add_labeler("confused").await,
            ..simulation("echo maybe".into())
        },
        &mut out,
    )
    .await
    .expect_err("not a choice");
    let err = format!("{err:#}");
    assert!(
        err.contains("echo maybe") && err.contains("not a, b or tie"),
        "{err}"
    );
    assert!(app.labels("b2").await.labels.is_empty());
}

/// The URL of the database `#[sqlx::test]` made for this test.
pub async fn database_url(pool: &PgPool) -> String {
    let (name,): (String,) = sqlx::query_as("SELECT current_database()")
        .fetch_one(pool)
        .await
        .expect("current_database");
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let server = base.rsplit_once('/').expect("url with a database").0;
    format!("{server}/{name}")
}

fn miner(args: &[&str], db_url: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_miner"))
        .args(args)
        .env("MINER_DB_URL", db_url)
        .env("MINER_LABEL_BASE_URL", "http://miner.example:8091")
        .output()
        .expect("run miner")
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn labelers_add_list_link_and_disable_through_the_binary(pool: PgPool) {
    let url = database_url(&pool).await;
    let add = miner(&["labelers", "add", "ann"], &url);
    assert!(add.status.success(), "{add:?}");
    let stdout = String::from_utf8(add.stdout).expect("utf8");
    let link = stdout
        .lines()
        .find(|l| l.starts_with("http://miner.example:8091/label/login?token="))
        .expect("a link line");
    let token = link.rsplit_once('=').expect("token").1;
    assert_eq!(token.len(), 64);
    let stored: Vec<(Option<String>,)> = sqlx::query_as("SELECT token_hash FROM labelers")
        .fetch_all(&pool)
        .await
        .expect("select");
    assert_eq!(
        stored,
        [(Some(db::hash_secret(token)),)],
        "only the hash is stored"
    );

    let twice = miner(&["labelers", "add", "ann"], &url);
    assert!(!twice.status.success());
    assert!(String::from_utf8_lossy(&twice.stderr).contains("exists already"));

    let list = miner(&["labelers", "list"], &url);
    let listed = String::from_utf8(list.stdout).expect("utf8");
    assert!(
        listed.contains("ann") && listed.contains("active"),
        "{listed}"
    );
    assert!(listed.contains("not used yet"), "{listed}");

    let relink = miner(&["labelers", "link", "ann"], &url);
    assert!(relink.status.success(), "{relink:?}");
    assert!(
        !String::from_utf8_lossy(&relink.stdout).contains(token),
        "a new token"
    );

    let disable = miner(&["labelers", "disable", "ann"], &url);
    assert!(disable.status.success(), "{disable:?}");
    let listed = String::from_utf8(miner(&["labelers", "list"], &url).stdout).expect("utf8");
    assert!(listed.contains("disabled"), "{listed}");
    assert!(
        !miner(&["labelers", "disable", "nobody"], &url)
            .status
            .success()
    );
    assert!(!miner(&["labelers", "add", "<b>"], &url).status.success());
}

#[tokio::test]
async fn a_miner_without_a_database_collects_no_labels_but_serves() {
    let app = crate::helpers::spawn_app().await;
    let res = app
        .client
        .post_json(
            app.url("/v1/rlhf/tasks"),
            &app.miner.account_id(),
            &batch("b", 1, 1),
        )
        .expect("json")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: Value = res.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("collects no labels")
    );
    let page = reqwest::get(app.url("/label")).await.expect("get");
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(
        page.text()
            .await
            .expect("body")
            .contains("collects no labels")
    );
    let health = reqwest::get(app.url("/health")).await.expect("get");
    assert_eq!(health.status(), StatusCode::OK);
}

/// `miner serve --db.url` (the real binary) takes a batch; `miner labelers simulate` creates its
/// labeler through the database, signs in and answers through the form; the labels come back.
#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn serve_with_a_database_and_the_simulate_command_work_end_to_end(pool: PgPool) {
    use std::io::{BufRead, BufReader};
    let url = database_url(&pool).await;
    let shared = std::env::var("SUBNET_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| crate::helpers::workspace_root().join("../shared"));
    let wallets = shared.join("vectors/wallet");
    let mut child = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_miner"))
            .args([
                "serve",
                "--log.format",
                "json",
                "--wallet.name",
                "vec",
                "--wallet.hotkey",
                "miner1",
                "--axon.ip",
                "127.0.0.1",
                "--axon.port",
                "0",
                "--insecure-no-chain",
                // The simulated labeler answers at once.
                "--label.reading-speed",
                "0",
            ])
            .env("BT_WALLET_PATH", &wallets)
            .env("MINER_DB_URL", &url)
            .env_remove("RUST_LOG")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn miner"),
    );
    let stderr = child.0.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("miner exited before serving")
            .expect("read stderr");
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if v["fields"]["message"] == "miner serving" {
            break v["fields"]["addr"].as_str().expect("addr").to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let base = format!("http://{addr}");
    let miner_key: subnet_common::keys::AccountId =
        "5E5ExHmtNK4oWtmYJyJA2HC2KD3ueHTAq2oEAxZ72jsT9cPM"
            .parse()
            .expect("ss58");
    let alice = signed_client("//Alice");
    let post = |path: &str, body: Value| {
        alice
            .post_json(
                reqwest::Url::parse(&format!("{base}{path}")).expect("url"),
                &miner_key,
                &body,
            )
            .expect("json")
            .send()
    };
    assert_eq!(
        post("/v1/rlhf/tasks", batch("e2e", 10, 5))
            .await
            .expect("send")
            .status(),
        StatusCode::ACCEPTED
    );

    let sim = tokio::process::Command::new(env!("CARGO_BIN_EXE_miner"))
        .args([
            "labelers", "simulate", "--url", &base, "--name", "sim", "--count", "3",
        ])
        .args(["--accuracy", "1", "--seed", "4"])
        .env("MINER_DB_URL", &url)
        .output()
        .await
        .expect("run simulate");
    let stdout = String::from_utf8_lossy(&sim.stdout);
    assert!(sim.status.success(), "{sim:?}");
    assert!(stdout.starts_with("SIMULATION"), "{stdout}");
    assert!(
        stdout.contains("3 answers, 3 with a known truth, 3 of those correct"),
        "{stdout}"
    );

    let labels: LabelsResponse = post("/v1/rlhf/labels", json!({ "batch_id": "e2e" }))
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(labels.labels.len(), 3);
    assert!(
        labels
            .labels
            .iter()
            .all(|l| l.choice == Choice::A && l.labeler == "sim")
    );
}

/// Stops a child process this test started, also when the test fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn dump_config_shows_the_database_url_without_its_password() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_miner"))
        .args([
            "serve",
            "--dump-config",
            "--db.url",
            "postgres://me:secret@db:5432/miner",
        ])
        .output()
        .expect("run miner");
    assert!(out.status.success(), "{out:?}");
    let config: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(config["db_url"], "postgres://me:***@db:5432/miner");
}
