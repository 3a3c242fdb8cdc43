//! LoRA (Hu et al. 2021): a frozen linear layer plus a trainable low-rank update,
//! `y = base(x) + (alpha / rank) · B·A·dropout(x)`, with A `rank × in` (Kaiming-uniform, as
//! peft) and B `out × rank` (zeros, so a fresh adapter leaves the model unchanged).
//!
//! The base is frozen by construction, not by the optimiser skipping it: its product records
//! a backward that passes the gradient on to the input only (`FrozenLinear`), so no gradient
//! is ever allocated for the base weight or bias, and since the model then lists only A and B
//! (`visit_params`), no optimiser moments exist for them either. The rank and the output
//! width of an adapter are run-time dimensions: adapters add no compiled shapes, and one
//! adapter can cover several base layers (GPT-2's fused `c_attn`, see `attention.rs`).

use super::kernels::host::{take_grad, to_host};
use super::kernels::linear::{self, Weight};
use super::kernels::pool::recycle;
use super::kernels::{linear_composed, Act, FusedOps};
use super::layers::Linear;
use super::params::ParamFn;
use anyhow::{bail, ensure, Result};
use dfdx::prelude::*;
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// The frozen layers of a LoRA model: products whose backward reaches the input (and
/// `skip`, the residual stream) and the adapter, never the base weight or bias; the weight
/// product of the backward is not computed at all.
pub trait FrozenLinear: FusedOps {
    /// `x·wᵀ + b (+ skip)`.
    fn linear_frozen_base<const I: usize, const O: usize, T: Tape<f32, Self>>(
        x: Act<I, Self, T>,
        w: &Tensor<Rank2<O, I>, f32, Self>,
        b: Option<&Tensor<Rank1<O>, f32, Self>>,
        skip: Option<Act<O, Self, NoneTape>>,
    ) -> Act<O, Self, T>;

    /// `base(x) (+ skip) + scale · dropout(x)·Aᵀ·B[rows]ᵀ`: a frozen layer with the
    /// update of its outputs `rows` of `adapter` (all of B, or one block of stacked layers).
    fn linear_lora<const I: usize, const O: usize, T: Tape<f32, Self>>(
        x: Act<I, Self, T>,
        base: &Linear<I, O, Self>,
        adapter: &Adapter<I, Self>,
        rows: Range<usize>,
        run: LoraRun,
        skip: Option<Act<O, Self, NoneTape>>,
    ) -> Act<O, Self, T> {
        lora_composed(x, base, adapter, rows, run, skip)
    }

    /// [`Self::linear_lora`] of `gelu(x)`: the MLP's second projection with its activation,
    /// in one op that keeps only `x` for the backward on the CPU (see `gelu_input.rs`).
    fn gelu_linear_lora<const I: usize, const O: usize, T: Tape<f32, Self>>(
        x: Act<I, Self, T>,
        base: &Linear<I, O, Self>,
        adapter: &Adapter<I, Self>,
        run: LoraRun,
        skip: Option<Act<O, Self, NoneTape>>,
    ) -> Act<O, Self, T> {
        Self::linear_lora(Self::gelu(x), base, adapter, 0..O, run, skip)
    }
}

/// [`FrozenLinear::linear_lora`] from dfdx ops (CUDA, the CPU's portable path, dropout): the
/// base's product records its backward (to x only) first, then the adapter takes the tape
/// on, and the final sum joins them (the tape runs in reverse, so the base's op reads its
/// output's finished gradient).
pub fn lora_composed<const I: usize, const O: usize, D: FrozenLinear, T: Tape<f32, D>>(
    x: Act<I, D, T>,
    base: &Linear<I, O, D>,
    adapter: &Adapter<I, D>,
    rows: Range<usize>,
    run: LoraRun,
    skip: Option<Act<O, D, NoneTape>>,
) -> Act<O, D, T> {
    let (x, tape) = x.split_tape();
    let (y, tape) = D::linear_frozen_base(
        x.clone().put_tape(tape),
        &base.weight,
        Some(&base.bias),
        skip,
    )
    .split_tape();
    let down = adapter.down(x.put_tape(tape), run);
    adapter.up_onto(down, rows, run, y)
}

