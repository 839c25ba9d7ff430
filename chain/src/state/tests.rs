//! Tests of the state machine through signed extrinsics: one per rule and per error.

use parity_scale_codec::Encode;
use subnet_common::chain::types::{
    Call, Event, Hyperparameter, Hyperparameters, MAX_EXTRINSIC_SIZE, SignedExtrinsic, commit_hash,
};

use super::testing::*;
use super::*;

fn transfer(to: &str, amount: u64) -> Call {
    Call::Transfer {
        dest: id(to),
        amount,
    }
}

fn set_weights(dests: &[u16], weights: &[u16]) -> Call {
    Call::SetWeights {
        netuid: NETUID,
        dests: dests.to_vec(),
        weights: weights.to_vec(),
        version_key: 0,
    }
}

/// Asserts that `call` signed by `name` is refused with `expected` and changes nothing.
#[track_caller]
fn assert_refused(state: &mut State, name: &str, call: Call, expected: ChainError) {
    let before = state.encode();
    assert_eq!(apply(state, name, call), Err(expected));
    assert!(
        state.encode() == before,
        "a refused extrinsic changed the state"
    );
}

/// Validators Bob and Charlie (with permits after the first epoch), miners Dave and Eve.
fn with_permits(params: Hyperparameters) -> State {
    let mut s = state(params, &["Bob", "Charlie"], &["Dave", "Eve"]);
    advance_to(&mut s, 10); // the epoch of subnet 1 at tempo 10 runs at block 9
    s
}

// ---------- envelope ----------

#[test]
fn a_valid_transfer_moves_balance_and_bumps_the_nonce() {
    let mut s = state(test_params(), &[], &[]);
    let events = apply(&mut s, "Alice", transfer("Bob", 5)).unwrap();
    assert_eq!(
        events,
        vec![Event::Transfer {
            from: id("Alice"),
            to: id("Bob"),
            amount: 5
        }]
    );
    assert_eq!(s.account(&id("Alice")).free, 1_000 * TAO - 5);
    assert_eq!(s.account(&id("Alice")).nonce, 1);
    assert_eq!(s.account(&id("Bob")).free, 1_000 * TAO + 5);
}

#[test]
fn a_bad_signature_is_refused_and_changes_nothing() {
    let mut s = state(test_params(), &[], &[]);
    let mut ext = SignedExtrinsic::sign(transfer("Bob", 5), 0, &GENESIS_HASH, &pair("Alice"));
    ext.signature.0[0] ^= 1;
    let before = s.encode();
    assert_eq!(
        s.apply_extrinsic(&ext, &GENESIS_HASH),
        Err(ChainError::BadSignature {
            signer: id("Alice")
        })
    );
    assert!(s.encode() == before);
}

#[test]
fn a_signature_by_another_key_is_refused() {
    let mut s = state(test_params(), &[], &[]);
    let mut ext = SignedExtrinsic::sign(transfer("Bob", 5), 0, &GENESIS_HASH, &pair("Bob"));
    ext.signer = id("Alice");
    let before = s.encode();
    assert!(matches!(
        s.apply_extrinsic(&ext, &GENESIS_HASH),
        Err(ChainError::BadSignature { .. })
    ));
    assert!(s.encode() == before);
}

#[test]
fn a_wrong_nonce_is_refused_and_changes_nothing() {
    let mut s = state(test_params(), &[], &[]);
    let ext = SignedExtrinsic::sign(transfer("Bob", 5), 1, &GENESIS_HASH, &pair("Alice"));
    let before = s.encode();
    assert_eq!(
        s.apply_extrinsic(&ext, &GENESIS_HASH),
        Err(ChainError::BadNonce {
            expected: 0,
            got: 1
        })
    );
    assert!(s.encode() == before);
    // A replay of an applied extrinsic fails the same way.
    let ok = SignedExtrinsic::sign(transfer("Bob", 5), 0, &GENESIS_HASH, &pair("Alice"));
    s.apply_extrinsic(&ok, &GENESIS_HASH).unwrap();
    assert_eq!(
        s.apply_extrinsic(&ok, &GENESIS_HASH),
        Err(ChainError::BadNonce {
            expected: 1,
            got: 0
        })
    );
}

#[test]
fn an_extrinsic_for_another_genesis_is_refused_and_changes_nothing() {
    let mut s = state(test_params(), &[], &[]);
    let ext = SignedExtrinsic::sign(transfer("Bob", 5), 0, &[1; 32], &pair("Alice"));
    let before = s.encode();
    assert!(matches!(
        s.apply_extrinsic(&ext, &GENESIS_HASH),
        Err(ChainError::BadSignature { .. })
    ));
    assert!(s.encode() == before);
}

#[test]
fn an_unknown_call_index_fails_to_decode_cleanly() {
    let ext = SignedExtrinsic::sign(transfer("Bob", 5), 0, &GENESIS_HASH, &pair("Alice"));
    let mut bytes = ext.encode();
    bytes[40] = 200;
    let err = SignedExtrinsic::decode_bytes(&bytes).map_err(ChainError::from);
    assert_eq!(err, Err(ChainError::UnknownCall { index: 200 }));
}

#[test]
fn an_oversized_extrinsic_is_refused_and_changes_nothing() {
    let mut s = state(test_params(), &[], &["Dave"]);
    let call = Call::SetCommitment {
        netuid: NETUID,
        data: vec![0; MAX_EXTRINSIC_SIZE],
    };
    let ext = SignedExtrinsic::sign(call, 0, &GENESIS_HASH, &pair("Dave"));
    let before = s.encode();
    assert!(matches!(
        s.apply_extrinsic(&ext, &GENESIS_HASH),
        Err(ChainError::TooLarge { .. })
    ));
    assert!(s.encode() == before);
}

