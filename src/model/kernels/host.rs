//! Moving data between dfdx CPU tensors and plain slices without dfdx's element iterator
//! (`as_vec` walks an index iterator, a few ns per element: it was 7% of a training step).

use dfdx::prelude::*;

/// A copy of a CPU tensor's buffer, by memcpy into a recycled buffer (see `pool`).
///
/// The tensor must be laid out in logical order (not a permuted or broadcast view): every
/// input of the fused ops is the fresh output of another op, which is.
pub fn to_host<S: Shape, T>(t: &Tensor<S, f32, Cpu, T>) -> Vec<f32> {
    let mut v = super::pool::scratch(t.shape().num_elements());
    t.copy_into(&mut v);
    v
}

/// `to_host` for other element types (token ids), without recycling.
pub fn to_vec<S: Shape, E: Unit, T>(t: &Tensor<S, E, Cpu, T>) -> Vec<E> {
    let mut v = vec![E::default(); t.shape().num_elements()];
    t.copy_into(&mut v);
    v
}

/// Takes the finished gradient of an op's output out of the gradient table (no copy): `$y` is
/// the output or, better, its `ghost()`, which names the gradient without keeping the output's
/// buffer alive until the backward. A macro because dfdx does not export the trait that
/// tensors and ghosts share (`Tensorlike`), so no function can take either.
///
/// Sound because the tape runs backward ops in reverse order: every consumer of `y` has
/// already added to its gradient, and only `y`'s own op reads it after that.
macro_rules! take_grad {
    ($grads:expr, $y:expr) => {
        $grads
            .get_or_alloc_mut($y)
            .map(|g| std::mem::take(&mut **g))
    };
}
pub(crate) use take_grad;

/// A raw pointer that rayon tasks may share, for kernels whose tasks write disjoint parts of
/// one buffer (attention heads write interleaved columns of the same rows).
#[derive(Clone, Copy)]
pub struct SharedMut(pub *mut f32);
// SAFETY: users only write disjoint elements from different tasks.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}
