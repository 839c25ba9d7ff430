//! Whole-epoch tests: Subtensor's `tests/epoch.rs` vectors replayed block by block
//! (`spec/subtensor.md` §6), hand-computed cases, and proptest invariants.

use super::*;
use proptest::prelude::*;

/// A tiny chain for one subnet: applies `set_weights` as the pallet stores it and feeds each
/// epoch's permits and bonds into the next, like Subtensor's mock runtime does.
struct Sim {
    block: u64,
    tempo: u64,
    input: EpochInput,
}

impl Sim {
    /// Registers `stakes.len()` uids at `block` (registration block = last update = `block`).
    fn new(stakes: &[u64], params: YumaParams, block: u64) -> Self {
        let n = stakes.len();
        Self {
            block,
            tempo: 1,
            input: EpochInput {
                current_block: block,
                last_tempo: 0,
                stake: stakes.to_vec(),
                weights: vec![Vec::new(); n],
                bonds: vec![Vec::new(); n],
                last_update: vec![block; n],
                block_at_registration: vec![block; n],
                validator_permit: vec![false; n],
                owner_uid: None,
                commit_blocks: vec![None; n],
                emission_total: 1_000_000_000,
                params,
            },
        }
    }

    fn next_block(&mut self) {
        self.block += 1;
    }

    /// `set_weights`: values max-upscaled, stored as given, `last_update = block`.
    fn set_weights(&mut self, uid: u16, dests: &[u16], values: &[u16]) {
        let upscaled = max_upscale_to_u16(values);
        self.input.weights[usize::from(uid)] = dests.iter().copied().zip(upscaled).collect();
        self.input.last_update[usize::from(uid)] = self.block;
    }

    /// Runs the epoch in the current block and stores permits and bonds.
    fn epoch(&mut self) -> EpochOutput {
        self.input.current_block = self.block;
        // The mock never records a mechanism step, so `last_tempo = block − tempo`.
        self.input.last_tempo = self.block.saturating_sub(self.tempo);
        let out = epoch(&self.input);
        self.input
            .validator_permit
            .clone_from(&out.validator_permit);
        self.input.bonds.clone_from(&out.bonds);
        out
    }

    /// `run_epoch` of the Subtensor tests: advance one block, then run the epoch.
    fn run_epoch(&mut self) -> EpochOutput {
        self.next_block();
        self.epoch()
    }

    /// The stored bond of validator i on miner j (0 when absent), like `get_bonds`.
    fn bond(&self, i: usize, j: u16) -> u16 {
        self.input.bonds[i]
            .iter()
            .find(|&&(col, _)| col == j)
            .map_or(0, |&(_, b)| b)
    }

    fn bond_column(&self, j: u16) -> Vec<u16> {
        (0..4).map(|i| self.bond(i, j)).collect()
    }
}

fn mock_params() -> YumaParams {
    YumaParams {
        yuma3: false,
        commit_reveal: false,
        max_allowed_validators: 8,
        ..YumaParams::default()
    }
}