// ---------- balances and stake ----------

#[test]
fn transfer_over_the_free_balance_is_refused() {
    let mut s = state(test_params(), &[], &[]);
    assert_refused(
        &mut s,
        "Alice",
        transfer("Bob", 1_001 * TAO),
        ChainError::InsufficientBalance {
            available: 1_000 * TAO,
            needed: 1_001 * TAO,
        },
    );
}

#[test]
fn add_and_remove_stake_move_rao_between_balance_and_stake() {
    let mut s = state(test_params(), &[], &["Dave"]);
    let add = Call::AddStake {
        hotkey: id("Dave"),
        netuid: NETUID,
        amount: 10 * TAO,
    };
    apply(&mut s, "Bob", add).unwrap();
    assert_eq!(s.account(&id("Bob")).free, 990 * TAO);
    assert_eq!(s.stake(NETUID, &id("Dave"), &id("Bob")), 10 * TAO);
    let remove = Call::RemoveStake {
        hotkey: id("Dave"),
        netuid: NETUID,
        amount: 4 * TAO,
    };
    apply(&mut s, "Bob", remove).unwrap();
    assert_eq!(s.account(&id("Bob")).free, 994 * TAO);
    assert_eq!(s.stake(NETUID, &id("Dave"), &id("Bob")), 6 * TAO);
}

#[test]
fn staking_more_than_the_balance_is_refused() {
    let mut s = state(test_params(), &[], &["Dave"]);
    let add = Call::AddStake {
        hotkey: id("Dave"),
        netuid: NETUID,
        amount: 2_000 * TAO,
    };
    assert_refused(
        &mut s,
        "Bob",
        add,
        ChainError::NotEnoughBalanceToStake {
            available: 1_000 * TAO,
            needed: 2_000 * TAO,
        },
    );
}

#[test]
fn staking_zero_on_unknown_hotkeys_or_subnets_is_refused() {
    let mut s = state(test_params(), &[], &["Dave"]);
    let add = |hotkey: &str, netuid, amount| Call::AddStake {
        hotkey: id(hotkey),
        netuid,
        amount,
    };
    assert_refused(
        &mut s,
        "Bob",
        add("Dave", NETUID, 0),
        ChainError::AmountTooLow,
    );
    assert_refused(
        &mut s,
        "Bob",
        add("Ferdie", NETUID, 1),
        ChainError::HotKeyAccountNotExists {
            hotkey: id("Ferdie"),
        },
    );
    assert_refused(
        &mut s,
        "Bob",
        add("Dave", 7, 1),
        ChainError::SubnetNotExists { netuid: 7 },
    );
}

#[test]
fn unstaking_more_than_the_stake_is_refused() {
    let mut s = state(test_params(), &[], &["Dave"]);
    let remove = Call::RemoveStake {
        hotkey: id("Dave"),
        netuid: NETUID,
        amount: 1,
    };
    assert_refused(
        &mut s,
        "Bob",
        remove,
        ChainError::NotEnoughStakeToWithdraw {
            available: 0,
            needed: 1,
        },
    );
}

// ---------- registration ----------

#[test]
fn registration_burns_and_appends_a_uid() {
    let mut s = state(test_params(), &[], &[]);
    let events = apply(
        &mut s,
        "Bob",
        Call::Register {
            netuid: NETUID,
            hotkey: id("Bob//hot"),
        },
    )
    .unwrap();
    assert_eq!(
        events,
        vec![Event::NeuronRegistered {
            netuid: NETUID,
            uid: 1,
            hotkey: id("Bob//hot"),
            replaced: None,
            burn: TAO,
        }]
    );
    assert_eq!(s.account(&id("Bob")).free, 999 * TAO);
    assert_eq!(s.hotkey_owner(&id("Bob//hot")), Some(id("Bob")));
    let mg = s.metagraph(NETUID).unwrap();
    assert_eq!(mg.neurons.len(), 2);
    assert_eq!(mg.neurons[1].coldkey, id("Bob"));
    assert_eq!(mg.neurons[1].block_at_registration, 1);
    assert_eq!(mg.neurons[1].last_update, 1);
}

#[test]
fn registration_refusals() {
    let mut s = state(test_params(), &[], &["Dave"]);
    let register = |hotkey: &str| Call::Register {
        netuid: NETUID,
        hotkey: id(hotkey),
    };
    assert_refused(
        &mut s,
        "Dave//cold",
        register("Dave"),
        ChainError::HotKeyAlreadyRegisteredInSubNet {
            netuid: NETUID,
            hotkey: id("Dave"),
        },
    );
    assert_refused(
        &mut s,
        "Ferdie//poor",
        register("Ferdie//hot"),
        ChainError::NotEnoughBalanceToPayRegistration {
            available: 0,
            burn: TAO,
        },
    );
    assert_refused(
        &mut s,
        "Bob",
        register("Alice//hot"),
        ChainError::HotKeyAlreadyRegisteredInSubNet {
            netuid: NETUID,
            hotkey: id("Alice//hot"),
        },
    );
    apply(&mut s, "Bob", register("Bob//hot")).unwrap();
    assert_refused(
        &mut s,
        "Charlie",
        Call::Register {
            netuid: NETUID,
            hotkey: id("Bob//hot"),
        },
        ChainError::HotKeyAlreadyRegisteredInSubNet {
            netuid: NETUID,
            hotkey: id("Bob//hot"),
        },
    );
    s.dispatch(
        &id("Alice"),
        &Call::SetHyperparameter {
            netuid: NETUID,
            param: Hyperparameter::RegistrationAllowed,
            value: 0,
        },
    )
    .unwrap();
    assert_refused(
        &mut s,
        "Charlie",
        register("Charlie//hot"),
        ChainError::SubNetRegistrationDisabled { netuid: NETUID },
    );
}

