//! LayerNorm over rows of width `m`, forward and backward, in one pass per row instead of the
//! ten tensor ops (each allocating a full activation) that dfdx composes it from.

use super::simd::{self, avx2_variants};
use rayon::prelude::*;

/// Rows per parallel task.
const ROWS: usize = 64;

avx2_variants! {
    /// One row: y = x̂·w + b, returning (mean, rstd).
    fn forward_row(x: &[f32], w: &[f32], b: &[f32], eps: f32, y: &mut [f32], stats: &mut (f32, f32)) {
        let m = x.len() as f32;
        let mean = simd::sum(x) / m;
        // Two passes (mean, then Σ(x − mean)²) are steadier than Σx² − m·mean²; y holds the
        // centred row in between.
        y.iter_mut().zip(x).for_each(|(y, &x)| *y = x - mean);
        let rstd = 1.0 / (simd::dot(y, y) / m + eps).sqrt();
        for ((y, &w), &b) in y.iter_mut().zip(w).zip(b) {
            *y = *y * rstd * w + b;
        }
        *stats = (mean, rstd);
    }

    /// One row of the backward pass; `g` and `xhat` are scratch of the row's width.
    fn backward_row(
        x: &[f32],
        w: &[f32],
        stats: (f32, f32),
        dy: &[f32],
        dx: &mut [f32],
        dw: &mut [f32],
        db: &mut [f32],
        g: &mut [f32],
        xhat: &mut [f32]
    ) {
        let (mean, rstd) = stats;
        let m = x.len() as f32;
        for j in 0..x.len() {
            xhat[j] = (x[j] - mean) * rstd;
            g[j] = dy[j] * w[j];
            dw[j] += dy[j] * xhat[j];
            db[j] += dy[j];
        }
        let (mean_g, mean_gx) = (simd::sum(g) / m, simd::dot(g, xhat) / m);
        for ((dx, &xh), &g) in dx.iter_mut().zip(xhat.iter()).zip(g.iter()) {
            *dx += rstd * (g - mean_g - xh * mean_gx);
        }
    }
}

/// y = (x − mean) / sqrt(var + eps) · w + b per row; returns y and each row's (mean, rstd).
pub fn forward(x: &[f32], w: &[f32], b: &[f32], eps: f32) -> (Vec<f32>, Vec<(f32, f32)>) {
    let m = w.len();
    let rows = x.len() / m;
    let mut y = super::pool::scratch(x.len()); // every row is written
    let mut stats = vec![(0.0, 0.0); rows];
    y.par_chunks_mut(m * ROWS)
        .zip(x.par_chunks(m * ROWS))
        .zip(stats.par_chunks_mut(ROWS))
        .for_each(|((y, x), stats)| {
            for ((y, x), s) in y.chunks_mut(m).zip(x.chunks(m)).zip(stats) {
                forward_row(x, w, b, eps, y, s);
            }
        });
    (y, stats)
}

/// Accumulates dx, dw, db from dy:
/// dx = rstd · (dy·w − mean(dy·w) − x̂ · mean(dy·w·x̂)),  dw = Σ dy·x̂,  db = Σ dy.
pub fn backward(
    x: &[f32],
    w: &[f32],
    stats: &[(f32, f32)],
    dy: &[f32],
    dx: &mut [f32],
    dw: &mut [f32],
    db: &mut [f32],
) {
    let m = w.len();
    let partial: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(m * ROWS)
        .zip(x.par_chunks(m * ROWS).zip(dy.par_chunks(m * ROWS)))
        .zip(stats.par_chunks(ROWS))
        .map(|((dx, (x, dy)), stats)| {
            let (mut dw, mut db) = (vec![0.0f32; m], vec![0.0f32; m]);
            let (mut g, mut xhat) = (vec![0.0f32; m], vec![0.0f32; m]);
            for (((dx, x), dy), &s) in dx
                .chunks_mut(m)
                .zip(x.chunks(m))
                .zip(dy.chunks(m))
                .zip(stats)
            {
                backward_row(x, w, s, dy, dx, &mut dw, &mut db, &mut g, &mut xhat);
            }
            (dw, db)
        })
        .collect();
    for (pw, pb) in partial {
        dw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
}
