//! The keys and values of a generation batch, allocated once: per layer, `slots × capacity ×
//! width` floats for each. A slot holds one sequence; `lens[slot]` says how many of its
//! positions are filled. New positions are written in place (nothing is grown by copying),
//! and a freed slot is reused by the next sequence.
//!
//! The buffers live on the host: the CPU's fast path (`KvCache` picks it; other devices and
//! the portable path use `DeviceCache`). One decoding step attends a single query per sequence
//! over its own keys, which is little work next to the step's matrix products, and a host
//! buffer lets every sequence have its own length without masks or padding.

use super::config::ModelConfig;
use super::kernels::{simd, SPLIT_WORK};
use dfdx::prelude::*;
use rayon::prelude::*;

pub struct BatchCache {
    slots: usize,
    capacity: usize,
    width: usize,
    heads: usize,
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    /// Positions filled per slot.
    pub lens: Vec<usize>,
}

impl BatchCache {
    /// Room for `slots` sequences of up to `capacity` positions (at most the model's context).
    pub fn new(cfg: &ModelConfig, slots: usize, capacity: usize) -> Self {
        let capacity = capacity.clamp(1, cfg.n_ctx);
        let size = slots * capacity * cfg.n_embd;
        Self {
            slots,
            capacity,
            width: cfg.n_embd,
            heads: cfg.n_head,
            keys: (0..cfg.n_layer).map(|_| vec![0.0; size]).collect(),
            values: (0..cfg.n_layer).map(|_| vec![0.0; size]).collect(),
            lens: vec![0; slots],
        }
    }

    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Positions a slot can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn at(&self, slot: usize, pos: usize) -> usize {
        (slot * self.capacity + pos) * self.width
    }

    /// Writes `rows` positions of keys and values (`rows × width` each) into `slot` from
    /// position `start`.
    pub fn write(&mut self, layer: usize, slot: usize, start: usize, k: &[f32], v: &[f32]) {
        let rows = k.len() / self.width;
        assert!(
            start + rows <= self.capacity,
            "a slot holds {} positions, not {}",
            self.capacity,
            start + rows
        );
        let at = self.at(slot, start);
        self.keys[layer][at..at + k.len()].copy_from_slice(k);
        self.values[layer][at..at + v.len()].copy_from_slice(v);
    }

    /// One decoding step of one layer: each slot's new keys and values (`(slots.len(),
    /// width)`, written at position `lens[slot]`), then each query over its slot's positions
    /// `0..=lens[slot]`. Returns the heads side by side, `(slots.len(), width)`.
    pub fn step(
        &mut self,
        layer: usize,
        slots: &[usize],
        q: &[f32],
        k: &[f32],
        v: &[f32],
    ) -> Vec<f32> {
        let w = self.width;
        for (i, &slot) in slots.iter().enumerate() {
            let pos = self.lens[slot];
            self.write(
                layer,
                slot,
                pos,
                &k[i * w..(i + 1) * w],
                &v[i * w..(i + 1) * w],
            );
        }
        let head_dim = w / self.heads;
        let scale = 1.0 / (head_dim as f32).sqrt();
        let mut out = vec![0.0f32; slots.len() * w];
        let (keys, values) = (&self.keys[layer], &self.values[layer]);
        // One task per (sequence, head): each writes its own head's columns of its own row.
        // A small batch's attention stays on this thread (see SPLIT_WORK).
        let seen: usize = slots.iter().map(|&slot| self.lens[slot] + 1).sum();
        let per_task = (2 * seen * head_dim / slots.len()).max(1);
        out.par_chunks_mut(head_dim)
            .with_min_len((SPLIT_WORK / per_task).max(1))
            .enumerate()
            .for_each_init(Vec::new, |weights, (task, out)| {
                let (i, h) = (task / self.heads, task % self.heads);
                let slot = slots[i];
                let first = self.at(slot, 0) + h * head_dim;
                let head = Head {
                    keys: &keys[first..],
                    values: &values[first..],
                    width: w,
                    seen: self.lens[slot] + 1,
                    scale,
                };
                attend(&q[i * w + h * head_dim..][..head_dim], head, weights, out);
            });
        out
    }
}

