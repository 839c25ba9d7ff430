//! Helpers of `devchain tx`: TAO amounts (also in the chain's refusals), float weights to u16,
//! IPv4 for `serve_axon`.
//! Pure functions; the CLI in [`crate::cli`] signs and submits.

use std::net::{IpAddr, Ipv4Addr};

use subnet_common::chain::types::{Balance, Uid};

pub use subnet_common::chain::types::RAO_PER_TAO;

/// Why a command-line value was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TxInputError {
    /// Not a TAO amount.
    #[error("{input:?} is not a TAO amount (e.g. 1.5; at most 9 decimals)")]
    BadAmount {
        /// The input.
        input: String,
    },
    /// Uids and weights differ in length.
    #[error("{uids} uids but {weights} weights")]
    LengthMismatch {
        /// Number of uids.
        uids: usize,
        /// Number of weights.
        weights: usize,
    },
    /// A negative or non-finite weight.
    #[error("weight {value} is negative or not a number")]
    BadWeight {
        /// The weight.
        value: f64,
    },
}

/// Parses a decimal TAO amount (`"1"`, `"0.25"`, `"1000.000000001"`) into rao, exactly.
pub fn parse_tao(input: &str) -> Result<Balance, TxInputError> {
    let bad = || TxInputError::BadAmount {
        input: input.to_owned(),
    };
    let (whole, frac) = input.trim().split_once('.').unwrap_or((input.trim(), ""));
    if whole.is_empty() && frac.is_empty()
        || frac.len() > 9
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: Balance = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac: Balance = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    whole
        .checked_mul(RAO_PER_TAO)
        .and_then(|r| r.checked_add(frac))
        .ok_or_else(bad)
}

/// Formats rao as TAO with up to 9 decimals, trailing zeros trimmed (`1.5`, `0`, `1000`): the
/// same rule as the miner's, in `common`.
pub use subnet_common::chain::types::format_tao;

/// The SDK's `convert_weights_and_uids_for_emit` (`spec/subtensor.md` §2.3): divide by the max,
/// scale to 65535 with half-to-even rounding, drop zeros. All-zero weights give empty lists.
pub fn weights_to_u16(uids: &[Uid], weights: &[f64]) -> Result<(Vec<Uid>, Vec<u16>), TxInputError> {
    if uids.len() != weights.len() {
        return Err(TxInputError::LengthMismatch {
            uids: uids.len(),
            weights: weights.len(),
        });
    }
    if let Some(&value) = weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
        return Err(TxInputError::BadWeight { value });
    }
    let max = weights.iter().copied().fold(0.0_f64, f64::max);
    if max == 0.0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let (kept_uids, values) = uids
        .iter()
        .zip(weights)
        .map(|(uid, w)| (*uid, (w / max * 65535.0).round_ties_even() as u16))
        .filter(|(_, v)| *v > 0)
        .unzip();
    Ok((kept_uids, values))
}

/// `(ip, ip_type)` as `serve_axon` takes them: IPv4 as its 32-bit big-endian value, IPv6 as 128 bits.
pub fn axon_ip(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 4),
        IpAddr::V6(v6) => (u128::from(v6), 6),
    }
}

/// The address an axon `ip` field holds, for display.
pub fn display_ip(ip: u128, ip_type: u8) -> String {
    match ip_type {
        4 => Ipv4Addr::from(u32::try_from(ip).unwrap_or(0)).to_string(),
        6 => std::net::Ipv6Addr::from(ip).to_string(),
        _ => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tao_amounts_exactly() {
        assert_eq!(parse_tao("1"), Ok(RAO_PER_TAO));
        assert_eq!(parse_tao("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_tao("0.000000001"), Ok(1));
        assert_eq!(parse_tao(".25"), Ok(250_000_000));
        assert_eq!(parse_tao("42."), Ok(42 * RAO_PER_TAO));
    }

    #[test]
    fn rejects_bad_tao_amounts() {
        for bad in [
            "",
            ".",
            "-1",
            "1e9",
            "0.0000000001",
            "abc",
            "1.2.3",
            "99999999999999999999",
        ] {
            assert!(parse_tao(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formats_tao_without_trailing_zeros() {
        assert_eq!(format_tao(0), "0");
        assert_eq!(format_tao(1_500_000_000), "1.5");
        assert_eq!(format_tao(1), "0.000000001");
        assert_eq!(format_tao(7 * RAO_PER_TAO), "7");
    }

    #[test]
    fn weights_follow_the_sdk_conversion() {
        let (uids, values) = weights_to_u16(&[0, 1, 2, 3], &[0.5, 0.25, 0.0, 0.0000001]).unwrap();
        // 0.25/0.5 → 32767.5 → half to even → 32768; the tiny weight rounds to 0 and is dropped.
        assert_eq!(uids, vec![0, 1]);
        assert_eq!(values, vec![65535, 32768]);
        assert_eq!(
            weights_to_u16(&[0, 1], &[0.0, 0.0]).unwrap(),
            (vec![], vec![])
        );
        assert!(weights_to_u16(&[0], &[-1.0]).is_err());
        assert!(weights_to_u16(&[0], &[1.0, 2.0]).is_err());
    }

    #[test]
    fn axon_ip_is_big_endian_for_ipv4() {
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        assert_eq!(axon_ip(ip), (0x0102_0304, 4));
        assert_eq!(display_ip(0x0102_0304, 4), "1.2.3.4");
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(axon_ip(v6), (1, 6));
    }
}
