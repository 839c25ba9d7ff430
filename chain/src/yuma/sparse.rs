//! Sparse-matrix helpers of the epoch, each the twin of a `subtensor` `epoch/math.rs` function
//! (named in its doc), with the same rounding and the same treatment of missing entries.
//!
//! A matrix is a `Vec` of rows; a row is a list of `(column, value)` pairs in the order the chain
//! stored them (usually ascending). Columns at or beyond the matrix width are ignored.

use super::fixed::I32F32;

/// A row-major sparse matrix: per row, `(column, value)` pairs.
pub type SparseMatrix = Vec<Vec<(u16, I32F32)>>;

/// Divides each row by its sum when that sum is positive (`inplace_row_normalize_sparse`).
pub fn row_normalize(matrix: &mut [Vec<(u16, I32F32)>]) {
    for row in matrix.iter_mut() {
        let total: I32F32 = row.iter().map(|&(_, v)| v).sum();
        if total > I32F32::ZERO {
            for (_, v) in row.iter_mut() {
                *v = v.safe_div(total);
            }
        }
    }
}

/// The sum of each row (`row_sum_sparse`).
pub fn row_sums(matrix: &[Vec<(u16, I32F32)>]) -> Vec<I32F32> {
    matrix
        .iter()
        .map(|row| row.iter().map(|&(_, v)| v).sum())
        .collect()
}

/// Divides each column by its sum when that sum is non-zero (`inplace_col_normalize_sparse`).
pub fn col_normalize(matrix: &mut [Vec<(u16, I32F32)>], columns: usize) {
    let mut sums = vec![I32F32::ZERO; columns];
    for row in matrix.iter() {
        for &(j, v) in row {
            if let Some(sum) = sums.get_mut(usize::from(j)) {
                *sum = sum.saturating_add(v);
            }
        }
    }
    for row in matrix.iter_mut() {
        for (j, v) in row.iter_mut() {
            let sum = sums.get(usize::from(*j)).copied().unwrap_or_default();
            if sum != I32F32::ZERO {
                *v = v.safe_div(sum);
            }
        }
    }
}

/// Divides each column by its largest entry when that is non-zero (`inplace_col_max_upscale_sparse`).
pub fn col_max_upscale(matrix: &mut [Vec<(u16, I32F32)>], columns: usize) {
    let mut maxima = vec![I32F32::ZERO; columns];
    for row in matrix.iter() {
        for &(j, v) in row {
            if let Some(max) = maxima.get_mut(usize::from(j)) {
                *max = (*max).max(v);
            }
        }
    }
    for row in matrix.iter_mut() {
        for (j, v) in row.iter_mut() {
            let max = maxima.get(usize::from(*j)).copied().unwrap_or_default();
            if max != I32F32::ZERO {
                *v = v.safe_div(max);
            }
        }
    }
}

/// Keeps the entries for which `keep(row, column)` holds.
pub fn retain_entries(matrix: &mut [Vec<(u16, I32F32)>], keep: impl Fn(usize, usize) -> bool) {
    for (i, row) in matrix.iter_mut().enumerate() {
        row.retain(|&(j, _)| keep(i, usize::from(j)));
    }
}

/// Clips every entry to its column threshold; an entry clipped to a threshold ≤ 0 is removed
/// (`col_clip_sparse`).
pub fn col_clip(matrix: &[Vec<(u16, I32F32)>], thresholds: &[I32F32]) -> SparseMatrix {
    matrix
        .iter()
        .map(|row| {
            let mut out = Vec::with_capacity(row.len());
            for &(j, v) in row {
                let th = thresholds.get(usize::from(j)).copied().unwrap_or_default();
                if th >= v {
                    out.push((j, v));
                } else if th > I32F32::ZERO {
                    out.push((j, th));
                }
            }
            out
        })
        .collect()
}

/// `r_j = Σ_i vector_i · m_ij` (`matmul_sparse`).
pub fn weighted_col_sums(
    matrix: &[Vec<(u16, I32F32)>],
    vector: &[I32F32],
    columns: usize,
) -> Vec<I32F32> {
    let mut out = vec![I32F32::ZERO; columns];
    for (row, &scale) in matrix.iter().zip(vector) {
        for &(j, v) in row {
            if let Some(cell) = out.get_mut(usize::from(j)) {
                *cell = cell.saturating_add(scale.saturating_mul(v));
            }
        }
    }
    out
}

