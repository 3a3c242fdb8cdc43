//! A LoRA stage's folder: its `model.safetensors` holds only what the stage trained (the
//! adapters, and a scalar head if it has one), and `adapter.json` names the stage it adapts
//! and the adapters' shape (`weights::load_model` reads both).

use crate::model::lora::LoraSpec;
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
