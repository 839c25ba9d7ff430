//! Commit–reveal v4 ciphertexts against the SDK's `bittensor-drand` 2.0.0 and real drand
//! quicknet signatures (rounds 1000 and 2000, the ones Subtensor's own tests use): each side
//! decrypts what the other encrypted, and a wrong round's signature decrypts nothing.

use parity_scale_codec::Decode;
use serde_json::{Value, json};
use subnet_common::keys::Keypair;
use subnet_subtensor::timelock::{
    EpochSchedule, ScheduleError, TimelockError, WeightsTlockPayload, decrypt, encrypt_to_quicknet,
    encrypt_weights,
};

use crate::parity::run_python;

/// Quicknet's signature of round 1000.
const ROUND_1000: &str = "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39";
/// Quicknet's signature of round 2000.
const ROUND_2000: &str = "b6cb8f482a0b15d45936a4c4ea08e98a087e71787caee3f4d07a8a9843b1bc5423c6b3c22f446488b3137eaca799c77e";

/// Runs `bittensor_drand` on a request: `encrypt` (message, round) or `decrypt` (ciphertext,
/// signature); the answer's hex, or the error it raised.
fn drand(request: Value) -> Result<Vec<u8>, String> {
    let script = r#"
import json, sys
import bittensor_drand as d
r = json.load(sys.stdin)
try:
    if r["op"] == "encrypt":
        out, _ = d.encrypt_at_round(bytes.fromhex(r["message"]), r["round"])
    elif r["op"] == "commit":
        s = r["schedule"]
        _, round = d.get_encrypted_commit_v2(
            [0], [65535], 0, s["last_epoch_block"], s["pending_epoch_at"], s["subnet_epoch_index"],
            s["tempo"], s["blocks_since_last_step"], s["current_block"], r["reveal_epochs"],
            r["block_secs"], bytes(32))
        out = round.to_bytes(8, "little")
    else:
        out = d.decrypt_with_signature(bytes.fromhex(r["ciphertext"]), r["signature"])
    print(json.dumps({"ok": bytes(out).hex()}))
except Exception as e:
    print(json.dumps({"error": str(e)}))
"#;
    let answer: Value = run_python(&["-c".as_ref(), script.as_ref()], &request);
    match answer["ok"].as_str() {
        Some(hex) => Ok(hex::decode(hex).expect("hex")),
        None => Err(answer["error"].to_string()),
    }
}

/// bittensor-drand's general-purpose functions carry a ciphertext as
/// `UserData { encrypted_data, reveal_round }` (SCALE); the chain's commit is the ciphertext
/// itself.
fn wrap(ciphertext: &[u8], round: u64) -> String {
    use parity_scale_codec::Encode;
    hex::encode((ciphertext.to_vec(), round).encode())
}

/// The ciphertext inside the SDK's `UserData`, and its round.
fn unwrap(user_data: &[u8]) -> (Vec<u8>, u64) {
    <(Vec<u8>, u64)>::decode(&mut &user_data[..]).expect("UserData")
}

fn sig(hex: &str) -> Vec<u8> {
    hex::decode(hex).expect("hex")
}

#[test]
fn the_sdk_decrypts_our_ciphertexts_and_we_decrypt_its() {
    let message = b"weights of an honest validator".to_vec();
    // Ours, opened by the SDK with the real round-1000 signature.
    let ours = encrypt_to_quicknet(&message, 1000).expect("encrypt");
    let opened =
        drand(json!({"op": "decrypt", "ciphertext": wrap(&ours, 1000), "signature": ROUND_1000}));
    assert_eq!(opened, Ok(message.clone()));
    // Two encryptions of one message differ (fresh randomness), both open.
    let again = encrypt_to_quicknet(&message, 1000).expect("encrypt");
    assert_ne!(ours, again);
    assert_eq!(decrypt(&again, &sig(ROUND_1000)).expect("decrypt"), message);

    // The SDK's, opened here.
    let (theirs, round) = unwrap(
        &drand(json!({"op": "encrypt", "message": hex::encode(&message), "round": 2000}))
            .expect("the SDK encrypts"),
    );
    assert_eq!(round, 2000);
    assert_eq!(
        decrypt(&theirs, &sig(ROUND_2000)).expect("decrypt"),
        message
    );

    // Another round's signature opens nothing, on either side.
    assert!(matches!(
        decrypt(&theirs, &sig(ROUND_1000)),
        Err(TimelockError::Decrypt)
    ));
    assert!(
        drand(json!({"op": "decrypt", "ciphertext": wrap(&ours, 1000), "signature": ROUND_2000}))
            .is_err()
    );
    // Garbage is refused, not panicked on.
    assert!(matches!(
        decrypt(&[1, 2, 3], &sig(ROUND_1000)),
        Err(TimelockError::Ciphertext(_))
    ));
    assert!(matches!(
        decrypt(&ours, &[0; 48]),
        Err(TimelockError::Signature)
    ));
}