/// `d_i = Σ_j vector_j · m_ij` (`matmul_transpose_sparse`).
pub fn row_dot(matrix: &[Vec<(u16, I32F32)>], vector: &[I32F32]) -> Vec<I32F32> {
    matrix
        .iter()
        .map(|row| {
            row.iter().fold(I32F32::ZERO, |acc, &(j, v)| {
                let x = vector.get(usize::from(j)).copied().unwrap_or_default();
                acc.saturating_add(x.saturating_mul(v))
            })
        })
        .collect()
}

/// `Σ_j m_ij · vector_j`, skipping products that are exactly 0 (`row_sum_sparse` of
/// `mat_vec_mul_sparse`; the skipped zeros do not change the sum).
pub fn row_dot_by_column(matrix: &[Vec<(u16, I32F32)>], vector: &[I32F32]) -> Vec<I32F32> {
    matrix
        .iter()
        .map(|row| {
            row.iter()
                .filter_map(|&(j, v)| vector.get(usize::from(j)).map(|&x| v.saturating_mul(x)))
                .sum()
        })
        .collect()
}

/// Scales row i by `vector_i` (`row_hadamard_sparse`).
pub fn scale_rows(matrix: &[Vec<(u16, I32F32)>], vector: &[I32F32]) -> SparseMatrix {
    matrix
        .iter()
        .zip(vector)
        .map(|(row, &scale)| {
            row.iter()
                .map(|&(j, v)| (j, v.saturating_mul(scale)))
                .collect()
        })
        .collect()
}

/// `mat1 + ratio · (mat2 − mat1)`, keeping entries > 0 in ascending column order; a ratio of
/// exactly 0 or 1 returns `mat1` or `mat2` unchanged (`interpolate_sparse`).
pub fn interpolate(
    mat1: &[Vec<(u16, I32F32)>],
    mat2: &[Vec<(u16, I32F32)>],
    columns: usize,
    ratio: I32F32,
) -> SparseMatrix {
    if ratio == I32F32::ZERO {
        return mat1.to_vec();
    }
    if ratio == I32F32::ONE || mat1.len() != mat2.len() {
        return mat2.to_vec();
    }
    let mut dense1 = vec![I32F32::ZERO; columns];
    let mut dense2 = vec![I32F32::ZERO; columns];
    let mut touched: Vec<u16> = Vec::new();
    mat1.iter()
        .zip(mat2)
        .map(|(row1, row2)| {
            touched.clear();
            for &(j, v) in row1 {
                if let Some(cell) = dense1.get_mut(usize::from(j)) {
                    *cell = v;
                    touched.push(j);
                }
            }
            for &(j, v) in row2 {
                if let Some(cell) = dense2.get_mut(usize::from(j)) {
                    *cell = v;
                    touched.push(j);
                }
            }
            touched.sort_unstable();
            touched.dedup();
            // Columns in neither row interpolate to 0 and are dropped, so only touched ones matter.
            let mut out = Vec::with_capacity(touched.len());
            for &j in &touched {
                let col = usize::from(j);
                let (v1, v2) = (dense1[col], dense2[col]);
                let value = v1.saturating_add(ratio.saturating_mul(v2.saturating_sub(v1)));
                if value > I32F32::ZERO {
                    out.push((j, value));
                }
                dense1[col] = I32F32::ZERO;
                dense2[col] = I32F32::ZERO;
            }
            out
        })
        .collect()
}

/// `α·new + (1−α)·old` over the union of entries, keeping entries > 0 in ascending column order
/// (`mat_ema_sparse`).
pub fn ema(
    new: &[Vec<(u16, I32F32)>],
    old: &[Vec<(u16, I32F32)>],
    alpha: I32F32,
    columns: usize,
) -> SparseMatrix {
    let one_minus_alpha = I32F32::ONE.saturating_sub(alpha);
    let mut acc = vec![I32F32::ZERO; columns];
    let mut touched: Vec<u16> = Vec::new();
    let empty: Vec<(u16, I32F32)> = Vec::new();
    new.iter()
        .enumerate()
        .map(|(i, new_row)| {
            touched.clear();
            for &(j, v) in new_row {
                if let Some(cell) = acc.get_mut(usize::from(j)) {
                    *cell = cell.saturating_add(alpha.saturating_mul(v));
                    touched.push(j);
                }
            }
            for &(j, v) in old.get(i).unwrap_or(&empty) {
                if let Some(cell) = acc.get_mut(usize::from(j)) {
                    *cell = cell.saturating_add(one_minus_alpha.saturating_mul(v));
                    touched.push(j);
                }
            }
            touched.sort_unstable();
            touched.dedup();
            let mut out = Vec::with_capacity(touched.len());
            for &j in &touched {
                let cell = &mut acc[usize::from(j)];
                if *cell > I32F32::ZERO {
                    out.push((j, *cell));
                }
                *cell = I32F32::ZERO;
            }
            out
        })
        .collect()
}