#[test]
fn a_hotkey_owned_by_another_coldkey_cannot_be_registered() {
    let mut g = genesis(test_params(), &[], &["Dave"]);
    let mut second = g.subnets[0].clone();
    second.netuid = 2;
    second.neurons.clear();
    g.subnets.push(second);
    let mut s = State::from_genesis(&g).unwrap();
    assert_refused(
        &mut s,
        "Bob",
        Call::Register {
            netuid: 2,
            hotkey: id("Dave"),
        },
        ChainError::NonAssociatedColdKey { hotkey: id("Dave") },
    );
}

#[test]
fn a_full_subnet_prunes_the_lowest_emission_non_immune_uid_but_never_the_owner() {
    let params = Hyperparameters {
        max_allowed_uids: 3,
        max_allowed_validators: 3,
        immunity_period: 5,
        ..test_params()
    };
    // uid 0 owner, uid 1 Bob (validator), uid 2 Dave (miner)
    let mut s = state(params, &["Bob"], &["Dave"]);
    advance_to(&mut s, 10);
    // Bob earned dividends at the first epoch, Dave nothing.
    let mg = s.metagraph(NETUID).unwrap();
    assert!(mg.neurons[1].emission > 0);
    assert_eq!(mg.neurons[2].emission, 0);
    let events = apply(
        &mut s,
        "Charlie",
        Call::Register {
            netuid: NETUID,
            hotkey: id("Charlie//hot"),
        },
    )
    .unwrap();
    assert_eq!(
        events,
        vec![Event::NeuronRegistered {
            netuid: NETUID,
            uid: 2,
            hotkey: id("Charlie//hot"),
            replaced: Some(id("Dave")),
            burn: TAO,
        }]
    );
    // Now uid 2 is immune; the only non-immune candidate is Bob (the owner is never pruned).
    let events = apply(
        &mut s,
        "Eve",
        Call::Register {
            netuid: NETUID,
            hotkey: id("Eve//hot"),
        },
    )
    .unwrap();
    assert!(matches!(
        &events[0],
        Event::NeuronRegistered { uid: 1, replaced: Some(r), .. } if *r == id("Bob")
    ));
    let mg = s.metagraph(NETUID).unwrap();
    let hotkeys: Vec<_> = mg.neurons.iter().map(|n| n.hotkey).collect();
    assert_eq!(
        hotkeys,
        vec![id("Alice//hot"), id("Eve//hot"), id("Charlie//hot")]
    );
}

#[test]
fn a_subnet_holding_only_its_owner_has_no_uid_to_prune() {
    let params = Hyperparameters {
        max_allowed_uids: 1,
        max_allowed_validators: 1,
        ..test_params()
    };
    let mut s = state(params, &[], &[]);
    assert_refused(
        &mut s,
        "Bob",
        Call::Register {
            netuid: NETUID,
            hotkey: id("Bob//hot"),
        },
        ChainError::NoNeuronIdAvailable { netuid: NETUID },
    );
}

// ---------- axon and commitments ----------

fn serve(ip: u128, port: u16, ip_type: u8) -> Call {
    Call::ServeAxon {
        netuid: NETUID,
        version: 1,
        ip,
        port,
        ip_type,
        protocol: 0,
    }
}

#[test]
fn serve_axon_accepts_loopback_and_stores_the_block() {
    let mut s = state(test_params(), &[], &["Dave"]);
    apply(&mut s, "Dave", serve(0x7f00_0001, 8091, 4)).unwrap();
    let axon = &s.metagraph(NETUID).unwrap().neurons[1].axon_info;
    assert_eq!(
        (axon.block, axon.ip, axon.port, axon.ip_type),
        (1, 0x7f00_0001, 8091, 4)
    );
}

#[test]
fn serve_axon_refusals() {
    let params = Hyperparameters {
        serving_rate_limit: 5,
        ..test_params()
    };
    let mut s = state(params, &[], &["Dave"]);
    assert_refused(
        &mut s,
        "Eve",
        serve(1, 80, 4),
        ChainError::HotKeyNotRegisteredInNetwork {
            netuid: NETUID,
            hotkey: id("Eve"),
        },
    );
    assert_refused(
        &mut s,
        "Dave",
        serve(1, 80, 5),
        ChainError::InvalidIpType { ip_type: 5 },
    );
    assert_refused(
        &mut s,
        "Dave",
        serve(1 << 40, 80, 4),
        ChainError::InvalidIpAddress {
            ip: 1 << 40,
            ip_type: 4,
        },
    );
    assert_refused(&mut s, "Dave", serve(1, 0, 4), ChainError::InvalidPort);
    apply(&mut s, "Dave", serve(1, 80, 6)).unwrap();
    advance_to(&mut s, 5);
    assert_refused(
        &mut s,
        "Dave",
        serve(2, 80, 4),
        ChainError::ServingRateLimitExceeded { last: 1, limit: 5 },
    );
    advance_to(&mut s, 6);
    apply(&mut s, "Dave", serve(2, 80, 4)).unwrap();
}

#[test]
fn commitments_are_stored_with_their_block_and_listed_by_uid() {
    let mut s = state(test_params(), &[], &["Dave", "Eve"]);
    advance_to(&mut s, 3);
    let call = Call::SetCommitment {
        netuid: NETUID,
        data: vec![9; 128],
    };
    apply(&mut s, "Eve", call).unwrap();
    let list = s.commitments(NETUID).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].uid, list[0].block), (2, 3));
    assert_eq!(list[0].data, vec![9; 128]);
    assert!(s.commitments(9).is_none());
}

