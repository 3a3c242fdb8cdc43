//! Causal multi-head attention in one op, reading queries, keys and values straight from the
//! `(batch, time, width)` activations: each (batch, head) pair is one task that multiplies
//! strided views of its head's columns, so heads are never split, permuted or merged in
//! memory; the backward computes the attention weights again. Queries go in blocks of
//! `BLOCK` rows that only multiply the keys they can see, which skips part of the masked
//! upper triangle at long contexts (a quarter of the work at 256 positions).

use super::host::SharedMut;
use super::matmul::{gemm_raw, Mat};
use super::pool;
use super::simd::{self, avx2_variants, exp};
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

/// Query rows per block. 128 measured best at 256 positions: 64-row blocks made gemm's
/// accumulating products several times slower.
const BLOCK: usize = 128;

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
    /// Where row `row` of a head's slice of a `(batch, rows, width)` buffer starts.
    fn head_mut(&self, base: SharedMut, b: usize, h: usize, rows: usize, row: usize) -> *mut f32 {
        unsafe {
            base.0
                .add((b * rows + row) * self.width() + h * self.head_dim)
        }
    }
    /// The weights of one query block: its rows by all keys.
    fn block_len(&self) -> usize {
        BLOCK.min(self.s_q) * self.s_k
    }
    /// Query blocks `(first row, end row, keys the block can see)`.
    fn blocks(&self) -> impl Iterator<Item = (usize, usize, usize)> {
        let (s_q, s_k, past) = (self.s_q, self.s_k, self.past());
        (0..s_q).step_by(BLOCK).map(move |r0| {
            let r1 = (r0 + BLOCK).min(s_q);
            (r0, r1, (past + r1).min(s_k))
        })
    }
}

avx2_variants! {
    /// Softmax of each row over the keys it may see (already scaled), zero beyond them; row
    /// `i` sees `past + i + 1` keys.
    fn causal_softmax_rows(p: &mut [f32], s_k: usize, past: usize) {
        for (i, row) in p.chunks_mut(s_k).enumerate() {
            let visible = (past + i + 1).min(s_k);
            let (seen, hidden) = row.split_at_mut(visible);
            let max = simd::max(seen);
            seen.iter_mut().for_each(|v| *v = exp(*v - max));
            let inv = 1.0 / simd::sum(seen);
            seen.iter_mut().for_each(|v| *v *= inv);
            hidden.iter_mut().for_each(|v| *v = 0.0);
        }
    }
    /// dS = P ∘ (dP − Σ_j P·dP) row by row, in place of dP, over the first `width` of every
    /// `s_k` columns.
    fn softmax_backward_rows(p: &[f32], dp: &mut [f32], s_k: usize, width: usize) {
        for (p, dp) in p.chunks(s_k).zip(dp.chunks_mut(s_k)) {
            let (p, dp) = (&p[..width], &mut dp[..width]);
            let dot = simd::dot(p, dp);
            for (d, &p) in dp.iter_mut().zip(p) {
                *d = p * (*d - dot);
            }
        }
    }
}

/// The attention weights of one head's query rows `r0..r1` over the `w` keys they can see,
/// into `rows` (`(r1 - r0) × s_k`, zero beyond each row's visible keys).
///
/// # Safety
/// `qh` and `kh` must be views inside live buffers of at least `r1` and `w` rows.
unsafe fn block_weights(rows: &mut [f32], qh: Mat, kh: Mat, block: (usize, usize, usize), d: Dims) {
    let (r0, r1, w) = block;
    let rows = &mut rows[..(r1 - r0) * d.s_k];
    let (queries, keys) = (qh.rows(r0, r1), kh.rows(0, w));
    gemm_raw(
        rows.as_mut_ptr(),
        d.s_k,
        queries,
        keys.t(),
        d.scale(),
        false,
        false,
    );
    causal_softmax_rows(rows, d.s_k, d.past() + r0);
}

