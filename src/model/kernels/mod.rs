//! Fused operations with a fast CPU path: GELU, LayerNorm, causal softmax and bias add. On CPU they are custom dfdx ops
//! (forward computed here, backward registered on the tape through dfdx's public API); other
//! devices use the same maths composed from dfdx ops, so the model code is one generic path.

pub mod layer_norm;
pub mod rows;
pub mod simd;

use dfdx::prelude::*;

pub type Act<const M: usize, D, T> = Tensor<(usize, usize, Const<M>), f32, D, T>;
/// Attention scores or weights: (batch, head, query, key).
pub type Scores<D, T> = Tensor<(usize, usize, usize, usize), f32, D, T>;

pub trait FusedOps: Device<f32> {
    fn gelu<S: Shape, T: Tape<f32, Self>>(x: Tensor<S, f32, Self, T>) -> Tensor<S, f32, Self, T>;
    fn layer_norm<const M: usize, T: Tape<f32, Self>>(
        x: Act<M, Self, T>,
        w: &Tensor<Rank1<M>, f32, Self>,
        b: &Tensor<Rank1<M>, f32, Self>,
        eps: f32,
    ) -> Act<M, Self, T>;
    /// softmax(scale · scores) over the keys each query may see: query i (0-based) of the
    /// block sees keys 0..=past + i.
    fn causal_softmax<T: Tape<f32, Self>>(
        scores: Scores<Self, T>,
        scale: f32,
        past: usize,
    ) -> Scores<Self, T>;
    /// x + b on every position.
    fn add_bias<const M: usize, T: Tape<f32, Self>>(
        x: Act<M, Self, T>,
        b: &Tensor<Rank1<M>, f32, Self>,
    ) -> Act<M, Self, T>;
}

/// The composed versions: any device, and the reference the CPU kernels are tested against.
pub fn gelu_composed<S: Shape, D: Device<f32>, T: Tape<f32, D>>(
    x: Tensor<S, f32, D, T>,
) -> Tensor<S, f32, D, T> {
    x.fast_gelu()
}

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

