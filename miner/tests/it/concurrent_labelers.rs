//! Many simulated labelers answering at once through the real labeler form and Postgres: every
//! accepted answer is stored exactly once with its choice, and a double submit of the same form
//! (two clicks racing, or a resubmission later) is refused without a second row. Speed is
//! measured by `cargo bench -p subnet-miner --bench labelers`, not here.

use std::collections::HashMap;

use reqwest::StatusCode;
use sqlx::PgPool;
use subnet_common::protocol::Choice;
use subnet_miner::labeling::{
    self, LabelingConfig,
    simulate::{FormClient, ShownTask, Submitted},
};

use crate::labels::{batch, spawn_label_app};

const LABELERS: usize = 20;
const TASKS: usize = 10;

/// What one labeler saw accepted, and a form it already submitted (to resubmit later).
struct Run {
    name: String,
    accepted: Vec<(String, Choice)>,
    spent: ShownTask,
    client: FormClient,
}

/// Signs in, answers every task; the first form is submitted twice at once with different
/// choices, and exactly one of the two must be accepted.
async fn label_everything(name: String, link: String, salt: usize) -> Run {
    let client = FormClient::sign_in(&link).await.expect("sign in");
    let first = client.next_task().await.expect("page").expect("a task");
    let (x, y) = tokio::join!(
        client.submit(&first.csrf, Choice::A, "first click"),
        client.submit(&first.csrf, Choice::B, "second click"),
    );
    let mut accepted = match (x.expect("submit"), y.expect("submit")) {
        (Submitted::Stored, Submitted::Refused(StatusCode::CONFLICT)) => {
            vec![(first.task_id.clone(), Choice::A)]
        }
        (Submitted::Refused(StatusCode::CONFLICT), Submitted::Stored) => {
            vec![(first.task_id.clone(), Choice::B)]
        }
        other => panic!("{name}: a double submit answered {other:?}"),
    };
    let choices = [Choice::A, Choice::B, Choice::Tie];
    while let Some(task) = client.next_task().await.expect("page") {
        let choice = choices[(salt + accepted.len()) % choices.len()];
        let submitted = client.submit(&task.csrf, choice, "").await.expect("submit");
        assert_eq!(
            submitted,
            Submitted::Stored,
            "{name}: task {}",
            task.task_id
        );
        accepted.push((task.task_id, choice));
    }
    Run {
        name,
        accepted,
        spent: first,
        client,
    }
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn concurrent_labelers_lose_and_duplicate_no_label(pool: PgPool) {
    let app = spawn_label_app(pool, LabelingConfig::without_reading_floor()).await;
    assert_eq!(
        app.send_batch(&batch("b1", 200, TASKS)).await,
        StatusCode::ACCEPTED
    );
    let mut labelers = tokio::task::JoinSet::new();
    for i in 0..LABELERS {
        let name = format!("sim-{i:02}");
        let link = labeling::cli::add_labeler(&app.pool, &app.base, &name)
            .await
            .expect("add labeler");
        labelers.spawn(label_everything(name, link, i));
    }
    let mut runs = Vec::new();
    while let Some(run) = labelers.join_next().await {
        runs.push(run.expect("labeler task"));
    }

    let mut accepted = HashMap::new();
    for run in &runs {
        assert_eq!(
            run.accepted.len(),
            TASKS,
            "{} answered every task",
            run.name
        );
        for (task, choice) in &run.accepted {
            assert!(
                accepted
                    .insert((run.name.clone(), task.clone()), *choice)
                    .is_none(),
                "{} was accepted twice for task {task}",
                run.name
            );
        }
    }
    assert_eq!(accepted.len(), LABELERS * TASKS);

    // What the validator collects: each accepted answer once, with its choice, nothing else.
    let collected = app.labels("b1").await.labels;
    let stored: HashMap<(String, String), Choice> = collected
        .iter()
        .map(|l| ((l.labeler.clone(), l.task_id.clone()), l.choice))
        .collect();
    assert_eq!(stored.len(), collected.len(), "duplicated labels");
    assert_eq!(stored, accepted, "lost, changed or unasked labels");

    // A form submitted again later changes nothing either.
    let run = &runs[0];
    let again = run
        .client
        .submit(&run.spent.csrf, Choice::Tie, "resubmitted")
        .await
        .expect("submit");
    assert_eq!(again, Submitted::Refused(StatusCode::CONFLICT));
    let (rows, spent): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM labels),
                (SELECT count(*) FROM form_tokens WHERE used_at IS NOT NULL)",
    )
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert_eq!(rows, i64::try_from(LABELERS * TASKS).expect("small"));
    assert_eq!(spent, rows, "one spent form token per stored label");
    assert_eq!(app.labels("b1").await.labels, collected);
}
