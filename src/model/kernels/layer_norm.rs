//! LayerNorm over rows of width `m`, forward and backward, in one pass per row instead of the
//! ten tensor ops (each allocating a full activation) that dfdx composes it from.

use rayon::prelude::*;

/// Rows per parallel task.
const ROWS: usize = 64;

/// y = (x − mean) / sqrt(var + eps) · w + b per row; returns y and each row's (mean, rstd).
pub fn forward(x: &[f32], w: &[f32], b: &[f32], eps: f32) -> (Vec<f32>, Vec<(f32, f32)>) {
    let m = w.len();
    let rows = x.len() / m;
    let mut y = vec![0.0; x.len()];
    let mut stats = vec![(0.0, 0.0); rows];
    y.par_chunks_mut(m * ROWS)
        .zip(x.par_chunks(m * ROWS))
        .zip(stats.par_chunks_mut(ROWS))
        .for_each(|((y, x), stats)| {
            for ((y, x), s) in y.chunks_mut(m).zip(x.chunks(m)).zip(stats) {
                let mean = x.iter().sum::<f32>() / m as f32;
                let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / m as f32;
                let rstd = 1.0 / (var + eps).sqrt();
                for (((y, &x), &w), &b) in y.iter_mut().zip(x).zip(w).zip(b) {
                    *y = (x - mean) * rstd * w + b;
                }
                *s = (mean, rstd);
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
            for (((dx, x), dy), &(mean, rstd)) in dx
                .chunks_mut(m)
                .zip(x.chunks(m))
                .zip(dy.chunks(m))
                .zip(stats)
            {
                let (mut sum_g, mut sum_gx) = (0.0f32, 0.0f32);
                for j in 0..m {
                    let xhat = (x[j] - mean) * rstd;
                    let g = dy[j] * w[j];
                    sum_g += g;
                    sum_gx += g * xhat;
                    dw[j] += dy[j] * xhat;
                    db[j] += dy[j];
                }
                let (mean_g, mean_gx) = (sum_g / m as f32, sum_gx / m as f32);
                for j in 0..m {
                    let xhat = (x[j] - mean) * rstd;
                    dx[j] += rstd * (dy[j] * w[j] - mean_g - xhat * mean_gx);
                }
            }
            (dw, db)
        })
        .collect();
    for (pw, pb) in partial {
        dw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
}