#[test]
fn legacy_bonds_match_subtensor_test_bonds_bit_for_bit() {
    let mut sim = Sim::new(&[1, 2, 3, 4, 0, 0, 0, 0], mock_params(), 1);
    sim.epoch(); // issue permits
    sim.next_block();
    for uid in 0..4 {
        sim.set_weights(uid, &[4, 5, 6, 7], &[16_383, 32_767, 49_149, 65_535]);
    }
    let out = sim.epoch();
    assert_eq!(sim.bond_column(4), vec![16_383, 32_767, 49_151, 65_535]);
    // Worked check of §6.1 step 1: I ≈ D ≈ [0.1, 0.2, 0.3, 0.4] and E = E_tot·(I + D)/2.
    assert_eq!(&out.validator_permit[..4], &[true; 4]);
    let e: u64 = out.emission.iter().sum();
    assert!(1_000_000_000 - e < 10, "emission sum {e}");
    assert!((i64::try_from(out.emission[7]).unwrap_or(0) - 200_004_272).abs() < 10);

    sim.set_weights(0, &[0], &[u16::MAX]);
    sim.run_epoch();
    assert_eq!(sim.bond_column(4), vec![14_582, 32_767, 49_151, 65_535]);

    sim.set_weights(1, &[1], &[u16::MAX]);
    sim.run_epoch();
    assert_eq!(sim.bond_column(4), vec![12_603, 28_321, 49_151, 65_535]);

    sim.set_weights(2, &[2], &[u16::MAX]);
    sim.run_epoch();
    assert_eq!(sim.bond_column(7), vec![12_602, 28_320, 49_150, 65_535]);

    sim.set_weights(2, &[7], &[u16::MAX]);
    sim.run_epoch();
    assert_eq!(sim.bond_column(7), vec![10_951, 24_609, 49_150, 65_535]);

    sim.run_epoch();
    assert_eq!(sim.bond_column(7), vec![9_559, 21_482, 49_150, 65_535]);

    sim.run_epoch();
    assert_eq!(sim.bond_column(7), vec![8_376, 18_824, 49_150, 65_535]);
}

/// `setup_yuma_3_scenario`: register at block 1, Yuma 3 on, run one epoch to issue permits.
fn yuma3_scenario(stakes: &[u64], liquid_alpha: bool) -> Sim {
    let params = YumaParams {
        yuma3: true,
        commit_reveal: false,
        liquid_alpha,
        bonds_penalty: 0,
        bonds_moving_average: 975_000,
        alpha_sigmoid_steepness: 1000,
        kappa: u16::MAX / 2,
        alpha_low: I32F32::from_f64(0.1).to_u16_proportion(),
        alpha_high: I32F32::from_f64(0.3).to_u16_proportion(),
        max_allowed_validators: 3,
        ..YumaParams::default()
    };
    let mut sim = Sim::new(stakes, params, 1);
    sim.run_epoch();
    sim
}

fn set_yuma3_weights(sim: &mut Sim, rows: &[[u16; 2]]) {
    for (uid, row) in rows.iter().enumerate() {
        sim.set_weights(uid as u16, &[3, 4], row);
    }
}

fn assert_dividends(out: &EpochOutput, expected: &[f64], epoch: usize) {
    for (uid, (&d, &want)) in out.dividends.iter().zip(expected).enumerate() {
        let got = f64::from(d) / 65_535.0;
        assert!(
            (got - want).abs() <= 1e-3,
            "epoch {epoch} uid {uid}: dividend {got:.4}, expected {want:.4}"
        );
    }
}

#[test]
fn yuma3_dividends_follow_subtensor_liquid_alpha_disabled() {
    let mut sim = yuma3_scenario(&[33, 33, 34, 0, 0], false);
    let expected = [
        [0.3300, 0.3300, 0.3400, 0.0, 0.0],
        [0.3300, 0.3300, 0.3400, 0.0, 0.0],
        [0.3734, 0.3734, 0.2532, 0.0, 0.0],
        [0.3611, 0.3611, 0.2779, 0.0, 0.0],
        [0.3541, 0.3541, 0.2919, 0.0, 0.0],
        [0.3495, 0.3495, 0.3009, 0.0, 0.0],
    ];
    for (epoch, want) in expected.iter().enumerate() {
        if epoch == 2 {
            set_yuma3_weights(&mut sim, &[[u16::MAX, 0], [u16::MAX, 0], [0, u16::MAX]]);
        } else {
            set_yuma3_weights(&mut sim, &[[u16::MAX, 0]; 3]);
        }
        let out = sim.run_epoch();
        assert_dividends(&out, want, epoch);
    }
}

