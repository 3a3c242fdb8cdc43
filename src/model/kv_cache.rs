//! A generation batch's keys and values: in host buffers (`BatchCache`, the CPU's fast path)
//! or in device tensors (`DeviceCache`, every other device, and the CPU's portable path). The
//! generator holds one without knowing which.

use super::batch_cache::BatchCache;
use super::config::ModelConfig;
use super::device_cache::DeviceCache;
use super::kernels::FrozenWeights;
use super::Backend;

pub enum Store<D: Backend> {
    Host(BatchCache),
    Device(DeviceCache<D>),
}

pub struct KvCache<D: Backend> {
    /// The model's weights as the CPU's fused kernels read them, copied once for the cache's
    /// whole life (the `Generator` that owns the cache borrows the model, so they cannot
    /// change meanwhile). Empty elsewhere.
    pub weights: FrozenWeights,
    pub store: Store<D>,
}

impl<D: Backend> KvCache<D> {
    /// Room for `slots` sequences of up to `capacity` positions (at most the model's context),
    /// on the host where the device keeps its fast path there, on `dev` otherwise.
    pub fn new(cfg: &ModelConfig, dev: &D, slots: usize, capacity: usize) -> Self {
        let store = if D::host_cache() {
            Store::Host(BatchCache::new(cfg, slots, capacity))
        } else {
            Store::Device(DeviceCache::new(cfg, dev, slots, capacity))
        };
        Self {
            weights: FrozenWeights::default(),
            store,
        }
    }

    /// Positions filled per slot.
    pub fn lens(&self) -> &[usize] {
        match &self.store {
            Store::Host(c) => &c.lens,
            Store::Device(c) => &c.lens,
        }
    }

    /// Positions a slot can hold.
    pub fn capacity(&self) -> usize {
        match &self.store {
            Store::Host(c) => c.capacity(),
            Store::Device(c) => c.capacity(),
        }
    }

    pub fn is_on_device(&self) -> bool {
        matches!(self.store, Store::Device(_))
    }
}
