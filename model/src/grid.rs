//! The temperature grid of [`crate::eval::evaluate_fitted`] on the host, fused: for each scored
//! position, the log-probability of its target token under `softmax(β·logits)` for every `β` of
//! the grid, computed in a few passes over the position's logits row while it is in cache.
//!
//! On the CPU backend this replaces 25 whole-tensor passes of burn ops (a scaled copy of the
//! `[positions, vocab]` logits, `exp` in place, a row sum, for every `β`): each allocated and
//! faulted in a fresh buffer as large as the logits and called libm's scalar `expf`, which made
//! the fitted evaluation of SmolLM2 cost about 50% more than its forward pass
//! (`docs/benchmarks.md`). Here `exp` is [`exp_nonpositive`], a branch-free polynomial the
//! compiler vectorises, and rows are spread over threads.
//!
//! The grid doubles every `period` points ([`DoublingGrid`]: `β_{i+period} = 2·β_i` exactly), so
//! `exp(β_{i+period}·x)` is `exp(β_i·x)²`: `exp` runs for the first `period` inverse
//! temperatures only and every later one costs a multiplication (the 25 points of the fitted
//! evaluation: 8 `exp` per logit instead of 25).
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

/// `x²`, or 0 where that would be below the smallest normal `f32` (`x < 2⁻⁶³`): no subnormal
/// number ever enters the sums (arithmetic on them is slow on x86), as [`exp_nonpositive`] gives
/// 0 below −87.
#[inline(always)]
fn square_or_zero(x: f32) -> f32 {
    const TINY: f32 = 5.421_011e-20; // 2⁻⁶³
    let square = x * x;
    if x < TINY { 0.0 } else { square }
}

/// The longest chain `β, 2β, 4β, …` a [`DoublingGrid`] may hold.
const MAX_CHAIN: usize = 6;

/// Inverse temperatures `2^(k/period)` for `k` in `-steps..=steps`, ascending, where each point
/// past the first `period` is exactly twice the one `period` before (so the fused kernel squares
/// instead of calling `exp`; within an ulp of `2^(k/period)` computed directly).
#[derive(Debug, Clone, PartialEq)]
pub struct DoublingGrid {
    betas: Vec<f32>,
    period: usize,
}

impl DoublingGrid {
    /// The grid `2^(k/period)`, `k` in `-steps..=steps`. Panics if `period` is 0 or a chain
    /// `β, 2β, …` would be longer than the kernel takes (`2·steps + 1 > 6·period`).
    pub fn powers_of_two(steps: u32, period: usize) -> Self {
        assert!(period > 0, "a doubling grid needs a period");
        let len = 2 * steps as usize + 1;
        assert!(
            len <= MAX_CHAIN * period,
            "{len} points with period {period}: chains longer than {MAX_CHAIN}"
        );
        let mut betas: Vec<f32> = Vec::with_capacity(len);
        for i in 0..len {
            let beta = if i < period {
                2f32.powf((i as f32 - steps as f32) / period as f32)
            } else {
                2.0 * betas[i - period]
            };
            betas.push(beta);
        }
        Self { betas, period }
    }

    /// The inverse temperatures, ascending.
    pub fn betas(&self) -> &[f32] {
        &self.betas
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.betas.len()
    }

    /// Whether the grid has no point.
    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }
}

/// `Σ exp(2^c·β·(row[v] − max))` over the row for `c` in `0..C`, in a fixed order: one `exp`
/// per value, then repeated squaring.
#[inline(always)]
fn doubling_exp_sums<const C: usize>(row: &[f32], max: f32, beta: f32) -> [f32; C] {
    let mut partial = [[0.0f32; LANES]; C];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        add_doubling_exps(
            &mut partial,
            chunk.try_into().expect("chunks of LANES values"),
            max,
            beta,
        );
    }
    // The rest padded with −∞, whose terms are exactly 0 (adding them changes no bit).
    let mut last = [f32::NEG_INFINITY; LANES];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    add_doubling_exps(&mut partial, &last, max, beta);
    // Pairwise, in a fixed order.
    partial.map(|mut partial| {
        let mut width = LANES;
        while width > 1 {
            width /= 2;
            for i in 0..width {
                partial[i] += partial[i + width];
            }
        }
        partial[0]
    })
}

/// One block of [`doubling_exp_sums`]: `partial[c][l] += exp(β·(values[l] − max))^(2^c)`. A
/// function, not a closure: a closure's body is compiled on its own, for baseline x86-64 (SSE),
/// where this one is inlined into the widest-SIMD pass.
#[inline(always)]
fn add_doubling_exps<const C: usize>(
    partial: &mut [[f32; LANES]; C],
    values: &[f32; LANES],
    max: f32,
    beta: f32,
) {
    let mut e = [0.0f32; LANES];
    for (e, &value) in e.iter_mut().zip(values) {
        *e = exp_nonpositive(beta * (value - max));
    }
    for (c, partial) in partial.iter_mut().enumerate() {
        if c > 0 {
            for e in &mut e {
                *e = square_or_zero(*e);
            }
        }
        for (acc, &e) in partial.iter_mut().zip(&e) {
            *acc += e;
        }
    }
}

