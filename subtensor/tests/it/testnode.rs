//! The test node the binaries' tests run against, checked once here: the client registers a
//! hotkey, publishes its axon and stores a commitment through it and reads each back; a call by
//! a hotkey that is not registered fails in its block with Subtensor's error; a replayed or
//! badly signed extrinsic is refused at submission; and the SDK decodes every extrinsic the node
//! sealed as the call the node says it applied.

use std::time::Duration;

use serde_json::{Value as Json, json};
use subnet_common::chain::types::Call;
use subnet_common::chain::{ChainClient, ChainClientError, ClientOptions};
use subnet_common::keys::Keypair;
use subnet_subtensor::AnyChain;
use subnet_subtensor::testnode::TestNode;

use crate::parity::{golden_path, run_python};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn the_test_node_applies_checks_and_seals_what_the_client_sends() {
    let node = TestNode::start(&golden_path(), Duration::from_millis(50)).await;
    let chain = AnyChain::connect(node.url(), ClientOptions::default())
        .await
        .expect("connect");
    let alice = Keypair::from_uri("//Alice").expect("key");
    let miner = Keypair::from_uri("//Miner").expect("key");
    let stranger = Keypair::from_uri("//Stranger").expect("key");

    // Registration, paid by //Alice's coldkey: the metagraph has the hotkey after its block.
    let register = Call::Register {
        netuid: 1,
        hotkey: miner.account_id(),
    };
    let tx = chain.submit(register, &alice).await.expect("submit");
    let included = chain.wait_for_inclusion(tx, WAIT).await.expect("included");
    let metagraph = chain.metagraph(1).await.expect("metagraph");
    let neuron = metagraph
        .neurons
        .iter()
        .find(|n| n.hotkey == miner.account_id())
        .expect("registered");
    assert_eq!((neuron.uid, neuron.coldkey), (1, alice.account_id()));
    assert!(included.block > 67);

    // The axon and the commitment, signed by the hotkey.
    let serve = Call::ServeAxon {
        netuid: 1,
        version: 100,
        ip: u128::from(u32::from(std::net::Ipv4Addr::new(10, 0, 0, 7))),
        port: 8091,
        ip_type: 4,
        protocol: 0,
    };
    let tx = chain.submit(serve, &miner).await.expect("serve");
    chain.wait_for_inclusion(tx, WAIT).await.expect("served");
    assert_eq!(
        node.axon(&miner.account_id()),
        Some((
            u128::from(u32::from(std::net::Ipv4Addr::new(10, 0, 0, 7))),
            8091
        ))
    );
    let data = b"model commitment bytes".to_vec();
    let commit = Call::SetCommitment {
        netuid: 1,
        data: data.clone(),
    };
    let tx = chain.submit(commit, &miner).await.expect("commit");
    let committed = chain.wait_for_inclusion(tx, WAIT).await.expect("committed");
    let commitments = chain.commitments(1).await.expect("commitments");
    assert_eq!(commitments.len(), 1, "{commitments:?}");
    assert_eq!(
        (
            commitments[0].uid,
            commitments[0].block,
            &commitments[0].data
        ),
        (1, committed.block, &data)
    );

    // A hotkey that is not registered: accepted, then failed in its block.
    let tx = chain
        .submit(
            Call::SetCommitment {
                netuid: 1,
                data: b"x".to_vec(),
            },
            &stranger,
        )
        .await
        .expect("accepted into the pool");
    let err = chain.wait_for_inclusion(tx, WAIT).await.unwrap_err();
    assert!(
        matches!(&err, ChainClientError::ExtrinsicFailed { error, .. }
            if error == "SubtensorModule.HotKeyNotRegisteredInNetwork"),
        "{err}"
    );

    // Sent twice, the second copy reuses a spent nonce; a flipped signature bit is refused.
    let prepared = chain
        .prepare(
            Call::SetCommitment {
                netuid: 1,
                data: b"again".to_vec(),
            },
            &miner,
        )
        .await
        .expect("prepare");
    chain.submit_prepared(&prepared).await.expect("first");
    chain
        .wait_for_inclusion(prepared.hash, WAIT)
        .await
        .expect("included");
    let err = chain.submit_prepared(&prepared).await.unwrap_err();
    assert!(err.to_string().contains("nonce"), "{err}");
    let mut forged = chain
        .prepare(
            Call::SetCommitment {
                netuid: 1,
                data: b"forged".to_vec(),
            },
            &miner,
        )
        .await
        .expect("prepare");
    let at = forged.bytes.len() - 1;
    forged.bytes[at] ^= 1;
    let err = chain.submit_prepared(&forged).await.unwrap_err();
    assert_eq!(err.rpc_code(), Some(1010), "{err}");

    // The SDK reads every sealed extrinsic as the call the node applied.
    let applied = node.applied();
    assert_eq!(applied.len(), 5, "{applied:?}");
    let blocks: Vec<Json> = applied.iter().map(|a| json!(a.block)).collect();
    let script = crate::parity::sdk_codec_script(
        r#"
out = []
for x in request["extrinsics"]:
    d = codec.decode_extrinsic(bytes.fromhex(x[2:]))
    call = d["call"]
    out.append({"call": call["call_module"] + "." + call["call_function"], "address": d["address"]})
print(json.dumps(out))
"#,
    );
    let extrinsics = node.sealed_extrinsics();
    let decoded: Vec<Json> = run_python(
        &["-c".as_ref(), script.as_ref()],
        &json!({ "golden": golden_path(), "extrinsics": extrinsics }),
    );
    let wanted: Vec<Json> = applied
        .iter()
        .map(|a| json!({"call": a.call, "address": a.signer.to_ss58()}))
        .collect();
    assert_eq!(decoded, wanted, "blocks {blocks:?}");
    assert!(node.unknown().is_empty(), "{:?}", node.unknown());
}

/// After a runtime upgrade the client signs for the new runtime: the node refuses an extrinsic
/// signed for the old one, and the client, reading the version before each extrinsic, is not
/// refused.
#[tokio::test]
async fn extrinsics_after_a_runtime_upgrade_are_signed_for_the_new_runtime() {
    let node = TestNode::start(&golden_path(), Duration::from_millis(50)).await;
    let chain = AnyChain::connect(node.url(), ClientOptions::default())
        .await
        .expect("connect");
    let alice = Keypair::from_uri("//Alice").expect("key");
    let register = |hotkey: &str| Call::Register {
        netuid: 1,
        hotkey: Keypair::from_uri(hotkey).expect("key").account_id(),
    };
    // Prepared before the upgrade, sent after it: refused.
    let stale = chain
        .prepare(register("//First"), &alice)
        .await
        .expect("prepare");
    node.upgrade_runtime(462);
    let err = chain.submit_prepared(&stale).await.unwrap_err();
    assert!(err.to_string().contains("bad signature"), "{err}");
    // Prepared now: signed for spec 462 and included.
    let tx = chain
        .submit(register("//Second"), &alice)
        .await
        .expect("submit");
    chain.wait_for_inclusion(tx, WAIT).await.expect("included");
    let AnyChain::Subtensor(client) = &chain else {
        panic!("a Subtensor node");
    };
    assert_eq!(client.runtime().spec_version(), 462);
}
