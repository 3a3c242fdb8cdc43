//! GPT-2's `config.json` (transformers' `GPT2Config`): written from a gptlab `ModelConfig`, and
//! read back only when it describes exactly what a compiled gptlab preset computes.

use crate::model::layers::LAYER_NORM_EPS;
use crate::model::{ModelConfig, PRESETS};
use crate::tokenizer::Special;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::Path;

/// The `config.json` of an exported model. `gptlab` records where it came from; transformers
/// keeps unknown keys as attributes and ignores them.
pub fn hf_config(cfg: &ModelConfig, tokenizer_vocab: usize, stage_kind: &str) -> Value {
    json!({
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        // An imported checkpoint's own vocabulary, without the bucket's padding rows.
        "vocab_size": cfg.real_vocab(),
        "n_positions": cfg.n_ctx,
        "n_ctx": cfg.n_ctx,
        "n_embd": cfg.n_embd,
        "n_layer": cfg.n_layer,
        "n_head": cfg.n_head,
        "n_inner": null,
        // dfdx's fast_gelu is 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): GPT-2's gelu_new.
        "activation_function": "gelu_new",
        "layer_norm_epsilon": LAYER_NORM_EPS,
        "scale_attn_weights": true,
        "scale_attn_by_inverse_layer_idx": false,
        "reorder_and_upcast_attn": false,
        "add_cross_attention": false,
        "tie_word_embeddings": true,
        // gptlab trains without dropout.
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "initializer_range": 0.02,
        "use_cache": true,
        "bos_token_id": Special::EndOfText.id(),
        "eos_token_id": Special::EndOfText.id(),
        "pad_token_id": Special::Pad.id(),
        "torch_dtype": "float32",
        "gptlab": {
            "preset": cfg.preset,
            "stage_kind": stage_kind,
            "tokenizer_vocab_size": tokenizer_vocab,
            "score_head": cfg.score_head,
        },
    })
}

/// What an HF GPT-2 `config.json` must say for gptlab to compute the same function.
pub fn read_hf_config(path: &Path) -> Result<ModelConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    model_config_from_hf(&v).with_context(|| format!("{}", path.display()))
}

fn key<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.get(name).filter(|x| !x.is_null())
}

fn usize_key(v: &Value, name: &str) -> Result<usize> {
    key(v, name)
        .and_then(Value::as_u64)
        .map(|x| x as usize)
        .with_context(|| format!("key `{name}`: expected a non-negative integer"))
}

/// `key` must be absent (transformers' default applies) or equal to `want`.
fn require(v: &Value, name: &str, default: Value, want: Value, why: &str) -> Result<()> {
    let got = key(v, name).cloned().unwrap_or(default);
    if got != want {
        bail!("key `{name}` is {got}, but gptlab supports only {want} ({why})");
    }
    Ok(())
}

/// The settings a GPT-2 config may hold only at the values gptlab's model computes with.
fn check_architecture(v: &Value) -> Result<()> {
    require(v, "model_type", Value::Null, json!("gpt2"), "a GPT-2 model")?;
    let act = key(v, "activation_function")
        .and_then(Value::as_str)
        .unwrap_or("gelu_new");
    // gelu_pytorch_tanh is the same tanh approximation; exact "gelu" (erf) is not.
    if !matches!(act, "gelu_new" | "gelu_pytorch_tanh") {
        bail!("key `activation_function` is {act:?}, but gptlab's MLP uses the tanh GELU \"gelu_new\"");
    }
    let eps = key(v, "layer_norm_epsilon")
        .and_then(Value::as_f64)
        .unwrap_or(1e-5);
    if eps != LAYER_NORM_EPS {
        bail!("key `layer_norm_epsilon` is {eps}, but gptlab's LayerNorm uses {LAYER_NORM_EPS}");
    }
    require(
        v,
        "tie_word_embeddings",
        json!(true),
        json!(true),
        "the LM head is the token embedding",
    )?;
    require(
        v,
        "scale_attn_weights",
        json!(true),
        json!(true),
        "attention scores are scaled by 1/sqrt(head_dim)",
    )?;
    require(
        v,
        "scale_attn_by_inverse_layer_idx",
        json!(false),
        json!(false),
        "no per-layer score scaling",
    )?;
    require(
        v,
        "add_cross_attention",
        json!(false),
        json!(false),
        "a decoder-only model",
    )?;
    Ok(())
}