impl FrozenLinear for Cpu {
    fn linear_frozen_base<const I: usize, const O: usize, T: Tape<f32, Self>>(
        x: Act<I, Self, T>,
        w: &Tensor<Rank2<O, I>, f32, Self>,
        b: Option<&Tensor<Rank1<O>, f32, Self>>,
        skip: Option<Act<O, Self, NoneTape>>,
    ) -> Act<O, Self, T> {
        if super::kernels::portable::portable() {
            return frozen_composed(x, w, b, skip);
        }
        let (x, mut tape) = x.split_tape();
        let (batch, seq, _) = *x.shape();
        let (xs, ws) = (to_host(&x), to_host(w));
        let bias = b.map(to_host);
        let start = skip.as_ref().map(to_host);
        let out = linear::forward(&xs, Weight::OutByIn(&ws), bias.as_deref(), start, I, O);
        [Some(xs), Some(ws), bias]
            .into_iter()
            .flatten()
            .for_each(recycle);
        let y = x.device().tensor_from_vec(out, (batch, seq, Const::<O>));
        if T::OWNS_TAPE {
            // The weight is held by reference and copied again in the backward, not kept as
            // a host copy from the forward, so a frozen model's weights are not in memory
            // twice for the whole step; the input's values are not needed at all.
            let (y, x, w) = (y.ghost(), x.ghost(), w.clone());
            let skip = skip.map(|s| s.ghost());
            tape.add_backward_op(move |grads| {
                let dy = take_grad!(grads, &y)?;
                let ws = to_host(&w);
                linear::backward_input(&dy, &ws, grads.get_or_alloc_mut(&x)?, I, O);
                if let Some(skip) = &skip {
                    let ds = grads.get_or_alloc_mut(skip)?;
                    ds.par_iter_mut()
                        .zip(dy.par_iter())
                        .for_each(|(g, d)| *g += d);
                }
                recycle(dy);
                recycle(ws);
                Ok(())
            });
        }
        y.put_tape(tape)
    }

    fn linear_lora<const I: usize, const O: usize, T: Tape<f32, Self>>(
        x: Act<I, Self, T>,
        base: &Linear<I, O, Self>,
        adapter: &Adapter<I, Self>,
        rows: Range<usize>,
        run: LoraRun,
        skip: Option<Act<O, Self, NoneTape>>,
    ) -> Act<O, Self, T> {
        // Dropout needs the dropped input beside the plain one: the composed ops keep both.
        if super::kernels::portable::portable() || run.dropout > 0.0 {
            return lora_composed(x, base, adapter, rows, run, skip);
        }
        let pair = (adapter.a.clone(), adapter.b.clone());
        cpu::forward(x, base, pair, rows, run.scale, skip, false)
    }

    fn gelu_linear_lora<const I: usize, const O: usize, T: Tape<f32, Self>>(
        x: Act<I, Self, T>,
        base: &Linear<I, O, Self>,
        adapter: &Adapter<I, Self>,
        run: LoraRun,
        skip: Option<Act<O, Self, NoneTape>>,
    ) -> Act<O, Self, T> {
        if super::kernels::portable::portable() || run.dropout > 0.0 {
            return lora_composed(Self::gelu(x), base, adapter, 0..O, run, skip);
        }
        let pair = (adapter.a.clone(), adapter.b.clone());
        cpu::forward(x, base, pair, 0..O, run.scale, skip, true)
    }
}

#[cfg(feature = "cuda")]
impl FrozenLinear for Cuda {
    fn linear_frozen_base<const I: usize, const O: usize, T: Tape<f32, Self>>(
        x: Act<I, Self, T>,
        w: &Tensor<Rank2<O, I>, f32, Self>,
        b: Option<&Tensor<Rank1<O>, f32, Self>>,
        skip: Option<Act<O, Self, NoneTape>>,
    ) -> Act<O, Self, T> {
        frozen_composed(x, w, b, skip)
    }
}

