//! LoRA (Hu et al. 2021): a frozen linear layer plus a trainable low-rank update,
//! `y = base(x) + (alpha / rank) · B·A·dropout(x)`, with A `rank × in` (Kaiming-uniform, as
//! peft) and B `out × rank` (zeros, so a fresh adapter leaves the model unchanged).
//!
//! The base is frozen by construction, not by the optimiser skipping it: its product records
//! a backward that passes the gradient on to the input only (`FrozenLinear`), so no gradient
//! is ever allocated for the base weight or bias, and since `visit_params` lists only A and B,
//! no optimiser moments exist for them either. The rank is a run-time dimension: adapters add
//! no compiled shapes.

use super::kernels::host::{take_grad, to_host};
use super::kernels::linear::{self, Weight};
use super::kernels::{Act, FusedOps};
use super::layers::Linear;
use super::params::ParamFn;
use anyhow::Result;
use dfdx::prelude::*;
use rand::Rng;

/// `x·wᵀ + b` whose backward reaches `x` only: `w` and `b` get no gradient.
pub trait FrozenLinear: FusedOps {
    fn linear_frozen_base<const I: usize, const O: usize, T: Tape<f32, Self>>(
        x: Act<I, Self, T>,
        w: &Tensor<Rank2<O, I>, f32, Self>,
        b: &Tensor<Rank1<O>, f32, Self>,
    ) -> Act<O, Self, T>;
}

impl FrozenLinear for Cpu {
    fn linear_frozen_base<const I: usize, const O: usize, T: Tape<f32, Self>>(
        x: Act<I, Self, T>,
        w: &Tensor<Rank2<O, I>, f32, Self>,
        b: &Tensor<Rank1<O>, f32, Self>,
    ) -> Act<O, Self, T> {
        let (x, mut tape) = x.split_tape();
        let (batch, seq, _) = *x.shape();
        let (xs, ws) = (to_host(&x), to_host(w));
        let out = linear::forward(&xs, Weight::OutByIn(&ws), Some(&to_host(b)), None, I, O);
        let y = x.device().tensor_from_vec(out, (batch, seq, Const::<O>));
        if T::OWNS_TAPE {
            let y_handle = y.clone();
            tape.add_backward_op(move |grads| {
                let dy = take_grad(grads, &y_handle)?;
                linear::backward_input(&dy, &ws, grads.get_or_alloc_mut(&x)?, I, O);
                Ok(())
            });
        }
        y.put_tape(tape)
    }
}

#[cfg(feature = "cuda")]
impl FrozenLinear for Cuda {
    /// Composed from dfdx ops on a copy of the weights: dfdx's matmul backward always computes
    /// both operands' gradients, so the copy's gradient is computed (and dropped with the
    /// gradient table) but the real weights, keyed by their own ids, never get one. A CUDA
    /// kernel for the input-only backward would save that product.
    fn linear_frozen_base<const I: usize, const O: usize, T: Tape<f32, Self>>(
        x: Act<I, Self, T>,
        w: &Tensor<Rank2<O, I>, f32, Self>,
        b: &Tensor<Rank1<O>, f32, Self>,
    ) -> Act<O, Self, T> {
        let (w, b) = (w.clone() * 1.0, b.clone() * 1.0);
        super::kernels::linear_composed(x, &w, Some(&b), None)
    }
}

/// What shapes an adapter: its rank, `alpha` (the update is scaled by `alpha / rank`) and the
/// dropout applied to the adapter's input while training.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoraConfig {
    pub rank: usize,
    pub alpha: f32,
    pub dropout: f32,
}

impl LoraConfig {
    pub fn scale(&self) -> f32 {
        self.alpha / self.rank as f32
    }
}

/// A frozen [`Linear`] with a trainable low-rank update.
#[derive(Clone, Debug)]
pub struct LoraLinear<const I: usize, const O: usize, D: Device<f32>> {
    pub base: Linear<I, O, D>,
    /// `rank × in`.
    pub a: Tensor<(usize, Const<I>), f32, D>,
    /// `out × rank`.
    pub b: Tensor<(Const<O>, usize), f32, D>,
    pub cfg: LoraConfig,
}

impl<const I: usize, const O: usize, D: Device<f32> + FrozenLinear> LoraLinear<I, O, D> {
    /// Wraps `base` with a fresh adapter: A drawn as peft draws it (Kaiming-uniform with
    /// a = √5, i.e. uniform in ±1/√in), B zero.
    pub fn new(base: Linear<I, O, D>, cfg: LoraConfig, rng: &mut impl Rng) -> Self {
        assert!(cfg.rank > 0, "a LoRA rank must be at least 1");
        let dev = base.weight.device().clone();
        let bound = 1.0 / (I as f32).sqrt();
        let a: Vec<f32> = (0..cfg.rank * I)
            .map(|_| rng.gen_range(-bound..bound))
            .collect();
        Self {
            a: dev.tensor_from_vec(a, (cfg.rank, Const::<I>)),
            b: dev.zeros_like(&(Const::<O>, cfg.rank)),
            base,
            cfg,
        }
    }

    /// `base(x) + scale · B·A·dropout(x)`; dropout only when `training`.
    pub fn forward<T: Tape<f32, D>>(&self, x: Act<I, D, T>, training: bool) -> Act<O, D, T> {
        // Two branches from one input: the base's product records its backward (to x only)
        // first, then the adapter takes the tape on, and the final sum joins them.
        let (x, tape) = x.split_tape();
        let (base, tape) =
            D::linear_frozen_base(x.clone().put_tape(tape), &self.base.weight, &self.base.bias)
                .split_tape();
        let x = x.put_tape(tape);
        let x = match training && self.cfg.dropout > 0.0 {
            true => x.dropout(self.cfg.dropout),
            false => x,
        };
        let down = x.matmul(self.a.retaped::<T>().permute::<_, Axes2<1, 0>>());
        let up = down.matmul(self.b.retaped::<T>().permute::<_, Axes2<1, 0>>());
        up * self.cfg.scale() + base
    }

    /// The plain layer with the update folded in, `W + scale · B·A`, for generation and export.
    pub fn merged(&self) -> Linear<I, O, D> {
        let update: Tensor<Rank2<O, I>, f32, D> = self.b.clone().matmul(self.a.clone());
        Linear {
            weight: self.base.weight.clone() + update * self.cfg.scale(),
            bias: self.base.bias.clone(),
        }
    }

    /// The trainable parameters, named as peft names them under `prefix` (a module path
    /// such as `transformer.h.0.mlp.c_fc`); the base is not listed, so nothing updates it.
    pub fn visit_adapters(&mut self, prefix: &str, f: &mut ParamFn<'_, D>) -> Result<()>
    where
        D: super::raw::RawStorage,
    {
        f(&format!("{prefix}.lora_A.weight"), &mut self.a, false)?;
        f(&format!("{prefix}.lora_B.weight"), &mut self.b, false)
    }
}

#[cfg(test)]
#[path = "lora/tests.rs"]
mod tests;
