//! From track scores to the u16 weights a validator submits (pure: no IO, no clock, no
//! randomness). `docs/scoring.md` "Combining the tracks" and "From scores to weights".
//!
//! 1. [`combine`]: each track's scores (each sums to 1 or is all 0) weighted by the competition's
//!    `[shares]`.
//! 2. [`update_ema`]: `ema = α · combined + (1 − α) · previous`, per hotkey. A hotkey starts from 0
//!    when it is new, or when its uid or registration block changed since the stored EMA (it was
//!    deregistered and registered again, or a new hotkey took the uid).
//! 3. [`normalize`]: `ema / Σ ema`; uniform over every uid when all are 0, as the SDK's
//!    `process_weights_for_netuid` does when nothing scored.
//! 4. [`to_u16_weights`]: the SDK's `convert_weights_and_uids_for_emit` (`spec/subtensor.md`
//!    §2.3): divide by the max, `round(w · 65535)` with Python's round half to even, drop zeros.

use std::collections::BTreeMap;

use subnet_model::competition::TrackShares;

/// Per-uid scores of each track for one epoch. A track that did not run (or a uid it did not
/// score) counts as 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackScores {
    /// Model-track scores by uid (sum to 1 over eligible miners, or all 0).
    pub model: BTreeMap<u16, f64>,
    /// Label-track scores by uid (empty until the label track runs).
    pub labels: BTreeMap<u16, f64>,
}

impl TrackScores {
    /// The model score of `uid` (0 when unscored).
    pub fn model_of(&self, uid: u16) -> f64 {
        self.model.get(&uid).copied().unwrap_or(0.0)
    }

    /// The label score of `uid` (0 when unscored).
    pub fn labels_of(&self, uid: u16) -> f64 {
        self.labels.get(&uid).copied().unwrap_or(0.0)
    }
}

/// `shares.model · model + shares.labels · labels` for `uid`. Non-finite or negative track
/// scores count as 0, so a bug upstream cannot produce negative weights.
pub fn combine(scores: &TrackScores, shares: &TrackShares, uid: u16) -> f64 {
    let clean = |x: f64| if x.is_finite() && x > 0.0 { x } else { 0.0 };
    shares.model * clean(scores.model_of(uid)) + shares.labels * clean(scores.labels_of(uid))
}

/// A hotkey's stored EMA and the registration it belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreviousEma {
    /// Uid the hotkey held when the EMA was stored.
    pub uid: u16,
    /// Its registration block then.
    pub block_at_registration: u64,
    /// The EMA.
    pub ema: f64,
}

/// A uid of this epoch's metagraph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neuron {
    /// Uid.
    pub uid: u16,
    /// SS58 hotkey.
    pub hotkey: String,
    /// Block of its most recent (re)registration.
    pub block_at_registration: u64,
}

/// One uid's way from track scores to its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightRow {
    /// Uid.
    pub uid: u16,
    /// SS58 hotkey.
    pub hotkey: String,
    /// Model-track score.
    pub model_score: f64,
    /// Label-track score.
    pub label_score: f64,
    /// Tracks combined by share.
    pub combined: f64,
    /// EMA after this epoch.
    pub ema: f64,
    /// Normalized weight (sums to 1 over all rows).
    pub weight: f64,
}

/// The EMA of a hotkey after this epoch: `α · combined + (1 − α) · previous`, where previous is 0
/// unless the stored EMA belongs to the same uid and registration.
pub fn update_ema(
    alpha: f64,
    combined: f64,
    neuron: &Neuron,
    previous: Option<&PreviousEma>,
) -> f64 {
    let prev = previous
        .filter(|p| p.uid == neuron.uid && p.block_at_registration == neuron.block_at_registration)
        .map_or(0.0, |p| {
            if p.ema.is_finite() {
                p.ema.max(0.0)
            } else {
                0.0
            }
        });
    alpha * combined + (1.0 - alpha) * prev
}

