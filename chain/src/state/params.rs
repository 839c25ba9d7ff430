//! Owner-settable hyperparameters: range checks and the update itself.

use subnet_common::chain::types::{Hyperparameter, Hyperparameters};

use super::error::ChainError;

/// Smallest liquid-alpha bound (`do_set_alpha_values`: 1638 ≈ 0.025).
const ALPHA_MIN: u16 = 1_638;
/// Largest tempo an owner may set (Subtensor `MAX_TEMPO`).
const MAX_TEMPO: u16 = 50_400;
/// Smallest and largest registration burn (§1.10).
const BURN_RANGE: (u64, u64) = (500_000, 100_000_000_000);
/// The commit–reveal versions the dev chain runs: 2 (hash commit, then reveal) and 4 (timelocked
/// commit revealed by the chain).
pub const COMMIT_REVEAL_VERSIONS: [u16; 2] = [2, 4];
/// Largest `max_allowed_uids` (the dev chain keeps subnets small enough to scan).
const MAX_UIDS: u16 = 4_096;

/// Returns `params` with `param` set to `value`, or why the value is refused. `n` is the subnet's
/// current size (`max_allowed_uids` may not drop below it).
pub fn with_value(
    params: &Hyperparameters,
    param: Hyperparameter,
    value: u64,
    n: u16,
) -> Result<Hyperparameters, ChainError> {
    let bad = |reason: &'static str| ChainError::InvalidHyperparameterValue {
        param,
        value,
        reason,
    };
    let as_u16 = || u16::try_from(value).map_err(|_| bad("must fit in u16"));
    let as_bool = || match value {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(bad("must be 0 or 1")),
    };
    let mut p = params.clone();
    match param {
        Hyperparameter::Tempo => {
            p.tempo = as_u16()?;
            if p.tempo == 0 || p.tempo > MAX_TEMPO {
                return Err(bad("must be in 1..=50400"));
            }
        }
        Hyperparameter::Kappa => p.kappa = as_u16()?,
        Hyperparameter::BondsMovingAverage => {
            if value > 1_000_000 {
                return Err(bad("must be at most 1000000"));
            }
            p.bonds_moving_average = value;
        }
        Hyperparameter::BondsPenalty => p.bonds_penalty = as_u16()?,
        Hyperparameter::LiquidAlphaEnabled => p.liquid_alpha_enabled = as_bool()?,
        Hyperparameter::AlphaLow => {
            p.alpha_low = as_u16()?;
            if p.alpha_low < ALPHA_MIN || p.alpha_low > p.alpha_high {
                return Err(bad("must be in 1638..=alpha_high"));
            }
        }
        Hyperparameter::AlphaHigh => {
            p.alpha_high = as_u16()?;
            if p.alpha_high < ALPHA_MIN || p.alpha_high < p.alpha_low {
                return Err(bad("must be at least 1638 and at least alpha_low"));
            }
        }
        Hyperparameter::AlphaSigmoidSteepness => {
            p.alpha_sigmoid_steepness =
                i16::try_from(value).map_err(|_| bad("must be in 0..=32767"))?;
        }
        Hyperparameter::Yuma3Enabled => p.yuma3_enabled = as_bool()?,
        Hyperparameter::MaxAllowedUids => {
            p.max_allowed_uids = as_u16()?;
            if p.max_allowed_uids == 0 || p.max_allowed_uids > MAX_UIDS {
                return Err(bad("must be in 1..=4096"));
            }
            if p.max_allowed_uids < n {
                return Err(bad("must not be below the current number of uids"));
            }
            if p.max_allowed_validators > p.max_allowed_uids {
                return Err(bad("must not be below max_allowed_validators"));
            }
        }
        Hyperparameter::MaxAllowedValidators => {
            p.max_allowed_validators = as_u16()?;
            if p.max_allowed_validators > p.max_allowed_uids {
                return Err(bad("must not exceed max_allowed_uids"));
            }
        }
        Hyperparameter::MinAllowedWeights => p.min_allowed_weights = as_u16()?,
        Hyperparameter::MaxWeightLimit => p.max_weight_limit = as_u16()?,
        Hyperparameter::ImmunityPeriod => p.immunity_period = as_u16()?,
        Hyperparameter::ActivityCutoff => {
            p.activity_cutoff = as_u16()?;
            if p.activity_cutoff == 0 {
                return Err(bad("must be at least 1"));
            }
        }
        Hyperparameter::WeightsSetRateLimit => p.weights_set_rate_limit = value,
        Hyperparameter::WeightsVersionKey => p.weights_version_key = value,
        Hyperparameter::CommitRevealWeightsEnabled => {
            p.commit_reveal_weights_enabled = as_bool()?;
        }
        Hyperparameter::CommitRevealPeriod => {
            if !(1..=100).contains(&value) {
                return Err(bad("must be in 1..=100"));
            }
            p.commit_reveal_period = value;
        }
        Hyperparameter::CommitRevealVersion => {
            p.commit_reveal_version = as_u16()?;
            if !COMMIT_REVEAL_VERSIONS.contains(&p.commit_reveal_version) {
                return Err(bad("must be 2 (hash commits) or 4 (timelocked commits)"));
            }
        }
        Hyperparameter::StakeThreshold => p.stake_threshold = value,
        Hyperparameter::ServingRateLimit => p.serving_rate_limit = value,
        Hyperparameter::CommitmentRateLimit => p.commitment_rate_limit = value,
        Hyperparameter::RegistrationAllowed => p.registration_allowed = as_bool()?,
        Hyperparameter::Burn => {
            if !(BURN_RANGE.0..=BURN_RANGE.1).contains(&value) {
                return Err(bad("must be in 500000..=100000000000"));
            }
            p.burn = value;
        }
    }
    Ok(p)
}

