//! The clipped surrogate objective shared by PPO and GRPO, and the k3 KL estimator.

use crate::model::Backend;
use dfdx::prelude::*;

pub type Flat<D, T = NoneTape> = Tensor<(usize, usize), f32, D, T>;

/// −E[min(ρA, clip(ρ, 1−ε, 1+ε)A)] over masked positions (mask sums to one), ρ = exp(new − old).
/// Returns the loss and ρ (for clip-fraction and ratio logging).
pub fn clipped_policy_loss<D: Backend>(
    new_logps: Flat<D, OwnedTape<f32, D>>,
    old_logps: Flat<D>,
    advantages: Flat<D>,
    weights: Flat<D>,
    clip: f32,
) -> (Tensor<Rank0, f32, D, OwnedTape<f32, D>>, Vec<f32>) {
    let ratio = (new_logps - old_logps).exp();
    let (ratio, tape) = ratio.split_tape();
    let values = crate::util::readback::to_vec(&ratio);
    let unclipped = ratio.clone().put_tape(tape) * advantages.clone();
    let clipped = ratio
        .retaped::<OwnedTape<f32, D>>()
        .clamp(1.0 - clip, 1.0 + clip)
        * advantages;
    (
        (unclipped.minimum(clipped) * weights).sum().negate(),
        values,
    )
}

/// The ratios at the positions the mask counts (the answer tokens).
pub fn masked_ratios(ratios: &[f32], mask: &[bool]) -> Vec<f32> {
    ratios
        .iter()
        .zip(mask)
        .filter(|(_, &m)| m)
        .map(|(&r, _)| r)
        .collect()
}

/// The share of ratios the clip cut off.
pub fn clip_fraction(masked: &[f32], clip: f32) -> f64 {
    masked.iter().filter(|r| (**r - 1.0).abs() > clip).count() as f64 / masked.len().max(1) as f64
}

/// k3 estimate of KL(π‖π_ref) per token: exp(ref − new) − (ref − new) − 1 (≥ 0, unbiased).
pub fn k3_kl<D: Backend, T: Tape<f32, D>>(new_logps: Flat<D, T>, ref_logps: Flat<D>) -> Flat<D, T> {
    let d = new_logps.negate() + ref_logps;
    let (d, tape) = d.split_tape();
    d.clone().put_tape(tape).exp() - d - 1.0
}
