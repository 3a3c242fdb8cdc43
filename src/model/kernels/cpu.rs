//! The CPU custom ops: each computes its forward with the kernels of this folder and, when the
//! input carries a gradient tape, records its backward on it. Gradients are found by tensor
//! id, so inputs that travel without a tape (weights, keys, values, skip connections) still
//! receive theirs. Host copies and spent output gradients go back to the buffer pool once the
//! backward (or, without a tape, the forward) is done with them.
//!
//! What an op keeps for its backward is kept once: the op that alone reads an input again
//! keeps its host copy of it; inputs that several ops read (a linear layer's input, the
//! weights) stay in their shared tensors and are copied again in the backward; outputs and
//! inputs that only receive a gradient are kept as ghosts (an id and a shape, no buffer), so
//! that no activation waits for the backward twice.

use super::causal_attention::{self, Dims};
use super::frozen::FrozenWeights;
use super::gelu_input::{add_input_grad, product_input, recomputed};
use super::host::{take_grad, to_host, to_vec};
use super::linear::{self, Weight};
use super::pool::recycle;
use super::portable::portable;
use super::simd::CHUNK;
use super::{
    causal_attention_composed, gelu_composed, layer_norm_composed, linear_composed,
    token_logprobs_composed,
};
use super::{layer_norm, logprobs, simd, Act, FusedOps};
use dfdx::prelude::*;
use rayon::prelude::*;

/// `acc += add`, in parallel chunks.
fn add_into(acc: &mut [f32], add: &[f32]) {
    acc.par_chunks_mut(CHUNK)
        .zip(add.par_chunks(CHUNK))
        .for_each(|(acc, add)| acc.iter_mut().zip(add).for_each(|(a, b)| *a += b));
}

fn recycle_all<const N: usize>(buffers: [Vec<f32>; N]) {
    buffers.into_iter().for_each(recycle);
}

impl FusedOps for Cpu {
    fn host_cache() -> bool {
        !portable()
    }

    fn linear<const I: usize, const O: usize, T: Tape<f32, Self>>(
        x: Act<I, Self, T>,
        w: &Tensor<Rank2<O, I>, f32, Self>,
        b: Option<&Tensor<Rank1<O>, f32, Self>>,
        skip: Option<Act<O, Self, NoneTape>>,
    ) -> Act<O, Self, T> {
        if portable() {
            return linear_composed(x, w, b, skip);
        }
        linear_op(x, w, b, skip, false)
    }

    fn gelu_linear<const I: usize, const O: usize, T: Tape<f32, Self>>(
        x: Act<I, Self, T>,
        w: &Tensor<Rank2<O, I>, f32, Self>,
        b: Option<&Tensor<Rank1<O>, f32, Self>>,
        skip: Option<Act<O, Self, NoneTape>>,
    ) -> Act<O, Self, T> {
        if portable() {
            return linear_composed(gelu_composed(x), w, b, skip);
        }
        linear_op(x, w, b, skip, true)
    }

    fn linear_frozen<const I: usize, const O: usize>(
        x: Act<I, Self, NoneTape>,
        w: &Tensor<Rank2<O, I>, f32, Self>,
        b: Option<&Tensor<Rank1<O>, f32, Self>>,
        skip: Option<Act<O, Self, NoneTape>>,
        frozen: &mut FrozenWeights,
    ) -> Act<O, Self, NoneTape> {
        if portable() {
            return linear_composed(x, w, b, skip);
        }
        let (batch, seq, _) = *x.shape();
        frozen.matrix(w);
        if let Some(b) = b {
            frozen.vector(b);
        }
        let xs = to_host(&x);
        let start = skip.as_ref().map(to_host);
        let bias = b.map(|b| frozen.made(b));
        let w = Weight::InByOut(frozen.made(w));
        let out = linear::forward(&xs, w, bias, start, I, O);
        recycle(xs);
        x.device().tensor_from_vec(out, (batch, seq, Const::<O>))
    }

    fn causal_attention<const M: usize, T: Tape<f32, Self>>(
        q: Act<M, Self, T>,
        k: Act<M, Self, NoneTape>,
        v: Act<M, Self, NoneTape>,
        n_head: usize,
    ) -> Act<M, Self, T> {
        if portable() {
            return causal_attention_composed(q, k, v, n_head);
        }
        let (q, mut tape) = q.split_tape();
        let (batch, s_q, _) = *q.shape();
        let dims = Dims {
            batch,
            s_q,
            s_k: k.shape().1,
            heads: n_head,
            head_dim: M / n_head,
        };
        assert!(dims.s_k >= s_q && k.shape().0 == batch && v.shape() == k.shape());
        let (qs, ks, vs) = (to_host(&q), to_host(&k), to_host(&v));
        let out = causal_attention::forward(&qs, &ks, &vs, dims);
        let y = q.device().tensor_from_vec(out, (batch, s_q, Const::<M>));
        if T::OWNS_TAPE {
            let (y, q, k, v) = (y.ghost(), q.ghost(), k.ghost(), v.ghost());
            tape.add_backward_op(move |grads| {
                let dy = take_grad!(grads, &y)?;
                // The three gradient buffers are needed at once: take them out of the
                // table, add into them, and put them back.
                let mut dq = std::mem::take(&mut **grads.get_or_alloc_mut(&q)?);
                let mut dk = std::mem::take(&mut **grads.get_or_alloc_mut(&k)?);
                let mut dv = std::mem::take(&mut **grads.get_or_alloc_mut(&v)?);
                causal_attention::backward(&qs, &ks, &vs, &dy, &mut dq, &mut dk, &mut dv, dims);
                **grads.get_or_alloc_mut(&q)? = dq;
                **grads.get_or_alloc_mut(&k)? = dk;
                **grads.get_or_alloc_mut(&v)? = dv;
                recycle_all([dy, qs, ks, vs]);
                Ok(())
            });
        } else {
            recycle_all([qs, ks, vs]);
        }
        y.put_tape(tape)
    }

