//! Losses on shape-erased logits. Masked token cross-entropy is the loss of pretraining and SFT
//! (where only assistant tokens count); log-probabilities of chosen tokens feed DPO and PPO.

use crate::model::{Backend, Logits};
use dfdx::prelude::*;

/// Log-probability of each target token: `(batch, seq)`.
pub fn token_logprobs<D: Backend, T: Tape<f32, D>>(
    logits: Logits<D, T>,
    targets: Tensor<(usize, usize), usize, D>,
) -> Tensor<(usize, usize), f32, D, T> {
    D::token_logprobs(logits, targets)
}

/// Mean cross-entropy over the positions whose weight is non-zero. `weights` holds
/// 1/(number of counted tokens) at counted positions and 0 elsewhere, so the result is the
/// mean over counted tokens only.
pub fn masked_cross_entropy<D: Backend, T: Tape<f32, D>>(
    logits: Logits<D, T>,
    targets: Tensor<(usize, usize), usize, D>,
    weights: Tensor<(usize, usize), f32, D>,
) -> Tensor<Rank0, f32, D, T> {
    (token_logprobs(logits, targets) * weights).sum().negate()
}

/// Builds the weight tensor for `masked_cross_entropy` from a 0/1 mask; also returns the count.
pub fn mask_weights<D: Backend>(
    dev: &D,
    mask: &[bool],
    shape: (usize, usize),
) -> (Tensor<(usize, usize), f32, D>, usize) {
    let count = mask.iter().filter(|&&m| m).count();
    let w = if count == 0 { 0.0 } else { 1.0 / count as f32 };
    let data = mask.iter().map(|&m| if m { w } else { 0.0 }).collect();
    (dev.tensor_from_vec(data, shape), count)
}