/// For `logits` holding `targets.len()` rows of `vocab` values: per row, token-major
/// `log softmax(β·row)[target]` for each `β` of `grid` (`rows × grid.len()` values). The largest
/// logit of a row is subtracted first, so the sums are at least 1 and never overflow. A row with
/// a non-finite logit gives NaN, as the backend's ops would.
pub fn log_probs_grid(
    logits: &[f32],
    vocab: usize,
    targets: &[usize],
    grid: &DoublingGrid,
) -> Vec<f32> {
    assert_eq!(
        logits.len(),
        targets.len() * vocab,
        "logits must be rows × vocab"
    );
    let mut out = vec![0.0f32; targets.len() * grid.len()];
    out.par_chunks_mut(grid.len().max(1))
        .zip(logits.par_chunks(vocab.max(1)))
        .zip(targets.par_iter())
        .for_each(|((out, row), &target)| {
            widest(RowGrid {
                out,
                row,
                target,
                grid,
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
    grid: &'a DoublingGrid,
}

impl Pass for RowGrid<'_> {
    #[inline(always)]
    fn run(self) {
        let Self {
            out,
            row,
            target,
            grid,
        } = self;
        if !row.iter().all(|v| v.is_finite()) {
            out.fill(f32::NAN);
            return;
        }
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let shifted_target = row[target] - max;
        let (betas, period) = (grid.betas(), grid.period);
        for first in 0..period.min(betas.len()) {
            // β_first, 2β_first, 4β_first, … at first, first + period, …
            let chain = (betas.len() - first).div_ceil(period);
            let beta = betas[first];
            let mut sums = [0.0f32; MAX_CHAIN];
            match chain {
                1 => sums[..1].copy_from_slice(&doubling_exp_sums::<1>(row, max, beta)),
                2 => sums[..2].copy_from_slice(&doubling_exp_sums::<2>(row, max, beta)),
                3 => sums[..3].copy_from_slice(&doubling_exp_sums::<3>(row, max, beta)),
                4 => sums[..4].copy_from_slice(&doubling_exp_sums::<4>(row, max, beta)),
                5 => sums[..5].copy_from_slice(&doubling_exp_sums::<5>(row, max, beta)),
                _ => sums.copy_from_slice(&doubling_exp_sums::<MAX_CHAIN>(row, max, beta)),
            }
            for (c, sum) in sums[..chain].iter().enumerate() {
                let i = first + c * period;
                out[i] = betas[i] * shifted_target - sum.ln();
            }
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
        let points = DoublingGrid::powers_of_two(12, 8);
        let betas = points.betas();
        let grid = log_probs_grid(&logits, vocab, &targets, &points);
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
            .install(|| log_probs_grid(&logits, vocab, &targets, &points));
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
                grid: &points,
            };
            row_grid.run();
        }
        assert_eq!(bits(&baseline), bits(&grid));
    }

    #[test]
    fn a_doubling_grid_doubles_exactly_and_stays_within_an_ulp_of_the_powers() {
        let grid = DoublingGrid::powers_of_two(12, 8);
        assert_eq!(grid.len(), 25);
        assert_eq!(grid.betas()[12], 1.0);
        for (i, &beta) in grid.betas().iter().enumerate() {
            if i >= 8 {
                assert_eq!(beta, 2.0 * grid.betas()[i - 8]);
            }
            let exact = ((i as f64 - 12.0) / 8.0).exp2();
            assert!(
                ((f64::from(beta) - exact) / exact).abs() <= f64::from(f32::EPSILON),
                "{i}: {beta} vs {exact}"
            );
        }
    }

    #[test]
    fn every_chain_length_matches_an_f64_log_softmax_even_where_squares_underflow() {
        // Logits spread over 400 nats: at the larger β most terms square down past 2⁻¹²⁶.
        let vocab = 1_003;
        let logits: Vec<f32> = (0..2 * vocab)
            .map(|i| ((i * 7_919) % 4_001) as f32 / 10.0 - 200.0)
            .collect();
        // Each row's largest logit and one 700 positions on: log-probabilities near 0 (where an
        // error in the sums shows) and far below it.
        let argmax = |row: &[f32]| {
            (0..row.len())
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap()
        };
        let targets = [argmax(&logits[..vocab]), 700];
        // (steps, period): chains of 1 to 6 squarings' worth.
        for (steps, period) in [(0, 1), (1, 2), (2, 2), (5, 2), (2, 1), (12, 8), (20, 8)] {
            let points = DoublingGrid::powers_of_two(steps, period);
            let grid = log_probs_grid(&logits, vocab, &targets, &points);
            for (r, &target) in targets.iter().enumerate() {
                for (k, &beta) in points.betas().iter().enumerate() {
                    let expected =
                        reference(&logits[r * vocab..][..vocab], target, f64::from(beta));
                    let got = f64::from(grid[r * points.len() + k]);
                    assert!(
                        (got - expected).abs() <= 2e-5 * expected.abs().max(1.0),
                        "({steps}, {period}) row {r} β {beta}: {got} vs {expected}"
                    );
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "chains longer than 6")]
    fn a_grid_with_chains_too_long_for_the_kernel_is_refused() {
        DoublingGrid::powers_of_two(3, 1);
    }

    #[test]
    fn a_row_with_a_non_finite_logit_gives_nan() {
        let grid = log_probs_grid(
            &[0.0, f32::NAN, 1.0, 2.0, 3.0, 4.0],
            3,
            &[0, 1],
            &DoublingGrid::powers_of_two(1, 2),
        );
        assert!(grid[..3].iter().all(|v| v.is_nan()));
        assert!(grid[3..].iter().all(|v| v.is_finite()));
    }
}
