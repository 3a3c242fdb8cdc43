//! One pre-LayerNorm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).

use super::adapters::{BlockAdapters, MlpAdapters};
use super::attention::{CausalSelfAttention, KvPair};
use super::kernels::FrozenWeights;
use super::layers::{LayerNorm, Linear};
use super::lora::{frozen_linear, merge, FrozenLinear, LoraRun};
use dfdx::prelude::*;

type Act<const M: usize, D> = Tensor<(usize, usize, Const<M>), f32, D>;

/// The 4x-wide GELU MLP. `F` is `4 * M` (stable Rust cannot compute it from `M`).
#[derive(Clone, Debug)]
pub struct Mlp<const M: usize, const F: usize, D: Device<f32>> {
    pub fc: Linear<M, F, D>,
    pub proj: Linear<F, M, D>,
}

impl<const M: usize, const F: usize, D: Device<f32> + FrozenLinear> Mlp<M, F, D> {
    /// `skip + mlp(x)`: the second projection adds straight onto the residual stream. With
    /// `lora`, the layers are frozen and the adapters carry the update.
    pub fn forward<T: Tape<f32, D>>(
        &self,
        x: Tensor<(usize, usize, Const<M>), f32, D, T>,
        skip: Tensor<(usize, usize, Const<M>), f32, D>,
        lora: Option<(&MlpAdapters<M, F, D>, LoraRun)>,
    ) -> Tensor<(usize, usize, Const<M>), f32, D, T> {
        // tanh-approximated GELU, as GPT-2 ("gelu_new"), in the same op as the second
        // projection when that keeps its input (see `kernels/gelu_input.rs`).
        let (proj, skip) = (&self.proj, Some(skip));
        let Some((adapters, run)) = lora else {
            let hidden = self.fc.forward(x);
            return D::gelu_linear(hidden, &proj.weight, Some(&proj.bias), skip);
        };
        let hidden = frozen_linear(&self.fc, adapters.c_fc.as_ref(), run, x, None);
        match adapters.c_proj.as_ref() {
            Some(a) => D::gelu_linear_lora(hidden, proj, a, run, skip),
            None => D::linear_frozen_base(D::gelu(hidden), &proj.weight, Some(&proj.bias), skip),
        }
    }

    /// [`Self::forward`] in generation, its weights read from the generation's `frozen`.
    pub fn forward_frozen(
        &self,
        x: Tensor<(usize, usize, Const<M>), f32, D>,
        skip: Tensor<(usize, usize, Const<M>), f32, D>,
        frozen: &mut FrozenWeights,
    ) -> Tensor<(usize, usize, Const<M>), f32, D> {
        let hidden = D::gelu(self.fc.forward_frozen(x, frozen));
        self.proj.forward_onto_frozen(hidden, skip, frozen)
    }
}

#[derive(Clone, Debug)]
pub struct Block<const M: usize, const F: usize, D: Device<f32>> {
    pub ln_1: LayerNorm<M, D>,
    pub attn: CausalSelfAttention<M, D>,
    pub ln_2: LayerNorm<M, D>,
    pub mlp: Mlp<M, F, D>,
}

impl<const M: usize, const F: usize, D: Device<f32> + FrozenLinear> Block<M, F, D> {
    /// With `lora`, the block's linear layers are frozen and its adapters carry the update.
    pub fn forward<T: Tape<f32, D>>(
        &self,
        x: Tensor<(usize, usize, Const<M>), f32, D, T>,
        lora: Option<(&BlockAdapters<M, F, D>, LoraRun)>,
    ) -> Tensor<(usize, usize, Const<M>), f32, D, T> {
        // The residual stream is passed without its tape into each branch's last projection,
        // which adds onto it and gives it its gradient.
        let (x, tape) = x.split_tape();
        let attn = lora.map(|(a, run)| (&a.attn, run));
        let x = (self.attn).forward(self.ln_1.forward(x.clone().put_tape(tape)), x, attn);
        let (x, tape) = x.split_tape();
        let mlp = lora.map(|(a, run)| (&a.mlp, run));
        (self.mlp).forward(self.ln_2.forward(x.clone().put_tape(tape)), x, mlp)
    }

    /// Folds `adapters`' updates into this block's weights (`W + scale·B·A`): c_attn's B row
    /// blocks into q, k and v.
    pub fn merge(&mut self, adapters: &BlockAdapters<M, F, D>, scale: f32) {
        let (attn, mlp) = (&mut self.attn, &mut self.mlp);
        if let Some(a) = &adapters.attn.c_attn {
            attn.q = merge(&attn.q, a, 0..M, scale);
            attn.k = merge(&attn.k, a, M..2 * M, scale);
            attn.v = merge(&attn.v, a, 2 * M..3 * M, scale);
        }
        if let Some(a) = &adapters.attn.c_proj {
            attn.proj = merge(&attn.proj, a, 0..M, scale);
        }
        if let Some(a) = &adapters.mlp.c_fc {
            mlp.fc = merge(&mlp.fc, a, 0..F, scale);
        }
        if let Some(a) = &adapters.mlp.c_proj {
            mlp.proj = merge(&mlp.proj, a, 0..M, scale);
        }
    }

    /// [`Self::forward`] of a prompt, also returning its attention keys and values.
    pub fn forward_prefill(
        &self,
        x: Tensor<(usize, usize, Const<M>), f32, D>,
        frozen: &mut FrozenWeights,
    ) -> (Tensor<(usize, usize, Const<M>), f32, D>, KvPair<D>) {
        let (x, kv) = (self.attn).forward_prefill(self.ln_1.forward(x.clone()), x, frozen);
        let x = (self.mlp).forward_frozen(self.ln_2.forward(x.clone()), x, frozen);
        (x, kv)
    }

    /// One new position per sequence of a generation batch; `attend` is the cache's
    /// attention of `q` given new `k` and `v` (see `Gpt::decode`).
    pub fn forward_decode(
        &self,
        x: Tensor<(usize, usize, Const<M>), f32, D>,
        frozen: &mut FrozenWeights,
        attend: impl FnOnce(Act<M, D>, Act<M, D>, Act<M, D>) -> Act<M, D>,
    ) -> Tensor<(usize, usize, Const<M>), f32, D> {
        let x = (self.attn).forward_decode(self.ln_1.forward(x.clone()), x, frozen, attend);
        (self.mlp).forward_frozen(self.ln_2.forward(x.clone()), x, frozen)
    }
}