/// `values / Σ values`; uniform when the sum is 0 (or `values` is empty: empty result).
pub fn normalize(values: &[f64]) -> Vec<f64> {
    let sum: f64 = values.iter().sum();
    if sum > 0.0 && sum.is_finite() {
        values.iter().map(|v| v / sum).collect()
    } else if values.is_empty() {
        Vec::new()
    } else {
        vec![1.0 / values.len() as f64; values.len()]
    }
}

/// Scores → EMA → normalized weight for every neuron, in the given (uid) order.
pub fn weight_rows(
    neurons: &[Neuron],
    scores: &TrackScores,
    shares: &TrackShares,
    alpha: f64,
    previous: &BTreeMap<String, PreviousEma>,
) -> Vec<WeightRow> {
    let mut rows: Vec<WeightRow> = neurons
        .iter()
        .map(|n| {
            let combined = combine(scores, shares, n.uid);
            WeightRow {
                uid: n.uid,
                hotkey: n.hotkey.clone(),
                model_score: scores.model_of(n.uid),
                label_score: scores.labels_of(n.uid),
                combined,
                ema: update_ema(alpha, combined, n, previous.get(&n.hotkey)),
                weight: 0.0,
            }
        })
        .collect();
    let emas: Vec<f64> = rows.iter().map(|r| r.ema).collect();
    for (row, weight) in rows.iter_mut().zip(normalize(&emas)) {
        row.weight = weight;
    }
    rows
}

/// Why weights cannot be converted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConvertError {
    /// A weight is negative or not a number.
    #[error("weight {value} of uid {uid} is negative or not finite")]
    BadWeight {
        /// The uid.
        uid: u16,
        /// Its weight.
        value: f64,
    },
}

