//! `devchain simulate FILE.json`: Yuma Consensus on given stakes and weights, run through the real
//! state machine (registration, `set_weights` with all its checks, the epoch and its storage).
//!
//! Input (unknown fields and out-of-range values are errors; omitted hyperparameters keep the
//! new-subnet defaults of `spec/subtensor.md` §1.10):
//! ```json
//! {"n": 6, "stakes": [8, 1, 1, 0, 0, 0],
//!  "hyperparameters": {"kappa": 32767, "bonds_penalty": 0, "bonds_moving_average": 975000,
//!                      "yuma3": true, "liquid_alpha": true, "alpha_low": 0.1, "alpha_high": 0.3,
//!                      "alpha_sigmoid_steepness": 1000, "max_allowed_validators": 3},
//!  "epochs": [{"weights": [[0, [[3, 32767], [4, 0], [5, 32767]]], [1, [[3, 32767]]]]},
//!             {"weights": []}]}
//! ```
//! Set-up, as Subtensor's epoch tests do it: all n uids are registered at genesis (hotkey = coldkey,
//! derived from the uid) with the given stakes (rao); commit–reveal off, rate limit 0,
//! `min_allowed_weights` 1, no owner uid and no owner cut; one block passes and an epoch with no
//! weights runs to issue validator permits. Then for each listed epoch the weight rows are submitted
//! through `set_weights`, one block passes, and the epoch runs with E_tot = 10⁹ rao. As in
//! Subtensor's epoch tests, emission is stored but not paid out, so stakes stay as given.
//!
//! Output: per epoch the stored consensus, incentive, dividends and validator trust (u16/65535 as
//! floats), the stored bonds as a dense n×n matrix (u16/65535), and the stored emission per uid in
//! rao (`emission_rao`).

use serde::{Deserialize, Serialize};
use subnet_common::chain::types::{Call, Hyperparameters, NetUid, Uid};
use subnet_common::keys::AccountId;

use crate::state::{ChainError, Genesis, GenesisError, GenesisNeuron, GenesisSubnet, State};

/// The subnet the simulation runs on.
const NETUID: NetUid = 1;
/// Emission per simulated epoch, rao (Subtensor's tests use the same).
pub const EPOCH_EMISSION: u64 = 1_000_000_000;
/// Largest number of uids.
const MAX_N: u16 = 4_096;

/// The simulation input file.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationInput {
    /// Number of uids (1..=4096).
    pub n: u16,
    /// Stake per uid in rao; length n.
    pub stakes: Vec<u64>,
    /// Hyperparameter overrides.
    #[serde(default)]
    pub hyperparameters: SimulationParams,
    /// The epochs to run after the permit epoch.
    pub epochs: Vec<SimulationEpoch>,
}

/// Hyperparameters a simulation may set; the rest keep the new-subnet defaults.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationParams {
    /// κ, /65535.
    pub kappa: Option<u16>,
    /// β, /65535.
    pub bonds_penalty: Option<u16>,
    /// Bonds EMA in millionths (≤ 10⁶).
    pub bonds_moving_average: Option<u64>,
    /// Yuma 3 bonds (true) or legacy bonds (false).
    pub yuma3: Option<bool>,
    /// Liquid alpha on the Yuma 3 path.
    pub liquid_alpha: Option<bool>,
    /// Liquid-alpha lower bound as a proportion in [0, 1]; stored as round(x·65535).
    pub alpha_low: Option<f64>,
    /// Liquid-alpha upper bound as a proportion in [alpha_low, 1]; stored as round(x·65535).
    pub alpha_high: Option<f64>,
    /// Liquid-alpha sigmoid steepness.
    pub alpha_sigmoid_steepness: Option<i16>,
    /// Number of validator permits.
    pub max_allowed_validators: Option<u16>,
}

/// One epoch's weight submissions.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationEpoch {
    /// `[uid, [[dest, weight], ...]]` rows, submitted in order as that uid's `set_weights`.
    pub weights: Vec<(Uid, Vec<(Uid, u16)>)>,
}

