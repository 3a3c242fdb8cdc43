//! A GPT's LoRA adapters, placed as peft places them on GPT-2: per block, on `attn.c_attn`,
//! `attn.c_proj`, `mlp.c_fc` and `mlp.c_proj` (those the spec targets). GPT-2's `c_attn` is
//! one `M → 3M` layer; here q, k and v are three `M → M` layers, and its adapter is exactly
//! peft's: one A `[r, M]` shared by the three, one B `[3M, r]` whose row blocks are q's, k's
//! and v's updates, so a peft adapter is written and read with no conversion.

use super::lora::{Adapter, LoraRun, LoraSpec};
use super::params::ParamFn;
use super::raw::RawStorage;
use anyhow::Result;
use dfdx::prelude::*;
use rand::SeedableRng;

/// The adapters of one attention layer.
#[derive(Clone, Debug)]
pub struct AttnAdapters<const M: usize, D: Device<f32>> {
    /// Over q, k and v together: B is `3M × r`.
    pub c_attn: Option<Adapter<M, D>>,
    pub c_proj: Option<Adapter<M, D>>,
}

/// The adapters of one MLP.
#[derive(Clone, Debug)]
pub struct MlpAdapters<const M: usize, const F: usize, D: Device<f32>> {
    pub c_fc: Option<Adapter<M, D>>,
    pub c_proj: Option<Adapter<F, D>>,
}

#[derive(Clone, Debug)]
pub struct BlockAdapters<const M: usize, const F: usize, D: Device<f32>> {
    pub attn: AttnAdapters<M, D>,
    pub mlp: MlpAdapters<M, F, D>,
}

/// Every block's adapters and the spec they were made from.
#[derive(Clone, Debug)]
pub struct Adapters<const M: usize, const F: usize, D: Device<f32>> {
    pub spec: LoraSpec,
    pub blocks: Vec<BlockAdapters<M, F, D>>,
}

impl<const M: usize, const F: usize, D: Device<f32> + RawStorage> Adapters<M, F, D> {
    /// Fresh adapters (B = 0) for `n_layer` blocks, A drawn from `seed`.
    pub fn new(spec: &LoraSpec, n_layer: usize, dev: &D, seed: u64) -> Result<Self> {
        let on = spec.targets()?;
        let r = spec.rank;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut make =
            |wanted: bool, out: usize| wanted.then(|| Adapter::new(dev, out, r, &mut rng));
        let blocks = (0..n_layer)
            .map(|_| BlockAdapters {
                attn: AttnAdapters {
                    c_attn: make(on.c_attn, 3 * M),
                    c_proj: make(on.attn_c_proj, M),
                },
                mlp: MlpAdapters {
                    c_fc: make(on.c_fc, F),
                    c_proj: None,
                },
            })
            .collect::<Vec<_>>();
        // F-input adapters are a different type: drawn after the others, block by block.
        let mut blocks = blocks;
        for b in &mut blocks {
            b.mlp.c_proj = on.mlp_c_proj.then(|| Adapter::new(dev, M, r, &mut rng));
        }
        Ok(Self {
            spec: spec.clone(),
            blocks,
        })
    }

    pub fn run(&self, training: bool) -> LoraRun {
        LoraRun::new(&self.spec, training)
    }

    /// Every A and B, with peft's names (`transformer.h.{i}.attn.c_attn.lora_A.weight`, ...).
    pub fn visit(&mut self, f: &mut ParamFn<'_, D>) -> Result<()> {
        for (i, b) in self.blocks.iter_mut().enumerate() {
            let p = format!("transformer.h.{i}");
            let modules = [
                ("attn.c_attn", b.attn.c_attn.as_mut()),
                ("attn.c_proj", b.attn.c_proj.as_mut()),
                ("mlp.c_fc", b.mlp.c_fc.as_mut()),
            ];
            for (name, adapter) in modules {
                if let Some(a) = adapter {
                    a.visit(&format!("{p}.{name}"), f)?;
                }
            }
            if let Some(a) = b.mlp.c_proj.as_mut() {
                a.visit(&format!("{p}.mlp.c_proj"), f)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "adapters/tests.rs"]
mod tests;
