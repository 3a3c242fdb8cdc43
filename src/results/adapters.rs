//! A LoRA stage's folder: its `model.safetensors` holds only what the stage trained (the
//! adapters, and a scalar head if it has one), and `adapter.json` names the stage it adapts
//! and the adapters' shape. Loading such a stage loads the one it adapts (which may itself be
//! adapted), adds the adapters and reads them in; `weights::load_model` then folds them into
//! the weights once, so generation, evaluation, serving and export see a plain model.

use super::weights::{load_model, load_weights, read_config};
use super::MODEL_FILE;
use crate::model::lora::LoraSpec;
use crate::model::{Backend, LanguageModel};
use crate::util::write_json_atomic;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Beside the weights of a stage trained with LoRA.
pub const ADAPTER_FILE: &str = "adapter.json";

/// What a LoRA stage's weights need to become a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdapterRecord {
    /// The stage (a folder beside this one in the run) whose model the adapters adapt.
    pub base: String,
    pub lora: LoraSpec,
}

pub fn write_adapter_record(stage_dir: &Path, record: &AdapterRecord) -> Result<()> {
    std::fs::create_dir_all(stage_dir)
        .with_context(|| format!("cannot create {}", stage_dir.display()))?;
    write_json_atomic(&stage_dir.join(ADAPTER_FILE), record)
}

/// The stage's adapter record; `None` for a stage that trained every weight.
pub fn read_adapter_record(stage_dir: &Path) -> Result<Option<AdapterRecord>> {
    let path = stage_dir.join(ADAPTER_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let record = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a gptlab adapter record", path.display()))?;
    Ok(Some(record))
}

/// A LoRA stage's model with its adapters still apart (what a PEFT export writes), and its
/// record; `None` for a stage that trained every weight.
pub fn load_unmerged<D: Backend>(
    dir: &Path,
    dev: &D,
) -> Result<Option<(Box<dyn LanguageModel<D>>, AdapterRecord)>> {
    let Some(record) = read_adapter_record(dir)? else {
        return Ok(None);
    };
    let base_dir = dir.parent().unwrap_or(Path::new(".")).join(&record.base);
    let mut model = load_model(&base_dir, dev).with_context(|| {
        format!(
            "{}: loading `{}`, the stage it adapts",
            dir.display(),
            record.base
        )
    })?;
    // A reward stage trains its scalar head beside the adapters; its values are read below.
    if read_config(dir)?.score_head && !model.has_score_head() {
        model.add_score_head(0);
    }
    model.add_adapters(&record.lora, 0)?;
    load_weights(model.as_mut(), &dir.join(MODEL_FILE))?;
    Ok(Some((model, record)))
}
