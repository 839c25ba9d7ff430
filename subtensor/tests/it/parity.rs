//! Byte parity with the bittensor 11.3.0 SDK: every call the subnet sends, encoded by this crate
//! and by the SDK's own `RuntimeCodec` (`reference.py`, run with the project's venv) on the
//! spec-461 metadata the SDK recorded (`scripts/fetch-subtensor-fixtures.sh` fetches it), gives
//! the same call data, signing payload, signed extrinsic and hash.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::{Value, json};
use subnet_common::keys::{AccountId, Keypair, Signature};
use subnet_subtensor::{Era, Runtime, RuntimeError, SubtensorCall};

/// The workspace root.
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("subtensor/ has a parent")
        .to_path_buf()
}

/// The SDK's recorded chain (see [`subnet_subtensor::testnode::recorded_chain`]).
pub(crate) fn golden_path() -> PathBuf {
    subnet_subtensor::testnode::recorded_chain()
}

/// `body` after the preamble every SDK script of these tests shares: `request` read from stdin
/// and `codec`, the SDK's `RuntimeCodec` on the golden file's spec-461 V15 metadata.
pub(crate) fn sdk_codec_script(body: &str) -> String {
    format!(
        r#"
import json, sys
from bittensor._transport.codec import RuntimeCodec
request = json.load(sys.stdin)
golden = json.load(open(request["golden"]))
raw = bytes.fromhex(golden["metadata"]["v15_hex"][2:])
raw = raw[1 + {{0: 1, 1: 2, 2: 4}}[raw[1] & 3]:]
codec = RuntimeCodec(raw, spec_version=461, transaction_version=1)
{body}"#
    )
}

/// A Python with bittensor 11.3.0: `$SUBNET_PYTHON`, else the project's `.venv`.
pub(crate) fn python() -> PathBuf {
    let python = std::env::var_os("SUBNET_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "Python with bittensor 11.3.0 not found at {}: run `scripts/setup-python.sh` (or set SUBNET_PYTHON)",
        python.display()
    );
    python
}

/// Runs the venv's Python with `args` (`-c SCRIPT` or a file), `request` as JSON on its stdin,
/// and returns the JSON it prints; panics with its stderr when it fails.
pub(crate) fn run_python<T: serde::de::DeserializeOwned>(
    args: &[&std::ffi::OsStr],
    request: &Value,
) -> T {
    let mut child = Command::new(python())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("python runs");
    assert!(
        output.status.success(),
        "python failed (scripts/setup-python.sh installs bittensor and bittensor-drand): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("python prints JSON")
}

#[derive(Deserialize)]
pub(crate) struct Golden {
    network: Network,
    metadata: Metadata,
    calls: Vec<RecordedCall>,
    /// The rest of the file, read by the tests of reads.
    #[serde(flatten)]
    pub(crate) rest: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
struct Network {
    genesis_hash: String,
    spec_version: u32,
    transaction_version: u32,
}

#[derive(Deserialize)]
struct Metadata {
    v15_hex: String,
    v14_hex: String,
}

#[derive(Deserialize)]
struct RecordedCall {
    module: String,
    function: String,
    params: Value,
    data_hex: String,
}

pub(crate) fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.trim_start_matches("0x")).expect("hex")
}

/// The whole recorded file, as JSON.
pub(crate) fn golden_json() -> Value {
    serde_json::from_str(&std::fs::read_to_string(golden_path()).expect("read golden.json"))
        .expect("golden.json parses")
}

pub(crate) fn golden() -> Golden {
    serde_json::from_str(&std::fs::read_to_string(golden_path()).expect("read golden.json"))
        .expect("golden.json parses")
}

/// The recorded runtime, from its V15 metadata (as `Metadata_metadata_at_version(15)` answers)
/// or its V14 metadata (as `state_getMetadata` answers).
pub(crate) fn runtime(golden: &Golden, v15: bool) -> Runtime {
    let genesis: [u8; 32] = unhex(&golden.network.genesis_hash)
        .try_into()
        .expect("32 bytes");
    let metadata = match v15 {
        true => {
            let answer = unhex(&golden.metadata.v15_hex);
            Runtime::opaque_metadata(&answer)
                .expect("the answer holds metadata")
                .to_vec()
        }
        false => unhex(&golden.metadata.v14_hex),
    };
    Runtime::new(
        &metadata,
        genesis,
        golden.network.spec_version,
        golden.network.transaction_version,
    )
    .expect("the recorded metadata decodes")
}

