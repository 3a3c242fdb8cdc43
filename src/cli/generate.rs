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
    #[command(flatten)]
    pub sampling: Sampling,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: GenerateArgs) -> Result<bool> {
    on_device!(args.device.chosen(&args.stage)?, |dev| {
        generate(&dev, &args.stage, &args.prompt, args.chat, &args.sampling)
    })
}

fn generate<D: Backend>(
    dev: &D,
    stage: &Path,
    prompt: &str,
    chat: Option<bool>,
    sampling: &Sampling,
) -> Result<bool> {
    let (model, tok, is_chat) = open_stage(stage, dev)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(sampling.seed);
    let opts = sampling.options();
    let chat = chat.unwrap_or(is_chat);
    let answer = Ask::new(model.as_ref(), &tok).one(&Prompt::user(prompt, chat), &opts, &mut rng);
    // A completion is shown after the text it continues.
    let text = match chat {
        true => answer,
        false => format!("{prompt}{answer}"),
    };
    println!("{text}");
    Ok(true)
}
