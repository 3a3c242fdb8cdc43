//! Causal multi-head self-attention (dfdx 0.13's MultiHeadAttention has no causal mask). The
//! heads stay side by side in `(batch, time, M)` activations; the attention op reads each
//! head's columns in place.

use super::adapters::AttnAdapters;
use super::kernels::causal_attention::{self, Dims};
use super::kernels::FrozenWeights;
use super::lora::{frozen_linear, Adapter, FrozenLinear, LoraRun};

/// One position per row without a tape: `(rows, 1, M)` in generation.
type Act<const M: usize, D> = Tensor<(usize, usize, Const<M>), f32, D>;
use super::layers::Linear;
use crate::util::readback;
use dfdx::prelude::*;

#[derive(Clone, Debug)]
pub struct CausalSelfAttention<const M: usize, D: Device<f32>> {
    pub n_head: usize,
    pub q: Linear<M, M, D>,
    pub k: Linear<M, M, D>,
    pub v: Linear<M, M, D>,
    pub proj: Linear<M, M, D>,
}

/// q with the tape, k and v without (they still receive their gradients).
type QkvTaped<const M: usize, D, T> = (
    Tensor<(usize, usize, Const<M>), f32, D, T>,
    Act<M, D>,
    Act<M, D>,
);

/// Keys and values of the positions seen so far, per layer: `(batch, time, M)`, with the
/// width erased so a cache type does not depend on the preset.
pub type KvPair<D> = (
    Tensor<(usize, usize, usize), f32, D>,
    Tensor<(usize, usize, usize), f32, D>,
);

impl<const M: usize, D: Device<f32> + FrozenLinear> CausalSelfAttention<M, D> {
    /// `skip +` attention over the sequence itself (training, full forward): the output
    /// projection adds straight onto the residual stream `skip`. With `lora`, the layers are
    /// frozen and the adapters carry the update.
    pub fn forward<T: Tape<f32, D>>(
        &self,
        x: Tensor<(usize, usize, Const<M>), f32, D, T>,
        skip: Tensor<(usize, usize, Const<M>), f32, D>,
        lora: Option<(&AttnAdapters<M, D>, LoraRun)>,
    ) -> Tensor<(usize, usize, Const<M>), f32, D, T> {
        if let Some((adapters, run)) = lora {
            return self.forward_lora(x, skip, adapters, run);
        }
        // The tape threads through q, k and v in turn; k and v then travel untaped into the
        // attention op, which still adds their gradients.
        let (x, tape) = x.split_tape();
        let (q, tape) = self.q.forward(x.clone().put_tape(tape)).split_tape();
        let (k, tape) = self.k.forward(x.clone().put_tape(tape)).split_tape();
        let (v, tape) = self.v.forward(x.put_tape(tape)).split_tape();
        let heads = D::causal_attention(q.put_tape(tape), k, v, self.n_head);
        self.proj.forward_onto(heads, skip)
    }

    /// [`Self::forward`] of a LoRA model: q, k and v frozen, plus peft's one `c_attn` adapter
    /// over the three: one A, B's row blocks are q's, k's and v's updates.
    fn forward_lora<T: Tape<f32, D>>(
        &self,
        x: Tensor<(usize, usize, Const<M>), f32, D, T>,
        skip: Tensor<(usize, usize, Const<M>), f32, D>,
        adapters: &AttnAdapters<M, D>,
        run: LoraRun,
    ) -> Tensor<(usize, usize, Const<M>), f32, D, T> {
        let (q, k, v) = match &adapters.c_attn {
            Some(a) if run.dropout == 0.0 => {
                let lora = |l: &Linear<M, M, D>, x, rows| D::linear_lora(x, l, a, rows, run, None);
                let (x, tape) = x.split_tape();
                let (q, tape) = lora(&self.q, x.clone().put_tape(tape), 0..M).split_tape();
                let (k, tape) = lora(&self.k, x.clone().put_tape(tape), M..2 * M).split_tape();
                let (v, tape) = lora(&self.v, x.put_tape(tape), 2 * M..3 * M).split_tape();
                (q.put_tape(tape), k, v)
            }
            _ => self.qkv_shared_down(x, adapters.c_attn.as_ref(), run),
        };
        let heads = D::causal_attention(q, k, v, self.n_head);
        frozen_linear(&self.proj, adapters.c_proj.as_ref(), run, heads, Some(skip))
    }

