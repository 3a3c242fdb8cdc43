//! `gptlab export RUN/STAGE --format hf-gpt2 --out DIR`: a folder that Python `transformers`
//! loads with `GPT2LMHeadModel.from_pretrained(DIR)` and `AutoTokenizer.from_pretrained(DIR)`.

use super::hf_files::{generation_config, special_tokens_map, tokenizer_config};
use crate::hf::config::hf_config;
pub use crate::hf::layout::SCORE_HEAD_FILE;
use crate::hf::layout::{rules, to_hf, TensorList, TensorMap, WTE};
use crate::infer::{open_stage, Stage};
use crate::model::{Backend, ModelConfig};
use crate::results::weights::{encode_tensors, model_tensors};
use crate::results::{CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE};
use crate::tokenizer::Special;
use crate::util::{write_atomic, write_json_atomic};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;

const SCORE_TENSORS: [&str; 2] = ["score.weight", "score.bias"];

/// Refuses to mix an export into a folder holding something else.
pub fn check_out(out: &Path, force: bool) -> Result<()> {
    let nonempty = std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some());
    if nonempty && !force {
        bail!(
            "{} exists and is not empty; choose another --out or pass --force",
            out.display()
        );
    }
    Ok(())
}

/// An imported checkpoint goes out as it came in: the token embedding's padding rows (which
/// the import added to reach the compiled bucket) are left out.
fn drop_vocab_padding(tensors: &mut TensorMap, cfg: &ModelConfig) {
    let real = cfg.real_vocab();
    if let Some((shape, values)) = tensors.get_mut(WTE) {
        shape[0] = real;
        values.truncate(real * cfg.n_embd);
    }
}

fn safetensors_bytes(tensors: &TensorList) -> Result<Vec<u8>> {
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    encode_tensors(tensors, meta)
}

/// Writes the stage in `stage_dir` to `out`, its weights read from wherever `dev` holds them.
pub fn export_hf_gpt2<D: Backend>(
    dev: &D,
    stage_dir: &Path,
    out: &Path,
    force: bool,
) -> Result<()> {
    check_out(out, force)?;
    let mut stage = open_stage(stage_dir, dev)?;
    let cfg = stage.model.config().clone();
    let tok_vocab = stage.tokenizer.vocab_size();
    let mut tensors: TensorMap = model_tensors(stage.model.as_mut())?
        .into_iter()
        .map(|(n, s, v)| (n, (s, v)))
        .collect();
    let score: TensorList = SCORE_TENSORS
        .iter()
        .filter_map(|n| tensors.remove(*n).map(|(s, v)| (n.to_string(), s, v)))
        .collect();
    drop_vocab_padding(&mut tensors, &cfg);
    let hf = to_hf(&tensors, &rules(cfg.n_layer))
        .with_context(|| format!("exporting {}", stage_dir.display()))?;

    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_atomic(&out.join(MODEL_FILE), &safetensors_bytes(&hf)?)?;
    let score_file = out.join(SCORE_HEAD_FILE);
    if score.is_empty() {
        // --force over an older export of a reward model must not leave its head behind.
        let _ = std::fs::remove_file(&score_file);
    } else {
        write_atomic(&score_file, &safetensors_bytes(&score)?)?;
    }
    let kind = stage.kind.map_or("unknown", |k| k.as_str());
    let tok = &stage.tokenizer;
    let mut config = hf_config(&cfg, tok_vocab, kind);
    // A pretrained tokenizer's end token is not gptlab's reserved id.
    for (key, special) in [
        ("bos_token_id", Special::EndOfText),
        ("eos_token_id", Special::EndOfText),
        ("pad_token_id", Special::Pad),
    ] {
        config[key] = tok.special(special).into();
    }
    write_json_atomic(&out.join(CONFIG_FILE), &config)?;
    write_json_atomic(
        &out.join("generation_config.json"),
        &generation_config(tok, cfg.n_ctx, cfg.real_vocab(), stage.is_chat()),
    )?;
    let tok_bytes = std::fs::read(&stage.tokenizer_path)
        .with_context(|| format!("cannot read {}", stage.tokenizer_path.display()))?;
    write_atomic(&out.join(TOKENIZER_FILE), &tok_bytes)?;
    write_json_atomic(
        &out.join("tokenizer_config.json"),
        &tokenizer_config(tok, cfg.n_ctx),
    )?;
    write_json_atomic(
        &out.join("special_tokens_map.json"),
        &special_tokens_map(tok),
    )?;
    write_atomic(
        &out.join("README.md"),
        readme(stage_dir, &stage, !score.is_empty()).as_bytes(),
    )?;
    Ok(())
}

