//! The validator's weights on a Subtensor subnet whose commit–reveal is v4 (the recorded chain's
//! default, `CommitRevealWeightsVersion` = 4): the stored row is a timelocked commit, sent once as
//! `commit_timelocked_weights` encrypted to the beacon round of its reveal, and marked revealed
//! by the chain once the reveal epoch is reached, with no reveal extrinsic. The test node checks
//! the extrinsic's signature, nonce and era.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use subnet_common::chain::{ChainClient, ClientOptions};
use subnet_common::keys::Keypair;
use subnet_subtensor::AnyChain;
use subnet_subtensor::testnode::{TestNode, recorded_chain};
use subnet_subtensor::timelock::{QUICKNET_GENESIS, QUICKNET_PERIOD};
use subnet_validator::db::{self, WeightCommitRecord, WeightMode, WeightStatus};
use subnet_validator::service::ServiceConfig;
use subnet_validator::service::clock::ChainClock;
use subnet_validator::service::submit::WeightSubmitter;

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn weights_reach_a_v4_subnet_as_one_timelocked_commit_the_chain_reveals(pool: PgPool) {
    let node = TestNode::start(&recorded_chain(), Duration::from_millis(20)).await;
    node.set_hyperparameter("tempo", 10);
    node.set_hyperparameter("weights_rate_limit", 0);
    let alice = Keypair::from_uri("//Alice").expect("key");
    let uid = node.add_neuron(&alice.account_id(), &alice.account_id(), true);
    let chain = Arc::new(
        AnyChain::connect(node.url(), ClientOptions::default())
            .await
            .expect("connect"),
    );
    assert!(chain.timelocked_weights(1).await.expect("version"));

    // An epoch stored with its weights as a timelocked row, as the loop stores it on this chain.
    let mut results = crate::db::results(4, 0.1);
    results.weights = WeightCommitRecord::pending(
        1,
        4,
        vec![0, uid],
        vec![65_535, 1_000],
        0,
        WeightMode::Timelocked,
    );
    db::save_epoch(&pool, &results).await.expect("save");

    let config = ServiceConfig {
        inclusion_timeout: Duration::from_secs(10),
        initial_backoff: Duration::from_millis(50),
        ..ServiceConfig::new(1)
    };
    let submitter = WeightSubmitter::new(Arc::clone(&chain), pool.clone(), alice.clone(), &config);
    let clock = ChainClock::new(Arc::clone(&chain), Duration::from_millis(20));
    let hp = chain.hyperparameters(1).await.expect("hyperparameters");
    let now_round = |secs: u64| (secs - QUICKNET_GENESIS) / QUICKNET_PERIOD;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    submitter.settle(&hp, &clock).await.expect("settle");

    let row = db::weight_commit(&pool, 1, 4)
        .await
        .expect("query")
        .expect("row");
    assert_eq!(row.status, WeightStatus::Committed, "{row:?}");
    let commits: Vec<_> = node
        .applied()
        .into_iter()
        .filter(|a| a.call == "SubtensorModule.commit_timelocked_weights")
        .collect();
    assert_eq!(commits.len(), 1, "{commits:?}");
    let commit = &commits[0];
    assert_eq!((commit.signer, &commit.error), (alice.account_id(), &None));
    assert_eq!(row.commit_block, Some(commit.block));
    assert_eq!(commit.number("commit_reveal_version"), Some(4));
    // Encrypted to a round after now and at most a few reveal periods of 10-block epochs ahead
    // (12 s blocks as the SDK counts them, 3 s rounds).
    let round = commit.number("reveal_round").expect("round") as u64;
    let rounds_per_epoch = 10 * 12 / QUICKNET_PERIOD;
    assert!(
        round > now_round(before) && round <= now_round(before) + 4 * rounds_per_epoch + 10,
        "reveal round {round}, now round {}",
        now_round(before)
    );

    // The chain reveals it by itself: the row is revealed once the reveal epoch comes, with no
    // reveal extrinsic, and nothing more is sent.
    let revealed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            submitter.settle(&hp, &clock).await.expect("settle");
            let row = db::weight_commit(&pool, 1, 4)
                .await
                .expect("query")
                .expect("row");
            if row.status == WeightStatus::Revealed {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("revealed within 30 s");
    assert_eq!(revealed.reveal_tx, None);
    let calls: Vec<String> = node.applied().into_iter().map(|a| a.call).collect();
    assert_eq!(calls, ["SubtensorModule.commit_timelocked_weights"]);
    assert!(node.refused().is_empty(), "{:?}", node.refused());
    assert!(node.unknown().is_empty(), "{:?}", node.unknown());
}