/// One call as this crate and the SDK each build it.
struct Case {
    name: &'static str,
    call: SubtensorCall,
    /// The SDK's `compose_call` parameters.
    params: Value,
    nonce: u64,
    tip: u128,
    era: Era,
}

const ERA_HASH: [u8; 32] = [0xd9; 32];

fn alice() -> Keypair {
    Keypair::from_uri("//Alice").expect("dev key")
}

fn bob() -> AccountId {
    Keypair::from_uri("//Bob").expect("dev key").account_id()
}

/// Every call the miner and the validator send, with eras, nonces and tips of each kind, and a
/// timelocked commit long enough that its payload is signed as a hash.
fn cases() -> Vec<Case> {
    let mortal = Era::Mortal {
        period: 64,
        from_block: 66,
        from_hash: ERA_HASH,
    };
    let commitment: Vec<u8> = (0u8..72).collect();
    let timelocked: Vec<u8> = (0..600).map(|i| (i * 7 % 251) as u8).collect();
    vec![
        Case {
            name: "burned_register",
            call: SubtensorCall::BurnedRegister {
                netuid: 1,
                hotkey: bob(),
            },
            params: json!({"netuid": 1, "hotkey": bob().to_ss58()}),
            nonce: 0,
            tip: 0,
            era: Era::Immortal,
        },
        Case {
            name: "serve_axon",
            call: SubtensorCall::ServeAxon {
                netuid: 3,
                version: 1_002_003,
                ip: 0x7f00_0001,
                port: 8091,
                ip_type: 4,
                protocol: 4,
            },
            params: json!({"netuid": 3, "version": 1_002_003, "ip": 0x7f00_0001u32, "port": 8091,
                "ip_type": 4, "protocol": 4, "placeholder1": 0, "placeholder2": 0}),
            nonce: 5,
            tip: 0,
            era: mortal,
        },
        Case {
            name: "set_weights",
            call: SubtensorCall::SetWeights {
                netuid: 1,
                dests: vec![0, 1, 7, 300],
                weights: vec![65535, 100, 1, 0],
                version_key: 1_002_003,
            },
            params: json!({"netuid": 1, "dests": [0, 1, 7, 300], "weights": [65535, 100, 1, 0],
                "version_key": 1_002_003}),
            nonce: 70_000,
            tip: 10,
            era: mortal,
        },
        Case {
            name: "commit_weights",
            call: SubtensorCall::CommitWeights {
                netuid: 2,
                commit_hash: [0xab; 32],
            },
            params: json!({"netuid": 2, "commit_hash": format!("0x{}", "ab".repeat(32))}),
            nonce: 1,
            tip: 0,
            era: Era::Immortal,
        },
        Case {
            name: "reveal_weights",
            call: SubtensorCall::RevealWeights {
                netuid: 2,
                uids: vec![0, 4],
                values: vec![10, 65535],
                salt: vec![1, 2, 3, 4, 5, 6, 7, 8],
                version_key: 7,
            },
            params: json!({"netuid": 2, "uids": [0, 4], "values": [10, 65535],
                "salt": [1, 2, 3, 4, 5, 6, 7, 8], "version_key": 7}),
            nonce: 2,
            tip: 0,
            era: mortal,
        },
        Case {
            name: "commit_timelocked_weights",
            call: SubtensorCall::CommitTimelockedWeights {
                netuid: 1,
                commit: timelocked.clone(),
                reveal_round: 20_000_123,
                commit_reveal_version: 4,
            },
            params: json!({"netuid": 1, "commit": format!("0x{}", hex::encode(&timelocked)),
                "reveal_round": 20_000_123, "commit_reveal_version": 4}),
            nonce: 3,
            tip: 0,
            era: mortal,
        },
        Case {
            name: "set_commitment",
            call: SubtensorCall::SetCommitment {
                netuid: 1,
                data: commitment.clone(),
            },
            params: json!({"netuid": 1, "info": {"fields": [[
                {"Raw72": format!("0x{}", hex::encode(&commitment))}
            ]]}}),
            nonce: 4,
            tip: 0,
            era: Era::Immortal,
        },
    ]
}