pub fn add_bias_composed<const M: usize, D: Device<f32>, T: Tape<f32, D>>(
    x: Act<M, D, T>,
    b: &Tensor<Rank1<M>, f32, D>,
) -> Act<M, D, T> {
    let shape = *x.shape();
    x + b.retaped::<T>().broadcast_like::<_, Axes2<0, 1>>(&shape)
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

impl FusedOps for Cpu {
    fn gelu<S: Shape, T: Tape<f32, Self>>(x: Tensor<S, f32, Self, T>) -> Tensor<S, f32, Self, T> {
        let (x, mut tape) = x.split_tape();
        let input = x.as_vec();
        let y = x
            .device()
            .tensor_from_vec(simd::gelu_forward(&input), *x.shape());
        if T::OWNS_TAPE {
            let y_handle = y.clone();
            tape.add_backward_op(move |grads| {
                let dy: Vec<f32> = grads.get_or_alloc_mut(&y_handle)?.to_vec();
                let dx = grads.get_or_alloc_mut(&x)?;
                simd::gelu_backward(&input, &dy, dx);
                Ok(())
            });
        }
        y.put_tape(tape)
    }

    fn layer_norm<const M: usize, T: Tape<f32, Self>>(
        x: Act<M, Self, T>,
        w: &Tensor<Rank1<M>, f32, Self>,
        b: &Tensor<Rank1<M>, f32, Self>,
        eps: f32,
    ) -> Act<M, Self, T> {
        let (x, mut tape) = x.split_tape();
        let (input, weight) = (x.as_vec(), w.as_vec());
        let (out, stats) = layer_norm::forward(&input, &weight, &b.as_vec(), eps);
        let y = x.device().tensor_from_vec(out, *x.shape());
        if T::OWNS_TAPE {
            let (y_handle, w, b) = (y.clone(), w.clone(), b.clone());
            tape.add_backward_op(move |grads| {
                let dy: Vec<f32> = grads.get_or_alloc_mut(&y_handle)?.to_vec();
                let mut dw = vec![0.0; M];
                let mut db = vec![0.0; M];
                layer_norm::backward(
                    &input,
                    &weight,
                    &stats,
                    &dy,
                    grads.get_or_alloc_mut(&x)?,
                    &mut dw,
                    &mut db,
                );
                grads
                    .get_or_alloc_mut(&w)?
                    .iter_mut()
                    .zip(dw)
                    .for_each(|(g, d)| *g += d);
                grads
                    .get_or_alloc_mut(&b)?
                    .iter_mut()
                    .zip(db)
                    .for_each(|(g, d)| *g += d);
                Ok(())
            });
        }
        y.put_tape(tape)
    }

    fn causal_softmax<T: Tape<f32, Self>>(
        scores: Scores<Self, T>,
        scale: f32,
        past: usize,
    ) -> Scores<Self, T> {
        let (s, mut tape) = scores.split_tape();
        let (_, _, s_q, s_k) = *s.shape();
        let p = rows::causal_softmax(&s.as_vec(), s_q, s_k, past, scale);
        let y = s.device().tensor_from_vec(p, *s.shape());
        if T::OWNS_TAPE {
            let y_handle = y.clone();
            tape.add_backward_op(move |grads| {
                let p = y_handle.as_vec();
                let dp: Vec<f32> = grads.get_or_alloc_mut(&y_handle)?.to_vec();
                rows::causal_softmax_backward(&p, &dp, grads.get_or_alloc_mut(&s)?, s_k, scale);
                Ok(())
            });
        }
        y.put_tape(tape)
    }

    fn add_bias<const M: usize, T: Tape<f32, Self>>(
        x: Act<M, Self, T>,
        b: &Tensor<Rank1<M>, f32, Self>,
    ) -> Act<M, Self, T> {
        let (x, mut tape) = x.split_tape();
        let mut out = x.as_vec();
        rows::add_bias(&mut out, &b.as_vec());
        let y = x.device().tensor_from_vec(out, *x.shape());
        if T::OWNS_TAPE {
            let (y_handle, b) = (y.clone(), b.clone());
            tape.add_backward_op(move |grads| {
                let dy: Vec<f32> = grads.get_or_alloc_mut(&y_handle)?.to_vec();
                let mut db = vec![0.0; M];
                rows::add_bias_backward(&dy, grads.get_or_alloc_mut(&x)?, &mut db);
                grads
                    .get_or_alloc_mut(&b)?
                    .iter_mut()
                    .zip(db)
                    .for_each(|(g, d)| *g += d);
                Ok(())
            });
        }
        y.put_tape(tape)
    }
}

#[cfg(feature = "cuda")]
impl FusedOps for Cuda {
    fn causal_softmax<T: Tape<f32, Self>>(
        scores: Scores<Self, T>,
        scale: f32,
        past: usize,
    ) -> Scores<Self, T> {
        causal_softmax_composed(scores, scale, past)
    }
    fn add_bias<const M: usize, T: Tape<f32, Self>>(
        x: Act<M, Self, T>,
        b: &Tensor<Rank1<M>, f32, Self>,
    ) -> Act<M, Self, T> {
        add_bias_composed(x, b)
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

#[cfg(test)]
mod tests {
    use super::*;
    use dfdx::tensor::Gradients;

    fn close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "[{i}] {x} vs {y}");
        }
    }

    #[test]
    fn cpu_gelu_matches_the_composed_op_forward_and_backward() {
        let dev = Cpu::seed_from_u64(1);
        let x: Tensor<(usize, usize, Const<8>), f32, Cpu> =
            dev.sample_normal_like(&(3, 5, Const)) * 3.0;
        let g: Tensor<(usize, usize, Const<8>), f32, Cpu> = dev.sample_normal_like(&(3, 5, Const));
        let fast = Cpu::gelu(x.leaky_trace());
        let slow = gelu_composed(x.leaky_trace());
        close(
            &fast.retaped::<NoneTape>().as_vec(),
            &slow.retaped::<NoneTape>().as_vec(),
            1e-5,
        );
        let gf = (fast * g.clone()).sum().backward();
        let gs = (slow * g).sum().backward();
        close(&gf.get(&x).as_vec(), &gs.get(&x).as_vec(), 1e-4);
    }

    #[test]
    fn cpu_causal_softmax_matches_the_composed_op_forward_and_backward() {
        let dev = Cpu::seed_from_u64(3);
        for (s_q, s_k, past) in [(5, 5, 0), (1, 6, 5), (3, 7, 4)] {
            let s: Scores<Cpu, NoneTape> = dev.sample_normal_like(&(2, 3, s_q, s_k)) * 2.0;
            let g: Scores<Cpu, NoneTape> = dev.sample_normal_like(&(2, 3, s_q, s_k));
            let run = |fast: bool| {
                let st = s.clone().traced(Gradients::leaky());
                let y = if fast {
                    Cpu::causal_softmax(st, 0.35, past)
                } else {
                    causal_softmax_composed(st, 0.35, past)
                };
                let (y, tape) = y.split_tape();
                let out = y.as_vec();
                let grads = (y.put_tape(tape) * g.clone()).sum().backward();
                (out, grads.get(&s).as_vec())
            };
            let (fast, slow) = (run(true), run(false));
            close(&fast.0, &slow.0, 1e-5);
            close(&fast.1, &slow.1, 1e-4);
        }
    }

    #[test]
    fn cpu_bias_add_matches_the_composed_op_forward_and_backward() {
        let dev = Cpu::seed_from_u64(4);
        let x: Act<8, Cpu, NoneTape> = dev.sample_normal_like(&(2, 3, Const));
        let b: Tensor<Rank1<8>, f32, Cpu> = dev.sample_normal();
        let g: Act<8, Cpu, NoneTape> = dev.sample_normal_like(&(2, 3, Const));
        let run = |fast: bool| {
            let xt = x.clone().traced(Gradients::leaky());
            let y = if fast {
                Cpu::add_bias(xt, &b)
            } else {
                add_bias_composed(xt, &b)
            };
            let (y, tape) = y.split_tape();
            let out = y.as_vec();
            let grads = (y.put_tape(tape) * g.clone()).sum().backward();
            (out, grads.get(&x).as_vec(), grads.get(&b).as_vec())
        };
        let (fast, slow) = (run(true), run(false));
        close(&fast.0, &slow.0, 1e-6);
        close(&fast.1, &slow.1, 1e-6);
        close(&fast.2, &slow.2, 1e-5);
    }

    #[test]
    fn cpu_layer_norm_matches_the_composed_op_forward_and_backward() {
        let dev = Cpu::seed_from_u64(2);
        let x: Act<16, Cpu, NoneTape> = dev.sample_normal_like(&(2, 3, Const)) * 2.0 + 0.5;
        let w: Tensor<Rank1<16>, f32, Cpu> = dev.sample_normal();
        let b: Tensor<Rank1<16>, f32, Cpu> = dev.sample_normal();
        let g: Act<16, Cpu, NoneTape> = dev.sample_normal_like(&(2, 3, Const));
        let run = |fast: bool| {
            let xt = x.clone().traced(Gradients::leaky());
            let y = if fast {
                Cpu::layer_norm(xt, &w, &b, 1e-5)
            } else {
                layer_norm_composed(xt, &w, &b, 1e-5)
            };
            let (y, tape) = y.split_tape();
            let out = y.as_vec();
            let grads = (y.put_tape(tape) * g.clone()).sum().backward();
            (
                out,
                grads.get(&x).as_vec(),
                grads.get(&w).as_vec(),
                grads.get(&b).as_vec(),
            )
        };
        let (fast, slow) = (run(true), run(false));
        close(&fast.0, &slow.0, 1e-5);
        close(&fast.1, &slow.1, 1e-4);
        close(&fast.2, &slow.2, 1e-4);
        close(&fast.3, &slow.3, 1e-4);
    }
}
