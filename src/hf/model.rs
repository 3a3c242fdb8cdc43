//! A Hugging Face GPT-2 folder as a gptlab model, at any compiled shape: `config.json` picks
//! the preset (layers, heads, width, context) and the smallest vocabulary bucket that holds the
//! checkpoint's vocabulary; `model.safetensors` fills it. The tokenizer is not read here.

use super::config::read_hf_config;
use super::layout::{from_hf, rules, TensorMap, SCORE_HEAD_FILE, WTE};
use crate::model::presets::build_model;
use crate::model::{Backend, LanguageModel, ModelConfig};
use crate::results::weights::{load_weights_from, read_tensors, read_tensors_except};
use crate::results::{CONFIG_FILE, MODEL_FILE};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Reads the GPT-2 folder `dir` (as `transformers` saves it, or as `gptlab export` writes it)
/// into a model on `dev`, returned with its configuration.
///
/// - `config.json` gives `n_layer`, `n_head`, `n_embd`, `n_positions` and `vocab_size`. A
///   vocabulary smaller than the preset's bucket (GPT-2's 50,257 in 50,304) is padded with
///   zero rows, and `ModelConfig::real_vocab_size` records it: the padding is masked out of
///   the logits and left out of exports.
/// - `model.safetensors` (float32) holds GPT-2's tensors, with or without the `transformer.`
///   prefix (`GPT2LMHeadModel` or `GPT2Model`); the LM head is tied, so an `lm_head.weight`
///   must equal the token embedding.
/// - A `score_head.safetensors` beside it (a gptlab reward model's export) is loaded too.
///
/// Refused, each with a one-paragraph error naming the file: `.bin` / pickle weights only
/// (the error says how to convert), a shape no preset compiles or a vocabulary larger than
/// every bucket (the error lists the compiled presets), and settings gptlab cannot compute
/// exactly (see `hf_config.rs`).
pub fn import_hf_model<D: Backend>(
    dir: &Path,
    dev: &D,
) -> Result<(Box<dyn LanguageModel<D>>, ModelConfig)> {
    let mut cfg = read_hf_config(&dir.join(CONFIG_FILE))?;
    let weights = safetensors_file(dir)?;
    let what = weights.display().to_string();
    let mut tensors = read_gpt2_tensors(&weights, &cfg).with_context(|| what.clone())?;
    let score_file = dir.join(SCORE_HEAD_FILE);
    if score_file.exists() {
        tensors.extend(read_tensors(&score_file)?.0);
        cfg.score_head = true;
    }
    let mut model = build_model(&cfg, dev, 0)?;
    load_weights_from(model.as_mut(), &tensors, "", &what)?;
    Ok((model, cfg))
}

/// `dir/model.safetensors`, or why there is none: pickled PyTorch weights are code, not data,
/// and gptlab does not run them, so the error says how to convert them.
fn safetensors_file(dir: &Path) -> Result<std::path::PathBuf> {
    let weights = dir.join(MODEL_FILE);
    if weights.exists() {
        return Ok(weights);
    }
    let pickles: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the folder {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            [".bin", ".pt", ".pth", ".ckpt"]
                .iter()
                .any(|x| n.ends_with(x))
        })
        .collect();
    if pickles.is_empty() {
        bail!(
            "{} is missing: gptlab reads GPT-2 weights from a float32 safetensors file",
            weights.display()
        );
    }
    bail!(
        "{} holds PyTorch pickle weights ({}) but no {MODEL_FILE}: gptlab reads only \
         safetensors, which hold data and no code. Convert the folder once with transformers: \
         python -c \"from transformers import AutoModelForCausalLM as M; \
         M.from_pretrained('{d}').save_pretrained('{d}', safe_serialization=True)\"",
        dir.display(),
        pickles.join(", "),
        d = dir.display()
    );
}

/// The GPT-2 tensors of `path` in gptlab's layout, the embedding padded to `cfg`'s bucket.
fn read_gpt2_tensors(path: &Path, cfg: &ModelConfig) -> Result<TensorMap> {
    let hf = with_prefix(read_tensors_except(path, is_causal_mask)?.0);
    let rules = rules(cfg.n_layer);
    let mut gpt = from_hf(&hf, &rules)?;
    let used: Vec<&str> = rules.iter().map(|r| r.hf.as_str()).collect();
    check_leftovers(&hf, &gpt, &used)?;
    pad_vocab(&mut gpt, cfg)?;
    Ok(gpt)
}

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

/// The causal-mask buffers older `transformers` saved with GPT-2 (float, byte or boolean):
/// not parameters, and gptlab's attention is causal by construction.
fn is_causal_mask(name: &str) -> bool {
    name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias")
}

/// Tensors in the HF file that no rule consumed: a tied LM head is fine; anything else is a
/// part of the model gptlab would silently drop.
fn check_leftovers(hf: &TensorMap, gpt: &TensorMap, used: &[&str]) -> Result<()> {
    for (name, (_, values)) in hf {
        if used.contains(&name.as_str()) {
            continue;
        }
        if name == "lm_head.weight" {
            if *values != gpt[WTE].1 {
                bail!("`lm_head.weight` differs from `{WTE}`; gptlab's LM head is tied to the token embedding");
            }
            continue;
        }
        bail!("tensor `{name}` has no place in a gptlab model; refusing to import without it");
    }
    Ok(())
}

/// Zero rows after the checkpoint's vocabulary, up to the compiled bucket. They are never
/// embedded (no tokenizer id reaches them) and the LM head masks their logits.
fn pad_vocab(gpt: &mut TensorMap, cfg: &ModelConfig) -> Result<()> {
    let (shape, values) = gpt
        .get_mut(WTE)
        .expect("from_hf yields every rule's tensor");
    if shape.as_slice() != [cfg.real_vocab(), cfg.n_embd] {
        bail!(
            "tensor `{WTE}` has shape {shape:?}, but config.json says [vocab_size, n_embd] = [{}, {}]",
            cfg.real_vocab(),
            cfg.n_embd
        );
    }
    shape[0] = cfg.vocab_size;
    values.resize(cfg.vocab_size * cfg.n_embd, 0.0);
    Ok(())
}