/// The output `(batch, s_q, width)`. The attention weights are not kept: the backward
/// computes them again, block by block (a few percent of a step), rather than hold
/// `batch × heads × s_q × s_k` floats per layer (as much as four widths of activations per
/// position at 256 positions and 12 heads) from the forward to the backward.
pub fn forward(q: &[f32], k: &[f32], v: &[f32], d: Dims) -> Vec<f32> {
    // Fully written: each head's product fills its columns of the output.
    let mut out = pool::scratch(d.batch * d.s_q * d.width());
    let out_ptr = SharedMut(out.as_mut_ptr());
    (0..d.batch * d.heads).into_par_iter().for_each_init(
        || vec![0.0f32; d.block_len()],
        |p, task| {
            let (b, h) = (task / d.heads, task % d.heads);
            let (qh, kh, vh) = (
                d.head(q.as_ptr(), b, h, d.s_q),
                d.head(k.as_ptr(), b, h, d.s_k),
                d.head(v.as_ptr(), b, h, d.s_k),
            );
            // SAFETY: every view lies inside its buffer; each task writes only its own
            // head's columns of the output.
            for (r0, r1, w) in d.blocks() {
                unsafe {
                    block_weights(p, qh, kh, (r0, r1, w), d);
                    let pm = Mat::strided(p.as_ptr(), r1 - r0, w, d.s_k);
                    let out = d.head_mut(out_ptr, b, h, d.s_q, r0);
                    gemm_raw(out, d.width(), pm, vh.rows(0, w), 1.0, false, false);
                }
            }
        },
    );
    out
}

/// The attention weights `(batch, heads, s_q, s_k)`, for the explorer.
pub fn weights(q: &[f32], k: &[f32], d: Dims) -> Vec<f32> {
    let mut probs = vec![0.0; d.batch * d.heads * d.s_q * d.s_k];
    probs
        .par_chunks_mut(d.s_q * d.s_k)
        .enumerate()
        .for_each(|(task, p)| {
            let (b, h) = (task / d.heads, task % d.heads);
            let (qh, kh) = (
                d.head(q.as_ptr(), b, h, d.s_q),
                d.head(k.as_ptr(), b, h, d.s_k),
            );
            for (r0, r1, w) in d.blocks() {
                // SAFETY: as in `forward`; each task writes only its own weights.
                unsafe { block_weights(&mut p[r0 * d.s_k..], qh, kh, (r0, r1, w), d) };
            }
        });
    probs
}

/// Adds the gradients of q, k and v given the output's gradient `dy`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
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
    (0..d.batch * d.heads).into_par_iter().for_each_init(
        || (vec![0.0f32; d.block_len()], vec![0.0f32; d.block_len()]),
        |(p, ds), task| {
            let (b, h) = (task / d.heads, task % d.heads);
            let (qh, kh, vh, dyh) = (
                d.head(q.as_ptr(), b, h, d.s_q),
                d.head(k.as_ptr(), b, h, d.s_k),
                d.head(v.as_ptr(), b, h, d.s_k),
                d.head(dy.as_ptr(), b, h, d.s_q),
            );
            let wd = d.width();
            // SAFETY: as in `forward`; each task adds only into its own head's columns.
            for (r0, r1, w) in d.blocks() {
                let n = (r1 - r0) * d.s_k;
                let pm = Mat::strided(p.as_ptr(), r1 - r0, w, d.s_k);
                let (qb, dyb, keys, values) = (
                    qh.rows(r0, r1),
                    dyh.rows(r0, r1),
                    kh.rows(0, w),
                    vh.rows(0, w),
                );
                unsafe {
                    block_weights(p, qh, kh, (r0, r1, w), d);
                    // dP = dY·Vᵀ, then dS (without the scale, folded into the products below).
                    gemm_raw(ds.as_mut_ptr(), d.s_k, dyb, values.t(), 1.0, false, false);
                    softmax_backward_rows(&p[..n], &mut ds[..n], d.s_k, w);
                    let dsm = Mat::strided(ds.as_ptr(), r1 - r0, w, d.s_k);
                    gemm_raw(
                        d.head_mut(dv, b, h, d.s_k, 0),
                        wd,
                        pm.t(),
                        dyb,
                        1.0,
                        true,
                        false,
                    );
                    gemm_raw(
                        d.head_mut(dq, b, h, d.s_q, r0),
                        wd,
                        dsm,
                        keys,
                        d.scale(),
                        true,
                        false,
                    );
                    gemm_raw(
                        d.head_mut(dk, b, h, d.s_k, 0),
                        wd,
                        dsm.t(),
                        qb,
                        d.scale(),
                        true,
                        false,
                    );
                }
            }
        },
    );
}
