//! Reads against what the SDK recorded from a Subtensor test chain (golden.json): storage keys,
//! storage values, runtime API calls and a block's events, each compared with the SDK's own
//! encoding or decoding of the same bytes.

use serde_json::Value as Json;
use subnet_common::keys::AccountId;
use subnet_subtensor::reads::{EventRecord, NeuronLite, Outcome, SubnetHyperparams, outcome_of};
use subxt_core::ext::scale_value::Value;
use subxt_core::utils::AccountId32;

use crate::parity::{golden, golden_path, run_python, runtime, unhex};

/// A storage or runtime API parameter as the SDK recorded it: an SS58 account, a hex string or a
/// number.
fn key_value(param: &Json) -> Value {
    match param {
        Json::Number(n) => Value::u128(u128::from(n.as_u64().expect("an integer"))),
        Json::String(s) if s.starts_with("0x") => Value::from_bytes(unhex(s)),
        Json::String(s) => Value::from_bytes(AccountId::from_ss58(s).expect("ss58").as_bytes()),
        other => panic!("unexpected parameter {other}"),
    }
}

fn records<'a>(golden: &'a crate::parity::Golden, name: &str) -> &'a Vec<Json> {
    golden.rest[name].as_array().expect("a list")
}

fn ss58(account: &AccountId32) -> String {
    AccountId(account.0).to_ss58()
}

