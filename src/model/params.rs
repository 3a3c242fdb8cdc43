//! Walking a model's parameters by name: the one mechanism behind saving, loading, the
//! optimiser and gradient norms. Names follow Hugging Face GPT-2. Parameters have many
//! compile-time shapes; `Param` erases the shape so visitors need not be generic.

use super::raw::RawStorage;
use anyhow::Result;
use dfdx::prelude::*;
use dfdx::tensor::Gradients;

/// One parameter tensor with its shape erased.
pub trait Param<D: Device<f32>> {
    fn shape(&self) -> Vec<usize>;
    fn numel(&self) -> usize;
    fn to_host(&self) -> Vec<f32>;
    fn copy_from_host(&mut self, values: &[f32]);
    /// Gradient storage of this parameter (allocated as zeros if it got none).
    fn grad_mut<'g>(
        &self,
        grads: &'g mut Gradients<f32, D>,
    ) -> Result<&'g mut <D as Storage<f32>>::Vec>;
    /// Σ g² of this parameter's gradient, a scalar left on the device (zero without one).
    fn grad_sum_squares(&self, grads: &mut Gradients<f32, D>) -> Result<Tensor<Rank0, f32, D>>;
    /// This parameter's gradient times `factor`, on the device.
    fn scale_grad(&self, grads: &mut Gradients<f32, D>, factor: f32) -> Result<()>;
    /// One Adam step with moments kept in `m1`/`m2` (keyed by this parameter).
    fn adam_step(
        &mut self,
        t: i32,
        cfg: &AdamConfig,
        grads: &mut Gradients<f32, D>,
        m1: &mut Gradients<f32, D>,
        m2: &mut Gradients<f32, D>,
    ) -> Result<()>;
    /// The Adam moments of this parameter (for checkpoints), allocated as zeros if absent.
    fn moments_mut<'g>(
        &self,
        m1: &'g mut Gradients<f32, D>,
        m2: &'g mut Gradients<f32, D>,
    ) -> Result<(
        &'g mut <D as Storage<f32>>::Vec,
        &'g mut <D as Storage<f32>>::Vec,
    )>;
}

fn dev_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("device error: {e:?}")
}

impl<S: Shape, D: Device<f32> + RawStorage> Param<D> for Tensor<S, f32, D> {
    fn shape(&self) -> Vec<usize> {
        HasShape::shape(self).concrete().into_iter().collect()
    }
    fn numel(&self) -> usize {
        HasShape::shape(self).num_elements()
    }
    fn to_host(&self) -> Vec<f32> {
        crate::util::readback::to_vec(self)
    }
    fn copy_from_host(&mut self, values: &[f32]) {
        self.copy_from(values)
    }
    fn grad_mut<'g>(
        &self,
        grads: &'g mut Gradients<f32, D>,
    ) -> Result<&'g mut <D as Storage<f32>>::Vec> {
        grads.get_or_alloc_mut(self).map_err(dev_err)
    }
    fn grad_sum_squares(&self, grads: &mut Gradients<f32, D>) -> Result<Tensor<Rank0, f32, D>> {
        D::grad_sum_squares(self, grads)
    }
    fn scale_grad(&self, grads: &mut Gradients<f32, D>, factor: f32) -> Result<()> {
        D::scale_grad(self, grads, factor)
    }
    fn adam_step(
        &mut self,
        t: i32,
        cfg: &AdamConfig,
        grads: &mut Gradients<f32, D>,
        m1: &mut Gradients<f32, D>,
        m2: &mut Gradients<f32, D>,
    ) -> Result<()> {
        let g = grads.get_or_alloc_mut(self).map_err(dev_err)?;
        let m = m1.get_or_alloc_mut(self).map_err(dev_err)?;
        let v = m2.get_or_alloc_mut(self).map_err(dev_err)?;
        cfg.try_update(t, self, m, v, g).map_err(dev_err)
    }
    fn moments_mut<'g>(
        &self,
        m1: &'g mut Gradients<f32, D>,
        m2: &'g mut Gradients<f32, D>,
    ) -> Result<(
        &'g mut <D as Storage<f32>>::Vec,
        &'g mut <D as Storage<f32>>::Vec,
    )> {
        Ok((
            m1.get_or_alloc_mut(self).map_err(dev_err)?,
            m2.get_or_alloc_mut(self).map_err(dev_err)?,
        ))
    }
}

/// What a model hands each parameter to: `(name, parameter, decay)`, where `decay` says
/// whether weight decay applies (matrices and embeddings, not biases or norms).
pub type ParamFn<'a, D> = dyn FnMut(&str, &mut dyn Param<D>, bool) -> Result<()> + 'a;