/// What the SDK built for one case.
#[derive(Debug, Deserialize)]
struct Reference {
    name: String,
    call_data: String,
    payload: String,
    extrinsic: String,
    hash: String,
}

/// Runs `reference.py` on `cases`, signing each with `signature` as //Alice.
fn sdk(cases: &[Case], signature: &[u8; 64]) -> Vec<Reference> {
    let request = json!({
        "golden": golden_path(),
        "cases": cases.iter().map(|case| {
            let (era, era_hash) = match case.era {
                Era::Immortal => (json!("00"), Value::Null),
                Era::Mortal { period, from_block, from_hash } => (
                    json!({"period": period, "current": from_block}),
                    json!(format!("0x{}", hex::encode(from_hash))),
                ),
            };
            let (module, function) = case.call.name();
            json!({
                "name": case.name,
                "module": module,
                "function": function,
                "params": case.params,
                "nonce": case.nonce,
                "tip": case.tip as u64,
                "era": era,
                "era_block_hash": era_hash,
                "public_key": hex::encode(alice().account_id().as_bytes()),
                "signature": hex::encode(signature),
            })
        }).collect::<Vec<_>>(),
    });
    let script = workspace_root().join("subtensor/tests/it/reference.py");
    run_python(&[script.as_os_str()], &request)
}

#[test]
fn every_call_we_send_is_byte_for_byte_what_the_sdk_builds() {
    let golden = golden();
    let runtime = runtime(&golden, true);
    let cases = cases();
    let signature = [0x5a; 64];
    let references = sdk(&cases, &signature);
    assert_eq!(references.len(), cases.len());
    for (case, sdk) in cases.iter().zip(&references) {
        assert_eq!(sdk.name, case.name);
        let call_data = runtime.call_data(&case.call).expect("call data");
        assert_eq!(
            hex::encode(&call_data),
            sdk.call_data,
            "{}: call data",
            case.name
        );
        let prepared = runtime
            .prepare(&case.call, case.nonce, case.tip, case.era)
            .expect("prepare");
        assert_eq!(prepared.call_data(), call_data.as_slice(), "{}", case.name);
        let payload = prepared.signing_payload();
        assert_eq!(
            hex::encode(&payload),
            sdk.payload,
            "{}: signing payload",
            case.name
        );
        let extrinsic = prepared.with_signature(&alice().account_id(), &signature);
        assert_eq!(
            hex::encode(&extrinsic.bytes),
            sdk.extrinsic,
            "{}: extrinsic",
            case.name
        );
        assert_eq!(hex::encode(extrinsic.hash), sdk.hash, "{}: hash", case.name);

        // Signed for real: the same bytes but the signature, which verifies over the payload.
        let signed = prepared.sign(&alice());
        assert_eq!(signed.bytes.len(), extrinsic.bytes.len(), "{}", case.name);
        let at = signature_offset(&extrinsic.bytes, &signature);
        let real: [u8; 64] = signed.bytes[at..at + 64].try_into().expect("64 bytes");
        assert!(
            alice().account_id().verify(&payload, &Signature(real)),
            "{}: the signature does not verify",
            case.name
        );
        assert_eq!(signed.bytes[..at], extrinsic.bytes[..at], "{}", case.name);
        assert_eq!(
            signed.bytes[at + 64..],
            extrinsic.bytes[at + 64..],
            "{}",
            case.name
        );
    }
    // The timelocked commit's payload is over 256 bytes: signed as its blake2-256.
    let timelocked = cases
        .iter()
        .position(|c| c.name == "commit_timelocked_weights");
    assert_eq!(
        references[timelocked.expect("a timelocked case")]
            .payload
            .len(),
        64
    );
}

