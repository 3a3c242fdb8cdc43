//! Host copies of a model's weights kept for a whole generation. The CPU ops read a tensor
//! only by copying it (dfdx 0.13 has no public view of a tensor's buffer), so a decode step
//! that copied every weight matrix spent as long copying as multiplying at small batches.
//! Generation copies each weight once, on first use, and reads that copy at every step.
//!
//! A copy is found by the address of the weight tensor it was made from. That is sound only
//! while the weights neither move nor change: the store belongs to one model's generation
//! cache, whose `Generator` borrows the model (immutably) for as long as the store lives.

use dfdx::prelude::*;
use std::collections::HashMap;

#[derive(Default)]
pub struct FrozenWeights {
    copies: HashMap<usize, Vec<f32>>,
}

impl FrozenWeights {
    /// The host copy of `w`, made on first use.
    pub fn host<S: Shape>(&mut self, w: &Tensor<S, f32, Cpu>) -> &[f32] {
        self.copies.entry(address(w)).or_insert_with(|| {
            let mut v = vec![0.0; w.shape().num_elements()];
            w.copy_into(&mut v);
            v
        })
    }

    /// The host copy of `w`, which `host` made earlier.
    pub fn made<S: Shape>(&self, w: &Tensor<S, f32, Cpu>) -> &[f32] {
        &self.copies[&address(w)]
    }
}

fn address<T>(t: &T) -> usize {
    t as *const T as usize
}
