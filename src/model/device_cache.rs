//! The keys and values of a generation batch on the model's device (the path CUDA runs, and
//! the CPU's with `GPTLAB_KERNELS=portable`): per layer, one `(slots · capacity, width)`
//! tensor each for keys and values, allocated once. A slot holds one sequence; `lens[slot]`
//! says how many of its positions are filled.
//!
//! dfdx 0.13 has no op that writes part of a tensor, so a write is `cache · keep + new · put`
//! with `new` gathered to the cache's rows: the tensor keeps its shape and the positions not
//! written keep their values exactly. Decoding attends every slot's query over its whole
//! capacity with a mask for the positions not yet filled, all with dfdx ops on the device:
//! nothing is read back between layers, and the maps a call needs are made once and shared by
//! every layer. A decoding step derives them on the device from the slots' lengths, kept
//! there too, so in steady state it uploads only its new ids.

use super::config::ModelConfig;
use super::kernels::Act;
use super::Backend;
use crate::util::upload;
use dfdx::prelude::*;

/// Positions side by side: `(rows, width)`.
pub type Rows<D> = Tensor<(usize, usize), f32, D>;
type Index<D> = Tensor<(usize,), usize, D>;
type Column<D> = Tensor<(usize,), f32, D>;

pub struct DeviceCache<D: Backend> {
    slots: usize,
    capacity: usize,
    heads: usize,
    keys: Vec<Rows<D>>,
    values: Vec<Rows<D>>,
    /// Positions filled per slot, on the host (the generator decides what to prefill by them).
    pub lens: Vec<usize>,
    /// The same on the device, as f32 (exact up to 2^24), advanced there by each decode step:
    /// a step derives its writes, mask and positions from it instead of uploading them.
    lens_on_device: Column<D>,
    cells: Cells<D>,
    /// The maps of the slots that decoded last, kept for the next step (see `ActiveSet`).
    active: Option<ActiveSet<D>>,
}

/// Constants over the cache's `slots · capacity` cells (cell `s · capacity + p` is slot `s`'s
/// position `p`), uploaded once when the cache is made.
struct Cells<D: Backend> {
    slot: Index<D>,
    position: Column<D>,
    zeros: Column<D>,
    ones: Column<D>,
    minus_infinity: Column<D>,
}

/// The maps that depend only on which slots decode together, not on their lengths. They change
/// when a sequence finishes or a slot is refilled, a few times in a generation, so they are
/// uploaded then and reused by every step in between: a steady decode step uploads nothing
/// but its new ids.
struct ActiveSet<D: Backend> {
    /// The decoding slots, in row order: row `i` is `slots[i]`.
    slots: Vec<usize>,
    /// 1 for a decoding slot, 0 for the others: per slot and per cell.
    active: Column<D>,
    active_cells: Column<D>,
    /// Which row's new position a cell takes (only the cell at its slot's length takes it).
    from: Index<D>,
    query_of_slot: Index<D>,
    slot_of_row: Index<D>,
}

/// Where a call's new positions go: cache row `r` takes row `from[r]` of the new positions
/// where `put[r]` is 1, and keeps its value where it is 0.
pub struct Writes<D: Backend> {
    from: Index<D>,
    put: Column<D>,
    keep: Column<D>,
}

/// One decoding step's maps: its writes, which row's query each slot attends with, which
/// slot's output each row takes, the additive mask of the positions each slot sees, and each
/// row's new position as a one-hot `(rows, capacity)` (the position embedding is its product
/// with the position table: exact, and it needs no index read from the host).
pub struct DecodeStep<D: Backend> {
    writes: Writes<D>,
    query_of_slot: Index<D>,
    slot_of_row: Index<D>,
    mask: Rows<D>,
    position: Rows<D>,
}

impl<D: Backend> DeviceCache<D> {
    /// Room for `slots` sequences of up to `capacity` positions (at most the model's context).
    pub fn new(cfg: &ModelConfig, dev: &D, slots: usize, capacity: usize) -> Self {
        let capacity = capacity.clamp(1, cfg.n_ctx);
        let zeros = || dev.zeros_like(&(slots * capacity, cfg.n_embd));
        let n = slots * capacity;
        let slot = (0..n).map(|c| c / capacity).collect();
        let position = (0..n).map(|c| (c % capacity) as f32).collect();
        let cells = Cells {
            slot: upload::tensor(dev, slot, (n,)),
            position: upload::tensor(dev, position, (n,)),
            zeros: dev.zeros_like(&(n,)),
            ones: dev.ones_like(&(n,)),
            minus_infinity: dev.zeros_like(&(n,)) + f32::NEG_INFINITY,
        };
        Self {
            slots,
            capacity,
            heads: cfg.n_head,
            keys: (0..cfg.n_layer).map(|_| zeros()).collect(),
            values: (0..cfg.n_layer).map(|_| zeros()).collect(),
            lens: vec![0; slots],
            lens_on_device: dev.zeros_like(&(slots,)),
            cells,
            active: None,
        }
    }