#[test]
fn commitment_refusals() {
    let params = Hyperparameters {
        commitment_rate_limit: 10,
        ..test_params()
    };
    let mut s = state(params, &[], &["Dave"]);
    let commit = |len: usize| Call::SetCommitment {
        netuid: NETUID,
        data: vec![1; len],
    };
    assert_refused(
        &mut s,
        "Dave",
        commit(129),
        ChainError::CommitmentTooLarge { len: 129, max: 128 },
    );
    assert_refused(
        &mut s,
        "Eve",
        commit(1),
        ChainError::HotKeyNotRegisteredInNetwork {
            netuid: NETUID,
            hotkey: id("Eve"),
        },
    );
    apply(&mut s, "Dave", commit(1)).unwrap();
    advance_to(&mut s, 10);
    assert_refused(
        &mut s,
        "Dave",
        commit(2),
        ChainError::CommitmentSetRateLimitExceeded { last: 1, limit: 10 },
    );
    advance_to(&mut s, 11);
    apply(&mut s, "Dave", commit(2)).unwrap();
}

// ---------- set_weights: §2.2 checks in order ----------

#[test]
fn weights_step_1_root_subnet_comes_first() {
    let mut s = with_permits(test_params());
    let call = Call::SetWeights {
        netuid: 0,
        dests: vec![1, 2],
        weights: vec![1],
        version_key: 0,
    };
    assert_refused(&mut s, "Bob", call, ChainError::CanNotSetRootNetworkWeights);
}

#[test]
fn weights_step_2_length_mismatch_comes_before_subnet_existence() {
    let mut s = with_permits(test_params());
    let call = Call::SetWeights {
        netuid: 9,
        dests: vec![1, 2],
        weights: vec![1],
        version_key: 0,
    };
    assert_refused(
        &mut s,
        "Bob",
        call,
        ChainError::WeightVecNotEqualSize { uids: 2, values: 1 },
    );
}

#[test]
fn weights_step_3_subnet_must_exist() {
    let mut s = with_permits(test_params());
    let call = Call::SetWeights {
        netuid: 9,
        dests: vec![1],
        weights: vec![1],
        version_key: 0,
    };
    assert_refused(
        &mut s,
        "Bob",
        call,
        ChainError::SubnetNotExists { netuid: 9 },
    );
}

#[test]
fn weights_step_4_too_many_uids_comes_before_registration() {
    let mut s = with_permits(test_params());
    assert_refused(
        &mut s,
        "Ferdie",
        set_weights(&[0, 1, 2, 3, 4, 5], &[1; 6]),
        ChainError::UidsLengthExceedUidsInSubNet { len: 6, n: 5 },
    );
}

#[test]
fn weights_step_5_hotkey_must_be_registered() {
    let mut s = with_permits(test_params());
    assert_refused(
        &mut s,
        "Ferdie",
        set_weights(&[3], &[1]),
        ChainError::HotKeyNotRegisteredInSubNet {
            netuid: NETUID,
            hotkey: id("Ferdie"),
        },
    );
}

#[test]
fn weights_step_6_stake_threshold_comes_before_version_key() {
    let params = Hyperparameters {
        stake_threshold: 1,
        weights_version_key: 5,
        ..test_params()
    };
    let mut s = with_permits(params);
    let call = Call::SetWeights {
        netuid: NETUID,
        dests: vec![3],
        weights: vec![1],
        version_key: 1,
    };
    assert_refused(
        &mut s,
        "Dave",
        call,
        ChainError::NotEnoughStakeToSetWeights {
            stake: 0,
            threshold: 1,
        },
    );
}

#[test]
fn weights_step_7_version_key_comes_before_rate_limit() {
    let params = Hyperparameters {
        weights_version_key: 5,
        weights_set_rate_limit: 1_000,
        ..test_params()
    };
    let mut s = with_permits(params);
    let call = Call::SetWeights {
        netuid: NETUID,
        dests: vec![3, 4],
        weights: vec![1, 1],
        version_key: 4,
    };
    assert_refused(
        &mut s,
        "Bob",
        call,
        ChainError::IncorrectWeightVersionKey {
            required: 5,
            got: 4,
        },
    );
}

#[test]
fn weights_step_8_rate_limit_comes_before_the_permit() {
    let params = Hyperparameters {
        weights_set_rate_limit: 1_000,
        ..test_params()
    };
    let mut s = with_permits(params);
    // Dave (no permit) registered at genesis: last_update 0 passes; after one update it binds.
    apply(&mut s, "Dave", set_weights(&[3], &[1])).unwrap();
    assert_refused(
        &mut s,
        "Dave",
        set_weights(&[1, 2], &[1, 1]),
        ChainError::SettingWeightsTooFast {
            last_update: 10,
            limit: 1_000,
        },
    );
}

#[test]
fn weights_step_9_non_self_weights_need_a_permit() {
    let mut s = with_permits(test_params());
    assert_refused(
        &mut s,
        "Dave",
        set_weights(&[1, 1], &[1, 1]),
        ChainError::NeuronNoValidatorPermit { uid: 3 },
    );
    // A self-weight needs none; the owner needs none.
    apply(&mut s, "Dave", set_weights(&[3], &[7])).unwrap();
    apply(&mut s, "Alice//hot", set_weights(&[3, 4], &[1, 1])).unwrap();
}

#[test]
fn weights_step_10_duplicates_come_before_invalid_uids() {
    let mut s = with_permits(test_params());
    assert_refused(
        &mut s,
        "Bob",
        set_weights(&[3, 3, 9], &[1, 1, 1]),
        ChainError::DuplicateUids,
    );
}

