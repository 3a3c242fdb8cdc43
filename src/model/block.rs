//! One pre-LayerNorm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).

use super::attention::{CausalSelfAttention, KvPair};
use super::kernels::FusedOps;
use super::layers::{LayerNorm, Linear};
use dfdx::prelude::*;

/// The 4x-wide GELU MLP. `F` is `4 * M` (stable Rust cannot compute it from `M`).
#[derive(Clone, Debug)]
pub struct Mlp<const M: usize, const F: usize, D: Device<f32>> {
    pub fc: Linear<M, F, D>,
    pub proj: Linear<F, M, D>,
}

impl<const M: usize, const F: usize, D: Device<f32> + FusedOps> Mlp<M, F, D> {
    pub fn forward<T: Tape<f32, D>>(
        &self,
        x: Tensor<(usize, usize, Const<M>), f32, D, T>,
    ) -> Tensor<(usize, usize, Const<M>), f32, D, T> {
        // tanh-approximated GELU, as GPT-2 ("gelu_new").
        self.proj.forward(D::gelu(self.fc.forward(x)))
    }
}

#[derive(Clone, Debug)]
pub struct Block<const M: usize, const F: usize, D: Device<f32>> {
    pub ln_1: LayerNorm<M, D>,
    pub attn: CausalSelfAttention<M, D>,
    pub ln_2: LayerNorm<M, D>,
    pub mlp: Mlp<M, F, D>,
}

impl<const M: usize, const F: usize, D: Device<f32> + FusedOps> Block<M, F, D> {
    pub fn forward<T: Tape<f32, D>>(
        &self,
        x: Tensor<(usize, usize, Const<M>), f32, D, T>,
    ) -> Tensor<(usize, usize, Const<M>), f32, D, T> {
        // The residual stream is passed without its tape: the add records the backward op
        // for both operands on the tape of the branch.
        let (x, tape) = x.split_tape();
        let a = self
            .attn
            .forward(self.ln_1.forward(x.clone().put_tape(tape)));
        let (x, tape) = D::residual_add(a, x).split_tape();
        let m = self
            .mlp
            .forward(self.ln_2.forward(x.clone().put_tape(tape)));
        D::residual_add(m, x)
    }

    pub fn forward_cached(
        &self,
        x: Tensor<(usize, usize, Const<M>), f32, D>,
        cache: Option<KvPair<D>>,
    ) -> (Tensor<(usize, usize, Const<M>), f32, D>, KvPair<D>) {
        let (a, cache) = self
            .attn
            .forward_cached(self.ln_1.forward(x.clone()), cache);
        let x = D::residual_add(a, x);
        let x = D::residual_add(self.mlp.forward(self.ln_2.forward(x.clone())), x);
        (x, cache)
    }
}
