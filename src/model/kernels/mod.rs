//! Fused operations with a fast CPU path: GELU and LayerNorm. On CPU they are custom dfdx ops
//! (forward computed here, backward registered on the tape through dfdx's public API); other
//! devices use the same maths composed from dfdx ops, so the model code is one generic path.

pub mod layer_norm;
pub mod simd;

use dfdx::prelude::*;

pub type Act<const M: usize, D, T> = Tensor<(usize, usize, Const<M>), f32, D, T>;

pub trait FusedOps: Device<f32> {
    fn gelu<S: Shape, T: Tape<f32, Self>>(x: Tensor<S, f32, Self, T>) -> Tensor<S, f32, Self, T>;
    fn layer_norm<const M: usize, T: Tape<f32, Self>>(
        x: Act<M, Self, T>,
        w: &Tensor<Rank1<M>, f32, Self>,
        b: &Tensor<Rank1<M>, f32, Self>,
        eps: f32,
    ) -> Act<M, Self, T>;
}

/// The composed versions: any device, and the reference the CPU kernels are tested against.
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
}

#[cfg(feature = "cuda")]
impl FusedOps for Cuda {
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
