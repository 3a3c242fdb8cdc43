//! Row-wise kernels: causal softmax for attention scores, and adding a bias to every row.

use super::simd;
use rayon::prelude::*;

/// Rows per parallel task for short rows.
fn rows_per_task(width: usize) -> usize {
    (simd::CHUNK / width.max(1)).max(1)
}

/// p[r, j] = softmax_j(scale · s[r, j]) over the keys row r may see (j ≤ past + (r mod s_q)),
/// 0 for later keys. Rows are `s_k` wide, grouped in blocks of `s_q` queries.
pub fn causal_softmax(scores: &[f32], s_q: usize, s_k: usize, past: usize, scale: f32) -> Vec<f32> {
    let mut out = vec![0.0; scores.len()];
    let per = rows_per_task(s_k);
    out.par_chunks_mut(s_k * per)
        .zip(scores.par_chunks(s_k * per))
        .enumerate()
        .for_each(|(task, (out, scores))| {
            for (i, (p, s)) in out.chunks_mut(s_k).zip(scores.chunks(s_k)).enumerate() {
                let row = task * per + i;
                let visible = (past + row % s_q + 1).min(s_k);
                let max = s[..visible]
                    .iter()
                    .fold(f32::NEG_INFINITY, |m, &v| m.max(v))
                    * scale;
                let mut sum = 0.0;
                for (p, &v) in p[..visible].iter_mut().zip(&s[..visible]) {
                    *p = simd::exp(v * scale - max);
                    sum += *p;
                }
                let inv = 1.0 / sum;
                p[..visible].iter_mut().for_each(|p| *p *= inv);
            }
        });
    out
}

/// ds += scale · p · (dp − Σ_j p·dp), row by row (masked entries have p = 0).
pub fn causal_softmax_backward(p: &[f32], dp: &[f32], ds: &mut [f32], s_k: usize, scale: f32) {
    let per = rows_per_task(s_k);
    ds.par_chunks_mut(s_k * per)
        .zip(p.par_chunks(s_k * per).zip(dp.par_chunks(s_k * per)))
        .for_each(|(ds, (p, dp))| {
            for ((ds, p), dp) in ds.chunks_mut(s_k).zip(p.chunks(s_k)).zip(dp.chunks(s_k)) {
                let dot: f32 = p.iter().zip(dp).map(|(a, b)| a * b).sum();
                for ((ds, &p), &dp) in ds.iter_mut().zip(p).zip(dp) {
                    *ds += scale * p * (dp - dot);
                }
            }
        });
}

/// y = x + b on every row of width `b.len()`.
pub fn add_bias(x: &mut [f32], b: &[f32]) {
    let per = rows_per_task(b.len());
    x.par_chunks_mut(b.len() * per).for_each(|x| {
        for row in x.chunks_mut(b.len()) {
            row.iter_mut().zip(b).for_each(|(x, b)| *x += b);
        }
    });
}

/// dx += dy, db += Σ_rows dy.
pub fn add_bias_backward(dy: &[f32], dx: &mut [f32], db: &mut [f32]) {
    let m = db.len();
    let per = rows_per_task(m);
    let partial: Vec<Vec<f32>> = dx
        .par_chunks_mut(m * per)
        .zip(dy.par_chunks(m * per))
        .map(|(dx, dy)| {
            let mut acc = vec![0.0f32; m];
            for (dx, dy) in dx.chunks_mut(m).zip(dy.chunks(m)) {
                for j in 0..m {
                    dx[j] += dy[j];
                    acc[j] += dy[j];
                }
            }
            acc
        })
        .collect();
    for p in partial {
        db.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
}