#[test]
fn yuma3_liquid_alpha_dividends_follow_subtensor_kappa_moves_first() {
    let mut sim = yuma3_scenario(&[8, 1, 1, 0, 0], true);
    let expected = [
        [0.8000, 0.1000, 0.1000, 0.0, 0.0],
        [1.0000, 0.0000, 0.0000, 0.0, 0.0],
        [0.9382, 0.0618, 0.0000, 0.0, 0.0],
        [0.8819, 0.0773, 0.0407, 0.0, 0.0],
        [0.8564, 0.0844, 0.0592, 0.0, 0.0],
        [0.8418, 0.0884, 0.0697, 0.0, 0.0],
    ];
    let (to3, to4) = ([u16::MAX, 0], [0, u16::MAX]);
    for (epoch, want) in expected.iter().enumerate() {
        match epoch {
            0 => set_yuma3_weights(&mut sim, &[to3; 3]),
            1 => set_yuma3_weights(&mut sim, &[to4, to3, to3]),
            2 => set_yuma3_weights(&mut sim, &[to4, to4, to3]),
            3 => set_yuma3_weights(&mut sim, &[to4; 3]),
            _ => {}
        }
        let out = sim.run_epoch();
        assert_dividends(&out, want, epoch);
    }
}

#[test]
fn self_weights_only_fall_back_to_stake_like_test_10_graph() {
    let mut sim = Sim::new(&[1; 10], mock_params(), 1);
    for uid in 0..10 {
        sim.set_weights(uid, &[uid], &[u16::MAX]);
    }
    let out = sim.epoch();
    assert_eq!(out.emission, vec![99_999_999; 10]);
    assert_eq!(out.consensus, vec![0; 10]);
    assert_eq!(out.incentive, vec![0; 10]);
    assert_eq!(out.dividends, vec![0; 10]);
    assert_eq!(out.server_emission, vec![0; 10]);
    assert_eq!(out.validator_emission, vec![99_999_999; 10]);
}

#[test]
fn a_single_uid_with_a_self_weight_earns_no_incentive_or_dividends() {
    let mut sim = Sim::new(&[1_000_000_000], mock_params(), 1);
    sim.set_weights(0, &[0], &[u16::MAX]);
    let out = sim.epoch();
    assert_eq!(
        (out.consensus[0], out.incentive[0], out.dividends[0]),
        (0, 0, 0)
    );
    // S = 1 exactly, so the fallback pays out everything.
    assert_eq!(out.emission, vec![1_000_000_000]);
}

/// Two validators (stakes 3 and 1, permits held) disagree on two miners; Yuma 3, liquid α with
/// the default (0.7, 0.9) bounds and steepness 1000, β = 0.
fn liquid_alpha_case(liquid_alpha: bool) -> EpochOutput {
    let input = EpochInput {
        current_block: 10,
        last_tempo: 10,
        stake: vec![3, 1, 0, 0],
        weights: vec![vec![(2, u16::MAX)], vec![(3, u16::MAX)], vec![], vec![]],
        bonds: vec![vec![(2, 32_767), (3, 32_767)], vec![], vec![], vec![]],
        last_update: vec![10, 10, 0, 0],
        block_at_registration: vec![0; 4],
        validator_permit: vec![true, true, false, false],
        owner_uid: None,
        commit_blocks: vec![None; 4],
        emission_total: 1_000_000_000,
        params: YumaParams {
            liquid_alpha,
            bonds_penalty: 0,
            commit_reveal: false,
            ..YumaParams::default()
        },
    };
    epoch(&input)
}

fn assert_near(got: u16, want: f64, what: &str) {
    assert!(
        (f64::from(got) - want).abs() <= 2.0,
        "{what}: got {got}, expected ≈ {want}"
    );
}

#[test]
fn liquid_alpha_bonds_match_the_hand_computed_sigmoid() {
    let out = liquid_alpha_case(true);
    // C = [0, 0, 1, 0]: the 0.75-stake validator carries miner 2, miner 3 gets no consensus.
    assert_eq!(out.consensus, vec![0, 0, 65_535, 0]);
    // α(d) = 0.7 + 0.2 / (1 + exp(−10 (d − 0.5))).
    // Validator 0 on miner 2: w = 1 ≥ b = 0.5, d = w − c = 0 → α = 0.701339;
    // B' = (1 − α)·0.499992 + α·1 = 0.850673 → 55 748.7.
    assert_eq!(
        out.bonds[0].len(),
        1,
        "miner 3 is not in the new weights: its bond is dropped"
    );
    assert_eq!(out.bonds[0][0].0, 2);
    assert_near(out.bonds[0][0].1, 55_748.7, "bond 0→2");
    // Validator 1 on miner 3: w = 1, c = 0, d = 1 → α = 0.898661; B' = α → 58 894.3.
    assert_eq!(out.bonds[1][0].0, 3);
    assert_near(out.bonds[1][0].1, 58_894.3, "bond 1→3");
}

