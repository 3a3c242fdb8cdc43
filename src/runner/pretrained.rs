//! A run whose base is a `pretrained` stage: its tokenizer and model shape are the
//! checkpoint's, checked before any stage trains, and the stage itself writes the folder's
//! model as a gptlab stage folder that later stages start `from`.
//!
//! What the spec alone can check (the folder, its files, safetensors weights) is checked when
//! the spec loads (`spec::pretrained`); here, what needs the model configuration or the
//! tokenizer.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::hf::config::read_hf_config;
use crate::hf::import_hf_model;
use crate::model::ModelConfig;
use crate::results::weights::save_model;
use crate::results::StageMeta;
use crate::spec::pretrained::{pretrained_base, CONFIG, TOKENIZER_FILES};
use crate::spec::{LoadedSpec, StageKind};
use crate::tokenizer::{load_pretrained_tokenizer, Tokenizer};

/// The checkpoint's tokenizer, as the run uses it.
pub fn tokenizer(dir: &Path) -> Result<Tokenizer> {
    Tokenizer::from_hf(load_pretrained_tokenizer(dir)?)
}

/// The model configuration of the run's pretrained base, if it has one.
pub fn base_config(loaded: &LoadedSpec) -> Result<Option<ModelConfig>> {
    let Some(dir) = pretrained_base(&loaded.spec) else {
        return Ok(None);
    };
    let cfg = read_hf_config(&dir.join(CONFIG)).with_context(|| loaded.locate("stages[0].path"))?;
    Ok(Some(cfg))
}

/// Everything about the pretrained base that needs its configuration or tokenizer: a compiled
/// shape, a tokenizer that fits the model, and `[model]` keys that agree with the checkpoint.
/// `run` and `validate` call it before anything trains.
pub fn check(loaded: &LoadedSpec) -> Result<()> {
    let Some(cfg) = base_config(loaded)? else {
        return Ok(());
    };
    let dir = pretrained_base(&loaded.spec).expect("a pretrained base");
    let at_path = || loaded.locate("stages[0].path");
    let tok = tokenizer(dir).with_context(at_path)?;
    // The checkpoint's own vocabulary: a compiled bucket may pad it.
    let vocab = cfg.real_vocab();
    if tok.vocab_size() > vocab {
        bail!(
            "{}: {} has {} tokens, but {CONFIG} says the model has {vocab} (`vocab_size`): ids \
             from {vocab} on have no embedding row. Use the tokenizer the model was trained with.",
            at_path(),
            tokenizer_file(dir).display(),
            tok.vocab_size()
        );
    }
    check_model_keys(loaded, &cfg)
}

/// `[model] preset`, when written, names the checkpoint's preset; the block size fits it.
fn check_model_keys(loaded: &LoadedSpec, cfg: &ModelConfig) -> Result<()> {
    let model = &loaded.spec.model;
    if let Some(preset) = model.preset.filter(|p| p.as_str() != cfg.preset) {
        bail!(
            "{}: the pretrained checkpoint is preset `{}` ({} layers, {} heads, {} wide), not \
             `{}`; leave `preset` out to take the checkpoint's",
            loaded.locate("model.preset"),
            cfg.preset,
            cfg.n_layer,
            cfg.n_head,
            cfg.n_embd,
            preset.as_str()
        );
    }
    if model.block_size > cfg.n_ctx {
        bail!(
            "{}: expected at most {} (the context of the pretrained checkpoint), found {}",
            loaded.locate("model.block_size"),
            cfg.n_ctx,
            model.block_size
        );
    }
    Ok(())
}

/// The file the folder's tokenizer is read from (`load_pretrained_tokenizer`'s order).
fn tokenizer_file(dir: &Path) -> std::path::PathBuf {
    let first = TOKENIZER_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file());
    first.unwrap_or_else(|| dir.to_path_buf())
}

/// The pretrained stage: its folder's model written into the stage folder `dir`. The weights
/// are copied, not computed with, so the CPU holds them whatever the run's device.
pub fn import_stage(name: &str, hf_dir: &Path, dir: &Path) -> Result<StageMeta> {
    let start = std::time::Instant::now();
    let write = || {
        let (mut model, _) = import_hf_model(hf_dir, &dfdx::tensor::Cpu::default())?;
        save_model(model.as_mut(), dir)
    };
    write().with_context(|| format!("stage `{name}` imports {}", hf_dir.display()))?;
    Ok(StageMeta {
        name: name.to_string(),
        kind: Some(StageKind::Pretrained),
        steps: 0,
        wall_s: start.elapsed().as_secs_f64(),
        ..Default::default()
    })
}
