//! The temperature grid of [`crate::eval::evaluate_fitted`] on the host, fused: for each scored
//! position, the log-probability of its target token under `softmax(β·logits)` for every `β` of
//! the grid, computed in one pass per `β` over the position's logits row while it is in cache.
//!
//! On the CPU backend this replaces 25 whole-tensor passes of burn ops (a scaled copy of the
//! `[positions, vocab]` logits, `exp` in place, a row sum, for every `β`): each allocated and
//! faulted in a fresh buffer as large as the logits and called libm's scalar `expf`, which made
//! the fitted evaluation of SmolLM2 cost about 50% more than its forward pass
//! (`docs/benchmarks.md`). Here `exp` is [`exp_nonpositive`], a branch-free polynomial the
//! compiler vectorises, and rows are spread over threads.
//!
//! Deterministic: every row is computed by the same sequence of IEEE operations whatever the
//! thread count or SIMD width (no fused multiply-add is formed implicitly, sums run in a fixed
//! order over [`LANES`] accumulators), so every validator gets the same bits on any x86-64 or
//! ARM CPU.

use rayon::prelude::*;

use crate::fused::{Pass, widest};

/// Independent partial sums per row: enough for the compiler to keep SIMD registers busy; the
/// order of the final combination is fixed.
pub(crate) const LANES: usize = 16;

/// `exp(x)` for `x ≤ 0`, within about 2 ulp of the exact value; 0 below −87 (where the result
/// would be subnormal). Branch-free (the compiler vectorises loops over it): Cody–Waite
/// reduction `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`, a degree-7 Taylor polynomial for `e^r`
/// (truncation below 5·10⁻⁹), and `2^n` built in the exponent bits.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n·LN2_HI is exact for |n| < 2^9.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5·2^23 rounds to the nearest integer (ties to even).
    const ROUND: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let n = (x * LOG2_E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // n in [-126, 0]: a normal power of two.
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    let value = p * scale;
    if x <= -87.0 { 0.0 } else { value }
}

/// `Σ exp(β·(row[v] − max))` over the row, in a fixed order.
#[inline(always)]
fn scaled_exp_sum(row: &[f32], max: f32, beta: f32) -> f32 {
    let mut partial = [0.0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (acc, &value) in partial.iter_mut().zip(chunk) {
            *acc += exp_nonpositive(beta * (value - max));
        }
    }
    for (acc, &value) in partial.iter_mut().zip(chunks.remainder()) {
        *acc += exp_nonpositive(beta * (value - max));
    }
    // Pairwise, in a fixed order.
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            partial[i] += partial[i + width];
        }
    }
    partial[0]
}

/// For `logits` holding `targets.len()` rows of `vocab` values: per row, token-major
/// `log softmax(β·row)[target]` for each `β` of `betas` (`rows × betas` values). The largest
/// logit of a row is subtracted first, so the sums are at least 1 and never overflow. A row with
/// a non-finite logit gives NaN, as the backend's ops would.
pub fn log_probs_grid(logits: &[f32], vocab: usize, targets: &[usize], betas: &[f32]) -> Vec<f32> {
    assert_eq!(
        logits.len(),
        targets.len() * vocab,
        "logits must be rows × vocab"
    );
    let mut out = vec![0.0f32; targets.len() * betas.len()];
    out.par_chunks_mut(betas.len().max(1))
        .zip(logits.par_chunks(vocab.max(1)))
        .zip(targets.par_iter())
        .for_each(|((out, row), &target)| {
            widest(RowGrid {
                out,
                row,
                target,
                betas,
            });
        });
    out
}

/// One row of [`log_probs_grid`], compiled for the widest SIMD the CPU has (pulp picks it at run
/// time; the sums keep their fixed order, so the bits do not depend on the width).
struct RowGrid<'a> {
    out: &'a mut [f32],
    row: &'a [f32],
    target: usize,
    betas: &'a [f32],
}

impl Pass for RowGrid<'_> {
    #[inline(always)]
    fn run(self) {
        let Self {
            out,
            row,
            target,
            betas,
        } = self;
        if !row.iter().all(|v| v.is_finite()) {
            out.fill(f32::NAN);
            return;
        }
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let shifted_target = row[target] - max;
        for (value, &beta) in out.iter_mut().zip(betas) {
            *value = beta * shifted_target - scaled_exp_sum(row, max, beta).ln();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_a_few_ulp_of_libm_on_the_whole_nonpositive_range() {
        let mut worst = 0.0f64;
        let mut x = 0.0f32;
        while x > -87.0 {
            let exact = f64::from(x).exp();
            let relative = ((f64::from(exp_nonpositive(x)) - exact) / exact).abs();
            worst = worst.max(relative);
            x -= 0.000_37;
        }
        assert!(
            worst < 3.0 * f64::from(f32::EPSILON),
            "worst relative error {worst:e}"
        );
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-100.0), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
    }

    /// The straightforward computation in f64.
    fn reference(row: &[f32], target: usize, beta: f64) -> f64 {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let sum: f64 = row
            .iter()
            .map(|&v| (beta * (f64::from(v) - max)).exp())
            .sum();
        beta * (f64::from(row[target]) - max) - sum.ln()
    }

    #[test]
    fn the_grid_matches_an_f64_log_softmax_and_is_the_same_on_any_thread_count() {
        let vocab = 49_157; // not a multiple of the lanes
        let rows = 6;
        // Deterministic pseudo-random logits with a realistic spread.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let logits: Vec<f32> = (0..rows * vocab)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 30.0
            })
            .collect();
        let targets: Vec<usize> = (0..rows).map(|r| (r * 7919) % vocab).collect();
        let betas: Vec<f32> = (-12..=12).map(|k| 2f32.powf(k as f32 / 8.0)).collect();
        let grid = log_probs_grid(&logits, vocab, &targets, &betas);
        for r in 0..rows {
            for (k, &beta) in betas.iter().enumerate() {
                let expected =
                    reference(&logits[r * vocab..][..vocab], targets[r], f64::from(beta));
                let got = f64::from(grid[r * betas.len() + k]);
                assert!(
                    (got - expected).abs() <= 2e-5 * expected.abs().max(1.0),
                    "row {r} β {beta}: {got} vs {expected}"
                );
            }
        }
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| log_probs_grid(&logits, vocab, &targets, &betas));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one_thread), bits(&grid));
        // Compiled for the baseline CPU instead of the widest SIMD found at run time: the same
        // bits (checked where it matters with `cargo test --release`; debug builds do not
        // vectorise either path).
        let mut baseline = vec![0.0f32; grid.len()];
        for ((out, row), &target) in baseline
            .chunks_mut(betas.len())
            .zip(logits.chunks(vocab))
            .zip(&targets)
        {
            let row_grid = RowGrid {
                out,
                row,
                target,
                betas: &betas,
            };
            row_grid.run();
        }
        assert_eq!(bits(&baseline), bits(&grid));
    }

    #[test]
    fn a_row_with_a_non_finite_logit_gives_nan() {
        let grid = log_probs_grid(
            &[0.0, f32::NAN, 1.0, 2.0, 3.0, 4.0],
            3,
            &[0, 1],
            &[1.0, 2.0],
        );
        assert!(grid[0].is_nan() && grid[1].is_nan());
        assert!(grid[2].is_finite() && grid[3].is_finite());
    }
}