pub fn model_config_from_hf(v: &Value) -> Result<ModelConfig> {
    check_architecture(v)?;
    let (n_layer, n_head, n_embd) = (
        usize_key(v, "n_layer")?,
        usize_key(v, "n_head")?,
        usize_key(v, "n_embd")?,
    );
    let (n_positions, vocab_size) = (usize_key(v, "n_positions")?, usize_key(v, "vocab_size")?);
    if let Some(inner) = key(v, "n_inner") {
        if inner.as_u64() != Some(4 * n_embd as u64) {
            bail!(
                "key `n_inner` is {inner}, but gptlab's MLP is 4 x n_embd = {}",
                4 * n_embd
            );
        }
    }
    let shape = (n_layer, n_head, n_embd, n_positions);
    let Some(preset) = PRESETS
        .iter()
        .find(|p| (p.n_layer, p.n_head, p.n_embd, p.n_ctx) == shape)
    else {
        bail!(
            "no compiled gptlab preset has n_layer {n_layer}, n_head {n_head}, n_embd {n_embd}, \
             n_positions {n_positions}; the compiled presets are: {}",
            preset_table()
        );
    };
    // A vocabulary between buckets is padded to the next one, and the padding masked.
    let Some(&bucket) = preset.vocab_buckets.iter().find(|&&b| b >= vocab_size) else {
        bail!(
            "vocab_size {vocab_size} is larger than every vocabulary compiled for preset `{}` \
             (n_layer {n_layer}, n_head {n_head}, n_embd {n_embd}, n_positions {n_positions}); \
             the compiled presets are: {}",
            preset.name,
            preset_table()
        );
    };
    Ok(ModelConfig {
        preset: preset.name.to_string(),
        n_layer,
        n_head,
        n_embd,
        n_ctx: n_positions,
        vocab_size: bucket,
        real_vocab_size: (vocab_size < bucket).then_some(vocab_size),
        score_head: false,
    })
}

/// Every compiled preset in GPT-2's terms, for errors that must say what would have fit.
fn preset_table() -> String {
    let rows: Vec<String> = PRESETS
        .iter()
        .map(|p| {
            format!(
                "{} (n_layer {}, n_head {}, n_embd {}, n_positions {}, vocab_size up to one of {:?})",
                p.name, p.n_layer, p.n_head, p.n_embd, p.n_ctx, p.vocab_buckets
            )
        })
        .collect();
    rows.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::presets::model_config;

    #[test]
    fn exported_config_reads_back_as_the_same_model() {
        for (preset, vocab) in [("nano", 300), ("small", 4000), ("gpt2", 8000)] {
            let cfg = model_config(preset, vocab).unwrap();
            let back = model_config_from_hf(&hf_config(&cfg, vocab, "pretrain")).unwrap();
            assert_eq!(back, cfg);
        }
    }

    #[test]
    fn checkpoint_vocabularies_are_padded_to_the_next_bucket() {
        let cfg = model_config("gpt2", 8000).unwrap();
        for (preset, n_layer, vocab, bucket) in [
            ("gpt2", 12, 50257, 50304),
            ("gpt2", 12, 21128, 21184),
            ("distilgpt2", 6, 50257, 50304),
            ("distilgpt2", 6, 21128, 21184),
            ("gpt2", 12, 8192, 8192),
        ] {
            let mut v = hf_config(&cfg, 8000, "pretrain");
            v["n_layer"] = json!(n_layer);
            v["vocab_size"] = json!(vocab);
            let back = model_config_from_hf(&v).unwrap();
            assert_eq!((back.preset.as_str(), back.vocab_size), (preset, bucket));
            let real = (vocab < bucket).then_some(vocab);
            assert_eq!(back.real_vocab_size, real);
            // Exported again, the config names the checkpoint's vocabulary, not the bucket.
            assert_eq!(
                hf_config(&back, vocab, "pretrained")["vocab_size"],
                json!(vocab)
            );
            assert_eq!(
                model_config_from_hf(&hf_config(&back, vocab, "x")).unwrap(),
                back
            );
        }
    }

    #[test]
    fn configs_gptlab_cannot_compute_exactly_are_refused() {
        let cfg = model_config("nano", 300).unwrap();
        let base = hf_config(&cfg, 300, "pretrain");
        for (k, bad, needle) in [
            ("activation_function", json!("gelu"), "gelu_new"),
            ("layer_norm_epsilon", json!(1e-6), "layer_norm_epsilon"),
            ("tie_word_embeddings", json!(false), "tie_word_embeddings"),
            (
                "scale_attn_by_inverse_layer_idx",
                json!(true),
                "scale_attn_by_inverse_layer_idx",
            ),
            ("n_inner", json!(100), "n_inner"),
            ("n_layer", json!(3), "no compiled gptlab preset"),
            (
                "n_layer",
                json!(3),
                "distilgpt2 (n_layer 6, n_head 12, n_embd 768, n_positions 1024",
            ),
            (
                "vocab_size",
                json!(5000),
                "larger than every vocabulary compiled for preset `nano`",
            ),
            ("vocab_size", json!(5000), "gpt2 (n_layer 12"),
            ("model_type", json!("llama"), "model_type"),
        ] {
            let mut v = base.clone();
            v[k] = bad;
            let err = format!("{:#}", model_config_from_hf(&v).unwrap_err());
            assert!(err.contains(needle), "{k}: {err}");
        }
    }
}