/// The frozen product from dfdx ops (CUDA, and the CPU's portable path), on a copy of the
/// weights: dfdx's matmul backward always computes both operands' gradients, so the copy's
/// gradient is computed (and dropped with the gradient table) but the real weights, keyed by
/// their own ids, never get one. A device kernel for the input-only backward would save that
/// product and its memory.
pub fn frozen_composed<const I: usize, const O: usize, D: Device<f32>, T: Tape<f32, D>>(
    x: Act<I, D, T>,
    w: &Tensor<Rank2<O, I>, f32, D>,
    b: Option<&Tensor<Rank1<O>, f32, D>>,
    skip: Option<Act<O, D, NoneTape>>,
) -> Act<O, D, T> {
    let w = w.clone() * 1.0;
    let b = b.map(|b| b.clone() * 1.0);
    linear_composed(x, &w, b.as_ref(), skip)
}

/// A stage's `lora = { rank, alpha, dropout, targets }`: the adapters' rank, `alpha` (the
/// update is scaled by `alpha / rank`), the dropout on the adapters' input while training,
/// and which of GPT-2's linear layers get one (see [`Targets::from_names`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoraSpec {
    pub rank: usize,
    pub alpha: f32,
    pub dropout: f32,
    pub targets: Vec<String>,
}

impl LoraSpec {
    pub fn scale(&self) -> f32 {
        self.alpha / self.rank as f32
    }

    /// The spec's values checked, and its targets resolved.
    pub fn targets(&self) -> Result<Targets> {
        ensure!(self.rank > 0, "a LoRA rank must be at least 1");
        ensure!(
            self.alpha.is_finite() && self.alpha > 0.0,
            "LoRA alpha must be positive (got {})",
            self.alpha
        );
        ensure!(
            (0.0..1.0).contains(&self.dropout),
            "LoRA dropout must be in [0, 1) (got {})",
            self.dropout
        );
        Targets::from_names(&self.targets)
    }
}

/// Which of a block's four linear layers carry an adapter, by GPT-2's module names.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Targets {
    pub c_attn: bool,
    pub attn_c_proj: bool,
    pub c_fc: bool,
    pub mlp_c_proj: bool,
}

/// The names a target list accepts.
pub const TARGET_NAMES: [&str; 7] = [
    "attn",
    "mlp",
    "c_attn",
    "attn.c_proj",
    "c_fc",
    "mlp.c_proj",
    "c_proj",
];

impl Targets {
    /// `attn` = c_attn + attn.c_proj, `mlp` = c_fc + mlp.c_proj, or module names; `c_proj`
    /// alone means both projections, as it does in peft's `target_modules`.
    pub fn from_names(names: &[String]) -> Result<Self> {
        ensure!(
            !names.is_empty(),
            "LoRA targets are empty: name at least one of {}",
            TARGET_NAMES.join(", ")
        );
        let mut t = Targets::default();
        for name in names {
            match name.as_str() {
                "attn" => (t.c_attn, t.attn_c_proj) = (true, true),
                "mlp" => (t.c_fc, t.mlp_c_proj) = (true, true),
                "c_attn" => t.c_attn = true,
                "attn.c_proj" => t.attn_c_proj = true,
                "c_fc" => t.c_fc = true,
                "mlp.c_proj" => t.mlp_c_proj = true,
                "c_proj" => (t.attn_c_proj, t.mlp_c_proj) = (true, true),
                other => bail!(
                    "unknown LoRA target {other:?}: expected one of {}",
                    TARGET_NAMES.join(", ")
                ),
            }
        }
        Ok(t)
    }

