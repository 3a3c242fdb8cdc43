//! `gptlab logits RUN/STAGE --tokens 1,2,3 [--generate N] [--json]`: the model's raw next-token
//! logits at every position, and optionally its greedy continuation as ids, so that other
//! implementations (an exported model in Python) can be checked number for number.

use crate::infer::{open_stage, Prompt};
use crate::model::Backend;
use crate::spec::SampleSettings;
use crate::util::readback;
use anyhow::{bail, Result};
use serde_json::json;
use std::path::PathBuf;

/// What `gptlab logits` prints (its flags are parsed in src/cli/logits.rs).
#[derive(Clone, Debug)]
pub struct LogitsOptions {
    /// A trained stage folder, RUN/STAGE.
    pub stage: PathBuf,
    /// The token ids (used when `text` is None).
    pub tokens: Vec<u32>,
    /// Text to encode with the run's tokenizer instead of ids.
    pub text: Option<String>,
    /// Also continue the ids greedily for up to N tokens, exactly as
    /// `gptlab generate --greedy` continues a base model's prompt (stops after <|endoftext|>).
    pub generate: usize,
    /// One JSON object: tokens, logits (one row of vocab_size values per position), generated.
    pub json: bool,
}

/// Prints the logits of the stage opened on `dev`.
pub fn run<D: Backend>(dev: &D, args: &LogitsOptions) -> Result<()> {
    let stage = open_stage(&args.stage, dev)?;
    let model = stage.model.as_ref();
    let cfg = model.config().clone();
    let ids = match &args.text {
        Some(text) => stage.tokenizer.encode(text),
        None => args.tokens.clone(),
    };
    if ids.is_empty() {
        bail!("no tokens given (--tokens or a non-empty --text)");
    }
    // An imported checkpoint's padding ids are not the model's: they are neither read nor
    // printed (their logits are masked anyway).
    let vocab = cfg.real_vocab();
    if let Some(bad) = ids.iter().find(|&&t| t as usize >= vocab) {
        bail!("token id {bad} is outside the model's vocabulary 0..{vocab}");
    }
    if ids.len() > cfg.n_ctx {
        bail!(
            "{} tokens exceed the model's context of {}",
            ids.len(),
            cfg.n_ctx
        );
    }
    let x = dev.tensor_from_vec(ids.iter().map(|&t| t as usize).collect(), (1, ids.len()));
    let flat = readback::to_vec(&model.logits(x));
    let rows: Vec<&[f32]> = flat.chunks(cfg.vocab_size).map(|r| &r[..vocab]).collect();
    let generated = (args.generate > 0).then(|| {
        let prompt = [Prompt::Ids(ids.clone())];
        let greedy = SampleSettings::greedy(args.generate).into();
        stage.ask().ids(&prompt, &greedy, &[0]).remove(0)
    });

    if args.json {
        let mut out = json!({
            "tokens": ids,
            "vocab_size": vocab,
            "tokenizer_vocab_size": stage.tokenizer.vocab_size(),
            "logits": rows,
        });
        if let Some(g) = &generated {
            out["generated"] = json!(g);
            out["generated_text"] = json!(stage.tokenizer.decode(g));
        }
        println!("{out}");
        return Ok(());
    }
    println!(
        "# position token argmax: {} logits (ids >= {} are vocabulary padding)",
        vocab,
        stage.tokenizer.vocab_size()
    );
    for (i, (row, id)) in rows.iter().zip(&ids).enumerate() {
        let argmax = crate::model::sample::argmax(row);
        let values: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        println!("{i} {id} {argmax}: {}", values.join(" "));
    }
    if let Some(g) = &generated {
        let list: Vec<String> = g.iter().map(u32::to_string).collect();
        println!("generated: {}", list.join(","));
        println!("generated text: {}", stage.tokenizer.decode(g));
    }
    Ok(())
}
