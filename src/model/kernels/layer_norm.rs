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
        // Two passes (mean, then Σ(x − mean)²) are steadier than Σx² − m·mean²; in lanes.
        let mut centred = [0.0f32; 8];
        let chunks = x.chunks_exact(8);
        let tail: f32 = chunks.remainder().iter().map(|v| (v - mean) * (v - mean)).sum();
        for c in chunks {
            for i in 0..8 {
                centred[i] += (c[i] - mean) * (c[i] - mean);
            }
        }
        let var = (centred.iter().sum::<f32>() + tail) / m;
        let rstd = 1.0 / (var + eps).sqrt();
        for (((y, &x), &w), &b) in y.iter_mut().zip(x).zip(w).zip(b) {
            *y = (x - mean) * rstd * w + b;
        }
        *stats = (mean, rstd);
    }

    /// One row of the backward pass; `g` is scratch of the row's width.
    fn backward_row(
        x: &[f32],
        w: &[f32],
        stats: (f32, f32),
        dy: &[f32],
        dx: &mut [f32],
        dw: &mut [f32],
        db: &mut [f32],
        g: &mut [f32]
    ) {
        let (mean, rstd) = stats;
        let m = x.len() as f32;
        for (((g, &dy), &w), db) in g.iter_mut().zip(dy).zip(w).zip(db.iter_mut()) {
            *g = dy * w;
            *db += dy;
        }
        let mut sum_gx = [0.0f32; 8];
        let mut tail_gx = 0.0f32;
        let n8 = x.len() / 8 * 8;
        for j in (0..n8).step_by(8) {
            for i in 0..8 {
                let xhat = (x[j + i] - mean) * rstd;
                sum_gx[i] += g[j + i] * xhat;
                dw[j + i] += dy[j + i] * xhat;
            }
        }
        for j in n8..x.len() {
            let xhat = (x[j] - mean) * rstd;
            tail_gx += g[j] * xhat;
            dw[j] += dy[j] * xhat;
        }
        let mean_g = simd::sum(g) / m;
        let mean_gx = (sum_gx.iter().sum::<f32>() + tail_gx) / m;
        for ((dx, &x), &g) in dx.iter_mut().zip(x).zip(g.iter()) {
            let xhat = (x - mean) * rstd;
            *dx += rstd * (g - mean_g - xhat * mean_gx);
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
            let (mut dw, mut db, mut g) = (vec![0.0f32; m], vec![0.0f32; m], vec![0.0f32; m]);
            for (((dx, x), dy), &s) in dx
                .chunks_mut(m)
                .zip(x.chunks(m))
                .zip(dy.chunks(m))
                .zip(stats)
            {
                backward_row(x, w, s, dy, dx, &mut dw, &mut db, &mut g);
            }
            (dw, db)
        })
        .collect();
    for (pw, pb) in partial {
        dw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
}
