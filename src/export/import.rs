//! `gptlab import HF_DIR --out STAGE_DIR`: an HF GPT-2 folder (as `gptlab export` writes, or
//! any GPT-2 of a compiled preset's shape with a gptlab-layout tokenizer) becomes a gptlab
//! stage folder, with the tokenizer beside it where `gptlab generate` looks for it.

use super::hf_config::read_hf_config;
use super::hf_gpt2::SCORE_HEAD_FILE;
use super::layout::{from_hf, rules, TensorMap};
use crate::model::presets::build_model;
use crate::model::{Backend, LanguageModel, ModelConfig};
use crate::runner::HfReader;
use crate::results::meta::write_stage_record;
use crate::results::weights::{load_weights_from, read_tensors, save_model};
use crate::results::{run_of_stage, StageMeta, CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE};
use crate::spec::StageKind;
use crate::tokenizer::Tokenizer;
use crate::util::write_atomic;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// GPT-2 checkpoints saved from `GPT2Model` name tensors without the `transformer.` prefix.
fn with_prefix(tensors: TensorMap) -> TensorMap {
    if tensors.keys().any(|k| k.starts_with("transformer.")) {
        return tensors;
    }
    tensors
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "lm_head.weight" => (k, v),
            _ => (format!("transformer.{k}"), v),
        })
        .collect()
}

/// Tensors in the HF file that no rule consumed: buffers and a tied LM head are fine;
/// anything else is a part of the model gptlab would silently drop.
fn check_leftovers(hf: &TensorMap, gpt: &TensorMap, used: &[String], what: &str) -> Result<()> {
    for (name, (_, values)) in hf {
        if used.contains(name)
            || name.ends_with(".attn.bias")
            || name.ends_with(".attn.masked_bias")
        {
            continue;
        }
        if name == "lm_head.weight" {
            let wte = &gpt["transformer.wte.weight"].1;
            if values != wte {
                bail!("{what}: `lm_head.weight` differs from `transformer.wte.weight`; gptlab's LM head is tied to the token embedding");
            }
            continue;
        }
        bail!(
            "{what}: tensor `{name}` has no place in a gptlab model; refusing to import without it"
        );
    }
    Ok(())
}

/// How a run reads a `pretrained` stage's folder (the runner sits below `export`).
pub const HF_READER: HfReader = HfReader {
    config: read_hf_config,
    write_stage: write_pretrained_stage,
};

/// A pretrained stage's folder written as a gptlab stage folder. The weights are copied, not
/// computed with, so the CPU holds them whatever the run's device.
fn write_pretrained_stage(hf_dir: &Path, stage_dir: &Path) -> Result<()> {
    let (mut model, _) = import_hf_model(hf_dir, &dfdx::tensor::Cpu::default())?;
    save_model(model.as_mut(), stage_dir)
}

/// The model of the GPT-2 folder `dir` on `dev`, and its configuration.
pub fn import_hf_model<D: Backend>(
    dir: &Path,
    dev: &D,
) -> Result<(Box<dyn LanguageModel<D>>, ModelConfig)> {
    let mut cfg = read_hf_config(&dir.join(CONFIG_FILE))?;
    let weights = dir.join(MODEL_FILE);
    if !weights.exists() {
        bail!("{} is missing: gptlab imports safetensors weights only (save with safe_serialization=True)", weights.display());
    }
    let what = weights.display().to_string();
    let hf = with_prefix(read_tensors(&weights)?.0);
    let rules = rules(cfg.n_layer);
    let mut gpt = from_hf(&hf, &rules).with_context(|| what.clone())?;
    let used: Vec<String> = rules.iter().map(|r| r.hf.clone()).collect();
    check_leftovers(&hf, &gpt, &used, &what)?;
    let score_file = dir.join(SCORE_HEAD_FILE);
    if score_file.exists() {
        gpt.extend(read_tensors(&score_file)?.0);
        cfg.score_head = true;
    }
    let mut model = build_model(&cfg, dev, 0)?;
    load_weights_from(model.as_mut(), &gpt, "", &what)?;
    Ok((model, cfg))
}

/// Reads the GPT-2 folder `hf_dir` into a model on `dev` and saves it as `stage_dir`.
pub fn import_hf_gpt2<D: Backend>(
    dev: &D,
    hf_dir: &Path,
    stage_dir: &Path,
    force: bool,
) -> Result<()> {
    let cfg = read_hf_config(&hf_dir.join(CONFIG_FILE))?;
    let tok_src = hf_dir.join(TOKENIZER_FILE);
    let tokenizer = Tokenizer::load(&tok_src)
        .context("gptlab needs its own tokenizer layout (special tokens at ids 0..7)")?;
    if tokenizer.vocab_size() > cfg.vocab_size {
        bail!(
            "{}: {} ids do not fit the model's vocabulary of {}",
            tok_src.display(),
            tokenizer.vocab_size(),
            cfg.vocab_size
        );
    }
    let tok_bytes = std::fs::read(&tok_src)?;
    let tok_dst = run_of_stage(stage_dir).join(TOKENIZER_FILE);
    if let Ok(existing) = std::fs::read(&tok_dst) {
        if existing != tok_bytes && !force {
            bail!(
                "{} already holds a different tokenizer (other stages of that run use it); \
                 import into another folder or pass --force",
                tok_dst.display()
            );
        }
    }

    let (mut model, _) = import_hf_model(hf_dir, dev)?;
    save_model(model.as_mut(), stage_dir)?;
    write_atomic(&tok_dst, &tok_bytes)?;
    if let Some(kind) = stage_kind(hf_dir) {
        // So `gptlab generate` asks chat models through the template, as for the original.
        let name = stage_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let meta = StageMeta {
            name,
            kind: Some(kind),
            ..Default::default()
        };
        write_stage_record(stage_dir, &meta)?;
    }
    Ok(())
}

/// The stage kind `gptlab export` recorded in `config.json`, if any.
fn stage_kind(hf_dir: &Path) -> Option<StageKind> {
    let text = std::fs::read_to_string(hf_dir.join(CONFIG_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let kind = v.get("gptlab")?.get("stage_kind")?.clone();
    serde_json::from_value(kind).ok()
}