/// Where `signature` sits in `extrinsic`.
fn signature_offset(extrinsic: &[u8], signature: &[u8; 64]) -> usize {
    extrinsic
        .windows(64)
        .position(|w| w == signature)
        .expect("the signature is in the extrinsic")
}

#[test]
fn the_calls_the_sdk_recorded_encode_the_same() {
    let golden = golden();
    let runtime = runtime(&golden, true);
    let mut checked = 0;
    for recorded in &golden.calls {
        let p = &recorded.params;
        let u = |name: &str| p[name].as_u64().expect("a number");
        let u16s = |name: &str| -> Vec<u16> {
            p[name]
                .as_array()
                .expect("a list")
                .iter()
                .map(|v| v.as_u64().expect("a number") as u16)
                .collect()
        };
        let call = match (recorded.module.as_str(), recorded.function.as_str()) {
            ("SubtensorModule", "burned_register") => SubtensorCall::BurnedRegister {
                netuid: u("netuid") as u16,
                hotkey: AccountId::from_ss58(p["hotkey"].as_str().expect("ss58")).expect("ss58"),
            },
            ("SubtensorModule", "set_weights") => SubtensorCall::SetWeights {
                netuid: u("netuid") as u16,
                dests: u16s("dests"),
                weights: u16s("weights"),
                version_key: u("version_key"),
            },
            _ => continue,
        };
        assert_eq!(
            hex::encode(runtime.call_data(&call).expect("call data")),
            recorded.data_hex.trim_start_matches("0x"),
            "{}.{}",
            recorded.module,
            recorded.function
        );
        checked += 1;
    }
    assert_eq!(checked, 2, "burned_register and set_weights are recorded");
}

#[test]
fn v14_and_v15_metadata_give_the_same_bytes() {
    let golden = golden();
    let (v15, v14) = (runtime(&golden, true), runtime(&golden, false));
    for case in cases() {
        let a = v15
            .prepare(&case.call, case.nonce, case.tip, case.era)
            .expect("v15");
        let b = v14
            .prepare(&case.call, case.nonce, case.tip, case.era)
            .expect("v14");
        assert_eq!(a.signing_payload(), b.signing_payload(), "{}", case.name);
    }
}

#[test]
fn the_signed_extensions_come_from_the_metadata_in_its_order() {
    let golden = golden();
    let runtime = runtime(&golden, true);
    assert_eq!(
        runtime.signed_extensions(),
        [
            "CheckNonZeroSender",
            "CheckSpecVersion",
            "CheckTxVersion",
            "CheckGenesis",
            "CheckMortality",
            "CheckNonce",
            "CheckWeight",
            "ChargeTransactionPayment",
            "SudoTransactionExtension",
            "CheckShieldedTxValidity",
            "SubtensorTransactionExtension",
            "DrandPriority",
            "CheckMetadataHash",
        ]
    );
    assert_eq!(
        (runtime.spec_version(), runtime.transaction_version()),
        (461, 1)
    );
}

#[test]
fn what_the_runtime_cannot_take_is_an_error_naming_the_call() {
    let golden = golden();
    let runtime = runtime(&golden, true);
    let long = SubtensorCall::SetCommitment {
        netuid: 1,
        data: vec![0; 129],
    };
    let err = runtime.call_data(&long).unwrap_err();
    assert!(matches!(err, RuntimeError::Call { .. }), "{err}");
    assert!(
        err.to_string().contains("Commitments.set_commitment"),
        "{err}"
    );
    assert!(err.to_string().contains("128"), "{err}");

    // Metadata that is not metadata, and a node that has none of the version asked for.
    assert!(matches!(
        Runtime::new(b"not metadata", [0; 32], 1, 1),
        Err(RuntimeError::Metadata(_))
    ));
    assert!(matches!(
        Runtime::opaque_metadata(&[0]),
        Err(RuntimeError::NoMetadata)
    ));
    assert!(matches!(
        Runtime::opaque_metadata(&[1, 8, 1]),
        Err(RuntimeError::Metadata(_))
    ));
}
