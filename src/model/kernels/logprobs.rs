//! Log-probabilities of chosen tokens straight from logits: one pass for each row's
//! log-sum-exp instead of materialising the whole log-softmax (which, at a vocabulary of
//! 4096, took dfdx a dozen passes over the largest activation of the step).

use super::simd::{self, avx2_variants, exp, CHUNK};
use rayon::prelude::*;

avx2_variants! {
    /// Σ_j exp(x_j − max).
    fn sum_exp_shifted(row: &[f32], max: f32, out: &mut f32) {
        *out = simd::sum_exp(row, max);
    }
    /// d_j += g · (1[j = t] − exp(x_j − lse)), the one-hot added by the caller.
    fn softmax_grad_row(row: &[f32], lse: f32, g: f32, d: &mut [f32]) {
        for (d, &v) in d.iter_mut().zip(row) {
            *d -= g * exp(v - lse);
        }
    }
}

fn rows_per_task(vocab: usize) -> usize {
    (CHUNK / vocab.max(1)).max(1)
}

/// Per row of `vocab` logits: log p(target) and the row's log-sum-exp (kept for backward).
pub fn forward(logits: &[f32], targets: &[usize], vocab: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = targets.len();
    assert_eq!(logits.len(), rows * vocab, "logits and targets disagree");
    let (mut logp, mut lse) = (vec![0.0; rows], vec![0.0; rows]);
    let per = rows_per_task(vocab);
    logp.par_chunks_mut(per)
        .zip(lse.par_chunks_mut(per))
        .zip(logits.par_chunks(per * vocab).zip(targets.par_chunks(per)))
        .for_each(|((logp, lse), (logits, targets))| {
            for (((lp, l), row), &t) in logp
                .iter_mut()
                .zip(lse)
                .zip(logits.chunks(vocab))
                .zip(targets)
            {
                assert!(
                    t < vocab,
                    "target token {t} outside the vocabulary of {vocab}"
                );
                let max = simd::max(row);
                let mut sum = 0.0;
                sum_exp_shifted(row, max, &mut sum);
                *l = max + sum.ln();
                *lp = row[t] - *l;
            }
        });
    (logp, lse)
}

/// dlogits += dlogp · (onehot(target) − softmax(logits)), row by row.
pub fn backward(
    logits: &[f32],
    targets: &[usize],
    lse: &[f32],
    dlogp: &[f32],
    dlogits: &mut [f32],
    vocab: usize,
) {
    let per = rows_per_task(vocab);
    dlogits
        .par_chunks_mut(per * vocab)
        .zip(logits.par_chunks(per * vocab))
        .zip(
            targets
                .par_chunks(per)
                .zip(lse.par_chunks(per).zip(dlogp.par_chunks(per))),
        )
        .for_each(|((d, x), (t, (lse, g)))| {
            for ((((d, x), &t), &lse), &g) in d
                .chunks_mut(vocab)
                .zip(x.chunks(vocab))
                .zip(t)
                .zip(lse)
                .zip(g)
            {
                if g != 0.0 {
                    softmax_grad_row(x, lse, g, d);
                    d[t] += g;
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_direct_log_softmax_and_finite_differences() {
        let vocab = 7;
        let logits: Vec<f32> = (0..3 * vocab)
            .map(|i| ((i as f32) * 0.83).sin() * 4.0)
            .collect();
        let targets = [2, 0, 6];
        let (logp, lse) = forward(&logits, &targets, vocab);
        for (r, &t) in targets.iter().enumerate() {
            let row = &logits[r * vocab..(r + 1) * vocab];
            let direct = row[t] as f64 - row.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
            assert!(
                (logp[r] as f64 - direct).abs() < 1e-5,
                "row {r}: {} vs {direct}",
                logp[r]
            );
        }
        let g = [0.5, -1.0, 2.0];
        let mut d = vec![0.0; logits.len()];
        backward(&logits, &targets, &lse, &g, &mut d, vocab);
        let objective = |x: &[f32]| -> f64 {
            let (lp, _) = forward(x, &targets, vocab);
            lp.iter().zip(&g).map(|(a, b)| *a as f64 * *b as f64).sum()
        };
        let h = 1e-2;
        for j in 0..logits.len() {
            let mut x = logits.clone();
            x[j] += h;
            let up = objective(&x);
            x[j] -= 2.0 * h;
            let numeric = (up - objective(&x)) / (2.0 * h as f64);
            assert!(
                (d[j] as f64 - numeric).abs() < 1e-3,
                "[{j}] {} vs {numeric}",
                d[j]
            );
        }
    }
}