#[test]
fn weights_step_11_uids_must_exist_checked_before_length() {
    let params = Hyperparameters {
        min_allowed_weights: 3,
        ..test_params()
    };
    let mut s = with_permits(params);
    assert_refused(
        &mut s,
        "Bob",
        set_weights(&[9], &[1]),
        ChainError::UidVecContainInvalidOne { uid: 9 },
    );
}

#[test]
fn weights_step_12_too_few_weights_are_refused() {
    let params = Hyperparameters {
        min_allowed_weights: 3,
        ..test_params()
    };
    let mut s = with_permits(params);
    assert_refused(
        &mut s,
        "Bob",
        set_weights(&[3, 4], &[1, 1]),
        ChainError::WeightVecLengthIsLow { len: 2, min: 3 },
    );
}

#[test]
fn weights_step_14_max_weight_limit() {
    let params = Hyperparameters {
        max_weight_limit: 40_000,
        ..test_params()
    };
    let mut s = with_permits(params);
    assert_refused(
        &mut s,
        "Bob",
        set_weights(&[3, 4], &[3, 1]),
        ChainError::MaxWeightExceeded {
            max: 49_151,
            limit: 40_000,
        },
    );
    apply(&mut s, "Bob", set_weights(&[3, 4], &[1, 1])).unwrap();
}

#[test]
fn set_weights_stores_the_max_upscaled_row_and_the_block() {
    let mut s = with_permits(test_params());
    let events = apply(&mut s, "Bob", set_weights(&[3, 4], &[100, 50])).unwrap();
    assert_eq!(
        events,
        vec![Event::WeightsSet {
            netuid: NETUID,
            uid: 1
        }]
    );
    let bob = &s.metagraph(NETUID).unwrap().neurons[1];
    assert_eq!(bob.weights, vec![(3, 65535), (4, 32768)]);
    assert_eq!(bob.last_update, 10);
}

#[test]
fn set_weights_is_refused_while_commit_reveal_is_on() {
    let params = Hyperparameters {
        commit_reveal_weights_enabled: true,
        ..test_params()
    };
    let mut s = with_permits(params);
    assert_refused(
        &mut s,
        "Bob",
        set_weights(&[3], &[1]),
        ChainError::CommitRevealEnabled { netuid: NETUID },
    );
}

// ---------- commit–reveal v2 ----------

fn cr_params() -> Hyperparameters {
    Hyperparameters {
        commit_reveal_weights_enabled: true,
        ..test_params()
    }
}

const UIDS: [u16; 2] = [3, 4];
const VALUES: [u16; 2] = [65535, 100];
const SALT: [u16; 3] = [1, 2, 3];

fn commit(hotkey: &str, salt: &[u16]) -> Call {
    Call::CommitWeights {
        netuid: NETUID,
        commit_hash: commit_hash(&id(hotkey), NETUID, &UIDS, &VALUES, salt, 0),
    }
}

fn reveal(salt: &[u16]) -> Call {
    Call::RevealWeights {
        netuid: NETUID,
        uids: UIDS.to_vec(),
        values: VALUES.to_vec(),
        salt: salt.to_vec(),
        version_key: 0,
    }
}

#[test]
fn a_commit_revealed_in_the_next_epoch_sets_the_weights() {
    // tempo 10, netuid 1: epoch index (b + 2) / 11 → blocks 9..=19 are epoch 1, 20..=30 epoch 2.
    let mut s = with_permits(cr_params());
    apply(&mut s, "Bob", commit("Bob", &SALT)).unwrap();
    assert_eq!(s.metagraph(NETUID).unwrap().neurons[1].last_update, 10);
    advance_to(&mut s, 19);
    assert_refused(
        &mut s,
        "Bob",
        reveal(&SALT),
        ChainError::RevealTooEarly {
            commit_epoch: 1,
            reveal_epoch: 2,
            current_epoch: 1,
        },
    );
    advance_to(&mut s, 20);
    let events = apply(&mut s, "Bob", reveal(&SALT)).unwrap();
    assert_eq!(events.len(), 2);
    let bob = &s.metagraph(NETUID).unwrap().neurons[1];
    assert_eq!(bob.weights, vec![(3, 65535), (4, 100)]);
    assert_eq!(bob.last_update, 10, "a reveal does not move last_update");
    // The commit is consumed.
    assert_refused(
        &mut s,
        "Bob",
        reveal(&SALT),
        ChainError::NoWeightsCommitFound,
    );
}

#[test]
fn a_reveal_that_matches_no_commit_is_refused() {
    let mut s = with_permits(cr_params());
    apply(&mut s, "Bob", commit("Bob", &SALT)).unwrap();
    advance_to(&mut s, 20);
    assert_refused(
        &mut s,
        "Bob",
        reveal(&[9, 9]),
        ChainError::InvalidRevealCommitHashNotMatch,
    );
}

#[test]
fn a_reveal_after_the_reveal_epoch_finds_the_commit_expired() {
    let mut s = with_permits(cr_params());
    apply(&mut s, "Bob", commit("Bob", &SALT)).unwrap();
    advance_to(&mut s, 31);
    assert_refused(
        &mut s,
        "Bob",
        reveal(&SALT),
        ChainError::ExpiredWeightCommit,
    );
}

#[test]
fn a_reveal_runs_the_set_weights_checks() {
    let mut s = with_permits(cr_params());
    apply(&mut s, "Dave", commit("Dave", &SALT)).unwrap();
    advance_to(&mut s, 20);
    assert_refused(
        &mut s,
        "Dave",
        reveal(&SALT),
        ChainError::NeuronNoValidatorPermit { uid: 3 },
    );
}

