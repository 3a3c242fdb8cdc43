//! The model's heavy operations, with a fast CPU path: linear layers (with the residual add),
//! causal attention, GELU, LayerNorm and token log-probabilities. On CPU they are custom dfdx
//! ops (forward computed here, backward registered on the tape through dfdx's public API, see
//! `cpu.rs`); other devices use the same maths composed from dfdx ops, so the model code is one
//! generic path. `portable.rs` switches the CPU to the composed ops too.

pub mod causal_attention;
mod cpu;
pub mod frozen;
pub mod gelu_input;
pub mod host;
pub mod layer_norm;
pub mod linear;
pub mod logprobs;
pub mod matmul;
pub mod pool;
pub mod portable;
pub mod simd;
#[cfg(test)]
mod tests;

use dfdx::prelude::*;
pub use frozen::FrozenWeights;

/// Work (multiply-adds, roughly) below which a parallel loop keeps to the calling thread:
/// handing a piece to another thread and waiting for it costs more than doing it here, which
/// matters for generation's small per-step loops.
pub const SPLIT_WORK: usize = 1 << 16;

pub type Act<const M: usize, D, T> = Tensor<(usize, usize, Const<M>), f32, D, T>;
/// Attention scores or weights: (batch, head, query, key).
pub type Scores<D, T> = Tensor<(usize, usize, usize, usize), f32, D, T>;

pub trait FusedOps: Device<f32> {
    /// Whether generation keeps its KV cache in host buffers (the CPU's fast path) rather
    /// than in device tensors.
    fn host_cache() -> bool {
        false
    }
    /// `x·wᵀ + b` on every position, `w` stored `[out, in]`, plus `skip` when given (a
    /// residual connection, added in the same pass; it travels without a tape but receives
    /// its gradient).
    fn linear<const I: usize, const O: usize, T: Tape<f32, Self>>(
        x: Act<I, Self, T>,
        w: &Tensor<Rank2<O, I>, f32, Self>,
        b: Option<&Tensor<Rank1<O>, f32, Self>>,
        skip: Option<Act<O, Self, NoneTape>>,
    ) -> Act<O, Self, T>;
    /// `linear(gelu(x))`: the MLP's second projection with its activation, in one op that
    /// keeps only `x` for the backward on the CPU (see `gelu_input.rs`).
    fn gelu_linear<const I: usize, const O: usize, T: Tape<f32, Self>>(
        x: Act<I, Self, T>,
        w: &Tensor<Rank2<O, I>, f32, Self>,
        b: Option<&Tensor<Rank1<O>, f32, Self>>,
        skip: Option<Act<O, Self, NoneTape>>,
    ) -> Act<O, Self, T> {
        Self::linear(Self::gelu(x), w, b, skip)
    }
    /// `linear` in generation, without a tape: devices that copy a weight to read it (the
    /// CPU) take it from `frozen`, copied once per generation; others read it in place.
    fn linear_frozen<const I: usize, const O: usize>(
        x: Act<I, Self, NoneTape>,
        w: &Tensor<Rank2<O, I>, f32, Self>,
        b: Option<&Tensor<Rank1<O>, f32, Self>>,
        skip: Option<Act<O, Self, NoneTape>>,
        _frozen: &mut FrozenWeights,
    ) -> Act<O, Self, NoneTape> {
        Self::linear(x, w, b, skip)
    }
    /// Causal multi-head attention of `q` over `k` and `v`, all `(batch, time, M)` with heads
    /// side by side. Queries are the last positions of the keys' sequence: query `i` sees keys
    /// up to `k_len - q_len + i`. `k` and `v` travel without a tape (it is on `q`) but
    /// receive gradients.
    fn causal_attention<const M: usize, T: Tape<f32, Self>>(
        q: Act<M, Self, T>,
        k: Act<M, Self, NoneTape>,
        v: Act<M, Self, NoneTape>,
        n_head: usize,
    ) -> Act<M, Self, T>;
    /// log softmax(logits)[target] at every position: `(batch, seq)` from `(batch, seq, vocab)`.
    fn token_logprobs<T: Tape<f32, Self>>(
        logits: Tensor<(usize, usize, usize), f32, Self, T>,
        targets: Tensor<(usize, usize), usize, Self>,
    ) -> Tensor<(usize, usize), f32, Self, T>;
    fn gelu<S: Shape, T: Tape<f32, Self>>(x: Tensor<S, f32, Self, T>) -> Tensor<S, f32, Self, T>;
    fn layer_norm<const M: usize, T: Tape<f32, Self>>(
        x: Act<M, Self, T>,
        w: &Tensor<Rank1<M>, f32, Self>,
        b: &Tensor<Rank1<M>, f32, Self>,
        eps: f32,
    ) -> Act<M, Self, T>;
}

/// The composed versions: any device, and the reference the CPU kernels are tested against.
pub fn linear_composed<const I: usize, const O: usize, D: Device<f32>, T: Tape<f32, D>>(
    x: Act<I, D, T>,
    w: &Tensor<Rank2<O, I>, f32, D>,
    b: Option<&Tensor<Rank1<O>, f32, D>>,
    skip: Option<Act<O, D, NoneTape>>,
) -> Act<O, D, T> {
    let y = x.matmul(w.retaped::<T>().permute::<_, Axes2<1, 0>>());
    let y = match b {
        Some(b) => {
            let shape = *y.shape();
            y + b.retaped::<T>().broadcast_like::<_, Axes2<0, 1>>(&shape)
        }
        None => y,
    };
    match skip {
        Some(skip) => y + skip,
        None => y,
    }
}

