//! `I32F32`: the signed 64-bit fixed-point number (32 fractional bits) that Subtensor's epoch
//! computes in, with the rounding of `substrate_fixed` so stored u16 values come out bit for bit.
//!
//! Only the operations the epoch needs exist. All of them saturate instead of overflowing:
//! - multiplication keeps the full product and drops the low 32 bits (rounds toward −∞);
//! - division shifts the dividend up 32 bits and divides (rounds toward zero); [`I32F32::safe_div`]
//!   gives 0 when the divisor is 0 or the quotient does not fit, like Subtensor's `safe_div`;
//! - conversion to an integer drops the fraction (rounds toward −∞) and clamps to the target range.

use std::iter::Sum;

/// Number of fractional bits.
const FRAC: u32 = 32;

/// A fixed-point number with 32 integer and 32 fractional bits, stored as its raw `i64` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct I32F32(i64);

impl I32F32 {
    /// 0.
    pub const ZERO: Self = Self(0);
    /// 1.
    pub const ONE: Self = Self(1 << FRAC);
    /// The largest value, just below 2³¹.
    pub const MAX: Self = Self(i64::MAX);

    /// The number whose raw bits are `bits` (value = bits / 2³²).
    pub const fn from_bits(bits: i64) -> Self {
        Self(bits)
    }

    /// The raw bits (value · 2³²).
    pub const fn to_bits(self) -> i64 {
        self.0
    }

    /// An integer, saturating at the range limits.
    pub fn from_int(value: i64) -> Self {
        Self::saturate(i128::from(value) << FRAC)
    }

    /// An unsigned integer, saturating at the upper limit.
    pub fn from_u64(value: u64) -> Self {
        Self::saturate(i128::from(value) << FRAC)
    }

    /// The nearest representable value to `value` (ties away from zero), saturating; NaN gives 0.
    pub fn from_f64(value: f64) -> Self {
        if value.is_nan() {
            return Self::ZERO;
        }
        let scaled = value.abs() * (1u64 << FRAC) as f64;
        // Round half away from zero without a libm call: the integer part (`as` truncates and
        // saturates) plus one when the fraction, computed exactly, is at least one half.
        let whole = scaled as i64;
        let magnitude = if scaled - whole as f64 >= 0.5 {
            whole.saturating_add(1)
        } else {
            whole
        };
        Self(if value < 0.0 { -magnitude } else { magnitude })
    }