#[test]
fn storage_keys_are_the_sdks() {
    let golden = golden();
    let runtime = runtime(&golden, true);
    let mut checked = 0;
    for name in ["storage_keys", "storage_values"] {
        for record in records(&golden, name) {
            let (pallet, entry) = (
                record["pallet"].as_str().expect("pallet"),
                record["storage_function"].as_str().expect("entry"),
            );
            let keys = record["params"]
                .as_array()
                .expect("params")
                .iter()
                .map(key_value)
                .collect();
            let key = runtime.storage_key(pallet, entry, keys).expect("a key");
            assert_eq!(
                format!("0x{}", hex::encode(key)),
                record["key_hex"].as_str().expect("key_hex"),
                "{pallet}.{entry} {}",
                record["params"]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 18);
    // A map's prefix, for paging through its keys.
    for record in records(&golden, "query_maps") {
        let (pallet, entry) = (
            record["pallet"].as_str().expect("pallet"),
            record["storage_function"].as_str().expect("entry"),
        );
        if record["params"].as_array().is_some_and(|p| p.is_empty()) {
            assert_eq!(
                format!("0x{}", hex::encode(runtime.storage_prefix(pallet, entry))),
                record["prefix_hex"].as_str().expect("prefix")
            );
        }
    }
}

#[test]
fn storage_values_decode_as_the_sdk_decoded_them() {
    let golden = golden();
    let runtime = runtime(&golden, true);
    // (the raw bytes, `None` where nothing is stored, and what the SDK decoded)
    let value = |entry: &str, params: Json| -> (Option<Vec<u8>>, Json) {
        let record = records(&golden, "storage_values")
            .iter()
            .find(|r| r["storage_function"] == entry && r["params"] == params)
            .unwrap_or_else(|| panic!("{entry} {params} recorded"));
        (
            record["raw_hex"].as_str().map(unhex),
            record["decoded"].clone(),
        )
    };
    let (raw, decoded) = value("Tempo", serde_json::json!([1]));
    let tempo: u16 = runtime
        .decode_storage("SubtensorModule", "Tempo", raw.as_deref())
        .expect("tempo");
    assert_eq!(Json::from(tempo), decoded);
    // 9999 has nothing stored: the entry's default, false.
    for netuid in [1, 9999] {
        let (raw, decoded) = value("NetworksAdded", serde_json::json!([netuid]));
        assert_eq!(raw.is_none(), netuid == 9999);
        let added: bool = runtime
            .decode_storage("SubtensorModule", "NetworksAdded", raw.as_deref())
            .expect("added");
        assert_eq!(Json::from(added), decoded);
    }
    let (raw, decoded) = value("SubnetOwner", serde_json::json!([1]));
    let owner: AccountId32 = runtime
        .decode_storage("SubtensorModule", "SubnetOwner", raw.as_deref())
        .expect("owner");
    assert_eq!(Json::from(ss58(&owner)), decoded);
    let (raw, decoded) = value("Number", serde_json::json!([]));
    let number: u64 = runtime
        .decode_storage("System", "Number", raw.as_deref())
        .expect("number");
    assert_eq!(Json::from(number), decoded);
    // Bytes of another type, and bytes left over, are refused with the entry named.
    let err = runtime
        .decode_storage::<AccountId32>("SubtensorModule", "SubnetOwner", Some(&[1, 2]))
        .unwrap_err();
    assert!(
        err.to_string().contains("SubtensorModule.SubnetOwner"),
        "{err}"
    );
    let err = runtime
        .decode_storage::<u16>("SubtensorModule", "Tempo", Some(&[100, 0, 7]))
        .unwrap_err();
    assert!(err.to_string().contains("left over"), "{err}");
    assert!(
        runtime
            .decode_storage::<u16>("SubtensorModule", "NoSuchEntry", None)
            .is_err()
    );
}

#[test]
fn neurons_and_nonces_from_runtime_api_calls_are_the_sdks() {
    let golden = golden();
    let runtime = runtime(&golden, true);
    let call = |method: &str| -> &Json {
        records(&golden, "runtime_calls")
            .iter()
            .find(|r| r["method"] == method)
            .unwrap_or_else(|| panic!("{method} recorded"))
    };

    let record = call("get_neurons_lite");
    let (name, args) = runtime
        .runtime_api_call(
            "NeuronInfoRuntimeApi",
            "get_neurons_lite",
            vec![Value::u128(1)],
        )
        .expect("args");
    assert_eq!(name, "NeuronInfoRuntimeApi_get_neurons_lite");
    assert_eq!(
        hex::encode(&args),
        record["encoded_params_hex"].as_str().expect("params")
    );
    let neurons: Vec<NeuronLite> = runtime
        .decode_runtime_api(
            "NeuronInfoRuntimeApi",
            "get_neurons_lite",
            &unhex(record["raw_hex"].as_str().expect("raw")),
        )
        .expect("neurons");
    let decoded = record["decoded"].as_array().expect("a list");
    assert_eq!(neurons.len(), decoded.len());
    for (ours, sdk) in neurons.iter().zip(decoded) {
        assert_eq!(Json::from(ss58(&ours.hotkey)), sdk["hotkey"]);
        assert_eq!(Json::from(ss58(&ours.coldkey)), sdk["coldkey"]);
        for (field, value) in [
            ("uid", u64::from(ours.uid)),
            ("netuid", u64::from(ours.netuid)),
            ("rank", u64::from(ours.rank)),
            ("emission", ours.emission),
            ("incentive", u64::from(ours.incentive)),
            ("consensus", u64::from(ours.consensus)),
            ("trust", u64::from(ours.trust)),
            ("validator_trust", u64::from(ours.validator_trust)),
            ("dividends", u64::from(ours.dividends)),
            ("last_update", ours.last_update),
            ("pruning_score", u64::from(ours.pruning_score)),
        ] {
            assert_eq!(Json::from(value), sdk[field], "{field}");
        }
        assert_eq!(Json::from(ours.active), sdk["active"]);
        assert_eq!(Json::from(ours.validator_permit), sdk["validator_permit"]);
        assert_eq!(Json::from(ours.axon_info.port), sdk["axon_info"]["port"]);
        let stake: Vec<Json> = ours
            .stake
            .iter()
            .map(|(coldkey, rao)| serde_json::json!([ss58(coldkey), rao]))
            .collect();
        assert_eq!(Json::from(stake), sdk["stake"]);
        // The project's neuron: the stake summed, the rest carried over.
        let info = ours.clone().into_neuron_info();
        assert_eq!(info.stake, 1_000_000_000);
        assert_eq!(info.pruning_score, 65535);
        assert_eq!(info.hotkey.to_ss58(), sdk["hotkey"]);
    }

    let record = call("get_subnet_hyperparams");
    let (_, args) = runtime
        .runtime_api_call(
            "SubnetInfoRuntimeApi",
            "get_subnet_hyperparams",
            vec![Value::u128(1)],
        )
        .expect("args");
    assert_eq!(
        hex::encode(&args),
        record["encoded_params_hex"].as_str().expect("params")
    );
    let params: Option<SubnetHyperparams> = runtime
        .decode_runtime_api(
            "SubnetInfoRuntimeApi",
            "get_subnet_hyperparams",
            &unhex(record["raw_hex"].as_str().expect("raw")),
        )
        .expect("hyperparams");
    let params = params.expect("subnet 1 exists");
    let sdk = &record["decoded"];
    for (field, value) in [
        ("kappa", u64::from(params.kappa)),
        ("immunity_period", u64::from(params.immunity_period)),
        ("min_allowed_weights", u64::from(params.min_allowed_weights)),
        ("max_weights_limit", u64::from(params.max_weights_limit)),
        ("tempo", u64::from(params.tempo)),
        ("weights_version", params.weights_version),
        ("weights_rate_limit", params.weights_rate_limit),
        ("activity_cutoff", u64::from(params.activity_cutoff)),
        ("bonds_moving_avg", params.bonds_moving_avg),
        ("max_validators", u64::from(params.max_validators)),
        ("serving_rate_limit", params.serving_rate_limit),
        ("commit_reveal_period", params.commit_reveal_period),
        ("alpha_high", u64::from(params.alpha_high)),
        ("alpha_low", u64::from(params.alpha_low)),
    ] {
        assert_eq!(Json::from(value), sdk[field], "{field}");
    }
    assert_eq!(
        Json::from(params.commit_reveal_weights_enabled),
        sdk["commit_reveal_weights_enabled"]
    );
    assert_eq!(
        Json::from(params.registration_allowed),
        sdk["registration_allowed"]
    );
    assert_eq!(
        Json::from(params.liquid_alpha_enabled),
        sdk["liquid_alpha_enabled"]
    );

    let record = call("account_nonce");
    let alice = AccountId::from_ss58(record["params"][0].as_str().expect("ss58")).expect("ss58");
    let (_, args) = runtime
        .runtime_api_call(
            "AccountNonceApi",
            "account_nonce",
            vec![Value::from_bytes(alice.as_bytes())],
        )
        .expect("args");
    assert_eq!(
        hex::encode(&args),
        record["encoded_params_hex"].as_str().expect("params")
    );
    let nonce: u32 = runtime
        .decode_runtime_api(
            "AccountNonceApi",
            "account_nonce",
            &unhex(record["raw_hex"].as_str().expect("raw")),
        )
        .expect("nonce");
    assert_eq!(Json::from(nonce), record["decoded"]);
}

#[test]
fn a_blocks_events_say_how_each_extrinsic_ended() {
    let golden = golden();
    let runtime = runtime(&golden, true);
    let recorded = &golden.rest["events"];
    let events = runtime
        .decode_events(&unhex(recorded["raw_hex"].as_str().expect("raw")))
        .expect("events");
    let sdk: Vec<EventRecord> = recorded["decoded"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| EventRecord {
            extrinsic_index: e["extrinsic_idx"].as_u64().map(|i| i as u32),
            pallet: e["module_id"].as_str().expect("module").to_owned(),
            name: e["event_id"].as_str().expect("event").to_owned(),
            error: None,
        })
        .collect();
    assert_eq!(events, sdk);
    assert_eq!(outcome_of(&events, 2), Some(Outcome::Success));
    assert_eq!(outcome_of(&events, 3), None);
    assert!(runtime.decode_events(&[4, 1, 2]).is_err());
}

/// The SDK's encoding of a commitment registration and its storage key, by `RuntimeCodec`.
pub(crate) fn sdk_commitment(netuid: u16, hotkey: &str, registration: &Json) -> (Vec<u8>, Vec<u8>) {
    sdk_storage(
        "Commitments",
        "CommitmentOf",
        serde_json::json!([netuid, hotkey]),
        registration,
    )
}

/// The SDK's storage key of `pallet.entry` at `params` and its encoding of `value` as the
/// entry's type, by `RuntimeCodec`.
pub(crate) fn sdk_storage(
    pallet: &str,
    entry: &str,
    params: Json,
    value: &Json,
) -> (Vec<u8>, Vec<u8>) {
    let script = crate::parity::sdk_codec_script(
        r#"
entry = codec.storage_entry(request["pallet"], request["entry"])
print(json.dumps({
    "key": codec.storage_key(entry, request["params"]).hex(),
    "value": codec.encode(entry.value_type, request["value"]).hex(),
}))
"#,
    );
    let request = serde_json::json!({
        "golden": golden_path(),
        "pallet": pallet,
        "entry": entry,
        "params": params,
        "value": value,
    });
    let answer: Json = run_python(&["-c".as_ref(), script.as_ref()], &request);
    (
        unhex(answer["key"].as_str().expect("key")),
        unhex(answer["value"].as_str().expect("value")),
    )
}

#[test]
fn model_commitments_read_as_the_sdk_writes_them() {
    let golden = golden();
    let runtime = runtime(&golden, true);
    let hotkey = subnet_common::keys::Keypair::from_uri("//Alice")
        .expect("key")
        .account_id();
    let model = subnet_common::protocol::ModelCommitment::bind(
        "smollm2-135m-v2",
        &hotkey,
        &"ab".repeat(32),
    )
    .expect("a commitment")
    .encode();
    let raw = |bytes: &[u8]| serde_json::json!({ format!("Raw{}", bytes.len()): format!("0x{}", hex::encode(bytes)) });
    // The model commitment, a hash field (not raw: skipped) and a second raw field.
    let registration = serde_json::json!({
        "deposit": 0,
        "block": 4321,
        "info": {"fields": [[
            raw(&model),
            {"BlakeTwo256": format!("0x{}", "11".repeat(32))},
            raw(b"tail"),
        ]]},
    });
    let (key, value) = sdk_commitment(3, &hotkey.to_ss58(), &registration);
    assert_eq!(runtime.commitment_key(3, &hotkey).expect("key"), key);
    assert!(key.starts_with(&runtime.commitments_prefix(3).expect("prefix")));
    assert_eq!(runtime.hotkey_of_commitment_key(3, &key), Some(hotkey));
    assert_eq!(runtime.hotkey_of_commitment_key(4, &key), None);

    let stored = runtime.decode_commitment(&value).expect("decodes");
    assert_eq!(stored.block, 4321);
    assert_eq!(stored.fields, [model.clone(), b"tail".to_vec()]);
    // One field, as the miner commits: its bytes parse as the model commitment they are.
    let (_, value) = sdk_commitment(
        3,
        &hotkey.to_ss58(),
        &serde_json::json!({
            "deposit": 0, "block": 7, "info": {"fields": [[raw(&model)]]},
        }),
    );
    let stored = runtime.decode_commitment(&value).expect("decodes");
    let parsed = subnet_common::protocol::ModelCommitment::decode(&stored.data()).expect("parses");
    assert!(parsed.binds(&hotkey, &"ab".repeat(32)));
    assert!(
        runtime
            .decode_commitment(&value[..value.len() - 1])
            .is_err()
    );
}

/// A failed extrinsic's dispatch error is named as the metadata names it: the SDK encodes
/// `System.ExtrinsicFailed` with `Module { index: 7, error: SettingWeightsTooFast }` and says
/// which error that is; the client reads the same name.
#[test]
fn a_failed_extrinsic_names_its_module_error_as_the_sdk_does() {
    let script = crate::parity::sdk_codec_script(
        r#"
index = next(i for i in range(256) if codec.module_error(7, i)["name"] == "SettingWeightsTooFast")
info = {"weight": {"ref_time": 1, "proof_size": 2}, "class": "Normal", "pays_fee": "Yes"}
events = [
    {"phase": {"ApplyExtrinsic": 0}, "event": {"System": {"ExtrinsicSuccess": {"dispatch_info": info}}}, "topics": []},
    {"phase": {"ApplyExtrinsic": 1}, "event": {"System": {"ExtrinsicFailed": {
        "dispatch_error": {"Module": {"index": 7, "error": "0x%02x000000" % index}},
        "dispatch_info": info}}}, "topics": []},
    {"phase": {"ApplyExtrinsic": 2}, "event": {"System": {"ExtrinsicFailed": {
        "dispatch_error": "BadOrigin", "dispatch_info": info}}}, "topics": []},
]
entry = codec.storage_entry("System", "Events")
print(json.dumps({
    "events": codec.encode(entry.value_type, events).hex(),
    "name": codec.module_error(7, index)["name"],
}))
"#,
    );
    let answer: Json = run_python(
        &["-c".as_ref(), script.as_ref()],
        &serde_json::json!({ "golden": golden_path() }),
    );
    let golden = golden();
    let runtime = runtime(&golden, true);
    let events = runtime
        .decode_events(&unhex(answer["events"].as_str().expect("events")))
        .expect("events");
    assert_eq!(answer["name"], "SettingWeightsTooFast");
    assert_eq!(outcome_of(&events, 0), Some(Outcome::Success));
    assert_eq!(
        outcome_of(&events, 1),
        Some(Outcome::Failed {
            error: "SubtensorModule.SettingWeightsTooFast".into()
        })
    );
    assert_eq!(
        outcome_of(&events, 2),
        Some(Outcome::Failed {
            error: "BadOrigin".into()
        })
    );
}