/// The stake-weighted median of one column (`weighted_median`): a deterministic quickselect that
/// pivots on the middle element of the current partition.
///
/// `entries` are `(score, stake)` pairs in row order; `minority` is `Σstake − κ`. At a pivot p
/// with stake `lo_stake` strictly below and `hi_stake` strictly above, it goes lower when
/// `minority < lo + lo_stake` (and something is lower), higher when `hi − hi_stake ≤ minority`
/// (and something is higher), and otherwise returns p. Partitions keep row order, so the pivots
/// are the ones Subtensor picks. `scratch` is reused between calls.
pub fn weighted_median(
    entries: &[(I32F32, I32F32)],
    minority: I32F32,
    stake_sum: I32F32,
    scratch: &mut MedianScratch,
) -> I32F32 {
    let MedianScratch {
        current,
        lower,
        upper,
    } = scratch;
    current.clear();
    current.extend_from_slice(entries);
    let mut partition_lo = I32F32::ZERO;
    let mut partition_hi = stake_sum;
    for _ in 0..=entries.len() {
        match current.as_slice() {
            [] => return I32F32::ZERO,
            [(only, _)] => return *only,
            _ => {}
        }
        let pivot = current[current.len() / 2].0;
        let mut lo_stake = I32F32::ZERO;
        let mut hi_stake = I32F32::ZERO;
        lower.clear();
        upper.clear();
        for &(score, stake) in current.iter() {
            if score < pivot {
                lo_stake = lo_stake.saturating_add(stake);
                lower.push((score, stake));
            } else if score > pivot {
                hi_stake = hi_stake.saturating_add(stake);
                upper.push((score, stake));
            }
        }
        if minority < partition_lo.saturating_add(lo_stake) && !lower.is_empty() {
            std::mem::swap(current, lower);
            partition_hi = partition_lo.saturating_add(lo_stake);
        } else if partition_hi.saturating_sub(hi_stake) <= minority && !upper.is_empty() {
            std::mem::swap(current, upper);
            partition_lo = partition_hi.saturating_sub(hi_stake);
        } else {
            return pivot;
        }
    }
    I32F32::ZERO
}

/// Buffers reused across [`weighted_median`] calls.
#[derive(Debug, Default)]
pub struct MedianScratch {
    current: Vec<(I32F32, I32F32)>,
    lower: Vec<(I32F32, I32F32)>,
    upper: Vec<(I32F32, I32F32)>,
}

