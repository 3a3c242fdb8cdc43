//! The few operations on gradient and optimiser storage that dfdx 0.13 does not offer, per
//! device: the sum of a gradient's squares and its scaling (the global norm and clipping,
//! accumulation), and host copies (checkpoints). On the CPU they work on the buffers in place;
//! elsewhere they are composed of dfdx ops, so that they stay on the device: a training step
//! reads back one scalar for the norm, not one per parameter.

#[cfg(any(feature = "cuda", test))]
use crate::util::readback;
use anyhow::Result;
use dfdx::prelude::*;
use dfdx::tensor::Gradients;

pub trait RawStorage: Storage<f32> {
    /// A buffer's values on the host (checkpoints): one read.
    fn raw_to_host(&self, v: &Self::Vec) -> Vec<f32>;
    fn raw_from_host(&self, v: &mut Self::Vec, values: &[f32]);
    /// Σ g² of `t`'s gradient, as a scalar that stays on the device.
    fn grad_sum_squares<S: Shape>(
        t: &Tensor<S, f32, Self>,
        grads: &mut Gradients<f32, Self>,
    ) -> Result<Tensor<Rank0, f32, Self>>
    where
        Self: Device<f32>;
    /// `t`'s gradient times `factor`, in its place.
    fn scale_grad<S: Shape>(
        t: &Tensor<S, f32, Self>,
        grads: &mut Gradients<f32, Self>,
        factor: f32,
    ) -> Result<()>
    where
        Self: Device<f32>;
}

fn dev_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("device error: {e:?}")
}

/// [`RawStorage::grad_sum_squares`] with dfdx ops: what CUDA runs.
pub fn composed_sum_squares<S: Shape, D: Device<f32>>(
    t: &Tensor<S, f32, D>,
    grads: &mut Gradients<f32, D>,
) -> Result<Tensor<Rank0, f32, D>> {
    grads.try_alloc_for(t).map_err(dev_err)?;
    Ok(grads.get(t).square().sum())
}

/// [`RawStorage::scale_grad`] with dfdx ops: what CUDA runs. dfdx 0.13 has no public op that
/// writes into a gradient's buffer, but a gradient is what backward writes: the gradient of
/// Σ t·(g·factor) with respect to `t` is g·factor, computed on the device, and it is swapped
/// into `t`'s place.
pub fn composed_scale<S: Shape, D: Device<f32>>(
    t: &Tensor<S, f32, D>,
    grads: &mut Gradients<f32, D>,
    factor: f32,
) -> Result<()> {
    grads.try_alloc_for(t).map_err(dev_err)?;
    let scaled = grads.get(t) * factor;
    let traced = t.retaped::<OwnedTape<f32, D>>();
    let mut fresh = (traced * scaled).sum().backward();
    std::mem::swap(
        grads.get_or_alloc_mut(t).map_err(dev_err)?,
        fresh.get_or_alloc_mut(t).map_err(dev_err)?,
    );
    Ok(())
}

impl RawStorage for Cpu {
    // The CPU's buffers are host memory: these are plain loops, not device reads.
    fn raw_to_host(&self, v: &Self::Vec) -> Vec<f32> {
        v.to_vec()
    }
    fn raw_from_host(&self, v: &mut Self::Vec, values: &[f32]) {
        v.copy_from_slice(values)
    }
    fn grad_sum_squares<S: Shape>(
        t: &Tensor<S, f32, Self>,
        grads: &mut Gradients<f32, Self>,
    ) -> Result<Tensor<Rank0, f32, Self>> {
        let g = grads.get_or_alloc_mut(t).map_err(dev_err)?;
        let sum: f64 = g.iter().map(|&x| (x as f64) * (x as f64)).sum();
        Ok(t.device().tensor(sum as f32))
    }
    fn scale_grad<S: Shape>(
        t: &Tensor<S, f32, Self>,
        grads: &mut Gradients<f32, Self>,
        factor: f32,
    ) -> Result<()> {
        let g = grads.get_or_alloc_mut(t).map_err(dev_err)?;
        g.iter_mut().for_each(|x| *x *= factor);
        Ok(())
    }
}

#[cfg(feature = "cuda")]
impl RawStorage for Cuda {
    fn raw_to_host(&self, v: &Self::Vec) -> Vec<f32> {
        readback::raw(|| v.device().dtoh_sync_copy(v).expect("CUDA copy to host"))
    }
    fn raw_from_host(&self, v: &mut Self::Vec, values: &[f32]) {
        v.device()
            .htod_sync_copy_into(values, v)
            .expect("CUDA copy to device")
    }
    fn grad_sum_squares<S: Shape>(
        t: &Tensor<S, f32, Self>,
        grads: &mut Gradients<f32, Self>,
    ) -> Result<Tensor<Rank0, f32, Self>> {
        composed_sum_squares(t, grads)
    }
    fn scale_grad<S: Shape>(
        t: &Tensor<S, f32, Self>,
        grads: &mut Gradients<f32, Self>,
        factor: f32,
    ) -> Result<()> {
        composed_scale(t, grads, factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The composed forms (what CUDA runs) against the CPU's loops, on the CPU.
    #[test]
    fn the_composed_norm_and_scale_match_the_cpu_loops() {
        let dev = Cpu::default();
        let w: Tensor<Rank2<3, 4>, f32, _> = dev.sample_normal();
        let x: Tensor<Rank2<3, 4>, f32, _> = dev.sample_normal();
        let grads_of = || (w.leaky_trace() * x.clone()).square().sum().backward();
        let (mut a, mut b) = (grads_of(), grads_of());
        let fused = readback::scalar(&Cpu::grad_sum_squares(&w, &mut a).unwrap());
        let composed = readback::scalar(&composed_sum_squares(&w, &mut b).unwrap());
        let exact: f32 = readback::to_vec(&a.get(&w)).iter().map(|g| g * g).sum();
        assert!((fused - exact).abs() <= 1e-5 * exact, "{fused} vs {exact}");
        assert!(
            (composed - exact).abs() <= 1e-5 * exact,
            "{composed} vs {exact}"
        );
        let before = readback::to_vec(&a.get(&w));
        Cpu::scale_grad(&w, &mut a, 0.3).unwrap();
        composed_scale(&w, &mut b, 0.3).unwrap();
        let (fa, fb) = (readback::to_vec(&a.get(&w)), readback::to_vec(&b.get(&w)));
        for (p, q) in fa.iter().zip(&fb) {
            assert!((p - q).abs() <= 1e-6 * p.abs().max(1.0), "{p} vs {q}");
        }
        for (p, g) in fa.iter().zip(&before) {
            assert!(
                (p - 0.3 * g).abs() <= 1e-6 * g.abs().max(1.0),
                "{p} vs 0.3 × {g}"
            );
        }
        assert!(fa.iter().any(|&g| g != 0.0));
    }
}
