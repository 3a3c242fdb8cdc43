//! `gptlab probe RUN/STAGE --prompt TEXT`: the next-token distribution after a prompt, and the
//! probabilities of whole continuations.

use super::common::open_stage;
use super::device::{on_device, DeviceArg};
use crate::infer::probe::{continuation_prob, top_tokens};
use crate::infer::Prompt;
use crate::model::Backend;
use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct ProbeArgs {
    pub stage: PathBuf,
    #[arg(long)]
    pub prompt: String,
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Comma-separated continuations to score, e.g. `过山车,大风车`.
    #[arg(long, value_delimiter = ',')]
    pub candidates: Vec<String>,
    #[arg(long)]
    pub chat: Option<bool>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: ProbeArgs) -> Result<bool> {
    on_device!(args.device.chosen(&args.stage)?, |dev| probe(
        &dev,
        &args.stage,
        &args.prompt,
        args.top,
        &args.candidates,
        args.chat,
        args.json,
    ))
}

fn probe<D: Backend>(
    dev: &D,
    stage: &Path,
    prompt: &str,
    top: usize,
    candidates: &[String],
    chat: Option<bool>,
    json: bool,
) -> Result<bool> {
    let (model, tok, is_chat) = open_stage(stage, dev)?;
    let ids = Prompt::user(prompt, chat.unwrap_or(is_chat))
        .build(&tok)
        .ids;
    let tops = top_tokens(model.as_ref(), &tok, &ids, top);
    let cands: Vec<(String, f64)> = candidates
        .iter()
        .map(|c| {
            (
                c.clone(),
                continuation_prob(model.as_ref(), &ids, &tok.encode(c), tok.vocab_size()),
            )
        })
        .collect();
    if json {
        let c: Vec<_> = cands
            .iter()
            .map(|(t, p)| serde_json::json!({"text": t, "prob": p}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"prompt": prompt, "top": tops, "candidates": c})
        );
    } else {
        println!("next token after {prompt:?}:");
        for t in &tops {
            println!("  {:>8.4}  {}", t.prob, t.token);
        }
        let total: f64 = cands.iter().map(|(_, p)| p).sum();
        for (t, p) in &cands {
            println!(
                "  P({t}) = {p:.4}  ({:.1}% of the candidates)",
                100.0 * p / total.max(1e-300)
            );
        }
    }
    Ok(true)
}
