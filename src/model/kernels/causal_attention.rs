//! Causal multi-head attention in one op, reading queries, keys and values straight from the
//! `(batch, time, width)` activations: each (batch, head) pair is one task that multiplies
//! strided views of its head's columns, so heads are never split, permuted or merged in
//! memory, and the attention weights are kept for the backward pass.

use super::host::SharedMut;
use super::matmul::{gemm_raw, Mat};
use super::simd::{avx2_variants, exp};
use rayon::prelude::*;

/// Sizes of one attention call. Queries are the last `s_q` of `s_k` positions: query `i`
/// sees keys `0..=s_k - s_q + i` (training has `s_q == s_k`; generation adds cached keys).
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub batch: usize,
    pub s_q: usize,
    pub s_k: usize,
    pub heads: usize,
    pub head_dim: usize,
}

impl Dims {
    fn width(&self) -> usize {
        self.heads * self.head_dim
    }
    fn past(&self) -> usize {
        self.s_k - self.s_q
    }
    fn scale(&self) -> f32 {
        1.0 / (self.head_dim as f32).sqrt()
    }
    /// A head's `rows × head_dim` slice of a `(batch, rows, width)` activation.
    fn head(&self, base: *const f32, b: usize, h: usize, rows: usize) -> Mat {
        // SAFETY (of the offset): b < batch and h < heads keep it inside the activation.
        let ptr = unsafe { base.add(b * rows * self.width() + h * self.head_dim) };
        Mat::strided(ptr, rows, self.head_dim, self.width())
    }
    fn head_mut(&self, base: SharedMut, b: usize, h: usize, rows: usize) -> *mut f32 {
        unsafe { base.0.add(b * rows * self.width() + h * self.head_dim) }
    }
}

avx2_variants! {
    /// Softmax of each row over the keys it may see (already scaled), zero beyond them.
    fn causal_softmax_rows(p: &mut [f32], s_k: usize, past: usize) {
        for (i, row) in p.chunks_mut(s_k).enumerate() {
            let visible = (past + i + 1).min(s_k);
            let (seen, hidden) = row.split_at_mut(visible);
            let max = seen.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let mut sum = 0.0;
            for v in seen.iter_mut() {
                *v = exp(*v - max);
                sum += *v;
            }
            let inv = 1.0 / sum;
            seen.iter_mut().for_each(|v| *v *= inv);
            hidden.iter_mut().for_each(|v| *v = 0.0);
        }
    }
    /// dS = P ∘ (dP − Σ_j P·dP) row by row, in place of dP.
    fn softmax_backward_rows(p: &[f32], dp: &mut [f32], s_k: usize) {
        for (p, dp) in p.chunks(s_k).zip(dp.chunks_mut(s_k)) {
            let dot: f32 = p.iter().zip(dp.iter()).map(|(a, b)| a * b).sum();
            for (d, &p) in dp.iter_mut().zip(p) {
                *d = p * (*d - dot);
            }
        }
    }
}

/// Returns the output `(batch, s_q, width)` and the attention weights
/// `(batch, heads, s_q, s_k)`.
pub fn forward(q: &[f32], k: &[f32], v: &[f32], d: Dims) -> (Vec<f32>, Vec<f32>) {
    let mut out = vec![0.0; d.batch * d.s_q * d.width()];
    let mut probs = vec![0.0; d.batch * d.heads * d.s_q * d.s_k];
    let out_ptr = SharedMut(out.as_mut_ptr());
    probs
        .par_chunks_mut(d.s_q * d.s_k)
        .enumerate()
        .for_each(|(task, p)| {
            let (b, h) = (task / d.heads, task % d.heads);
            let (qh, kh, vh) = (
                d.head(q.as_ptr(), b, h, d.s_q),
                d.head(k.as_ptr(), b, h, d.s_k),
                d.head(v.as_ptr(), b, h, d.s_k),
            );
            // SAFETY: every view lies inside its buffer; each task writes only its own
            // weights and its own head's columns of the output.
            unsafe {
                gemm_raw(p.as_mut_ptr(), d.s_k, qh, kh.t(), d.scale(), false, false);
                causal_softmax_rows(p, d.s_k, d.past());
                let pm = Mat::new(p, d.s_q, d.s_k);
                gemm_raw(
                    d.head_mut(out_ptr, b, h, d.s_q),
                    d.width(),
                    pm,
                    vh,
                    1.0,
                    false,
                    false,
                );
            }
        });
    (out, probs)
}

/// Adds the gradients of q, k and v given the output's gradient `dy`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    probs: &[f32],
    dy: &[f32],
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
    d: Dims,
) {
    assert_eq!(dq.len(), q.len());
    assert!(dk.len() == k.len() && dv.len() == v.len());
    let (dq, dk, dv) = (
        SharedMut(dq.as_mut_ptr()),
        SharedMut(dk.as_mut_ptr()),
        SharedMut(dv.as_mut_ptr()),
    );
    probs.par_chunks(d.s_q * d.s_k).enumerate().for_each_init(
        || vec![0.0f32; d.s_q * d.s_k],
        |ds, (task, p)| {
            let (b, h) = (task / d.heads, task % d.heads);
            let (qh, kh, vh, dyh) = (
                d.head(q.as_ptr(), b, h, d.s_q),
                d.head(k.as_ptr(), b, h, d.s_k),
                d.head(v.as_ptr(), b, h, d.s_k),
                d.head(dy.as_ptr(), b, h, d.s_q),
            );
            let pm = Mat::new(p, d.s_q, d.s_k);
            // SAFETY: as in `forward`; each task adds only into its own head's columns.
            unsafe {
                // dP = dY·Vᵀ, then dS (without the scale, folded into the products below).
                gemm_raw(ds.as_mut_ptr(), d.s_k, dyh, vh.t(), 1.0, false, false);
                softmax_backward_rows(p, ds, d.s_k);
                let dsm = Mat::new(ds, d.s_q, d.s_k);
                let w = d.width();
                gemm_raw(
                    d.head_mut(dv, b, h, d.s_k),
                    w,
                    pm.t(),
                    dyh,
                    1.0,
                    true,
                    false,
                );
                gemm_raw(
                    d.head_mut(dq, b, h, d.s_q),
                    w,
                    dsm,
                    kh,
                    d.scale(),
                    true,
                    false,
                );
                gemm_raw(
                    d.head_mut(dk, b, h, d.s_k),
                    w,
                    dsm.t(),
                    qh,
                    d.scale(),
                    true,
                    false,
                );
            }
        },
    );
}
