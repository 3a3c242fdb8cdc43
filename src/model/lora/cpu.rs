//! The CPU's fused LoRA layer: one op for the frozen product and the adapter, so that no
//! `(rows × out)` intermediate of the update waits in the gradient table for the backward
//! (the composed ops leave three per layer there). Held for the backward: the small
//! `scale·x·Aᵀ` and host copies of A and B; `x` and the base weight are read again from their
//! tensors, which the tape holds anyway.

use crate::model::kernels::gelu_input::{add_input_grad, product_input, recomputed};
use crate::model::kernels::host::{take_grad, to_host};
use crate::model::kernels::linear::{self, Weight};
use crate::model::kernels::pool::recycle;
use crate::model::kernels::Act;
use crate::model::layers::Linear;
use dfdx::prelude::*;
use rayon::prelude::*;
use std::ops::Range;

/// An adapter's A (`rank × in`) and B (`out × rank`).
pub type AdapterPair<const I: usize> = (
    Tensor<(usize, Const<I>), f32, Cpu>,
    Tensor<(usize, usize), f32, Cpu>,
);

/// `x·Wᵀ + bias (+ skip) + scale·x·Aᵀ·B[rows]ᵀ`, recording a backward to `x`, `skip`, A and
/// B[rows] only; of `gelu(x)` in place of `x` when `gelu` (the MLP's second projection,
/// see `gelu_input.rs`).
#[allow(clippy::too_many_arguments)]
pub fn forward<const I: usize, const O: usize, T: Tape<f32, Cpu>>(
    x: Act<I, Cpu, T>,
    base: &Linear<I, O, Cpu>,
    adapter: AdapterPair<I>,
    rows: Range<usize>,
    scale: f32,
    skip: Option<Act<O, Cpu, NoneTape>>,
    gelu: bool,
) -> Act<O, Cpu, T> {
    let (x, mut tape) = x.split_tape();
    let (batch, seq, _) = *x.shape();
    let r = adapter.0.shape().0;
    let (a, b) = (to_host(&adapter.0), to_host(&adapter.1));
    let b_rows = rows.start * r..rows.end * r;
    let xs = product_input(to_host(&x), gelu);
    let (ws, bias) = (to_host(&base.weight), to_host(&base.bias));
    // u = scale·x·Aᵀ (rows × r), then y = x·Wᵀ + bias (+ skip) + u·B[rows]ᵀ.
    let mut u = linear::forward(&xs, Weight::OutByIn(&a), None, None, I, r);
    u.iter_mut().for_each(|v| *v *= scale);
    let start = skip.as_ref().map(to_host);
    let y = linear::forward(&xs, Weight::OutByIn(&ws), Some(&bias), start, I, O);
    let y = linear::forward(&u, Weight::OutByIn(&b[b_rows.clone()]), None, Some(y), r, O);
    [xs, ws, bias].into_iter().for_each(recycle);
    let y = x.device().tensor_from_vec(y, (batch, seq, Const::<O>));
    if T::OWNS_TAPE {
        let handles = (y.ghost(), base.weight.clone(), adapter);
        let skip = skip.map(|s| s.ghost());
        tape.add_backward_op(move |grads| {
            let (y, w, (a_t, b_t)) = &handles;
            let dy = take_grad!(grads, y)?;
            let (hs, ws) = (to_host(&x), to_host(w));
            let gs = recomputed(&hs, gelu);
            let xs = gs.as_deref().unwrap_or(&hs);
            // du = dy·B[rows]; dB[rows] += dyᵀ·u; the gradient of x·Aᵀ is scale·du.
            let mut du = vec![0.0; u.len()];
            linear::backward_input(&dy, &b[b_rows.clone()], &mut du, r, O);
            let db = &mut grads.get_or_alloc_mut(b_t)?[b_rows.clone()];
            linear::backward_weight(&dy, &u, db, r, O);
            du.iter_mut().for_each(|v| *v *= scale);
            linear::backward_weight(&du, xs, grads.get_or_alloc_mut(a_t)?, I, r);
            add_input_grad(grads, &x, &hs, gelu, |dx| {
                linear::backward_input(&dy, &ws, dx, I, O);
                linear::backward_input(&du, &a, dx, I, r);
            })?;
            if let Some(skip) = &skip {
                let ds = grads.get_or_alloc_mut(skip)?;
                ds.par_iter_mut()
                    .zip(dy.par_iter())
                    .for_each(|(g, d)| *g += d);
            }
            [dy, hs, ws].into_iter().chain(gs).for_each(recycle);
            Ok(())
        });
    }
    y.put_tape(tape)
}
