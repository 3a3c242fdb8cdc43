//! Causal multi-head self-attention built from ops, since dfdx 0.13's MultiHeadAttention has
//! no causal mask. Heads are a runtime reshape of the const model width.

use super::layers::Linear;
use dfdx::prelude::*;

#[derive(Clone, Debug)]
pub struct CausalSelfAttention<const M: usize, D: Device<f32>> {
    pub n_head: usize,
    pub q: Linear<M, M, D>,
    pub k: Linear<M, M, D>,
    pub v: Linear<M, M, D>,
    pub proj: Linear<M, M, D>,
}

/// Keys and values of the positions seen so far, per layer: `(batch, head, time, head_dim)`.
pub type KvPair<D> = (
    Tensor<(usize, usize, usize, usize), f32, D>,
    Tensor<(usize, usize, usize, usize), f32, D>,
);

impl<const M: usize, D: Device<f32> + super::kernels::FusedOps> CausalSelfAttention<M, D> {
    fn split_heads<T: Tape<f32, D>>(
        &self,
        x: Tensor<(usize, usize, Const<M>), f32, D, T>,
    ) -> Tensor<(usize, usize, usize, usize), f32, D, T> {
        let (b, s, _) = *x.shape();
        let h = self.n_head;
        x.reshape_like(&(b, s, h, M / h))
            .permute::<_, Axes4<0, 2, 1, 3>>()
    }

    /// Attention over the sequence itself (training, full forward).
    pub fn forward<T: Tape<f32, D> + Merge<NoneTape>>(
        &self,
        x: Tensor<(usize, usize, Const<M>), f32, D, T>,
    ) -> Tensor<(usize, usize, Const<M>), f32, D, T> {
        let (x, tape) = x.split_tape();
        let q = self.split_heads(self.q.forward(x.clone().put_tape(tape)));
        let (q, tape) = q.split_tape();
        let k = self.split_heads(self.k.forward(x.clone().put_tape(tape)));
        let (k, tape) = k.split_tape();
        let v = self.split_heads(self.v.forward(x.put_tape(tape)));
        let (v, tape) = v.split_tape();
        let q = q.put_tape(tape);
        self.attend(q, k.retaped::<T>(), v.retaped::<T>(), 0)
    }

    /// Attention of new positions over cached + new keys/values (generation).
    /// Returns the output and the grown cache.
    pub fn forward_cached(
        &self,
        x: Tensor<(usize, usize, Const<M>), f32, D>,
        cache: Option<KvPair<D>>,
    ) -> (Tensor<(usize, usize, Const<M>), f32, D>, KvPair<D>) {
        let q = self.split_heads(self.q.forward(x.clone()));
        let k_new = self.split_heads(self.k.forward(x.clone()));
        let v_new = self.split_heads(self.v.forward(x));
        let (past, k, v) = match cache {
            None => (0, k_new, v_new),
            Some((k_old, v_old)) => {
                let past = k_old.shape().2;
                let k: Tensor<(usize, usize, usize, usize), f32, D> =
                    (k_old, k_new).concat_along(Axis::<2>);
                let v: Tensor<(usize, usize, usize, usize), f32, D> =
                    (v_old, v_new).concat_along(Axis::<2>);
                (past, k, v)
            }
        };
        let out = self.attend(q, k.clone(), v.clone(), past);
        (out, (k, v))
    }

    /// causal softmax(q k^T / sqrt(d)) v, then the output projection. `past` is the
    /// number of cached positions before the first query, so query i may see keys <= past + i.
    fn attend<T: Tape<f32, D> + Merge<NoneTape>>(
        &self,
        q: Tensor<(usize, usize, usize, usize), f32, D, T>,
        k: Tensor<(usize, usize, usize, usize), f32, D, T>,
        v: Tensor<(usize, usize, usize, usize), f32, D, T>,
        past: usize,
    ) -> Tensor<(usize, usize, Const<M>), f32, D, T> {
        let (b, s_q, dh) = (q.shape().0, q.shape().2, q.shape().3);
        let scale = 1.0 / (dh as f32).sqrt();
        let weights = D::causal_softmax(q.matmul(k.permute::<_, Axes4<0, 1, 3, 2>>()), scale, past);
        let out = weights
            .matmul(v)
            .permute::<_, Axes4<0, 2, 1, 3>>()
            .reshape_like(&(b, s_q, Const::<M>));
        self.proj.forward(out)
    }
}
