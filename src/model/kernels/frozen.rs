//! Host copies of a model's weights kept for a whole generation. The CPU ops read a tensor
//! only by copying it (dfdx 0.13 has no public view of a tensor's buffer), so a decode step
//! that copied every weight matrix spent as long copying as multiplying at small batches.
//! Generation copies each weight once, on first use, and reads that copy at every step.
//!
//! A copy is found by the address of the weight tensor it was made from. That is sound only
//! while the weights neither move nor change: the store belongs to one model's generation
//! cache, whose `Generator` borrows the model (immutably) for as long as the store lives.

use dfdx::prelude::*;
use rayon::prelude::*;
use std::collections::HashMap;

#[derive(Default)]
pub struct FrozenWeights {
    copies: HashMap<usize, Vec<f32>>,
}

impl FrozenWeights {
    /// The host copy of the weight matrix `w` (`O × I`), made on first use. It is stored
    /// transposed, `I × O`: a product with few rows (a decode step) then reads it in place,
    /// where the `O × I` copy was packed again at every step, at more cost than the
    /// multiplication itself.
    pub fn matrix<const O: usize, const I: usize>(&mut self, w: &Tensor<Rank2<O, I>, f32, Cpu>) {
        (self.copies)
            .entry(address(w))
            .or_insert_with(|| transpose(&physical(w), O, I));
    }

    /// The host copy of the vector `b`, made on first use.
    pub fn vector<const O: usize>(&mut self, b: &Tensor<Rank1<O>, f32, Cpu>) {
        self.copies.entry(address(b)).or_insert_with(|| physical(b));
    }

    /// The copy that `matrix` or `vector` made of `w` earlier.
    pub fn made<S: Shape>(&self, w: &Tensor<S, f32, Cpu>) -> &[f32] {
        &self.copies[&address(w)]
    }
}

/// A parameter's buffer, copied whole: `as_vec` walks it element by element through a strided
/// index, which took longer than the transposition.
fn physical<S: Shape>(t: &Tensor<S, f32, Cpu>) -> Vec<f32> {
    let mut v = vec![0.0; t.shape().num_elements()];
    t.copy_into(&mut v);
    v
}

/// `rows × cols` → `cols × rows`. Each task writes a band of output rows and reads the
/// input in square tiles, so that neither side strides through memory a row at a time (the
/// plain double loop cost as much as a rollout's sampling).
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 16;
    let mut t = vec![0.0; rows * cols];
    t.par_chunks_mut(TILE * rows)
        .enumerate()
        .for_each(|(band, out)| {
            let c0 = band * TILE;
            let width = out.len() / rows;
            for r0 in (0..rows).step_by(TILE) {
                for c in 0..width {
                    for r in r0..(r0 + TILE).min(rows) {
                        out[c * rows + r] = m[r * cols + c0 + c];
                    }
                }
            }
        });
    t
}

fn address<T>(t: &T) -> usize {
    t as *const T as usize
}

#[cfg(test)]
mod tests {
    #[test]
    fn transpose_moves_every_element() {
        for (rows, cols) in [(1, 1), (3, 40), (37, 17), (64, 128)] {
            let m: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let t = super::transpose(&m, rows, cols);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(t[c * rows + r], m[r * cols + c]);
                }
            }
        }
    }
}