#[test]
fn fixed_alpha_bonds_decay_entries_missing_from_the_new_weights() {
    let out = liquid_alpha_case(false);
    // α = 0.1: 0→2: 0.1 + 0.9·0.499992 = 0.549993 → 36 043; 0→3: 0.9·0.499992 → 29 490.
    assert_eq!(out.bonds[0].len(), 2);
    assert_near(out.bonds[0][0].1, 36_043.6, "bond 0→2");
    assert_near(out.bonds[0][1].1, 29_490.3, "bond 0→3");
    assert_near(out.bonds[1][0].1, 6_553.5, "bond 1→3");
}

#[test]
fn permits_go_to_the_top_k_stakes_and_the_lower_uid_loses_a_tie() {
    let s: Vec<I32F32> = [5, 3, 3, 0, 7]
        .iter()
        .map(|&x| I32F32::from_int(x))
        .collect();
    assert_eq!(top_k_nonzero(&s, 3), vec![true, false, true, false, true]);
    assert_eq!(top_k_nonzero(&s, 9), vec![true, true, true, false, true]);
    assert_eq!(top_k_nonzero(&s, 0), vec![false; 5]);
}

#[test]
fn max_upscale_rounds_to_nearest_with_the_largest_at_65535() {
    assert_eq!(max_upscale_to_u16(&[1, 2]), vec![32_768, 65_535]);
    assert_eq!(max_upscale_to_u16(&[1, 3]), vec![21_845, 65_535]);
    assert_eq!(max_upscale_to_u16(&[16_383, 65_535]), vec![16_383, 65_535]);
    assert_eq!(max_upscale_to_u16(&[100, 40_000]), vec![164, 65_535]);
    assert_eq!(max_upscale_to_u16(&[0, 0]), vec![0, 0]);
    assert_eq!(max_upscale_to_u16(&[]), Vec::<u16>::new());
}

/// Three uids: validator 0 (stake 10, permit), miners 1 and 2; validator 0 weights both miners.
fn small_net() -> EpochInput {
    EpochInput {
        current_block: 100,
        last_tempo: 100,
        stake: vec![10, 0, 0],
        weights: vec![vec![(1, u16::MAX), (2, u16::MAX)], vec![], vec![]],
        bonds: vec![vec![(1, 30_000), (2, 30_000)], vec![], vec![]],
        last_update: vec![90, 50, 50],
        block_at_registration: vec![0, 10, 10],
        validator_permit: vec![true, false, false],
        owner_uid: None,
        commit_blocks: vec![None; 3],
        emission_total: 1_000_000,
        params: YumaParams {
            commit_reveal: false,
            ..YumaParams::default()
        },
    }
}

#[test]
fn weights_set_before_a_miner_registered_are_dropped() {
    let mut input = small_net();
    input.block_at_registration[2] = 95; // miner 2 re-registered after the last update
    let out = epoch(&input);
    assert_eq!(out.incentive, vec![0, 65_535, 0]);
}

#[test]
fn commit_reveal_drops_weights_committed_before_a_miner_registered() {
    let mut input = small_net();
    input.params.commit_reveal = true;
    input.commit_blocks[0] = Some(5); // committed before both miners registered at 10
    input.block_at_registration[2] = 3;
    let out = epoch(&input);
    assert_eq!(out.incentive, vec![0, 0, 65_535]);
    input.params.commit_reveal = false;
    assert_eq!(epoch(&input).incentive, vec![0, 32_767, 32_767]);
}