    /// The value as a float (exact for |x| < 2²¹, otherwise the nearest float).
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / (1u64 << FRAC) as f64
    }

    /// `n / 65535`: a stored u16 proportion as a number in [0, 1] (truncated like Subtensor).
    pub fn from_u16_proportion(n: u16) -> Self {
        // (n·2³²)·2³² / (65535·2³²) = n·2³² / 65535: the same truncated quotient, but a division
        // by a constant, which compiles to a multiplication.
        Self((i64::from(n) << FRAC) / i64::from(u16::MAX))
    }

    fn saturate(wide: i128) -> Self {
        Self(i64::try_from(wide).unwrap_or(if wide < 0 { i64::MIN } else { i64::MAX }))
    }

    /// `self + rhs`, saturating.
    pub fn saturating_add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }

    /// `self − rhs`, saturating.
    pub fn saturating_sub(self, rhs: Self) -> Self {
        Self(self.0.saturating_sub(rhs.0))
    }

    /// `self · rhs`, rounded toward −∞, saturating.
    pub fn saturating_mul(self, rhs: Self) -> Self {
        Self::saturate((i128::from(self.0) * i128::from(rhs.0)) >> FRAC)
    }

    /// `self · rhs`, rounded toward −∞, or `None` when the product does not fit.
    pub fn checked_mul(self, rhs: Self) -> Option<Self> {
        let wide = (i128::from(self.0) * i128::from(rhs.0)) >> FRAC;
        i64::try_from(wide).ok().map(Self)
    }

    /// `self / rhs`, rounded toward zero, or `None` when `rhs` is 0 or the quotient does not fit.
    pub fn checked_div(self, rhs: Self) -> Option<Self> {
        if rhs.0 == 0 {
            return None;
        }
        if self.0 >= 0 && rhs.0 > 0 {
            return div_nonnegative(self.0.unsigned_abs(), rhs.0.unsigned_abs()).map(Self);
        }
        let wide = (i128::from(self.0) << FRAC) / i128::from(rhs.0);
        i64::try_from(wide).ok().map(Self)
    }

    /// `self / rhs`, or 0 when the division is undefined or overflows (Subtensor's `safe_div`).
    pub fn safe_div(self, rhs: Self) -> Self {
        self.checked_div(rhs).unwrap_or_default()
    }

    /// The value rounded to the nearest integer, ties away from zero (the `fixed` crate's `round`).
    pub fn round(self) -> Self {
        let half = 1i64 << (FRAC - 1);
        let mask = (1i64 << FRAC) - 1;
        if self.0 >= 0 {
            Self(self.0.saturating_add(half) & !mask)
        } else {
            // Round the magnitude, then restore the sign.
            Self(-((self.0.unsigned_abs() as i64).saturating_add(half) & !mask))
        }
    }

    /// The integer part (rounded toward −∞), clamped to `0..=65535`.
    pub fn to_u16_saturating(self) -> u16 {
        (self.0 >> FRAC).clamp(0, i64::from(u16::MAX)) as u16
    }

    /// A proportion as a stored u16: `floor(self · 65535)`, clamped (`fixed_proportion_to_u16`).
    pub fn to_u16_proportion(self) -> u16 {
        self.saturating_mul(Self::from_u64(u64::from(u16::MAX)))
            .to_u16_saturating()
    }

    /// `floor(self · total)` for a proportion and an amount of rao, as Subtensor computes it in
    /// `I96F32` (exact product, fraction dropped), clamped to `0..=u64::MAX`.
    pub fn mul_rao(self, total: u64) -> u64 {
        if self.0 <= 0 {
            return 0;
        }
        let product = (self.0 as u128) * u128::from(total);
        u64::try_from(product >> FRAC).unwrap_or(u64::MAX)
    }

    /// The smaller of the two.
    pub fn min(self, other: Self) -> Self {
        Ord::min(self, other)
    }

    /// The larger of the two.
    pub fn max(self, other: Self) -> Self {
        Ord::max(self, other)
    }

    /// `self` limited to `[low, high]` (`min(high)` first, then `max(low)`, like `clamp_value`).
    pub fn clamp_to(self, low: Self, high: Self) -> Self {
        self.min(high).max(low)
    }

    /// `exp(self)` with the input clamped to [−20, 20] (Subtensor's `exp_safe`): the value of
    /// [`I32F32::exp_series`], or 0 (input ≤ 0) or [`I32F32::MAX`] (input > 0) if that overflows.
    pub fn exp_safe(self) -> Self {
        const LOW: I32F32 = I32F32(-20 << FRAC);
        const HIGH: I32F32 = I32F32(20 << FRAC);
        let clamped = self.clamp_to(LOW, HIGH);
        clamped.exp_series().unwrap_or(if clamped <= Self::ZERO {
            Self::ZERO
        } else {
            Self::MAX
        })
    }

    /// `exp(self)` exactly as `substrate_fixed::transcendental::exp` computes it for `I32F32`:
    /// the Taylor series `1 + x + Σ_{i=2}^{31} x^i/i!` over |x|, each term from the previous one
    /// by a truncating multiply and divide, then `1 / sum` for negative x. Exactly 1 gives e with
    /// only 23 fractional bits (the library's `I9F23` constant). `None` when a step overflows.
    pub fn exp_series(self) -> Option<Self> {
        /// `consts::E` (U2F126) shifted to I9F23 and widened to 32 fractional bits.
        const E: I32F32 = I32F32(22_802_600 << 9);
        if self == Self::ZERO {
            return Some(Self::ONE);
        }
        if self == Self::ONE {
            return Some(E);
        }
        let operand = Self(self.0.checked_abs()?);
        let mut result = operand.checked_add(Self::ONE)?;
        let mut term = operand;
        for i in 2..32 {
            // `term / from_num(i)`: (t·2³²)/(i·2³²) truncates exactly like t / i.
            term = Self(term.checked_mul(operand)?.0 / i);
            if term == Self::ZERO {
                // Every later term is 0 as well: the sum is final.
                break;
            }
            result = result.checked_add(term)?;
        }
        if self.0 < 0 {
            result = Self::ONE.checked_div(result)?;
        }
        Some(result)
    }

    /// `self + rhs`, or `None` on overflow.
    pub fn checked_add(self, rhs: Self) -> Option<Self> {
        self.0.checked_add(rhs.0).map(Self)
    }
}

