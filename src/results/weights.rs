//! A stage's weights on disk: `model.safetensors` + `config.json`, standard formats that load
//! elsewhere too. Training, export, serving and inference all read and write them here.

use super::adapters::{read_adapter_record, AdapterRecord};
use super::{CONFIG_FILE, MODEL_FILE};
use crate::model::presets::build_model;
use crate::model::{Backend, LanguageModel, ModelConfig};
use crate::util::{write_atomic, write_json_atomic};
use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// Named f32 tensors as safetensors bytes, with string metadata.
pub fn encode_tensors(
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    meta: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            Ok((name.clone(), TensorView::new(Dtype::F32, shape.clone(), b)?))
        })
        .collect::<Result<_>>()?;
    Ok(safetensors::serialize(views, &Some(meta))?)
}

/// Reads every f32 tensor of a safetensors file: name -> (shape, values), plus metadata.
pub fn read_tensors(
    path: &Path,
) -> Result<(
    HashMap<String, (Vec<usize>, Vec<f32>)>,
    HashMap<String, String>,
)> {
    read_tensors_except(path, |_| false)
}

/// [`read_tensors`] without the tensors `skip` names, whatever their type (a checkpoint's
/// buffers that gptlab recomputes, such as GPT-2's boolean causal masks).
pub fn read_tensors_except(
    path: &Path,
    skip: impl Fn(&str) -> bool,
) -> Result<(
    HashMap<String, (Vec<usize>, Vec<f32>)>,
    HashMap<String, String>,
)> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a valid safetensors file (corrupt or truncated?): {e:?}",
            path.display()
        )
    })?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: unreadable header: {e:?}", path.display()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        if skip(&name) {
            continue;
        }
        if view.dtype() != Dtype::F32 {
            bail!(
                "{}: tensor `{name}` is {:?}, expected F32",
                path.display(),
                view.dtype()
            );
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.insert(name, (view.shape().to_vec(), values));
    }
    Ok((out, meta))
}

pub fn model_tensors<D: Backend>(
    model: &mut dyn LanguageModel<D>,
) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>> {
    let mut out = Vec::new();
    model.visit_params(&mut |name, p, _| {
        out.push((name.to_string(), p.shape(), p.to_host()));
        Ok(())
    })?;
    Ok(out)
}

/// Writes `dir/model.safetensors` and `dir/config.json`, each atomically.
pub fn save_model<D: Backend>(model: &mut dyn LanguageModel<D>, dir: &Path) -> Result<()> {
    let tensors = model_tensors(model)?;
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_atomic(&dir.join(MODEL_FILE), &encode_tensors(&tensors, meta)?)?;
    write_json_atomic(&dir.join(CONFIG_FILE), model.config())
}

pub fn read_config(dir: &Path) -> Result<ModelConfig> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a gptlab model config", path.display()))
}

/// Overwrites a model's parameters from a safetensors file; shapes must match exactly.
pub fn load_weights<D: Backend>(model: &mut dyn LanguageModel<D>, path: &Path) -> Result<()> {
    let (tensors, _) = read_tensors(path)?;
    load_weights_from(model, &tensors, "", &path.display().to_string())
}

/// Overwrites a model's parameters from tensors named `<prefix><parameter name>` (a resume
/// file keeps several models side by side); `what` names the source in errors.
pub fn load_weights_from<D: Backend>(
    model: &mut dyn LanguageModel<D>,
    tensors: &HashMap<String, (Vec<usize>, Vec<f32>)>,
    prefix: &str,
    what: &str,
) -> Result<()> {
    model.visit_params(&mut |name, p, _| {
        let (shape, values) = tensors
            .get(&format!("{prefix}{name}"))
            .ok_or_else(|| anyhow::anyhow!("{what}: tensor `{name}` is missing"))?;
        if *shape != p.shape() {
            bail!(
                "{what}: tensor `{name}` has shape {shape:?} but the model expects {:?} \
                 (written by a different preset or vocabulary size?)",
                p.shape()
            );
        }
        p.copy_from_host(values);
        Ok(())
    })
}

/// Loads the model saved in `dir` (config + weights). A LoRA stage's adapters are folded
/// into the weights once, so generation, evaluation, serving and export see a plain model.
pub fn load_model<D: Backend>(dir: &Path, dev: &D) -> Result<Box<dyn LanguageModel<D>>> {
    if let Some((adapted, _)) = load_unmerged(dir, dev)? {
        return Ok(adapted.merged());
    }
    let cfg = read_config(dir)?;
    let mut model = build_model(&cfg, dev, 0)
        .with_context(|| format!("{}", dir.join(CONFIG_FILE).display()))?;
    load_weights(model.as_mut(), &dir.join(MODEL_FILE))?;
    Ok(model)
}

/// A LoRA stage's model with its adapters still apart (what a PEFT export writes), and its
/// record; `None` for a stage that trained every weight. The stage it adapts is loaded
/// first (itself perhaps adapted, and then merged).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::presets::model_config;
    use dfdx::prelude::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("gptlab-ckpt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// A nano model (vocabulary 300), saved into a fresh folder named after `name`.
    fn saved_nano(dev: &Cpu, name: &str) -> (Box<dyn LanguageModel<Cpu>>, std::path::PathBuf) {
        let mut model = build_model(&model_config("nano", 300).unwrap(), dev, 3).unwrap();
        let dir = tmp(name);
        save_model(model.as_mut(), &dir).unwrap();
        (model, dir)
    }

    #[test]
    fn save_then_load_gives_identical_logits() {
        let dev = Cpu::default();
        let (model, dir) = saved_nano(&dev, "roundtrip");
        let loaded = load_model(&dir, &dev).unwrap();
        let x: Tensor<(usize, usize), usize, Cpu> = dev.tensor_from_vec(vec![1, 5, 9, 200], (1, 4));
        assert_eq!(model.logits(x.clone()).as_vec(), loaded.logits(x).as_vec());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn truncated_or_mismatched_checkpoints_are_clear_errors() {
        let dev = Cpu::default();
        let (_, dir) = saved_nano(&dev, "bad");
        let file = dir.join(MODEL_FILE);
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        let err = format!("{:#}", load_model(&dir, &dev).err().unwrap());
        assert!(
            err.contains("model.safetensors") && err.contains("corrupt or truncated"),
            "{err}"
        );

        let mut other = build_model(&model_config("nano", 1000).unwrap(), &dev, 3).unwrap();
        std::fs::write(&file, &bytes).unwrap();
        let err = format!("{:#}", load_weights(other.as_mut(), &file).unwrap_err());
        assert!(
            err.contains("transformer.wte.weight") && err.contains("shape"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