#[test]
fn bonds_on_miners_registered_since_the_last_tempo_are_reset() {
    let mut input = small_net();
    input.block_at_registration[2] = 80;
    input.last_tempo = 80;
    let out = epoch(&input);
    // Yuma 3, fixed α = 0.1, W̃ = 0.5 per miner: kept 0.1·0.5 + 0.9·30000/65535; reset 0.1·0.5.
    assert_near(
        out.bonds[0][0].1,
        0.05 * 65_535.0 + 0.9 * 30_000.0,
        "kept bond",
    );
    assert_near(out.bonds[0][1].1, 0.05 * 65_535.0, "reset bond");
}

#[test]
fn a_uid_without_a_new_permit_stores_no_bonds() {
    let mut input = small_net();
    input.stake = vec![0, 5, 0];
    input.params.stake_threshold = 1;
    let out = epoch(&input);
    assert_eq!(out.validator_permit, vec![false, true, false]);
    assert!(out.bonds[0].is_empty());
}

#[test]
fn the_owner_keeps_its_permit_self_weight_and_stake_below_the_threshold() {
    let mut input = small_net();
    input.stake = vec![10, 0, 4];
    input.params.stake_threshold = 5;
    input.owner_uid = Some(2);
    input.validator_permit = vec![true, false, false];
    input.weights[2] = vec![(2, u16::MAX)];
    input.last_update[2] = 99;
    let out = epoch(&input);
    assert!(out.validator_permit[2]);
    // S = [10, 0, 4] / 14; the owner's self-weight counts toward its own incentive.
    assert_eq!(
        out.stake_weight[2],
        I32F32::from_bits((4i64 << 32) / 14).to_u16_proportion()
    );
    assert!(out.incentive[2] > out.incentive[1]);
}

#[test]
fn inactive_validators_fall_back_to_stake_and_lose_their_vote() {
    let mut input = small_net();
    input.params.activity_cutoff = 5; // 90 + 5 < 100
    let out = epoch(&input);
    assert_eq!(out.active, vec![false, false, false]);
    assert_eq!(out.incentive, vec![0, 0, 0]);
    assert_eq!(out.emission, vec![1_000_000, 0, 0]);
}

#[test]
fn legacy_and_yuma3_agree_on_consensus_and_incentive() {
    let mut input = small_net();
    let yuma3 = epoch(&input);
    input.params.yuma3 = false;
    let legacy = epoch(&input);
    assert_eq!(yuma3.consensus, legacy.consensus);
    assert_eq!(yuma3.incentive, legacy.incentive);
    assert_eq!(legacy.dividends, vec![65_535, 0, 0]);
    // Legacy bonds are column max-upscaled: a lone validator holds the full column.
    assert_eq!(legacy.bonds[0], vec![(1, 65_535), (2, 65_535)]);
}