/// `floor(a · 2³² / b)` for `b > 0`, or `None` when it exceeds `i64::MAX`.
///
/// The epoch divides once or twice per matrix entry, and a 128-bit division costs tens of
/// nanoseconds, so the quotient is estimated in f64 and corrected with one 128-bit
/// multiplication. Below 2⁵⁰ the estimate is off by at most one; the remainder is checked and,
/// should that ever fail, the quotient is computed by plain division, so it is always exact.
fn div_nonnegative(a: u64, b: u64) -> Option<i64> {
    let numerator = u128::from(a) << FRAC;
    let divisor = u128::from(b);
    let estimate = a as f64 * (1u64 << FRAC) as f64 / b as f64;
    if estimate < (1u64 << 50) as f64 {
        let mut q = estimate as i64;
        // numerator < 2⁹⁶ and q·b < 2¹¹⁴, so the remainder fits an i128.
        let mut remainder = numerator as i128 - i128::from(q) * b as i128;
        let step = divisor as i128;
        if remainder < 0 {
            q -= 1;
            remainder += step;
        } else if remainder >= step {
            q += 1;
            remainder -= step;
        }
        if (0..step).contains(&remainder) {
            return Some(q);
        }
    }
    i64::try_from(numerator / divisor).ok()
}

impl Sum for I32F32 {
    /// Saturating sum.
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, Self::saturating_add)
    }
}

impl<'a> Sum<&'a I32F32> for I32F32 {
    /// Saturating sum.
    fn sum<I: Iterator<Item = &'a Self>>(iter: I) -> Self {
        iter.copied().sum()
    }
}

/// Normalizes raw integer stakes as Subtensor does (`inplace_normalize_64` in `I64F64`, then
/// `I64F64 → I32F32`): `floor(s · 2³² / Σs)` in raw bits. An all-zero input stays zero.
pub fn normalize_stake(stake: &[u64]) -> Vec<I32F32> {
    let total: u128 = stake.iter().map(|&s| u128::from(s)).sum();
    if total == 0 {
        return vec![I32F32::ZERO; stake.len()];
    }
    stake
        .iter()
        .map(|&s| {
            // s ≤ total, so the quotient is at most 2³² and fits.
            let bits = (u128::from(s) << FRAC) / total;
            I32F32::from_bits(i64::try_from(bits).unwrap_or(i64::MAX))
        })
        .collect()
}

