//! `gptlab generate RUN/STAGE --prompt TEXT`: sample text from a trained stage.

use super::common::{open_stage, Sampling};
use super::device::{on_device, DeviceArg};
use crate::infer::{Ask, Prompt};
use crate::model::Backend;
use anyhow::Result;
use rand::SeedableRng;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct GenerateArgs {
    pub stage: PathBuf,
    #[arg(long)]
    pub prompt: String,
    /// Ask through the chat template (default: for every stage but pretrain).
    #[arg(long)]
    pub chat: Option<bool>,
    /// Sample N answers (one random stream, so each differs), to see their spread.
    #[arg(short = 'n', long = "samples", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub n: u64,
    #[command(flatten)]
    pub sampling: Sampling,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: GenerateArgs) -> Result<bool> {
    on_device!(args.device.chosen(&args.stage)?, |dev| {
        generate(
            &dev,
            &args.stage,
            &args.prompt,
            args.chat,
            args.n,
            &args.sampling,
        )
    })
}

/// N answers, one after another from one random stream: with n = 1, the same answer as ever.
/// Several are separated by a `--- i/N` line each.
fn generate<D: Backend>(
    dev: &D,
    stage: &Path,
    prompt: &str,
    chat: Option<bool>,
    n: u64,
    sampling: &Sampling,
) -> Result<bool> {
    let opts = sampling.options()?;
    let (model, tok, is_chat) = open_stage(stage, dev)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(sampling.seed);
    let chat = chat.unwrap_or(is_chat);
    let ask = Ask::new(model.as_ref(), &tok);
    for i in 1..=n {
        let answer = ask.one(&Prompt::user(prompt, chat), &opts, &mut rng);
        if n > 1 {
            println!("--- {i}/{n}");
        }
        // A completion is shown after the text it continues.
        match chat {
            true => println!("{answer}"),
            false => println!("{prompt}{answer}"),
        }
    }
    Ok(true)
}