/// A random subnet: distinct stakes (so permits never tie), sorted duplicate-free weight and bond
/// rows, random permits, activity, registrations and hyperparameter switches.
fn arb_input() -> impl Strategy<Value = EpochInput> {
    (1usize..=10).prop_flat_map(|n| {
        let row = proptest::collection::btree_map(0..n as u16, any::<u16>(), 0..=n);
        (
            proptest::collection::vec(0u64..1_000, n),
            proptest::collection::vec(row.clone(), n),
            proptest::collection::vec(row, n),
            proptest::collection::vec((0u64..30, 0u64..30, any::<bool>()), n),
            proptest::collection::vec(proptest::option::of(0u64..30), n),
            (
                proptest::option::of(0..n as u16),
                0u64..2_000_000_000_000,
                1u16..12,
            ),
            (
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                any::<u16>(),
                any::<u16>(),
            ),
            (0u64..40, 0u64..=1_000_000),
        )
            .prop_map(
                move |(stake, w, b, per_uid, commits, misc, switches, extra)| {
                    let (owner_uid, emission_total, max_validators) = misc;
                    let (yuma3, liquid_alpha, commit_reveal, kappa, bonds_penalty) = switches;
                    let (activity_cutoff, bonds_moving_average) = extra;
                    let (alpha_low, alpha_high) = (45_875, 58_982);
                    EpochInput {
                        current_block: 30,
                        last_tempo: 20,
                        stake: stake
                            .iter()
                            .enumerate()
                            .map(|(i, &s)| s * 16 + i as u64)
                            .collect(),
                        weights: w.into_iter().map(|r| r.into_iter().collect()).collect(),
                        bonds: b.into_iter().map(|r| r.into_iter().collect()).collect(),
                        last_update: per_uid.iter().map(|p| p.0).collect(),
                        block_at_registration: per_uid.iter().map(|p| p.1).collect(),
                        validator_permit: per_uid.iter().map(|p| p.2).collect(),
                        owner_uid,
                        commit_blocks: commits,
                        emission_total,
                        params: YumaParams {
                            kappa,
                            bonds_penalty,
                            bonds_moving_average,
                            yuma3,
                            liquid_alpha,
                            alpha_low,
                            alpha_high,
                            alpha_sigmoid_steepness: 1000,
                            max_allowed_validators: max_validators,
                            stake_threshold: 100,
                            activity_cutoff,
                            commit_reveal,
                        },
                    }
                },
            )
    })
}

/// Σ floor(share·E) over n shares that each lost < 1 ulp of 2⁻³² before the multiplication.
fn max_loss(n: usize, total: u64) -> u64 {
    let n = n as u64;
    n + (u128::from(n) * u128::from(total)).div_ceil(1u128 << 32) as u64
}

fn assert_proportions_sum_to_one_or_zero(values: &[u16]) -> Result<(), TestCaseError> {
    let sum: u64 = values.iter().map(|&v| u64::from(v)).sum();
    prop_assert!(
        sum == 0 || (65_535 - values.len() as u64 - 1..=65_535).contains(&sum),
        "u16 proportions sum to {sum}"
    );
    Ok(())
}