    /// The targeted modules' paths inside a block (`attn.c_attn`, ...), in peft's order.
    pub fn modules(&self) -> Vec<&'static str> {
        [
            (self.c_attn, "attn.c_attn"),
            (self.attn_c_proj, "attn.c_proj"),
            (self.c_fc, "mlp.c_fc"),
            (self.mlp_c_proj, "mlp.c_proj"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// How adapters act in one forward: their scale, and the dropout on their input (zero
/// outside training).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoraRun {
    pub scale: f32,
    pub dropout: f32,
}

impl LoraRun {
    pub fn new(spec: &LoraSpec, training: bool) -> Self {
        Self {
            scale: spec.scale(),
            dropout: if training { spec.dropout } else { 0.0 },
        }
    }
}

/// One adapter on a layer (or several stacked layers) with `I` inputs.
#[derive(Clone, Debug)]
pub struct Adapter<const I: usize, D: Device<f32>> {
    /// `rank × in`.
    pub a: Tensor<(usize, Const<I>), f32, D>,
    /// `out × rank`.
    pub b: Tensor<(usize, usize), f32, D>,
}

impl<const I: usize, D: Device<f32>> Adapter<I, D> {
    /// A fresh adapter for `out` outputs: A drawn as peft draws it (Kaiming-uniform with
    /// a = √5, i.e. uniform in ±1/√in), B zero.
    pub fn new(dev: &D, out: usize, rank: usize, rng: &mut impl Rng) -> Self {
        let bound = 1.0 / (I as f32).sqrt();
        let a: Vec<f32> = (0..rank * I)
            .map(|_| rng.gen_range(-bound..bound))
            .collect();
        Self {
            a: crate::util::upload::tensor(dev, a, (rank, Const::<I>)),
            b: dev.zeros_like(&(out, rank)),
        }
    }

    /// `dropout(x)·Aᵀ`, `(batch, seq, rank)`: the input's projection every output shares.
    pub fn down<T: Tape<f32, D>>(
        &self,
        x: Act<I, D, T>,
        run: LoraRun,
    ) -> Tensor<(usize, usize, usize), f32, D, T> {
        let x = match run.dropout > 0.0 {
            true => x.dropout(run.dropout),
            false => x,
        };
        x.matmul(self.a.retaped::<T>().permute::<_, Axes2<1, 0>>())
    }

    /// `base + scale · down·B[rows]ᵀ`: the update of the outputs `rows` (all of B, or the
    /// block of one stacked layer) added onto the frozen layer's output.
    pub fn up_onto<const O: usize, T: Tape<f32, D>>(
        &self,
        down: Tensor<(usize, usize, usize), f32, D, T>,
        rows: Range<usize>,
        run: LoraRun,
        base: Act<O, D, NoneTape>,
    ) -> Act<O, D, T> {
        assert_eq!(rows.len(), O, "adapter rows must match the layer's outputs");
        let b = self.b.retaped::<T>();
        let b = match rows.len() == self.b.shape().0 {
            true => b,
            false => b.slice((rows, ..)),
        };
        let up = down.matmul(b.permute::<_, Axes2<1, 0>>()) * run.scale;
        let (batch, seq, _) = *up.shape();
        up.reshape_like(&(batch, seq, Const::<O>)) + base
    }

    /// `scale · B[rows]·A`, the update as a weight matrix (for merging).
    pub fn update<const O: usize>(
        &self,
        rows: Range<usize>,
        scale: f32,
    ) -> Tensor<Rank2<O, I>, f32, D> {
        let b = self.b.clone().slice((rows, ..));
        (b.matmul(self.a.clone()) * scale).realize()
    }

    /// A and B, named as peft names them under `module` (`transformer.h.0.mlp.c_fc`).
    pub fn visit(&mut self, module: &str, f: &mut ParamFn<'_, D>) -> Result<()>
    where
        D: super::raw::RawStorage,
    {
        f(&format!("{module}.lora_A.weight"), &mut self.a, false)?;
        f(&format!("{module}.lora_B.weight"), &mut self.b, false)
    }
}

/// A frozen `base` layer in a LoRA model's training forward, plus its adapter if it has one:
/// `base(x) (+ skip) + scale · B·A·dropout(x)`.
pub fn frozen_linear<const I: usize, const O: usize, D: FrozenLinear, T: Tape<f32, D>>(
    base: &Linear<I, O, D>,
    adapter: Option<&Adapter<I, D>>,
    run: LoraRun,
    x: Act<I, D, T>,
    skip: Option<Act<O, D, NoneTape>>,
) -> Act<O, D, T> {
    match adapter {
        None => D::linear_frozen_base(x, &base.weight, Some(&base.bias), skip),
        Some(adapter) => D::linear_lora(x, base, adapter, 0..O, run, skip),
    }
}

/// `base` with `adapter`'s update of the outputs `rows` folded into its weight.
pub fn merge<const I: usize, const O: usize, D: Device<f32>>(
    base: &Linear<I, O, D>,
    adapter: &Adapter<I, D>,
    rows: Range<usize>,
    scale: f32,
) -> Linear<I, O, D> {
    Linear {
        weight: base.weight.clone() + adapter.update::<O>(rows, scale),
        bias: base.bias.clone(),
    }
}

#[path = "lora/cpu.rs"]
mod cpu;
#[cfg(test)]
#[path = "lora/tests.rs"]
mod tests;
