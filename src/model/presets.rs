//! The compiled model sizes. Each (preset, vocabulary bucket) pair is one monomorphised model
//! type and costs compile time, so the table is small; this is the one place a preset string
//! becomes a type.

use super::config::ModelConfig;
use super::gpt::Gpt;
use super::lm::LanguageModel;
use super::Backend;
use anyhow::{bail, Result};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PresetInfo {
    pub name: &'static str,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
    pub n_ctx: usize,
    /// Compiled vocabulary sizes, ascending; a tokenizer gets the smallest that fits.
    pub vocab_buckets: &'static [usize],
}

/// Declares the preset table and the dispatch from (preset, bucket) to a concrete `Gpt` type.
macro_rules! presets {
    ($( $name:literal => layers $l:literal, heads $h:literal, width $m:literal, mlp $f:literal,
        context $c:literal, vocab [$($v:literal),+] ;)+) => {
        pub const PRESETS: &[PresetInfo] = &[$(PresetInfo {
            name: $name, n_layer: $l, n_head: $h, n_embd: $m, n_ctx: $c, vocab_buckets: &[$($v),+],
        }),+];

        fn instantiate<D: Backend>(cfg: ModelConfig, dev: &D, seed: u64) -> Result<Box<dyn LanguageModel<D>>> {
            match (cfg.preset.as_str(), cfg.vocab_size) {
                $($( ($name, $v) => Ok(Box::new(Gpt::<$v, $c, $m, $f, D>::new(cfg, dev, seed))), )+)+
                (p, v) => bail!("no compiled model for preset `{p}` with vocabulary {v}"),
            }
        }
    };
}

// GPT-2's two larger buckets hold the checkpoints gptlab imports, their vocabularies padded
// to a multiple of 64 as nanoGPT does: BERT's Chinese WordPiece (21,128, the
// `uer/gpt2-chinese-*` family) and GPT-2's BPE (50,257). The layer count is a run-time length,
// so `distilgpt2` compiles to the same types as `gpt2`: only the buckets cost compile time.
presets! {
    "nano"   => layers 2,  heads 2,  width 64,  mlp 256,  context 128,  vocab [128, 512, 4096];
    "small"  => layers 4,  heads 4,  width 128, mlp 512,  context 256,  vocab [128, 512, 4096];
    "medium" => layers 6,  heads 6,  width 384, mlp 1536, context 256,  vocab [128, 512, 4096];
    "gpt2"   => layers 12, heads 12, width 768, mlp 3072, context 1024, vocab [8192, 21184, 50304];
    "distilgpt2" => layers 6, heads 12, width 768, mlp 3072, context 1024, vocab [21184, 50304];
}

pub fn preset_info(name: &str) -> Result<PresetInfo> {
    PRESETS
        .iter()
        .copied()
        .find(|p| p.name == name)
        .ok_or_else(|| {
            let names: Vec<_> = PRESETS.iter().map(|p| p.name).collect();
            anyhow::anyhow!(
                "unknown preset `{name}`; expected one of {}",
                names.join(", ")
            )
        })
}

/// The configuration for `preset` with the smallest compiled vocabulary holding `vocab_needed`.
pub fn model_config(preset: &str, vocab_needed: usize) -> Result<ModelConfig> {
    let info = preset_info(preset)?;
    let Some(&bucket) = info.vocab_buckets.iter().find(|&&v| v >= vocab_needed) else {
        bail!(
            "a vocabulary of {vocab_needed} tokens does not fit preset `{preset}` (compiled sizes: {:?})",
            info.vocab_buckets
        );
    };
    Ok(ModelConfig {
        preset: info.name.to_string(),
        n_layer: info.n_layer,
        n_head: info.n_head,
        n_embd: info.n_embd,
        n_ctx: info.n_ctx,
        vocab_size: bucket,
        real_vocab_size: None,
        score_head: false,
    })
}

/// A freshly initialised model for `cfg` (which must come from `model_config` or a checkpoint).
pub fn build_model<D: Backend>(
    cfg: &ModelConfig,
    dev: &D,
    seed: u64,
) -> Result<Box<dyn LanguageModel<D>>> {
    let info = preset_info(&cfg.preset)?;
    if (info.n_layer, info.n_head, info.n_embd, info.n_ctx)
        != (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.n_ctx)
    {
        bail!(
            "model config {cfg:?} does not match the compiled preset `{}` ({info:?})",
            cfg.preset
        );
    }
    if let Some(real) = cfg.real_vocab_size.filter(|&r| r > cfg.vocab_size) {
        bail!(
            "model config {cfg:?}: a checkpoint vocabulary of {real} does not fit the compiled {}",
            cfg.vocab_size
        );
    }
    let mut model = instantiate(
        ModelConfig {
            score_head: false,
            ..cfg.clone()
        },
        dev,
        seed,
    )?;
    if cfg.score_head {
        model.add_score_head(seed ^ 0x5c0e);
    }
    Ok(model)
}