fn readme<D: Backend>(stage_dir: &Path, stage: &Stage<D>, has_score: bool) -> String {
    let cfg = stage.model.config();
    let tok_vocab = stage.tokenizer.vocab_size();
    let mut s = format!(
        "# gptlab export: {stage}\n\n\
         A GPT-2 model for Hugging Face `transformers`, exported by `gptlab export` from the \
         stage `{stage}` (kind: {kind}, preset `{preset}`: {l} layers, {h} heads, width {m}, \
         context {c}).\n\n\
         ```python\n\
         from transformers import GPT2LMHeadModel, AutoTokenizer\n\
         model = GPT2LMHeadModel.from_pretrained(\"path/to/this/folder\")\n\
         tok = AutoTokenizer.from_pretrained(\"path/to/this/folder\")\n\
         ```\n\n\
         The weights are float32 and bitwise those of the gptlab checkpoint: linear weights are \
         transposed to GPT-2's Conv1D `[in, out]` layout and the separate q/k/v projections are \
         fused into `attn.c_attn` (columns `[q | k | v]`). `gptlab import` reads this folder back.\n\n\
         ## Vocabulary\n\n\
         {padding}\
         Special tokens have fixed ids: `<|pad|>` 0, `<|unk|>` 1, `<|endoftext|>` 2 (bos/eos), \
         `<|system|>` 3, `<|user|>` 4, `<|assistant|>` 5, `<|end|>` 6 (closes a chat turn). \
         Chat models expect the template in `tokenizer_config.json` \
         (`tok.apply_chat_template(messages, add_generation_prompt=True)`). Note that the HF \
         tokenizer turns text that looks like `<|user|>` into the special id, while gptlab \
         encodes such text as ordinary characters.\n",
        stage = stage_dir.display(),
        kind = stage.kind.map_or("unknown", |k| k.as_str()),
        preset = cfg.preset,
        l = cfg.n_layer,
        h = cfg.n_head,
        m = cfg.n_embd,
        c = cfg.n_ctx,
        padding = padding_note(tok_vocab, cfg.real_vocab()),
    );
    if has_score {
        s.push_str(&format!(
            "\n## Reward / value head\n\n\
             This stage carries a scalar head that GPT-2 has no place for. It is in \
             `{SCORE_HEAD_FILE}`: `score.weight` `[1, {m}]` and `score.bias` `[1]`, applied to the \
             final hidden states (after `ln_f`): `score = h @ score.weight.T + score.bias`. gptlab \
             reads the reward of a sequence at its last token. With `transformers`:\n\n\
             ```python\n\
             from safetensors.torch import load_file\n\
             head = load_file(\"path/to/this/folder/{SCORE_HEAD_FILE}\")\n\
             h = model.transformer(ids).last_hidden_state\n\
             reward = (h @ head[\"score.weight\"].T + head[\"score.bias\"])[:, -1, 0]\n\
             ```\n",
            m = cfg.n_embd
        ));
    }
    s
}

/// Why the embedding has more rows than the tokenizer has ids, when it does.
fn padding_note(tok_vocab: usize, vocab_size: usize) -> String {
    if tok_vocab >= vocab_size {
        return format!("The tokenizer's {tok_vocab} ids are the model's vocabulary.\n\n");
    }
    format!(
        "The tokenizer has {tok_vocab} ids, but the model was compiled with a vocabulary of \
         {vocab_size} (a fixed bucket), so `vocab_size` is {vocab_size} and the embedding matrix \
         has {vocab_size} rows. Ids {tok_vocab} to {last} never occur in training data and carry \
         no meaning; `generation_config.json` lists them in `suppress_tokens` so `generate` never \
         picks them (gptlab's own sampling excludes them too). Ignore those columns of the \
         logits.\n\n",
        last = vocab_size - 1
    )
}