/// What one epoch stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimulationEpochResult {
    /// Consensus C per uid.
    pub consensus: Vec<f64>,
    /// Incentive I per uid.
    pub incentive: Vec<f64>,
    /// Dividends D per uid.
    pub dividends: Vec<f64>,
    /// Validator trust Tv per uid.
    pub validator_trust: Vec<f64>,
    /// Stored bonds, dense: `bonds[i][j]` of validator i on miner j.
    pub bonds: Vec<Vec<f64>>,
    /// Stored emission per uid, rao.
    pub emission_rao: Vec<u64>,
}

/// The simulation result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimulationOutput {
    /// One entry per input epoch.
    pub epochs: Vec<SimulationEpochResult>,
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The input is not valid JSON of the expected shape.
    #[error("simulation input: {0}")]
    Json(#[from] serde_json::Error),
    /// A field is out of range.
    #[error("simulation input: {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The set-up was refused (should not happen once the input is valid).
    #[error("simulation set-up: {0}")]
    Genesis(#[from] GenesisError),
    /// The chain refused an epoch (the simulated subnet is missing; a bug).
    #[error("epoch {epoch:?} (None = the permit epoch): {source}")]
    Epoch {
        /// Index in `epochs`; `None` for the permit epoch.
        epoch: Option<usize>,
        /// The chain's error.
        source: ChainError,
    },
    /// The chain refused a weight row.
    #[error("epoch {epoch}: uid {uid}: {source}")]
    Rejected {
        /// Index in `epochs`.
        epoch: usize,
        /// The submitting uid.
        uid: Uid,
        /// The chain's error.
        source: ChainError,
    },
}

/// Parses the input JSON, runs the simulation and returns the output as JSON.
pub fn run(input_json: &str) -> Result<serde_json::Value, SimulateError> {
    let input: SimulationInput = serde_json::from_str(input_json)?;
    Ok(serde_json::to_value(simulate(&input)?)?)
}

/// The account of a simulated uid (hotkey and coldkey alike).
fn account(uid: Uid) -> AccountId {
    let mut bytes = [0u8; 32];
    bytes[..2].copy_from_slice(&uid.to_le_bytes());
    bytes[2] = 0x51; // 'S'imulated: never all-0xff like the owner
    AccountId(bytes)
}

fn invalid(field: &'static str, reason: impl Into<String>) -> SimulateError {
    SimulateError::Invalid {
        field,
        reason: reason.into(),
    }
}

fn proportion(field: &'static str, x: f64) -> Result<u16, SimulateError> {
    if !(0.0..=1.0).contains(&x) {
        return Err(invalid(field, format!("{x} is outside [0, 1]")));
    }
    // In range by the check above.
    Ok((x * f64::from(u16::MAX)).round() as u16)
}

/// The chain hyperparameters of a simulation.
fn hyperparameters(input: &SimulationInput) -> Result<Hyperparameters, SimulateError> {
    let o = &input.hyperparameters;
    let mut p = Hyperparameters {
        tempo: 0,
        commit_reveal_weights_enabled: false,
        weights_set_rate_limit: 0,
        min_allowed_weights: 1,
        subnet_owner_cut: 0,
        ..Hyperparameters::default()
    };
    p.kappa = o.kappa.unwrap_or(p.kappa);
    p.bonds_penalty = o.bonds_penalty.unwrap_or(p.bonds_penalty);
    if let Some(bma) = o.bonds_moving_average {
        if bma > 1_000_000 {
            return Err(invalid("bonds_moving_average", format!("{bma} > 1000000")));
        }
        p.bonds_moving_average = bma;
    }
    p.yuma3_enabled = o.yuma3.unwrap_or(p.yuma3_enabled);
    p.liquid_alpha_enabled = o.liquid_alpha.unwrap_or(p.liquid_alpha_enabled);
    if let Some(x) = o.alpha_low {
        p.alpha_low = proportion("alpha_low", x)?;
    }
    if let Some(x) = o.alpha_high {
        p.alpha_high = proportion("alpha_high", x)?;
    }
    if p.alpha_low > p.alpha_high {
        return Err(invalid("alpha_low", "exceeds alpha_high"));
    }
    p.alpha_sigmoid_steepness = o
        .alpha_sigmoid_steepness
        .unwrap_or(p.alpha_sigmoid_steepness);
    p.max_allowed_validators = o.max_allowed_validators.unwrap_or(p.max_allowed_validators);
    p.max_allowed_uids = input.n.max(p.max_allowed_validators).min(MAX_N);
    if p.max_allowed_validators > MAX_N {
        return Err(invalid("max_allowed_validators", "exceeds 4096"));
    }
    Ok(p)
}

/// Runs a parsed simulation.
pub fn simulate(input: &SimulationInput) -> Result<SimulationOutput, SimulateError> {
    let n = input.n;
    if n == 0 || n > MAX_N {
        return Err(invalid("n", format!("{n} is outside 1..=4096")));
    }
    if input.stakes.len() != usize::from(n) {
        return Err(invalid(
            "stakes",
            format!("{} entries for n = {n}", input.stakes.len()),
        ));
    }
    for (epoch, e) in input.epochs.iter().enumerate() {
        if let Some((uid, _)) = e.weights.iter().find(|(uid, _)| *uid >= n) {
            return Err(invalid(
                "epochs",
                format!("epoch {epoch}: uid {uid} is not below n = {n}"),
            ));
        }
    }
    let owner = AccountId([0xff; 32]);
    let genesis = Genesis {
        seed: "simulate".into(),
        subnets: vec![GenesisSubnet {
            netuid: NETUID,
            owner_coldkey: owner,
            owner_hotkey: owner,
            register_owner_hotkey: false,
            emission_per_block: 0,
            hyperparameters: hyperparameters(input)?,
            neurons: (0..n)
                .zip(&input.stakes)
                .map(|(uid, stake)| GenesisNeuron {
                    hotkey: account(uid),
                    coldkey: account(uid),
                    stake: *stake,
                })
                .collect(),
        }],
        ..Genesis::default()
    };
    let mut state = State::from_genesis(&genesis)?;
    state.end_block();
    state
        .run_epoch_without_payout(NETUID, EPOCH_EMISSION)
        .map_err(|source| SimulateError::Epoch {
            epoch: None,
            source,
        })?;

    let mut epochs = Vec::with_capacity(input.epochs.len());
    for (index, epoch) in input.epochs.iter().enumerate() {
        for (uid, row) in &epoch.weights {
            let call = Call::SetWeights {
                netuid: NETUID,
                dests: row.iter().map(|(dest, _)| *dest).collect(),
                weights: row.iter().map(|(_, w)| *w).collect(),
                version_key: 0,
            };
            state
                .dispatch(&account(*uid), &call)
                .map_err(|source| SimulateError::Rejected {
                    epoch: index,
                    uid: *uid,
                    source,
                })?;
        }
        state.end_block();
        state
            .run_epoch_without_payout(NETUID, EPOCH_EMISSION)
            .map_err(|source| SimulateError::Epoch {
                epoch: Some(index),
                source,
            })?;
        epochs.push(read_out(&state, n));
    }
    Ok(SimulationOutput { epochs })
}

/// What the epoch stored, as the output shape.
fn read_out(state: &State, n: u16) -> SimulationEpochResult {
    let neurons = state
        .metagraph(NETUID)
        .map(|m| m.neurons)
        .unwrap_or_default();
    let ratio = |x: u16| f64::from(x) / f64::from(u16::MAX);
    let column = |f: fn(&subnet_common::chain::types::NeuronInfo) -> u16| {
        neurons.iter().map(|nrn| ratio(f(nrn))).collect::<Vec<_>>()
    };
    let bonds = neurons
        .iter()
        .map(|nrn| {
            let mut row = vec![0.0; usize::from(n)];
            for (j, b) in &nrn.bonds {
                if let Some(cell) = row.get_mut(usize::from(*j)) {
                    *cell = ratio(*b);
                }
            }
            row
        })
        .collect();
    SimulationEpochResult {
        consensus: column(|x| x.consensus),
        incentive: column(|x| x.incentive),
        dividends: column(|x| x.dividends),
        validator_trust: column(|x| x.validator_trust),
        bonds,
        emission_rao: neurons.iter().map(|nrn| nrn.emission).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"n": 6, "stakes": [8,1,1,0,0,0],
        "hyperparameters": {"kappa": 32767, "bonds_penalty": 0, "bonds_moving_average": 975000,
            "yuma3": true, "liquid_alpha": true, "alpha_low": 0.1, "alpha_high": 0.3,
            "alpha_sigmoid_steepness": 1000, "max_allowed_validators": 3},
        "epochs": [ {"weights": [[0, [[3, 32767], [4, 0], [5, 32767]]], [1, [[3, 32767]]]]},
                    {"weights": []} ]}"#;

    fn sum(v: &[f64]) -> f64 {
        v.iter().sum()
    }

    #[test]
    fn the_issue_example_runs_and_stores_the_whole_epoch_emission() {
        let out: SimulationOutput = serde_json::from_value(run(EXAMPLE).unwrap()).unwrap();
        assert_eq!(out.epochs.len(), 2);
        for e in &out.epochs {
            assert_eq!(e.emission_rao.len(), 6);
            assert_eq!(e.bonds.len(), 6);
            assert!(e.bonds.iter().all(|row| row.len() == 6));
            let total: u64 = e.emission_rao.iter().sum();
            assert!(
                total <= EPOCH_EMISSION && total + 6 >= EPOCH_EMISSION,
                "{total}"
            );
        }
        let e0 = &out.epochs[0];
        // Miners 3 and 5 share the incentive; 4 got weight 0 from everyone.
        assert_eq!(e0.incentive[4], 0.0);
        assert!(e0.incentive[3] > e0.incentive[5] && e0.incentive[5] > 0.0);
        assert!((sum(&e0.incentive) - 1.0).abs() < 1e-3);
        // Only validators 0 and 1 earn dividends; 2 set no weights.
        assert!(e0.dividends[0] > 0.0 && e0.dividends[1] > 0.0);
        assert_eq!(e0.dividends[2], 0.0);
        assert!(e0.bonds[0][3] > 0.0 && e0.bonds[1][3] > 0.0);
        // Weights persist when an epoch submits none.
        assert_eq!(out.epochs[1].incentive, e0.incentive);
    }

    /// Subtensor `test_yuma_3_liquid_alpha_disabled` (spec §6.2), through the simulator.
    #[test]
    fn matches_subtensor_yuma3_fixed_alpha_dividends() {
        let full = |dest: u16| {
            vec![
                (3, if dest == 3 { 65535 } else { 0 }),
                (4, if dest == 4 { 65535 } else { 0 }),
            ]
        };
        let epochs = (0..6)
            .map(|e| SimulationEpoch {
                weights: (0..3u16)
                    .map(|v| (v, full(if e == 2 && v == 2 { 4 } else { 3 })))
                    .collect(),
            })
            .collect();
        let input = SimulationInput {
            n: 5,
            stakes: vec![33, 33, 34, 0, 0],
            hyperparameters: SimulationParams {
                kappa: Some(32_767),
                bonds_penalty: Some(0),
                bonds_moving_average: Some(975_000),
                yuma3: Some(true),
                liquid_alpha: Some(false),
                max_allowed_validators: Some(3),
                ..SimulationParams::default()
            },
            epochs,
        };
        let expected = [
            [0.3300, 0.3300, 0.3400],
            [0.3300, 0.3300, 0.3400],
            [0.3734, 0.3734, 0.2532],
            [0.3611, 0.3611, 0.2779],
            [0.3541, 0.3541, 0.2919],
            [0.3495, 0.3495, 0.3009],
        ];
        let out = simulate(&input).unwrap();
        for (e, (got, want)) in out.epochs.iter().zip(expected).enumerate() {
            for (v, (g, w)) in got.dividends.iter().zip(want).enumerate() {
                assert!((g - w).abs() < 1e-3, "epoch {e} validator {v}: {g} vs {w}");
            }
            assert_eq!(&got.dividends[3..], &[0.0, 0.0]);
        }
    }

    /// Subtensor `test_bonds` (spec §6.1, legacy path): stored bond u16 values, exactly.
    #[test]
    fn matches_subtensor_legacy_bonds_exactly() {
        let all = |uids: &[u16]| -> Vec<(u16, Vec<(u16, u16)>)> {
            uids.iter()
                .map(|v| (*v, vec![(4, 16383), (5, 32767), (6, 49149), (7, 65535)]))
                .collect()
        };
        let self_weight = |v: u16| vec![(v, vec![(v, 65535)])];
        let weights = [
            all(&[0, 1, 2, 3]),
            self_weight(0),
            self_weight(1),
            self_weight(2),
            vec![(2, vec![(7, 65535)])],
            vec![],
            vec![],
        ];
        let input = SimulationInput {
            n: 8,
            stakes: vec![1, 2, 3, 4, 0, 0, 0, 0],
            hyperparameters: SimulationParams {
                bonds_penalty: Some(65_535),
                bonds_moving_average: Some(900_000),
                yuma3: Some(false),
                max_allowed_validators: Some(8),
                ..SimulationParams::default()
            },
            epochs: weights
                .into_iter()
                .map(|weights| SimulationEpoch { weights })
                .collect(),
        };
        let expected: [(usize, [u16; 4]); 7] = [
            (4, [16383, 32767, 49151, 65535]),
            (4, [14582, 32767, 49151, 65535]),
            (4, [12603, 28321, 49151, 65535]),
            (7, [12602, 28320, 49150, 65535]),
            (7, [10951, 24609, 49150, 65535]),
            (7, [9559, 21482, 49150, 65535]),
            (7, [8376, 18824, 49150, 65535]),
        ];
        let out = simulate(&input).unwrap();
        for (step, (epoch, (column, want))) in out.epochs.iter().zip(expected).enumerate() {
            let got: Vec<u16> = (0..4)
                .map(|v| (epoch.bonds[v][column] * 65535.0).round() as u16)
                .collect();
            assert_eq!(got, want, "step {}", step + 1);
        }
    }

    #[test]
    fn unknown_fields_are_errors_not_defaults() {
        let bad = EXAMPLE.replace("\"kappa\"", "\"kapa\"");
        assert!(matches!(run(&bad), Err(SimulateError::Json(_))));
        let bad = EXAMPLE.replace("\"n\": 6", "\"n\": 6, \"tempo\": 3");
        assert!(matches!(run(&bad), Err(SimulateError::Json(_))));
    }

    #[test]
    fn out_of_range_values_are_errors() {
        for (from, to) in [
            ("\"kappa\": 32767", "\"kappa\": 70000"),
            ("\"alpha_high\": 0.3", "\"alpha_high\": 1.5"),
            ("\"alpha_low\": 0.1", "\"alpha_low\": 0.5"),
            (
                "\"bonds_moving_average\": 975000",
                "\"bonds_moving_average\": 2000000",
            ),
            ("\"n\": 6", "\"n\": 5"),
            ("\"n\": 6", "\"n\": 0"),
            ("[1, [[3, 32767]]]", "[9, [[3, 32767]]]"),
        ] {
            let bad = EXAMPLE.replace(from, to);
            assert_ne!(bad, EXAMPLE, "{from}");
            let err = run(&bad).unwrap_err();
            assert!(
                matches!(err, SimulateError::Json(_) | SimulateError::Invalid { .. }),
                "{to}: {err}"
            );
        }
    }

    #[test]
    fn weights_refused_by_the_chain_are_reported_with_epoch_and_uid() {
        // uid 4 holds no permit (only 3 validators), so non-self weights are refused.
        let bad = EXAMPLE.replace("[1, [[3, 32767]]]", "[4, [[3, 32767]]]");
        let err = run(&bad).unwrap_err();
        assert!(
            matches!(
                err,
                SimulateError::Rejected {
                    epoch: 0,
                    uid: 4,
                    source: ChainError::NeuronNoValidatorPermit { uid: 4 }
                }
            ),
            "{err}"
        );
    }
}