#[test]
fn the_commit_queue_holds_at_most_ten() {
    let mut s = with_permits(cr_params());
    for i in 0..10u16 {
        apply(&mut s, "Bob", commit("Bob", &[i])).unwrap();
    }
    assert_refused(
        &mut s,
        "Bob",
        commit("Bob", &[10]),
        ChainError::TooManyUnrevealedCommits { limit: 10 },
    );
    // Expired commits make room again.
    advance_to(&mut s, 31);
    apply(&mut s, "Bob", commit("Bob", &[10])).unwrap();
}

#[test]
fn commit_reveal_refusals() {
    let params = Hyperparameters {
        weights_set_rate_limit: 5,
        ..cr_params()
    };
    let mut s = with_permits(params);
    assert_refused(
        &mut s,
        "Bob",
        reveal(&SALT),
        ChainError::NoWeightsCommitFound,
    );
    assert_refused(
        &mut s,
        "Ferdie",
        commit("Ferdie", &SALT),
        ChainError::HotKeyNotRegisteredInSubNet {
            netuid: NETUID,
            hotkey: id("Ferdie"),
        },
    );
    apply(&mut s, "Bob", commit("Bob", &SALT)).unwrap();
    assert_refused(
        &mut s,
        "Bob",
        commit("Bob", &[7]),
        ChainError::SettingWeightsTooFast {
            last_update: 10,
            limit: 5,
        },
    );
    let mut off = with_permits(test_params());
    assert_refused(
        &mut off,
        "Bob",
        commit("Bob", &SALT),
        ChainError::CommitRevealDisabled { netuid: NETUID },
    );
    assert_refused(
        &mut off,
        "Bob",
        reveal(&SALT),
        ChainError::CommitRevealDisabled { netuid: NETUID },
    );
}

// ---------- hyperparameters ----------

#[test]
fn only_the_owner_sets_hyperparameters_within_range() {
    let mut s = state(test_params(), &[], &[]);
    let set = |param, value| Call::SetHyperparameter {
        netuid: NETUID,
        param,
        value,
    };
    assert_refused(
        &mut s,
        "Bob",
        set(Hyperparameter::Tempo, 20),
        ChainError::NotSubnetOwner { netuid: NETUID },
    );
    assert_refused(
        &mut s,
        "Alice",
        set(Hyperparameter::Tempo, 0),
        ChainError::InvalidHyperparameterValue {
            param: Hyperparameter::Tempo,
            value: 0,
            reason: "must be in 1..=50400",
        },
    );
    apply(&mut s, "Alice", set(Hyperparameter::Tempo, 20)).unwrap();
    assert_eq!(s.hyperparameters(NETUID).unwrap().tempo, 20);
}

// ---------- genesis ----------

#[test]
fn genesis_registers_owner_then_neurons_with_stake() {
    let s = state(test_params(), &["Bob"], &["Dave"]);
    let mg = s.metagraph(NETUID).unwrap();
    let hotkeys: Vec<_> = mg.neurons.iter().map(|n| n.hotkey).collect();
    assert_eq!(hotkeys, vec![id("Alice//hot"), id("Bob"), id("Dave")]);
    assert_eq!(mg.neurons[1].stake, 1_000 * TAO);
    assert_eq!(mg.neurons[1].coldkey, id("Bob//cold"));
    assert_eq!(s.current_block(), 1);
}

#[test]
fn genesis_refuses_root_duplicates_and_bad_parameters() {
    let mut g = genesis(test_params(), &["Bob"], &[]);
    g.subnets[0].netuid = 0;
    assert_eq!(State::from_genesis(&g), Err(GenesisError::RootSubnet));
    let mut g = genesis(test_params(), &["Bob"], &[]);
    g.subnets.push(g.subnets[0].clone());
    assert_eq!(
        State::from_genesis(&g),
        Err(GenesisError::DuplicateSubnet { netuid: 1 })
    );
    let mut g = genesis(test_params(), &["Bob", "Bob"], &[]);
    assert_eq!(
        State::from_genesis(&g),
        Err(GenesisError::DuplicateHotkey {
            netuid: 1,
            hotkey: id("Bob")
        })
    );
    g.subnets[0].neurons.pop();
    g.subnets[0].hyperparameters.max_allowed_validators = 1_000;
    assert!(matches!(
        State::from_genesis(&g),
        Err(GenesisError::InvalidHyperparameters { .. })
    ));
    assert!(Genesis::from_json(r#"{"balances": {}, "extra": 1}"#).is_err());
}

#[test]
fn genesis_parses_from_json() {
    let json = format!(
        r#"{{"balances": {{"{alice}": 5}},
            "subnets": [{{"netuid": 3, "owner_coldkey": "{alice}", "owner_hotkey": "{bob}",
                          "hyperparameters": {{"tempo": 7}}}}]}}"#,
        alice = id("Alice"),
        bob = id("Bob"),
    );
    let s = State::from_genesis(&Genesis::from_json(&json).unwrap()).unwrap();
    assert_eq!(s.account(&id("Alice")).free, 5);
    assert_eq!(s.hyperparameters(3).unwrap().tempo, 7);
    assert_eq!(s.metagraph(3).unwrap().neurons[0].hotkey, id("Bob"));
}

// ---------- epochs and emission ----------

#[test]
fn epochs_run_on_the_legacy_schedule() {
    let mut s = state(test_params(), &["Bob"], &[]);
    let mut epoch_blocks = Vec::new();
    for _ in 0..40 {
        let block = s.current_block();
        if !s.end_block().is_empty() {
            epoch_blocks.push(block);
        }
    }
    assert_eq!(epoch_blocks, vec![9, 20, 31]);
}