/// Splits `(batch, time, M)` into `(batch, head, time, M / heads)`.
fn split_heads<const M: usize, D: Device<f32>, T: Tape<f32, D>>(
    x: Act<M, D, T>,
    n_head: usize,
) -> Scores<D, T> {
    let (b, s, _) = *x.shape();
    x.reshape_like(&(b, s, n_head, M / n_head))
        .permute::<_, Axes4<0, 2, 1, 3>>()
}

pub fn causal_attention_composed<const M: usize, D: Device<f32>, T: Tape<f32, D>>(
    q: Act<M, D, T>,
    k: Act<M, D, NoneTape>,
    v: Act<M, D, NoneTape>,
    n_head: usize,
) -> Act<M, D, T> {
    let (b, s_q, _) = *q.shape();
    let past = k.shape().1 - s_q;
    let scale = 1.0 / ((M / n_head) as f32).sqrt();
    let q = split_heads(q, n_head);
    let k = split_heads(k.retaped::<T>(), n_head);
    let v = split_heads(v.retaped::<T>(), n_head);
    let weights =
        causal_softmax_composed(q.matmul(k.permute::<_, Axes4<0, 1, 3, 2>>()), scale, past);
    weights
        .matmul(v)
        .permute::<_, Axes4<0, 2, 1, 3>>()
        .reshape_like(&(b, s_q, Const::<M>))
}

/// softmax(scale · scores) over the keys each query may see: query i (0-based) of the block
/// sees keys 0..=past + i.
pub fn causal_softmax_composed<D: Device<f32>, T: Tape<f32, D>>(
    scores: Scores<D, T>,
    scale: f32,
    past: usize,
) -> Scores<D, T> {
    let (b, h, s_q, s_k) = *scores.shape();
    let scores = scores * scale;
    // Some query cannot see every key only when there are keys beyond the first query's view.
    let scores = if s_k > past + 1 {
        let mask =
            scores
                .device()
                .upper_tri_like(&(s_q, s_k), f32::NEG_INFINITY, (past + 1) as isize);
        scores + mask.broadcast_like::<_, Axes2<0, 1>>(&(b, h, s_q, s_k))
    } else {
        scores
    };
    scores.softmax::<Axis<3>>()
}

pub fn token_logprobs_composed<D: Device<f32>, T: Tape<f32, D>>(
    logits: Tensor<(usize, usize, usize), f32, D, T>,
    targets: Tensor<(usize, usize), usize, D>,
) -> Tensor<(usize, usize), f32, D, T> {
    logits.log_softmax::<Axis<2>>().select(targets)
}

pub fn gelu_composed<S: Shape, D: Device<f32>, T: Tape<f32, D>>(
    x: Tensor<S, f32, D, T>,
) -> Tensor<S, f32, D, T> {
    x.fast_gelu()
}

pub fn layer_norm_composed<const M: usize, D: Device<f32>, T: Tape<f32, D>>(
    x: Act<M, D, T>,
    w: &Tensor<Rank1<M>, f32, D>,
    b: &Tensor<Rank1<M>, f32, D>,
    eps: f32,
) -> Act<M, D, T> {
    let shape = *x.shape();
    let x = x.normalize::<Axis<2>>(eps);
    x * w.retaped::<T>().broadcast_like::<_, Axes2<0, 1>>(&shape)
        + b.retaped::<T>().broadcast_like::<_, Axes2<0, 1>>(&shape)
}

#[cfg(feature = "cuda")]
impl FusedOps for Cuda {
    fn linear<const I: usize, const O: usize, T: Tape<f32, Self>>(
        x: Act<I, Self, T>,
        w: &Tensor<Rank2<O, I>, f32, Self>,
        b: Option<&Tensor<Rank1<O>, f32, Self>>,
        skip: Option<Act<O, Self, NoneTape>>,
    ) -> Act<O, Self, T> {
        linear_composed(x, w, b, skip)
    }
    fn causal_attention<const M: usize, T: Tape<f32, Self>>(
        q: Act<M, Self, T>,
        k: Act<M, Self, NoneTape>,
        v: Act<M, Self, NoneTape>,
        n_head: usize,
    ) -> Act<M, Self, T> {
        causal_attention_composed(q, k, v, n_head)
    }
    fn token_logprobs<T: Tape<f32, Self>>(
        logits: Tensor<(usize, usize, usize), f32, Self, T>,
        targets: Tensor<(usize, usize), usize, Self>,
    ) -> Tensor<(usize, usize), f32, Self, T> {
        token_logprobs_composed(logits, targets)
    }
    fn gelu<S: Shape, T: Tape<f32, Self>>(x: Tensor<S, f32, Self, T>) -> Tensor<S, f32, Self, T> {
        gelu_composed(x)
    }
    fn layer_norm<const M: usize, T: Tape<f32, Self>>(
        x: Act<M, Self, T>,
        w: &Tensor<Rank1<M>, f32, Self>,
        b: &Tensor<Rank1<M>, f32, Self>,
        eps: f32,
    ) -> Act<M, Self, T> {
        layer_norm_composed(x, w, b, eps)
    }
}