#[test]
fn a_weights_commit_opens_to_the_payload_the_chain_applies() {
    let hotkey = Keypair::from_uri("//Alice").expect("key").account_id();
    let payload = WeightsTlockPayload::new(&hotkey, vec![0, 3, 9], vec![65535, 20, 1], 1_002_003);
    let commit = encrypt_weights(&payload, 2000).expect("encrypt");
    // The SDK opens it, and the bytes inside are the SCALE payload.
    let opened =
        drand(json!({"op": "decrypt", "ciphertext": wrap(&commit, 2000), "signature": ROUND_2000}))
            .expect("the SDK opens it");
    let decoded = WeightsTlockPayload::decode(&mut opened.as_slice()).expect("a payload");
    assert_eq!(decoded, payload);
    assert_eq!(decoded.hotkey, hotkey.as_bytes());
}

fn schedule(last: u64, pending: u64, tempo: u16, since: u64, head: u64) -> EpochSchedule {
    EpochSchedule {
        last_epoch_block: last,
        pending_epoch_at: pending,
        subnet_epoch_index: 7,
        tempo,
        blocks_since_last_step: since,
        current_block: head,
    }
}

#[test]
fn the_reveal_block_follows_the_subnets_epochs() {
    // Lands at 121 in epoch 7, revealed at the first block reveals see epoch 8: the epoch at 150.
    assert_eq!(schedule(100, 0, 50, 20, 120).first_reveal_block(1), Ok(150));
    // Two epochs later: 200.
    assert_eq!(schedule(100, 0, 50, 20, 120).first_reveal_block(2), Ok(200));
    // An owner-triggered epoch pending at 125 comes first.
    assert_eq!(
        schedule(100, 125, 50, 20, 120).first_reveal_block(1),
        Ok(125)
    );
    // A commit landing in an epoch block counts from the epoch it opens.
    assert_eq!(schedule(100, 0, 50, 49, 149).first_reveal_block(1), Ok(200));
    // A subnet far past its last step runs an epoch at once, in the block the commit lands in:
    // the commit counts from that epoch, revealed a tempo later.
    assert_eq!(
        schedule(100, 0, 50_000, 60_000, 120).first_reveal_block(1),
        Ok(50_121)
    );
    assert_eq!(
        schedule(100, 0, 0, 20, 120).first_reveal_block(1),
        Err(ScheduleError::NoEpochs)
    );
}

#[test]
fn the_reveal_round_is_the_one_the_sdk_picks() {
    for (s, epochs, block_secs) in [
        (schedule(100, 0, 50, 20, 120), 1, 12.0),
        (schedule(100, 0, 360, 5, 105), 1, 12.0),
        (schedule(1_000, 0, 360, 300, 1_300), 3, 12.0),
        (schedule(100, 125, 50, 20, 120), 1, 0.25),
        (schedule(100, 0, 50, 49, 149), 2, 6.0),
    ] {
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_secs_f64()
        };
        let before = s.reveal_round(epochs, block_secs, now()).expect("a round");
        let theirs = drand(json!({
            "op": "commit",
            "schedule": {
                "last_epoch_block": s.last_epoch_block,
                "pending_epoch_at": s.pending_epoch_at,
                "subnet_epoch_index": s.subnet_epoch_index,
                "tempo": s.tempo,
                "blocks_since_last_step": s.blocks_since_last_step,
                "current_block": s.current_block,
            },
            "reveal_epochs": epochs,
            "block_secs": block_secs,
        }))
        .expect("the SDK predicts a round");
        let after = s.reveal_round(epochs, block_secs, now()).expect("a round");
        let theirs = u64::from_le_bytes(theirs.try_into().expect("8 bytes"));
        assert!(
            (before..=after).contains(&theirs),
            "{s:?}: the SDK picked round {theirs}, we {before}..={after}"
        );
    }
}