/// One head of one slot's cached positions: position `p`'s columns start at `p · width`.
#[derive(Clone, Copy)]
pub struct Head<'a> {
    keys: &'a [f32],
    values: &'a [f32],
    width: usize,
    seen: usize,
    scale: f32,
}

simd::avx2_variants! {
    /// `out = softmax(scale · query·keysᵀ) · values` over the head's `seen` positions, with
    /// the kernels' 8-lane reductions: iterator sums of scalars do not vectorise, and this
    /// was the largest part of a small model's decode step.
    fn attend(query: &[f32], head: Head<'_>, weights: &mut Vec<f32>, out: &mut [f32]) {
        let dim = query.len();
        weights.clear();
        weights.extend((0..head.seen).map(|p| {
            let key = &head.keys[p * head.width..][..dim];
            simd::dot(query, key) * head.scale
        }));
        let max = simd::max(weights);
        weights.iter_mut().for_each(|x| *x = simd::exp(*x - max));
        let total = simd::sum(weights);
        out.fill(0.0);
        for (p, &wt) in weights.iter().enumerate() {
            let value = &head.values[p * head.width..][..dim];
            let wt = wt / total;
            out.iter_mut().zip(value).for_each(|(o, v)| *o += wt * v);
        }
    }
}

/// A tensor's values on the host, in logical order (any device).
pub fn host<S: Shape, D: Device<f32>>(t: &Tensor<S, f32, D>) -> Vec<f32> {
    let mut v = vec![0.0; t.shape().num_elements()];
    t.copy_into(&mut v);
    v
}

/// The host cache's attention output back into a tensor. Only a device that keeps this cache
/// on the host (the CPU) comes here, so it is a copy between host buffers, not an upload.
pub fn to_tensor<S: Shape, D: Device<f32>>(dev: &D, data: Vec<f32>, shape: S) -> Tensor<S, f32, D> {
    dev.tensor_from_vec(data, shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ModelConfig {
        ModelConfig {
            preset: "t".into(),
            n_layer: 1,
            n_head: 2,
            n_embd: 4,
            n_ctx: 8,
            vocab_size: 10,
            real_vocab_size: None,
            score_head: false,
        }
    }

    /// Attention of one query over explicit keys and values, head by head.
    fn reference(q: &[f32], keys: &[Vec<f32>], values: &[Vec<f32>]) -> Vec<f32> {
        let mut out = vec![0.0; 4];
        for h in 0..2 {
            let c = h * 2..h * 2 + 2;
            let s: Vec<f32> = keys
                .iter()
                .map(|k| simd::dot(&q[c.clone()], &k[c.clone()]) / 2f32.sqrt())
                .collect();
            let m = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = s.iter().map(|x| (x - m).exp()).collect();
            let t: f32 = e.iter().sum();
            for (p, v) in values.iter().enumerate() {
                for j in c.clone() {
                    out[j] += e[p] / t * v[j];
                }
            }
        }
        out
    }

    #[test]
    fn each_slot_attends_over_its_own_positions_only() {
        let mut cache = BatchCache::new(&cfg(), 2, 8);
        let kv = |x: f32| vec![x, -x, 0.5 * x, 1.0];
        // Slot 0 holds two positions, slot 1 one; then one step for both.
        cache.write(
            0,
            0,
            0,
            &[kv(1.0), kv(2.0)].concat(),
            &[kv(3.0), kv(4.0)].concat(),
        );
        cache.write(0, 1, 0, &kv(-1.0), &kv(5.0));
        cache.lens = vec![2, 1];
        let q = [kv(0.3), kv(-0.7)].concat();
        let out = cache.step(
            0,
            &[0, 1],
            &q,
            &[kv(0.5), kv(0.1)].concat(),
            &[kv(6.0), kv(7.0)].concat(),
        );
        let want0 = reference(
            &kv(0.3),
            &[kv(1.0), kv(2.0), kv(0.5)],
            &[kv(3.0), kv(4.0), kv(6.0)],
        );
        let want1 = reference(&kv(-0.7), &[kv(-1.0), kv(0.1)], &[kv(5.0), kv(7.0)]);
        for (a, b) in out.iter().zip(want0.iter().chain(&want1)) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
