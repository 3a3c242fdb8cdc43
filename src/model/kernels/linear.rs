//! A linear layer over all rows at once: `y = x·wᵀ + b` with `w` stored `[out, in]`, and its
//! backward as two matrix products and a column sum.

use super::matmul::{gemm_into, Mat};
use super::simd::CHUNK;
use rayon::prelude::*;

/// A weight matrix of `o` outputs by `i` inputs, as it lies in memory.
#[derive(Clone, Copy)]
pub enum Weight<'a> {
    /// `o × i`: as trained (dfdx's layout).
    OutByIn(&'a [f32]),
    /// `i × o`: generation's copy (see `FrozenWeights::matrix`).
    InByOut(&'a [f32]),
}

impl Weight<'_> {
    /// The matrix as the product's right operand, `i × o`.
    fn as_rhs(self, i: usize, o: usize) -> Mat {
        match self {
            Weight::OutByIn(w) => Mat::new(w, o, i).t(),
            Weight::InByOut(w) => Mat::new(w, i, o),
        }
    }
}

/// x: `rows × i`, w: `o × i`, b: `o` → y: `rows × o`, added onto `onto` (a residual
/// stream of `rows × o`, whose buffer becomes the output) when given.
pub fn forward(
    x: &[f32],
    w: Weight<'_>,
    b: Option<&[f32]>,
    onto: Option<Vec<f32>>,
    i: usize,
    o: usize,
) -> Vec<f32> {
    let rows = x.len() / i;
    let accumulate = b.is_some() || onto.is_some();
    let adding = onto.is_some();
    // Every element is written: by the bias fill, or by the product when there is neither a
    // bias nor a residual.
    let mut y = onto.unwrap_or_else(|| super::pool::scratch(rows * o));
    assert_eq!(y.len(), rows * o, "residual stream has the wrong size");
    if let Some(b) = b {
        // Start from the bias (on the residual) and let the product accumulate onto it: one
        // pass, not two.
        y.par_chunks_mut(o * (CHUNK / o).max(1)).for_each(|y| {
            for row in y.chunks_mut(o) {
                if adding {
                    row.iter_mut().zip(b).for_each(|(y, b)| *y += b);
                } else {
                    row.copy_from_slice(b);
                }
            }
        });
    }
    gemm_into(&mut y, Mat::new(x, rows, i), w.as_rhs(i, o), accumulate);
    y
}

/// dx += dy·w (`rows × i`).
pub fn backward_input(dy: &[f32], w: &[f32], dx: &mut [f32], i: usize, o: usize) {
    let rows = dy.len() / o;
    gemm_into(dx, Mat::new(dy, rows, o), Mat::new(w, o, i), true);
}

/// dw += dyᵀ·x (`o × i`).
pub fn backward_weight(dy: &[f32], x: &[f32], dw: &mut [f32], i: usize, o: usize) {
    let rows = dy.len() / o;
    gemm_into(dw, Mat::new(dy, rows, o).t(), Mat::new(x, rows, i), true);
}

/// db += Σ_rows dy, with per-task partial sums so both cores work on long inputs.
pub fn backward_bias(dy: &[f32], db: &mut [f32]) {
    let o = db.len();
    let partial = dy
        .par_chunks(o * (CHUNK / o).max(1))
        .map(|dy| {
            let mut acc = vec![0.0f32; o];
            for row in dy.chunks(o) {
                acc.iter_mut().zip(row).for_each(|(a, d)| *a += d);
            }
            acc
        })
        .collect::<Vec<_>>();
    for p in partial {
        db.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layer's scalar output L = Σ g·y, to check the backward pass by finite differences.
    fn objective(x: &[f32], w: &[f32], b: &[f32], g: &[f32], i: usize, o: usize) -> f64 {
        let y = forward(x, Weight::OutByIn(w), Some(b), None, i, o);
        y.iter()
            .zip(g)
            .map(|(y, g)| (*y as f64) * (*g as f64))
            .sum()
    }

    #[test]
    fn a_transposed_weight_gives_the_same_product() {
        let (rows, i, o) = (3, 5, 37);
        let x: Vec<f32> = (0..rows * i).map(|j| (j as f32 * 0.3).cos()).collect();
        let w: Vec<f32> = (0..o * i).map(|j| (j as f32 * 0.7).sin()).collect();
        let wt: Vec<f32> = (0..i * o).map(|j| w[(j % o) * i + j / o]).collect();
        let b: Vec<f32> = (0..o).map(|j| j as f32 * 0.1).collect();
        let want = forward(&x, Weight::OutByIn(&w), Some(&b), None, i, o);
        let got = forward(&x, Weight::InByOut(&wt), Some(&b), None, i, o);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (rows, i, o) = (5, 4, 3);
        let val = |n: usize, s: f32| {
            (0..n)
                .map(|j| (j as f32 * 0.37 + s).sin())
                .collect::<Vec<f32>>()
        };
        let (x, w, b, g) = (
            val(rows * i, 0.1),
            val(o * i, 0.7),
            val(o, 1.3),
            val(rows * o, 2.1),
        );
        let (mut dx, mut dw, mut db) = (vec![0.0; rows * i], vec![0.0; o * i], vec![0.0; o]);
        backward_input(&g, &w, &mut dx, i, o);
        backward_weight(&g, &x, &mut dw, i, o);
        backward_bias(&g, &mut db);
        let h = 1e-2;
        let check = |analytic: &[f32], which: usize| {
            for (j, &a) in analytic.iter().enumerate() {
                let mut p = [x.clone(), w.clone(), b.clone()];
                p[which][j] += h;
                let up = objective(&p[0], &p[1], &p[2], &g, i, o);
                p[which][j] -= 2.0 * h;
                let down = objective(&p[0], &p[1], &p[2], &g, i, o);
                let numeric = (up - down) / (2.0 * h as f64);
                assert!(
                    (a as f64 - numeric).abs() < 1e-3,
                    "param {which}[{j}]: {a} vs {numeric}"
                );
            }
        };
        check(&dx, 0);
        check(&dw, 1);
        check(&db, 2);
    }
}