/// The stake-weighted median of every column over the rows with positive stake, their stakes
/// renormalized, a missing entry counting as 0 (`weighted_median_col_sparse`). `majority` is κ.
pub fn weighted_median_cols(
    stake: &[I32F32],
    matrix: &[Vec<(u16, I32F32)>],
    columns: usize,
    majority: I32F32,
) -> Vec<I32F32> {
    let mut use_stake: Vec<I32F32> = stake
        .iter()
        .copied()
        .filter(|&s| s > I32F32::ZERO)
        .collect();
    super::fixed::normalize(&mut use_stake);
    let stake_sum: I32F32 = use_stake.iter().sum();
    let minority = stake_sum.saturating_sub(majority);

    // Column-major (score, stake) pairs of the staked rows: entries[j * k + r].
    let k = use_stake.len();
    let mut entries: Vec<(I32F32, I32F32)> = Vec::with_capacity(columns * k);
    for _ in 0..columns {
        entries.extend(use_stake.iter().map(|&s| (I32F32::ZERO, s)));
    }
    let mut nonzero = vec![false; columns];
    let mut r = 0;
    for (&s, row) in stake.iter().zip(matrix) {
        if s > I32F32::ZERO {
            for &(j, v) in row.iter().filter(|&&(j, _)| usize::from(j) < columns) {
                entries[usize::from(j) * k + r].0 = v;
                nonzero[usize::from(j)] |= v != I32F32::ZERO;
            }
            r += 1;
        }
    }

    let mut scratch = MedianScratch::default();
    (0..columns)
        .map(|j| {
            if !nonzero[j] {
                // Every score is 0 (or no row is staked): the search can only return 0.
                return I32F32::ZERO;
            }
            let column = &entries[j * k..(j + 1) * k];
            weighted_median(column, minority, stake_sum, &mut scratch)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64) -> I32F32 {
        I32F32::from_f64(x)
    }

    fn sparse(dense: &[&[f64]]) -> SparseMatrix {
        dense
            .iter()
            .map(|row| {
                row.iter()
                    .enumerate()
                    .filter(|&(_, &v)| v != 0.0)
                    .map(|(j, &v)| (j as u16, f(v)))
                    .collect()
            })
            .collect()
    }

    fn medians(stake: &[f64], w: &[&[f64]], majority: f64) -> Vec<f64> {
        let stake: Vec<I32F32> = stake.iter().map(|&s| f(s)).collect();
        weighted_median_cols(&stake, &sparse(w), w[0].len(), f(majority))
            .iter()
            .map(|c| (c.to_f64() * 1e6).round() / 1e6)
            .collect()
    }

    #[test]
    fn weighted_median_matches_the_subtensor_column_vectors() {
        let stake = [0.0, 0.75, 0.25, 0.0];
        let w: [&[f64]; 4] = [
            &[0.0, 0.1, 0.0],
            &[0.0, 0.2, 0.4],
            &[0.0, 0.3, 0.1],
            &[0.0, 0.4, 0.5],
        ];
        assert_eq!(medians(&stake, &w, 0.24), vec![0.0, 0.3, 0.4]);
        assert_eq!(medians(&stake, &w, 0.26), vec![0.0, 0.2, 0.4]);
        assert_eq!(medians(&stake, &w, 0.76), vec![0.0, 0.2, 0.1]);
        let stake = [0.0, 0.3, 0.2, 0.5];
        let w: [&[f64]; 4] = [
            &[0.0, 0.1, 0.0],
            &[0.0, 0.2, 0.4],
            &[0.0, 0.3, 0.1],
            &[0.0, 0.0, 0.5],
        ];
        assert_eq!(medians(&stake, &w, 0.51), vec![0.0, 0.0, 0.4]);
    }

    #[test]
    fn weighted_median_with_no_staked_rows_is_zero() {
        let w: [&[f64]; 2] = [&[0.5, 0.5], &[1.0, 0.0]];
        assert_eq!(medians(&[0.0, 0.0], &w, 0.5), vec![0.0, 0.0]);
    }

    #[test]
    fn clipping_removes_entries_whose_threshold_is_zero() {
        let m = sparse(&[&[0.5, 0.5]]);
        let clipped = col_clip(&m, &[f(0.25), I32F32::ZERO]);
        assert_eq!(clipped, vec![vec![(0, f(0.25))]]);
    }

    #[test]
    fn interpolation_at_the_ends_returns_the_inputs_unchanged() {
        let a = vec![vec![(1u16, f(0.5)), (0, I32F32::ZERO)]];
        let b = vec![vec![(1u16, f(0.25))]];
        assert_eq!(interpolate(&a, &b, 2, I32F32::ZERO), a);
        assert_eq!(interpolate(&a, &b, 2, I32F32::ONE), b);
        // Halfway, zeros are dropped and columns come out ascending.
        assert_eq!(interpolate(&a, &b, 2, f(0.5)), vec![vec![(1, f(0.375))]]);
    }

    #[test]
    fn ema_keeps_the_union_of_old_and_new_entries() {
        let new = vec![vec![(2u16, I32F32::ONE)]];
        let old = vec![vec![(0u16, I32F32::ONE)]];
        let out = ema(&new, &old, f(0.25), 3);
        assert_eq!(out, vec![vec![(0, f(0.75)), (2, f(0.25))]]);
    }

    #[test]
    fn column_normalization_and_max_upscale_leave_zero_columns_alone() {
        let mut m = vec![vec![(0u16, f(1.0)), (1, I32F32::ZERO)], vec![(0, f(3.0))]];
        col_normalize(&mut m, 2);
        assert_eq!(m[0][0].1, f(0.25));
        assert_eq!(m[1][0].1, f(0.75));
        assert_eq!(m[0][1].1, I32F32::ZERO);
        col_max_upscale(&mut m, 2);
        assert_eq!(m[1][0].1, I32F32::ONE);
    }
}
