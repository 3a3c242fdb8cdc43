//! The keys and values of a generation batch on the model's device (the path CUDA runs, and
//! the CPU's with `GPTLAB_KERNELS=portable`): per layer, one `(slots · capacity, width)`
//! tensor each for keys and values, allocated once. A slot holds one sequence; `lens[slot]`
//! says how many of its positions are filled.
//!
//! dfdx 0.13 has no op that writes part of a tensor, so a write is `cache · keep + new · put`
//! with `new` gathered to the cache's rows: the tensor keeps its shape and the positions not
//! written keep their values exactly. Decoding attends every slot's query over its whole
//! capacity with a mask for the positions not yet filled, all with dfdx ops on the device:
//! nothing is read back between layers. The index and mask tensors a call needs are uploaded
//! once and shared by every layer.

use super::config::ModelConfig;
use super::kernels::Act;
use super::Backend;
use dfdx::prelude::*;

/// Positions side by side: `(rows, width)`.
pub type Rows<D> = Tensor<(usize, usize), f32, D>;
type Index<D> = Tensor<(usize,), usize, D>;

pub struct DeviceCache<D: Backend> {
    slots: usize,
    capacity: usize,
    heads: usize,
    keys: Vec<Rows<D>>,
    values: Vec<Rows<D>>,
    /// Positions filled per slot.
    pub lens: Vec<usize>,
}

/// Where a call's new positions go: cache row `r` takes row `from[r]` of the new positions
/// where `put[r]` is 1, and keeps its value where it is 0.
pub struct Writes<D: Backend> {
    from: Index<D>,
    put: Tensor<(usize,), f32, D>,
    keep: Tensor<(usize,), f32, D>,
}

/// One decoding step's maps: its writes, which row's query each slot attends with, which
/// slot's output each row takes, and the additive mask of the positions each slot sees.
pub struct DecodeStep<D: Backend> {
    writes: Writes<D>,
    query_of_slot: Index<D>,
    slot_of_row: Index<D>,
    mask: Rows<D>,
}

impl<D: Backend> DeviceCache<D> {
    /// Room for `slots` sequences of up to `capacity` positions (at most the model's context).
    pub fn new(cfg: &ModelConfig, dev: &D, slots: usize, capacity: usize) -> Self {
        let capacity = capacity.clamp(1, cfg.n_ctx);
        let zeros = || dev.zeros_like(&(slots * capacity, cfg.n_embd));
        Self {
            slots,
            capacity,
            heads: cfg.n_head,
            keys: (0..cfg.n_layer).map(|_| zeros()).collect(),
            values: (0..cfg.n_layer).map(|_| zeros()).collect(),
            lens: vec![0; slots],
        }
    }

    /// Positions a slot can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Uploads writes of new rows: `(slot, position, row of the new positions)` each.
    fn writes(&self, dev: &D, targets: impl Iterator<Item = (usize, usize, usize)>) -> Writes<D> {
        let n = self.slots * self.capacity;
        let (mut from, mut put) = (vec![0usize; n], vec![0f32; n]);
        for (slot, pos, row) in targets {
            assert!(
                pos < self.capacity,
                "a slot holds {} positions",
                self.capacity
            );
            from[slot * self.capacity + pos] = row;
            put[slot * self.capacity + pos] = 1.0;
        }
        let keep = put.iter().map(|p| 1.0 - p).collect();
        Writes {
            from: dev.tensor_from_vec(from, (n,)),
            put: dev.tensor_from_vec(put, (n,)),
            keep: dev.tensor_from_vec(keep, (n,)),
        }
    }

    /// The writes of a prefill: row `i` of `(rows, seq)` padded prompts holds `lens[i]` real
    /// positions, for `slots[i]` from position 0.
    pub fn prefill_writes(
        &self,
        dev: &D,
        slots: &[usize],
        lens: &[usize],
        seq: usize,
    ) -> Writes<D> {
        let targets = slots
            .iter()
            .zip(lens)
            .enumerate()
            .flat_map(|(i, (&slot, &len))| (0..len).map(move |p| (slot, p, i * seq + p)));
        self.writes(dev, targets)
    }

    /// The maps of one decoding step: row `i` is `slots[i]`'s new position `lens[slots[i]]`.
    pub fn decode_step(&self, dev: &D, slots: &[usize]) -> DecodeStep<D> {
        let writes = self.writes(
            dev,
            slots.iter().enumerate().map(|(i, &s)| (s, self.lens[s], i)),
        );
        let (mut query_of_slot, mut seen) = (vec![0usize; self.slots], vec![1usize; self.slots]);
        for (i, &s) in slots.iter().enumerate() {
            query_of_slot[s] = i;
            seen[s] = self.lens[s] + 1;
        }
        // A slot not in this step attends over its first position: finite, and discarded.
        let mask = seen
            .iter()
            .flat_map(|&n| {
                (0..self.capacity).map(move |p| if p < n { 0.0 } else { f32::NEG_INFINITY })
            })
            .collect();
        DecodeStep {
            writes,
            query_of_slot: dev.tensor_from_vec(query_of_slot, (self.slots,)),
            slot_of_row: dev.tensor_from_vec(slots.to_vec(), (slots.len(),)),
            mask: dev.tensor_from_vec(mask, (self.slots, self.capacity)),
        }
    }

    /// Writes new keys and values (`(rows, width)` each) into `layer` as `writes` says.
    pub fn write(&mut self, layer: usize, k: Rows<D>, v: Rows<D>, writes: &Writes<D>) {
        let put = |old: Rows<D>, new: Rows<D>| {
            let shape = *old.shape();
            let keep = writes.keep.clone().broadcast_like::<_, Axis<1>>(&shape);
            let put = writes.put.clone().broadcast_like::<_, Axis<1>>(&shape);
            old * keep + new.gather(writes.from.clone()) * put
        };
        let old = self.keys[layer].clone();
        self.keys[layer] = put(old, k);
        let old = self.values[layer].clone();
        self.values[layer] = put(old, v);
    }

    /// Attention of one query per row (`(rows, 1, M)`, row `i` of `slots[i]`, its own new
    /// position already written) over its slot's filled positions.
    pub fn attend<const M: usize>(
        &self,
        layer: usize,
        q: Act<M, D, NoneTape>,
        step: &DecodeStep<D>,
    ) -> Act<M, D, NoneTape> {
        let rows = q.shape().0;
        let (slots, cap, heads) = (self.slots, self.capacity, self.heads);
        let dim = M / heads;
        let q = q
            .reshape_like(&(rows, Const::<M>))
            .gather(step.query_of_slot.clone())
            .reshape_like(&(slots, heads, 1, dim));
        let by_head = |t: &Rows<D>| t.clone().reshape_like(&(slots, cap, heads, dim));
        let k = by_head(&self.keys[layer]).permute::<_, Axes4<0, 2, 3, 1>>();
        let v = by_head(&self.values[layer]).permute::<_, Axes4<0, 2, 1, 3>>();
        let scores = q.matmul(k) * (1.0 / (dim as f32).sqrt());
        let shape = *scores.shape();
        let mask = step.mask.clone().broadcast_like::<_, Axes2<1, 2>>(&shape);
        (scores + mask)
            .softmax::<Axis<3>>()
            .matmul(v)
            .reshape_like(&(slots, Const::<M>))
            .gather(step.slot_of_row.clone())
            .reshape_like(&(rows, 1, Const::<M>))
    }
}

impl<D: Backend> DecodeStep<D> {
    /// Where this step's new positions go.
    pub fn writes(&self) -> &Writes<D> {
        &self.writes
    }
}
