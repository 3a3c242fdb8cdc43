//! `gptlab import HF_DIR --out STAGE_DIR`: an HF GPT-2 folder (as `gptlab export` writes, or
//! any GPT-2 of a compiled preset's shape with a gptlab-layout tokenizer) becomes a gptlab
//! stage folder, with the tokenizer beside it where `gptlab generate` looks for it.

use crate::hf::import_hf_model;
use crate::model::Backend;
use crate::results::meta::write_stage_record;
use crate::results::weights::save_model;
use crate::results::{run_of_stage, StageMeta, CONFIG_FILE, TOKENIZER_FILE};
use crate::spec::StageKind;
use crate::tokenizer::Tokenizer;
use crate::util::write_atomic;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Reads the GPT-2 folder `hf_dir` into a model on `dev` and saves it as `stage_dir`.
pub fn import_hf_gpt2<D: Backend>(
    dev: &D,
    hf_dir: &Path,
    stage_dir: &Path,
    force: bool,
) -> Result<()> {
    let (mut model, cfg) = import_hf_model(hf_dir, dev)?;
    let tok_src = hf_dir.join(TOKENIZER_FILE);
    let tokenizer = Tokenizer::load(&tok_src)
        .context("gptlab needs its own tokenizer layout (special tokens at ids 0..7)")?;
    if tokenizer.vocab_size() > cfg.real_vocab() {
        bail!(
            "{}: {} ids do not fit the model's vocabulary of {}",
            tok_src.display(),
            tokenizer.vocab_size(),
            cfg.real_vocab()
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
