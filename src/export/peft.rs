//! `gptlab export RUN/STAGE --format peft --out DIR`: a LoRA stage's adapters as a PEFT
//! adapter folder (`adapter_config.json`, `adapter_model.safetensors` with peft's tensor
//! names), and the stage they adapt exported beside them as HF GPT-2 in `DIR/base`, so that
//!
//! ```python
//! base = GPT2LMHeadModel.from_pretrained("DIR/base")
//! model = PeftModel.from_pretrained(base, "DIR")
//! ```
//!
//! gives the stage's model. GPT-2's linear layers are `Conv1D` (weights `[in, out]`), so the
//! config says `fan_in_fan_out`; the adapters themselves are `lora_A` `[r, in]` and `lora_B`
//! `[out, r]` either way, as gptlab keeps them.

use super::hf_gpt2::{check_out, export_hf_gpt2};
use crate::model::Backend;
use crate::results::weights::{encode_tensors, load_unmerged, model_tensors};
use crate::util::{write_atomic, write_json_atomic};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;

pub const ADAPTER_CONFIG_FILE: &str = "adapter_config.json";
pub const ADAPTER_MODEL_FILE: &str = "adapter_model.safetensors";
/// Where the adapted stage goes, inside the export folder.
pub const BASE_FOLDER: &str = "base";

/// Writes the LoRA stage in `stage_dir` as a PEFT adapter to `out`, and its base to
/// `out/base`.
pub fn export_peft<D: Backend>(dev: &D, stage_dir: &Path, out: &Path, force: bool) -> Result<()> {
    check_out(out, force)?;
    let Some((mut model, record)) = load_unmerged(stage_dir, dev)? else {
        bail!(
            "{} trained every weight (its stage has no `lora` table), so it has no adapter to \
             export: use --format hf-gpt2",
            stage_dir.display()
        );
    };
    if model.has_score_head() {
        bail!(
            "{} is a reward model: its scalar head has no place in a PEFT causal-LM adapter; \
             export it with --format hf-gpt2 (the head goes to score_head.safetensors)",
            stage_dir.display()
        );
    }
    let adapters: Vec<(String, Vec<usize>, Vec<f32>)> = model_tensors(model.as_mut())?
        .into_iter()
        .map(|(name, shape, values)| (format!("base_model.model.{name}"), shape, values))
        .collect();
    let base_dir = stage_dir
        .parent()
        .unwrap_or(Path::new("."))
        .join(&record.base);
    let base_out = out.join(BASE_FOLDER);
    export_hf_gpt2(dev, &base_dir, &base_out, force)
        .with_context(|| format!("exporting `{}`, the stage the adapters adapt", record.base))?;
    let base_out = std::path::absolute(&base_out).unwrap_or(base_out);
    let config = json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_out.display().to_string(),
        "r": record.lora.rank,
        "lora_alpha": record.lora.alpha,
        "lora_dropout": record.lora.dropout,
        "target_modules": record.lora.targets,
        "fan_in_fan_out": true,
        "bias": "none",
        "inference_mode": true,
        "init_lora_weights": true,
        "modules_to_save": null,
        "use_rslora": false,
        "use_dora": false,
    });
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_atomic(
        &out.join(ADAPTER_MODEL_FILE),
        &encode_tensors(&adapters, meta)?,
    )?;
    write_json_atomic(&out.join(ADAPTER_CONFIG_FILE), &config)
}