    /// q, k and v of a LoRA model from dfdx ops, the adapter's input projection (if any)
    /// computed once, so that its dropout draws one mask for the three, as peft's fused
    /// `c_attn` does.
    fn qkv_shared_down<T: Tape<f32, D>>(
        &self,
        x: Tensor<(usize, usize, Const<M>), f32, D, T>,
        c_attn: Option<&Adapter<M, D>>,
        run: LoraRun,
    ) -> QkvTaped<M, D, T> {
        let base =
            |l: &Linear<M, M, D>, x| D::linear_frozen_base(x, &l.weight, Some(&l.bias), None);
        let (x, tape) = x.split_tape();
        let (q, tape) = base(&self.q, x.clone().put_tape(tape)).split_tape();
        let (k, tape) = base(&self.k, x.clone().put_tape(tape)).split_tape();
        let (v, tape) = base(&self.v, x.clone().put_tape(tape)).split_tape();
        let Some(a) = c_attn else {
            return (q.put_tape(tape), k, v);
        };
        let (down, tape) = a.down(x.put_tape(tape), run).split_tape();
        let (k, tape) = a
            .up_onto(down.clone().put_tape(tape), M..2 * M, run, k)
            .split_tape();
        let (v, tape) = a
            .up_onto(down.clone().put_tape(tape), 2 * M..3 * M, run, v)
            .split_tape();
        (a.up_onto(down.put_tape(tape), 0..M, run, q), k, v)
    }

    /// [`Self::forward`] without a tape, also returning the keys and values it computed
    /// (a prompt's prefill, before its positions go into the generation cache).
    pub fn forward_prefill(
        &self,
        x: Tensor<(usize, usize, Const<M>), f32, D>,
        skip: Tensor<(usize, usize, Const<M>), f32, D>,
        frozen: &mut FrozenWeights,
    ) -> (Tensor<(usize, usize, Const<M>), f32, D>, KvPair<D>) {
        let q = self.q.forward_frozen(x.clone(), frozen);
        let k = self.k.forward_frozen(x.clone(), frozen);
        let v = self.v.forward_frozen(x, frozen);
        let out = D::causal_attention(q, k.clone(), v.clone(), self.n_head);
        (
            self.proj.forward_onto_frozen(out, skip, frozen),
            (k.realize(), v.realize()),
        )
    }

    /// `skip +` attention of one new position per sequence of a generation batch: `x` is
    /// `(rows, 1, M)`; `attend` writes the new keys and values into the cache and attends each
    /// row's query over its sequence (see `Gpt::decode`).
    pub fn forward_decode(
        &self,
        x: Tensor<(usize, usize, Const<M>), f32, D>,
        skip: Tensor<(usize, usize, Const<M>), f32, D>,
        frozen: &mut FrozenWeights,
        attend: impl FnOnce(Act<M, D>, Act<M, D>, Act<M, D>) -> Act<M, D>,
    ) -> Tensor<(usize, usize, Const<M>), f32, D> {
        let q = self.q.forward_frozen(x.clone(), frozen);
        let k = self.k.forward_frozen(x.clone(), frozen);
        let v = self.v.forward_frozen(x, frozen);
        self.proj.forward_onto_frozen(attend(q, k, v), skip, frozen)
    }

    /// The attention weights `(batch, head, query, key)` of `x` over itself, for the explorer's
    /// heatmaps: the same host kernel as the CPU forward, which keeps them for backward.
    pub fn weights(&self, x: Tensor<(usize, usize, Const<M>), f32, D>) -> Vec<f32> {
        let (batch, s, _) = *x.shape();
        let q = readback::to_vec(&self.q.forward(x.clone()));
        let k = readback::to_vec(&self.k.forward(x.clone()));
        let dims = Dims {
            batch,
            s_q: s,
            s_k: s,
            heads: self.n_head,
            head_dim: M / self.n_head,
        };
        causal_attention::weights(&q, &k, dims)
    }
}