/// Checks a whole parameter set, as given in a genesis file. Genesis may set what owners may not
/// (tempo 0 = no epochs, `subnet_owner_cut`), but the structural rules hold.
pub fn validate(p: &Hyperparameters) -> Result<(), String> {
    if p.max_allowed_uids == 0 || p.max_allowed_uids > MAX_UIDS {
        return Err(format!(
            "max_allowed_uids {} is outside 1..=4096",
            p.max_allowed_uids
        ));
    }
    if p.max_allowed_validators > p.max_allowed_uids {
        return Err("max_allowed_validators exceeds max_allowed_uids".into());
    }
    if p.bonds_moving_average > 1_000_000 {
        return Err("bonds_moving_average exceeds 1000000".into());
    }
    if p.alpha_low > p.alpha_high {
        return Err("alpha_low exceeds alpha_high".into());
    }
    if !COMMIT_REVEAL_VERSIONS.contains(&p.commit_reveal_version) {
        return Err(format!(
            "commit_reveal_version {} is not 2 or 4",
            p.commit_reveal_version
        ));
    }
    if !(1..=100).contains(&p.commit_reveal_period) {
        return Err("commit_reveal_period is outside 1..=100".into());
    }
    if p.activity_cutoff == 0 {
        return Err("activity_cutoff must be at least 1".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(param: Hyperparameter, value: u64) -> Result<Hyperparameters, ChainError> {
        with_value(&Hyperparameters::default(), param, value, 3)
    }

    #[test]
    fn sets_a_value_in_range() {
        assert_eq!(set(Hyperparameter::Tempo, 10).unwrap().tempo, 10);
        assert!(
            set(Hyperparameter::LiquidAlphaEnabled, 1)
                .unwrap()
                .liquid_alpha_enabled
        );
        assert_eq!(set(Hyperparameter::Burn, 500_000).unwrap().burn, 500_000);
    }

    #[test]
    fn refuses_values_out_of_range() {
        for (param, value) in [
            (Hyperparameter::Tempo, 0),
            (Hyperparameter::Tempo, 70_000),
            (Hyperparameter::Kappa, 65_536),
            (Hyperparameter::BondsMovingAverage, 1_000_001),
            (Hyperparameter::Yuma3Enabled, 2),
            (Hyperparameter::AlphaLow, 1_000),
            (Hyperparameter::AlphaLow, 60_000),
            (Hyperparameter::AlphaHigh, 40_000),
            (Hyperparameter::AlphaSigmoidSteepness, 40_000),
            (Hyperparameter::MaxAllowedUids, 2),
            (Hyperparameter::MaxAllowedValidators, 300),
            (Hyperparameter::CommitRevealPeriod, 0),
            (Hyperparameter::Burn, 1),
            (Hyperparameter::ActivityCutoff, 0),
        ] {
            let err = set(param, value).unwrap_err();
            assert!(
                matches!(err, ChainError::InvalidHyperparameterValue { param: p, .. } if p == param),
                "{param}={value}: {err}"
            );
        }
    }

    #[test]
    fn genesis_validation_refuses_inconsistent_sets() {
        assert!(validate(&Hyperparameters::default()).is_ok());
        let p = Hyperparameters {
            max_allowed_validators: 300,
            ..Hyperparameters::default()
        };
        assert!(validate(&p).is_err());
        let p = Hyperparameters {
            alpha_low: 60_000,
            ..Hyperparameters::default()
        };
        assert!(validate(&p).is_err());
    }
}
