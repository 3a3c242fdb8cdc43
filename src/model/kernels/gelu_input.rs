//! A linear op whose input goes through GELU first: the MLP's second projection. Fused, the
//! op keeps only the MLP's hidden activations `h` for the backward and computes `gelu(h)`
//! again there, instead of the separate ops holding both `h` (for GELU's derivative) and
//! `gelu(h)` (for the product's): four widths per position less at GPT-2's 4× MLP, for one
//! GELU per layer more.

use super::pool::{recycle, scratch};
use super::simd;
use dfdx::prelude::*;
use dfdx::tensor::Gradients;

/// What the product multiplies, from the host copy `hs` of the op's input: `gelu(hs)` when
/// `gelu`, else `hs` itself.
pub fn product_input(hs: Vec<f32>, gelu: bool) -> Vec<f32> {
    if !gelu {
        return hs;
    }
    let g = simd::gelu_forward(&hs);
    recycle(hs);
    g
}

/// [`product_input`] in the backward, which also needs `hs` (GELU's derivative): `None`
/// when there is no GELU, so the caller reads `hs` for both.
pub fn recomputed(hs: &[f32], gelu: bool) -> Option<Vec<f32>> {
    gelu.then(|| simd::gelu_forward(hs))
}

/// Adds the gradient of the op's input `x`, whose values are `hs`: `add` adds the gradient
/// of what the product saw, which is `x`'s own without GELU, and goes through GELU's
/// derivative with it.
pub fn add_input_grad<S: Shape>(
    grads: &mut Gradients<f32, Cpu>,
    x: &Tensor<S, f32, Cpu>,
    hs: &[f32],
    gelu: bool,
    add: impl FnOnce(&mut [f32]),
) -> Result<(), CpuError> {
    let dx = grads.get_or_alloc_mut(x)?;
    if !gelu {
        add(dx);
        return Ok(());
    }
    let mut dg = scratch(hs.len());
    dg.fill(0.0);
    add(&mut dg);
    simd::gelu_backward(hs, &dg, dx);
    recycle(dg);
    Ok(())
}