/// Divides every entry by the sum (`inplace_normalize`); an all-zero vector is left as it is.
pub fn normalize(values: &mut [I32F32]) {
    let total: I32F32 = values.iter().sum();
    if total == I32F32::ZERO {
        return;
    }
    for value in values.iter_mut() {
        *value = value.safe_div(total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplication_rounds_toward_negative_infinity() {
        let tiny = I32F32::from_bits(1);
        let half = I32F32::from_bits(1 << 31);
        assert_eq!(tiny.saturating_mul(half), I32F32::ZERO);
        assert_eq!(
            I32F32::from_bits(-1).saturating_mul(half),
            I32F32::from_bits(-1)
        );
    }

    #[test]
    fn division_rounds_toward_zero_and_is_zero_for_a_zero_divisor() {
        let one = I32F32::ONE;
        let three = I32F32::from_int(3);
        assert_eq!(one.safe_div(three).to_bits(), (1i64 << 32) / 3);
        assert_eq!(
            one.saturating_sub(one.saturating_add(one))
                .safe_div(three)
                .to_bits(),
            -((1i64 << 32) / 3)
        );
        assert_eq!(one.safe_div(I32F32::ZERO), I32F32::ZERO);
        assert_eq!(
            I32F32::from_int(1 << 30).safe_div(I32F32::from_bits(1)),
            I32F32::ZERO
        );
    }

    proptest::proptest! {
        #[test]
        fn fast_division_equals_exact_128_bit_division(a in 0i64.., b in 1i64..) {
            let exact = i64::try_from((i128::from(a) << 32) / i128::from(b)).ok();
            proptest::prop_assert_eq!(
                I32F32::from_bits(a).checked_div(I32F32::from_bits(b)).map(I32F32::to_bits),
                exact
            );
        }

        #[test]
        fn fast_division_is_exact_for_proportions(a in 0i64..1 << 40, b in 1i64..1 << 40) {
            let exact = (i128::from(a) << 32) / i128::from(b);
            let got = I32F32::from_bits(a).safe_div(I32F32::from_bits(b)).to_bits();
            proptest::prop_assert_eq!(i128::from(got), exact);
        }
    }

    #[test]
    fn u16_proportions_match_the_generic_division() {
        for n in 0..=u16::MAX {
            let generic = I32F32::from_u64(u64::from(n)).safe_div(I32F32::from_u64(65_535));
            assert_eq!(I32F32::from_u16_proportion(n), generic, "n = {n}");
        }
    }

    #[test]
    fn proportion_to_u16_truncates() {
        // The spec's example: 0.2499999937 · 65535 = 16383.49… → 16383.
        let x = I32F32::from_f64(0.249_999_993_7);
        assert_eq!(x.to_u16_proportion(), 16_383);
        assert_eq!(I32F32::ONE.to_u16_proportion(), 65_535);
        assert_eq!(I32F32::from_int(2).to_u16_proportion(), 65_535);
        assert_eq!(I32F32::from_int(-1).to_u16_proportion(), 0);
    }

    #[test]
    fn from_f64_rounds_to_the_nearest_raw_value_half_away_from_zero() {
        let ulp = 1.0 / 4_294_967_296.0;
        assert_eq!(I32F32::from_f64(0.5 * ulp).to_bits(), 1);
        assert_eq!(I32F32::from_f64(0.49 * ulp).to_bits(), 0);
        assert_eq!(I32F32::from_f64(-0.5 * ulp).to_bits(), -1);
        assert_eq!(I32F32::from_f64(2.75).to_bits(), 11 << 30);
        assert_eq!(I32F32::from_f64(1e30), I32F32::MAX);
        assert_eq!(I32F32::from_f64(-1e30).to_bits(), -i64::MAX);
        assert_eq!(I32F32::from_f64(f64::NAN), I32F32::ZERO);
    }

    #[test]
    fn round_goes_half_away_from_zero() {
        assert_eq!(I32F32::from_f64(2.5).round(), I32F32::from_int(3));
        assert_eq!(I32F32::from_f64(2.499).round(), I32F32::from_int(2));
        assert_eq!(I32F32::from_f64(-2.5).round(), I32F32::from_int(-3));
    }

    #[test]
    fn a_tenth_of_a_billion_rao_is_truncated_like_subtensor() {
        // test_10_graph: I32F32(0.1) · 1e9 = 99 999 999.
        let tenth = normalize_stake(&[1; 10]);
        assert_eq!(tenth[0].mul_rao(1_000_000_000), 99_999_999);
    }

    #[test]
    fn stake_normalization_floors_each_share() {
        let s = normalize_stake(&[1, 2, 0]);
        assert_eq!(s[0].to_bits(), (1i64 << 32) / 3);
        assert_eq!(s[1].to_bits(), (2i64 << 32) / 3);
        assert_eq!(s[2], I32F32::ZERO);
        assert_eq!(normalize_stake(&[0, 0]), vec![I32F32::ZERO; 2]);
    }

    #[test]
    fn exp_safe_clamps_its_input() {
        assert_eq!(
            I32F32::from_int(50).exp_safe(),
            I32F32::from_int(20).exp_safe()
        );
        assert_eq!(
            I32F32::from_int(-50).exp_safe(),
            I32F32::from_int(-20).exp_safe()
        );
    }

    #[test]
    fn exp_series_is_close_to_exp_for_moderate_inputs() {
        for x in [-5.0, -2.5, -0.75, -1e-9, 1e-9, 0.3, 1.5, 4.99] {
            let got = I32F32::from_f64(x).exp_series().map(I32F32::to_f64);
            let want = f64::exp(x);
            assert!(
                got.is_some_and(|g| (g - want).abs() <= 1e-8 * want.max(1.0)),
                "exp({x})"
            );
        }
    }

    #[test]
    fn exp_series_keeps_the_library_quirks() {
        assert_eq!(I32F32::ZERO.exp_series(), Some(I32F32::ONE));
        // exp(1) is the I9F23 constant: e to 23 fractional bits only.
        let e = I32F32::ONE
            .exp_series()
            .map(I32F32::to_f64)
            .unwrap_or_default();
        assert!((e - std::f64::consts::E).abs() < 2.0_f64.powi(-22));
        assert!(e < std::f64::consts::E);
        // 30 terms are not enough at 20: the truncated series falls short of e^20.
        let at20 = I32F32::from_int(20)
            .exp_series()
            .map(I32F32::to_f64)
            .unwrap_or_default();
        assert!(at20 < 20f64.exp() * 0.999 && at20 > 20f64.exp() * 0.99);
    }
}