    /// Positions a slot can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The writes of a prefill: row `i` of `(rows, seq)` padded prompts holds `lens[i]` real
    /// positions, for `slots[i]` from position 0. A prefill uploads its maps (it is no decode
    /// step, and its prompts are uploaded anyway).
    pub fn prefill_writes(
        &self,
        dev: &D,
        slots: &[usize],
        lens: &[usize],
        seq: usize,
    ) -> Writes<D> {
        let n = self.slots * self.capacity;
        let (mut from, mut put) = (vec![0usize; n], vec![0f32; n]);
        for (i, (&slot, &len)) in slots.iter().zip(lens).enumerate() {
            assert!(
                len <= self.capacity,
                "a slot holds {} positions",
                self.capacity
            );
            for p in 0..len {
                from[slot * self.capacity + p] = i * seq + p;
                put[slot * self.capacity + p] = 1.0;
            }
        }
        let put = upload::tensor(dev, put, (n,));
        Writes {
            from: upload::tensor(dev, from, (n,)),
            keep: self.cells.ones.clone() - put.clone(),
            put,
        }
    }

    /// After a prefill: `slots[i]` holds `lens[i]` positions, on the host and on the device.
    pub fn prefilled(&mut self, dev: &D, slots: &[usize], lens: &[usize]) {
        for (&slot, &len) in slots.iter().zip(lens) {
            self.lens[slot] = len;
        }
        let lens = self.lens.iter().map(|&l| l as f32).collect();
        self.lens_on_device = upload::tensor(dev, lens, (self.slots,));
    }

    /// The maps of one decoding step: row `i` is `slots[i]`'s new position `lens[slots[i]]`.
    /// Derived on the device from its lengths; uploads only when the decoding slots changed.
    pub fn decode_step(&mut self, dev: &D, slots: &[usize]) -> DecodeStep<D> {
        assert!(
            slots.iter().all(|&s| self.lens[s] < self.capacity),
            "a slot holds {} positions",
            self.capacity
        );
        if self.active.as_ref().map_or(true, |a| a.slots != slots) {
            self.active = Some(self.active_set(dev, slots));
        }
        let active = self.active.as_ref().expect("set above");
        let cells = &self.cells;
        let len_of_cell = self.lens_on_device.clone().gather(cells.slot.clone());
        let new = cells.position.eq(&len_of_cell);
        let put = new.choose(active.active_cells.clone(), cells.zeros.clone());
        // A slot sees its filled positions and the new one. A slot not in this step sees as
        // much, stale values included: finite, and its output is discarded.
        let seen = cells.position.le(&len_of_cell);
        let mask = seen.choose(cells.zeros.clone(), cells.minus_infinity.clone());
        let (slots_n, cap) = (self.slots, self.capacity);
        let position = put
            .clone()
            .reshape_like(&(slots_n, cap))
            .gather(active.slot_of_row.clone());
        DecodeStep {
            writes: Writes {
                from: active.from.clone(),
                keep: cells.ones.clone() - put.clone(),
                put,
            },
            query_of_slot: active.query_of_slot.clone(),
            slot_of_row: active.slot_of_row.clone(),
            mask: mask.reshape_like(&(slots_n, cap)),
            position,
        }
    }

    /// After a decoding step of `slots`: each holds one more position.
    pub fn advance(&mut self, slots: &[usize]) {
        let active = self.active.as_ref().expect("a decoding step came first");
        debug_assert_eq!(active.slots, slots);
        self.lens_on_device = self.lens_on_device.clone() + active.active.clone();
        slots.iter().for_each(|&s| self.lens[s] += 1);
    }

    /// Uploads the maps of the slots that decode together: four uploads.
    fn active_set(&self, dev: &D, slots: &[usize]) -> ActiveSet<D> {
        let (mut query_of_slot, mut active) = (vec![0usize; self.slots], vec![0f32; self.slots]);
        for (i, &s) in slots.iter().enumerate() {
            query_of_slot[s] = i;
            active[s] = 1.0;
        }
        let from = (0..self.slots * self.capacity)
            .map(|c| query_of_slot[c / self.capacity])
            .collect();
        let active = upload::tensor(dev, active, (self.slots,));
        ActiveSet {
            slots: slots.to_vec(),
            active_cells: active.clone().gather(self.cells.slot.clone()),
            active,
            from: upload::tensor(dev, from, (self.slots * self.capacity,)),
            query_of_slot: upload::tensor(dev, query_of_slot, (self.slots,)),
            slot_of_row: upload::tensor(dev, slots.to_vec(), (slots.len(),)),
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

    /// Row `i`'s new position, one-hot over the cache's capacity: `(rows, capacity)`.
    pub fn position(&self) -> &Rows<D> {
        &self.position
    }
}