/// The SDK's `convert_weights_and_uids_for_emit`: `round(w / max(w) · 65535)` with round half to
/// even, entries that round to 0 dropped; empty when every weight is 0.
pub fn to_u16_weights(weights: &[(u16, f64)]) -> Result<(Vec<u16>, Vec<u16>), ConvertError> {
    if let Some(&(uid, value)) = weights.iter().find(|(_, w)| !w.is_finite() || *w < 0.0) {
        return Err(ConvertError::BadWeight { uid, value });
    }
    let max = weights.iter().map(|(_, w)| *w).fold(0.0, f64::max);
    let mut uids = Vec::new();
    let mut values = Vec::new();
    if max <= 0.0 {
        return Ok((uids, values));
    }
    for &(uid, w) in weights {
        let scaled = (w / max * f64::from(u16::MAX)).round_ties_even();
        if scaled >= 1.0 {
            uids.push(uid);
            values.push(scaled.min(f64::from(u16::MAX)) as u16);
        }
    }
    Ok((uids, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARES: TrackShares = TrackShares {
        model: 0.7,
        labels: 0.3,
    };

    fn neuron(uid: u16, hotkey: &str, reg: u64) -> Neuron {
        Neuron {
            uid,
            hotkey: hotkey.into(),
            block_at_registration: reg,
        }
    }

    #[test]
    fn u16_conversion_matches_the_sdk_including_round_half_to_even() {
        // Expected values printed by the SDK's arithmetic in Python 3:
        // [round(x / max(w) * 65535) for x in w], zeros dropped.
        let cases: &[(&[f64], &[u16], &[u16])] = &[
            (&[2.0, 1.0], &[0, 1], &[65535, 32768]),
            (&[1.0, 3.0], &[0, 1], &[21845, 65535]),
            // 2.5 → 2 and 1.5 → 2: half to even, not half up.
            (&[5.0, 131070.0], &[0, 1], &[2, 65535]),
            (&[3.0, 131070.0], &[0, 1], &[2, 65535]),
            (&[7.0, 131070.0], &[0, 1], &[4, 65535]),
            // 0.5 rounds to 0 and is dropped.
            (&[1.0, 1.0 / 131070.0], &[0], &[65535]),
        ];
        for (weights, uids, values) in cases {
            let input: Vec<(u16, f64)> = weights
                .iter()
                .enumerate()
                .map(|(i, w)| (i as u16, *w))
                .collect();
            let (u, v) = to_u16_weights(&input).unwrap();
            assert_eq!((&u[..], &v[..]), (*uids, *values), "{weights:?}");
        }
    }

    #[test]
    fn u16_conversion_of_all_zeros_is_empty_and_refuses_negatives() {
        assert_eq!(
            to_u16_weights(&[(0, 0.0), (1, 0.0)]).unwrap(),
            (vec![], vec![])
        );
        assert_eq!(
            to_u16_weights(&[(0, 1.0), (3, -0.1)]),
            Err(ConvertError::BadWeight {
                uid: 3,
                value: -0.1
            })
        );
        assert!(to_u16_weights(&[(0, f64::NAN)]).is_err());
    }

    #[test]
    fn combine_weights_tracks_by_share_and_ignores_garbage() {
        let mut scores = TrackScores::default();
        scores.model.insert(1, 0.5);
        scores.labels.insert(1, 1.0);
        scores.model.insert(2, f64::NAN);
        assert!((combine(&scores, &SHARES, 1) - (0.35 + 0.3)).abs() < 1e-15);
        assert_eq!(combine(&scores, &SHARES, 2), 0.0);
        assert_eq!(combine(&scores, &SHARES, 9), 0.0);
    }

    #[test]
    fn ema_continues_for_the_same_registration_and_restarts_otherwise() {
        let n = neuron(3, "hk", 100);
        let prev = PreviousEma {
            uid: 3,
            block_at_registration: 100,
            ema: 0.5,
        };
        assert!((update_ema(0.3, 1.0, &n, Some(&prev)) - (0.3 + 0.35)).abs() < 1e-15);
        assert!((update_ema(0.3, 1.0, &n, None) - 0.3).abs() < 1e-15);
        let re_registered = PreviousEma {
            block_at_registration: 50,
            ..prev
        };
        assert!((update_ema(0.3, 1.0, &n, Some(&re_registered)) - 0.3).abs() < 1e-15);
        let other_uid = PreviousEma { uid: 4, ..prev };
        assert!((update_ema(0.3, 0.0, &n, Some(&other_uid))).abs() < 1e-15);
    }

    #[test]
    fn normalize_sums_to_one_or_falls_back_to_uniform() {
        assert_eq!(normalize(&[1.0, 3.0]), vec![0.25, 0.75]);
        assert_eq!(normalize(&[0.0, 0.0, 0.0, 0.0]), vec![0.25; 4]);
        assert!(normalize(&[]).is_empty());
    }

    #[test]
    fn weight_rows_follow_scores_through_ema_and_normalization() {
        let neurons = [neuron(0, "v", 0), neuron(1, "a", 5), neuron(2, "b", 6)];
        let mut scores = TrackScores::default();
        scores.model.insert(1, 0.8);
        scores.model.insert(2, 0.2);
        let mut previous = BTreeMap::new();
        previous.insert(
            "b".to_string(),
            PreviousEma {
                uid: 2,
                block_at_registration: 6,
                ema: 0.7,
            },
        );
        let rows = weight_rows(&neurons, &scores, &SHARES, 0.5, &previous);
        // a: 0.5·0.56 = 0.28; b: 0.5·0.14 + 0.5·0.7 = 0.42.
        assert!((rows[1].ema - 0.28).abs() < 1e-12);
        assert!((rows[2].ema - 0.42).abs() < 1e-12);
        assert_eq!(rows[0].weight, 0.0);
        assert!((rows[1].weight - 0.4).abs() < 1e-12);
        assert!((rows[2].weight - 0.6).abs() < 1e-12);
        let total: f64 = rows.iter().map(|r| r.weight).sum();
        assert!((total - 1.0).abs() < 1e-12);
    }
}