#[test]
fn an_epoch_pays_its_whole_emission_with_an_18_percent_owner_cut() {
    let mut s = with_permits(test_params());
    apply(&mut s, "Bob", set_weights(&[3, 4], &[3, 1])).unwrap();
    apply(&mut s, "Charlie", set_weights(&[3, 4], &[3, 1])).unwrap();
    let total_stake = |s: &State| -> u64 {
        s.metagraph(NETUID)
            .unwrap()
            .neurons
            .iter()
            .map(|n| n.stake)
            .sum()
    };
    let before = total_stake(&s);
    let owner_before = s.metagraph(NETUID).unwrap().neurons[0].stake;
    advance_to(&mut s, 20);
    let events = s.end_block(); // block 20: the epoch, 11 blocks of emission (10..=20)
    let [
        Event::EpochRun {
            emission,
            owner_cut,
            block: 20,
            ..
        },
    ] = events[..]
    else {
        panic!("expected one epoch, got {events:?}")
    };
    let e_tot = 11 * TAO;
    assert_eq!(owner_cut, e_tot * 11_796 / 65_535);
    assert!((0.179..0.181).contains(&(owner_cut as f64 / e_tot as f64)));
    let n = 5;
    assert!(emission <= e_tot && emission + n >= e_tot, "{emission}");
    assert_eq!(total_stake(&s) - before, emission);
    let mg = s.metagraph(NETUID).unwrap();
    assert_eq!(mg.neurons[0].stake - owner_before, owner_cut);
    // Miners earned incentive 3:1, validators dividends by stake.
    let ratio = f64::from(mg.neurons[3].incentive) / f64::from(mg.neurons[4].incentive);
    assert!((2.99..3.01).contains(&ratio), "incentive ratio {ratio}");
    assert!(mg.neurons[1].dividends > 0 && mg.neurons[2].dividends > 0);
    let emitted: u64 = mg.neurons.iter().map(|n| n.emission).sum();
    assert!(emitted + n >= e_tot - owner_cut);
}

#[test]
fn the_first_epoch_issues_permits_to_staked_uids() {
    let s = with_permits(test_params());
    let permits: Vec<bool> = s
        .metagraph(NETUID)
        .unwrap()
        .neurons
        .iter()
        .map(|n| n.validator_permit)
        .collect();
    assert_eq!(permits, vec![true, true, true, false, false]);
}

// ---------- properties ----------

mod properties {
    use parity_scale_codec::Encode;
    use proptest::prelude::*;
    use subnet_common::chain::types::Call;
    use subnet_common::keys::AccountId;

    use super::super::State;
    use super::super::testing::{NETUID, id, state, test_params};

    const NAMES: [&str; 7] = [
        "Alice",
        "Alice//hot",
        "Bob",
        "Charlie",
        "Dave",
        "Eve",
        "Ferdie",
    ];

    fn account() -> impl Strategy<Value = AccountId> {
        proptest::sample::select(NAMES.to_vec()).prop_map(id)
    }

    fn uids() -> impl Strategy<Value = Vec<u16>> {
        proptest::collection::vec(0u16..7, 0..6)
    }

    /// Calls with small arguments, so that both successes and every kind of refusal occur.
    fn call() -> impl Strategy<Value = Call> {
        let netuid = prop_oneof![Just(NETUID), 0u16..3];
        let amount = prop_oneof![
            0u64..3,
            Just(500_000_000_000u64),
            Just(2_000_000_000_000u64)
        ];
        prop_oneof![
            (netuid.clone(), account())
                .prop_map(|(netuid, hotkey)| Call::Register { netuid, hotkey }),
            (netuid.clone(), any::<u128>(), any::<u16>(), 3u8..8).prop_map(
                |(netuid, ip, port, ip_type)| Call::ServeAxon {
                    netuid,
                    version: 1,
                    ip,
                    port,
                    ip_type,
                    protocol: 0,
                }
            ),
            (netuid.clone(), 120usize..136).prop_map(|(netuid, len)| Call::SetCommitment {
                netuid,
                data: vec![1; len]
            }),
            (netuid.clone(), uids(), uids()).prop_map(|(netuid, dests, weights)| {
                Call::SetWeights {
                    netuid,
                    dests,
                    weights,
                    version_key: 0,
                }
            }),
            (account(), netuid.clone(), amount.clone()).prop_map(|(hotkey, netuid, amount)| {
                Call::AddStake {
                    hotkey,
                    netuid,
                    amount,
                }
            }),
            (account(), netuid.clone(), amount.clone()).prop_map(|(hotkey, netuid, amount)| {
                Call::RemoveStake {
                    hotkey,
                    netuid,
                    amount,
                }
            }),
            (account(), amount).prop_map(|(dest, amount)| Call::Transfer { dest, amount }),
            (
                netuid,
                proptest::sample::select(subnet_common::chain::types::Hyperparameter::ALL.to_vec()),
                0u64..3
            )
                .prop_map(|(netuid, param, value)| Call::SetHyperparameter {
                    netuid,
                    param,
                    value
                }),
        ]
    }