/// The same subnet with uid i renamed to `perm[i]` everywhere.
fn permute(input: &EpochInput, perm: &[usize]) -> EpochInput {
    let n = perm.len();
    let move_vec = |v: &[u64]| {
        let mut out = vec![0; n];
        for (i, &x) in v.iter().enumerate() {
            out[perm[i]] = x;
        }
        out
    };
    let move_rows = |rows: &[Vec<(u16, u16)>]| {
        let mut out = vec![Vec::new(); n];
        for (i, row) in rows.iter().enumerate() {
            let mut moved: Vec<(u16, u16)> = row
                .iter()
                .map(|&(j, v)| (perm[usize::from(j)] as u16, v))
                .collect();
            moved.sort_unstable();
            out[perm[i]] = moved;
        }
        out
    };
    let mut permits = vec![false; n];
    let mut commits = vec![None; n];
    for i in 0..n {
        permits[perm[i]] = input.validator_permit[i];
        commits[perm[i]] = input.commit_blocks[i];
    }
    EpochInput {
        stake: move_vec(&input.stake),
        weights: move_rows(&input.weights),
        bonds: move_rows(&input.bonds),
        last_update: move_vec(&input.last_update),
        block_at_registration: move_vec(&input.block_at_registration),
        validator_permit: permits,
        owner_uid: input.owner_uid.map(|o| perm[usize::from(o)] as u16),
        commit_blocks: commits,
        ..input.clone()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn emission_never_exceeds_the_total_and_loses_only_rounding(input in arb_input()) {
        let out = epoch(&input);
        let n = input.stake.len();
        let total = input.emission_total;
        let combined: u64 = out.emission.iter().sum();
        let split: u64 = out.server_emission.iter().chain(&out.validator_emission).sum();
        prop_assert!(combined <= total && split <= total);
        if out.stake_weight.iter().all(|&s| s == 0) {
            // No stake counts (all below the threshold): nobody can earn, nothing is paid.
            prop_assert_eq!(combined, 0);
        } else {
            prop_assert!(total - combined <= max_loss(n, total));
            prop_assert!(total - split <= max_loss(2 * n, total));
        }
    }

    #[test]
    fn incentive_and_dividends_each_sum_to_one_or_zero(input in arb_input()) {
        let out = epoch(&input);
        assert_proportions_sum_to_one_or_zero(&out.incentive)?;
        assert_proportions_sum_to_one_or_zero(&out.dividends)?;
        prop_assert!(out.consensus.len() == input.stake.len());
    }

    #[test]
    fn a_validator_weighting_only_itself_earns_no_incentive(input in arb_input(), pick in any::<usize>()) {
        let mut input = input;
        let n = input.stake.len();
        let v = pick % n;
        prop_assume!(input.owner_uid != Some(v as u16));
        for row in input.weights.iter_mut() {
            row.retain(|&(j, _)| usize::from(j) != v);
        }
        input.weights[v] = vec![(v as u16, u16::MAX)];
        let out = epoch(&input);
        prop_assert_eq!(out.incentive[v], 0);
        prop_assert_eq!(out.server_emission[v], 0);
    }

    #[test]
    fn renaming_uids_renames_the_results(
        input in arb_input(),
        seed in proptest::collection::vec(any::<u32>(), 10),
    ) {
        let n = input.stake.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (seed[i], i));
        // perm[i] = new uid of old uid i.
        let mut perm = vec![0; n];
        for (new, &old) in order.iter().enumerate() {
            perm[old] = new;
        }
        let input = permute(&input, &(0..n).collect::<Vec<_>>()); // sorted rows
        let base = epoch(&input);
        let moved = epoch(&permute(&input, &perm));
        for i in 0..n {
            let j = perm[i];
            prop_assert_eq!(base.active[i], moved.active[j]);
            prop_assert_eq!(base.stake_weight[i], moved.stake_weight[j]);
            prop_assert_eq!(base.consensus[i], moved.consensus[j]);
            prop_assert_eq!(base.incentive[i], moved.incentive[j]);
            prop_assert_eq!(base.dividends[i], moved.dividends[j]);
            prop_assert_eq!(base.validator_trust[i], moved.validator_trust[j]);
            prop_assert_eq!(base.validator_permit[i], moved.validator_permit[j]);
            prop_assert_eq!(base.emission[i], moved.emission[j]);
            prop_assert_eq!(base.server_emission[i], moved.server_emission[j]);
            prop_assert_eq!(base.validator_emission[i], moved.validator_emission[j]);
            let mut bonds: Vec<(u16, u16)> =
                base.bonds[i].iter().map(|&(c, b)| (perm[usize::from(c)] as u16, b)).collect();
            bonds.sort_unstable();
            let mut other = moved.bonds[j].clone();
            other.sort_unstable();
            prop_assert_eq!(bonds, other);
        }
    }
}

#[test]
fn yuma3_liquid_alpha_dividends_follow_subtensor_kappa_moves_second() {
    let mut sim = yuma3_scenario(&[8, 1, 1, 0, 0], true);
    let expected = [
        [0.8000, 0.1000, 0.1000, 0.0, 0.0],
        [0.8446, 0.0498, 0.1056, 0.0, 0.0],
        [0.6868, 0.3132, 0.0000, 0.0, 0.0],
        [0.7421, 0.2090, 0.0489, 0.0, 0.0],
        [0.7625, 0.1706, 0.0669, 0.0, 0.0],
        [0.7730, 0.1508, 0.0762, 0.0, 0.0],
    ];
    let (to3, to4) = ([u16::MAX, 0], [0, u16::MAX]);
    for (epoch, want) in expected.iter().enumerate() {
        match epoch {
            0 => set_yuma3_weights(&mut sim, &[to3; 3]),
            1 => set_yuma3_weights(&mut sim, &[to3, to4, to3]),
            2 => set_yuma3_weights(&mut sim, &[to4, to4, to3]),
            3 => set_yuma3_weights(&mut sim, &[to4; 3]),
            _ => {}
        }
        let out = sim.run_epoch();
        assert_dividends(&out, want, epoch);
    }
}