    fn token_logprobs<T: Tape<f32, Self>>(
        logits: Tensor<(usize, usize, usize), f32, Self, T>,
        targets: Tensor<(usize, usize), usize, Self>,
    ) -> Tensor<(usize, usize), f32, Self, T> {
        if portable() {
            return token_logprobs_composed(logits, targets);
        }
        let (logits, mut tape) = logits.split_tape();
        let (batch, seq, vocab) = *logits.shape();
        assert_eq!(
            *targets.shape(),
            (batch, seq),
            "targets must match the logits"
        );
        let (x, t) = (to_host(&logits), to_vec(&targets));
        let (logp, lse) = logprobs::forward(&x, &t, vocab);
        let y = logits.device().tensor_from_vec(logp, (batch, seq));
        if T::OWNS_TAPE {
            let (y, logits) = (y.ghost(), logits.ghost());
            tape.add_backward_op(move |grads| {
                let g = take_grad!(grads, &y)?;
                logprobs::backward(&x, &t, &lse, &g, grads.get_or_alloc_mut(&logits)?, vocab);
                recycle(x);
                Ok(())
            });
        } else {
            recycle(x);
        }
        y.put_tape(tape)
    }

    fn gelu<S: Shape, T: Tape<f32, Self>>(x: Tensor<S, f32, Self, T>) -> Tensor<S, f32, Self, T> {
        if portable() {
            return gelu_composed(x);
        }
        let (x, mut tape) = x.split_tape();
        let input = to_host(&x);
        let y = x
            .device()
            .tensor_from_vec(simd::gelu_forward(&input), *x.shape());
        if T::OWNS_TAPE {
            let (y, x) = (y.ghost(), x.ghost());
            tape.add_backward_op(move |grads| {
                let dy = take_grad!(grads, &y)?;
                simd::gelu_backward(&input, &dy, grads.get_or_alloc_mut(&x)?);
                recycle_all([dy, input]);
                Ok(())
            });
        } else {
            recycle(input);
        }
        y.put_tape(tape)
    }

    fn layer_norm<const M: usize, T: Tape<f32, Self>>(
        x: Act<M, Self, T>,
        w: &Tensor<Rank1<M>, f32, Self>,
        b: &Tensor<Rank1<M>, f32, Self>,
        eps: f32,
    ) -> Act<M, Self, T> {
        if portable() {
            return layer_norm_composed(x, w, b, eps);
        }
        let (x, mut tape) = x.split_tape();
        let (input, weight) = (to_host(&x), to_host(w));
        let (out, stats) = layer_norm::forward(&input, &weight, &to_host(b), eps);
        let y = x.device().tensor_from_vec(out, *x.shape());
        if T::OWNS_TAPE {
            let (y, x, w, b) = (y.ghost(), x.ghost(), w.clone(), b.clone());
            tape.add_backward_op(move |grads| {
                let dy = take_grad!(grads, &y)?;
                let (mut dw, mut db) = (vec![0.0; M], vec![0.0; M]);
                let dx = grads.get_or_alloc_mut(&x)?;
                layer_norm::backward(&input, &weight, &stats, &dy, dx, &mut dw, &mut db);
                add_into(grads.get_or_alloc_mut(&w)?, &dw);
                add_into(grads.get_or_alloc_mut(&b)?, &db);
                recycle_all([dy, input]);
                Ok(())
            });
        } else {
            recycle(input);
        }
        y.put_tape(tape)
    }
}

/// [`FusedOps::linear`] on the CPU, of `gelu(x)` when `gelu` (see `gelu_input.rs`).
fn linear_op<const I: usize, const O: usize, T: Tape<f32, Cpu>>(
    x: Act<I, Cpu, T>,
    w: &Tensor<Rank2<O, I>, f32, Cpu>,
    b: Option<&Tensor<Rank1<O>, f32, Cpu>>,
    skip: Option<Act<O, Cpu, NoneTape>>,
    gelu: bool,
) -> Act<O, Cpu, T> {
    let (x, mut tape) = x.split_tape();
    let (batch, seq, _) = *x.shape();
    let (xs, ws) = (product_input(to_host(&x), gelu), to_host(w));
    let start = skip.as_ref().map(to_host);
    let out = linear::forward(
        &xs,
        Weight::OutByIn(&ws),
        b.map(to_host).as_deref(),
        start,
        I,
        O,
    );
    recycle_all([xs, ws]);
    let y = x.device().tensor_from_vec(out, (batch, seq, Const::<O>));
    if T::OWNS_TAPE {
        let (y, w, b) = (y.ghost(), w.clone(), b.cloned());
        let skip = skip.map(|s| s.ghost());
        tape.add_backward_op(move |grads| {
            let dy = take_grad!(grads, &y)?;
            let (hs, ws) = (to_host(&x), to_host(&w));
            let gs = recomputed(&hs, gelu);
            let xs = gs.as_deref().unwrap_or(&hs);
            add_input_grad(grads, &x, &hs, gelu, |dx| {
                linear::backward_input(&dy, &ws, dx, I, O)
            })?;
            linear::backward_weight(&dy, xs, grads.get_or_alloc_mut(&w)?, I, O);
            if let Some(b) = &b {
                linear::backward_bias(&dy, grads.get_or_alloc_mut(b)?);
            }
            if let Some(skip) = &skip {
                add_into(grads.get_or_alloc_mut(skip)?, &dy);
            }
            recycle_all([dy, hs, ws]);
            gs.into_iter().for_each(recycle);
            Ok(())
        });
    }
    y.put_tape(tape)
}