    fn total_rao(s: &State) -> u128 {
        let free: u128 = NAMES
            .iter()
            .map(|n| u128::from(s.account(&id(n)).free))
            .sum();
        let stake: u128 = s
            .metagraph(NETUID)
            .map(|m| m.neurons.iter().map(|n| u128::from(n.stake)).sum())
            .unwrap_or(0);
        free + stake
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every refusal leaves the encoded state byte for byte as it was, whatever came before.
        #[test]
        fn a_refused_call_never_changes_the_state(
            steps in proptest::collection::vec((account(), call(), any::<bool>()), 1..40)
        ) {
            let mut s = state(test_params(), &["Bob"], &["Dave"]);
            for (signer, call, end_block) in steps {
                let before = s.encode();
                if s.dispatch(&signer, &call).is_err() {
                    prop_assert!(s.encode() == before, "{call:?} changed the state");
                }
                if end_block {
                    s.end_block();
                }
            }
        }

        /// Within one block (no epoch), transfers and stake moves conserve rao; only registration
        /// burns. Every hotkey that can take stake is registered, so the metagraph sees all stake.
        #[test]
        fn balances_and_stake_are_conserved_except_for_burns(
            steps in proptest::collection::vec((account(), call()), 1..40)
        ) {
            let mut s = state(test_params(), &["Bob"], &["Dave"]);
            let mut expected = total_rao(&s);
            for (signer, call) in steps {
                if let Ok(events) = s.dispatch(&signer, &call) {
                    for event in events {
                        if let subnet_common::chain::types::Event::NeuronRegistered { burn, .. } = event {
                            expected -= u128::from(burn);
                        }
                    }
                }
                prop_assert_eq!(total_rao(&s), expected, "after {:?}", call);
            }
        }
    }
}

// ---------- commit–reveal v4 ----------

/// Bob's `values` for `UIDS`, payload naming `payload_hotkey`, encrypted to `round` of the
/// chain's beacon.
fn timelocked(s: &State, payload_hotkey: &str, values: &[u16], round: u64, version: u16) -> Call {
    let payload = subnet_common::timelock::WeightsTlockPayload::new(
        &id(payload_hotkey),
        UIDS.to_vec(),
        values.to_vec(),
        0,
    );
    let commit =
        subnet_common::timelock::encrypt(&payload.encode(), round, &s.beacon().public_key())
            .expect("encrypt");
    Call::CommitTimelockedWeights {
        netuid: NETUID,
        commit,
        reveal_round: round,
        commit_reveal_version: version,
    }
}

fn bob_weights(s: &State) -> Vec<(u16, u16)> {
    s.metagraph(NETUID).unwrap().neurons[1].weights.clone()
}

#[test]
fn a_timelocked_commit_is_opened_and_applied_by_the_chain_at_its_reveal_epoch() {
    // tempo 10, netuid 1: blocks 9..=19 are epoch 1, 20..=30 epoch 2. A commit in block 10
    // (epoch 1) to round 20 is opened when block 20, the reveal epoch's first, ends.
    let mut s = with_permits(cr_params());
    assert_eq!(s.hyperparameters(NETUID).unwrap().commit_reveal_version, 4);
    let call = timelocked(&s, "Bob", &VALUES, 20, 4);
    let events = apply(&mut s, "Bob", call).unwrap();
    assert_eq!(
        events,
        vec![Event::TimelockedWeightsCommitted {
            netuid: NETUID,
            hotkey: id("Bob"),
            reveal_round: 20,
        }]
    );
    assert_eq!(s.metagraph(NETUID).unwrap().neurons[1].last_update, 10);
    advance_to(&mut s, 20);
    assert!(
        bob_weights(&s).is_empty(),
        "nothing before the reveal epoch"
    );
    let events = s.end_block();
    assert!(
        events.contains(&Event::WeightsRevealed {
            netuid: NETUID,
            hotkey: id("Bob"),
        }),
        "{events:?}"
    );
    assert_eq!(bob_weights(&s), vec![(3, 65535), (4, 100)]);
}

#[test]
fn timelocked_commits_the_chain_cannot_apply_are_dropped_with_the_reason() {
    let mut s = with_permits(cr_params());
    // Another hotkey's payload, and a round that only comes after the reveal epoch.
    let foreign = timelocked(&s, "Charlie", &VALUES, 20, 4);
    apply(&mut s, "Bob", foreign).unwrap();
    let late = timelocked(&s, "Bob", &[1, 2], 40, 4);
    apply(&mut s, "Bob", late).unwrap();
    let mut dropped = Vec::new();
    while s.current_block() <= 31 {
        for event in s.end_block() {
            if let Event::TimelockedWeightsDropped { reason, .. } = event {
                dropped.push(reason);
            }
        }
    }
    assert!(bob_weights(&s).is_empty());
    assert_eq!(dropped.len(), 2, "{dropped:?}");
    assert!(dropped[0].contains("another hotkey"), "{dropped:?}");
    assert!(dropped[1].contains("reveal epoch passed"), "{dropped:?}");
}

#[test]
fn timelocked_commit_refusals() {
    let mut s = with_permits(cr_params());
    let call = timelocked(&s, "Bob", &VALUES, 20, 2);
    assert_refused(
        &mut s,
        "Bob",
        call,
        ChainError::IncorrectCommitRevealVersion {
            netuid: NETUID,
            given: 2,
            expected: 4,
        },
    );
    let call = timelocked(&s, "Bob", &VALUES, 10, 4);
    assert_refused(
        &mut s,
        "Bob",
        call,
        ChainError::InvalidRevealRound {
            round: 10,
            block: 10,
        },
    );
    let mut v2 = with_permits(Hyperparameters {
        commit_reveal_version: 2,
        ..cr_params()
    });
    let call = timelocked(&v2, "Bob", &VALUES, 20, 4);
    assert_refused(
        &mut v2,
        "Bob",
        call,
        ChainError::IncorrectCommitRevealVersion {
            netuid: NETUID,
            given: 4,
            expected: 2,
        },
    );
    let mut off = with_permits(test_params());
    let call = timelocked(&off, "Bob", &VALUES, 20, 4);
    assert_refused(
        &mut off,
        "Bob",
        call,
        ChainError::CommitRevealDisabled { netuid: NETUID },
    );
}
