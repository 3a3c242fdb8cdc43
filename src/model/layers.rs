//! The two parameterised building blocks of the transformer: a linear map and a LayerNorm.
//! Written from dfdx tensor ops (not dfdx's nn modules) so that parameter names, layout and
//! initialisation are ours and match GPT-2.

use super::kernels::{FrozenWeights, FusedOps};
use dfdx::prelude::*;

/// `y = x W^T + b`, weight stored `[out, in]` like PyTorch's `nn.Linear`.
#[derive(Clone, Debug)]
pub struct Linear<const I: usize, const O: usize, D: Device<f32>> {
    pub weight: Tensor<Rank2<O, I>, f32, D>,
    pub bias: Tensor<Rank1<O>, f32, D>,
}

impl<const I: usize, const O: usize, D: Device<f32> + FusedOps> Linear<I, O, D> {
    pub fn forward<T: Tape<f32, D>>(
        &self,
        x: Tensor<(usize, usize, Const<I>), f32, D, T>,
    ) -> Tensor<(usize, usize, Const<O>), f32, D, T> {
        D::linear(x, &self.weight, Some(&self.bias), None)
    }

    /// `skip + x W^T + b`: the layer's output added onto a residual stream that travels
    /// without a tape (it still receives its gradient).
    pub fn forward_onto<T: Tape<f32, D>>(
        &self,
        x: Tensor<(usize, usize, Const<I>), f32, D, T>,
        skip: Tensor<(usize, usize, Const<O>), f32, D>,
    ) -> Tensor<(usize, usize, Const<O>), f32, D, T> {
        D::linear(x, &self.weight, Some(&self.bias), Some(skip))
    }

    /// [`Self::forward`] in generation, its weights read from the generation's `frozen`.
    pub fn forward_frozen(
        &self,
        x: Tensor<(usize, usize, Const<I>), f32, D>,
        frozen: &mut FrozenWeights,
    ) -> Tensor<(usize, usize, Const<O>), f32, D> {
        D::linear_frozen(x, &self.weight, Some(&self.bias), None, frozen)
    }

    /// [`Self::forward_onto`] in generation, its weights read from the generation's `frozen`.
    pub fn forward_onto_frozen(
        &self,
        x: Tensor<(usize, usize, Const<I>), f32, D>,
        skip: Tensor<(usize, usize, Const<O>), f32, D>,
        frozen: &mut FrozenWeights,
    ) -> Tensor<(usize, usize, Const<O>), f32, D> {
        D::linear_frozen(x, &self.weight, Some(&self.bias), Some(skip), frozen)
    }
}

/// LayerNorm over the last axis, epsilon 1e-5 as in GPT-2.
#[derive(Clone, Debug)]
pub struct LayerNorm<const M: usize, D: Device<f32>> {
    pub weight: Tensor<Rank1<M>, f32, D>,
    pub bias: Tensor<Rank1<M>, f32, D>,
}

pub const LAYER_NORM_EPS: f64 = 1e-5;

impl<const M: usize, D: Device<f32> + FusedOps> LayerNorm<M, D> {
    pub fn forward<T: Tape<f32, D>>(
        &self,
        x: Tensor<(usize, usize, Const<M>), f32, D, T>,
    ) -> Tensor<(usize, usize, Const<M>), f32, D, T> {
        D::layer_norm(x, &self.weight, &self.bias, LAYER_NORM_EPS as f32)
    }
}
