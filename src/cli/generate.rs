//! `gptlab generate RUN/STAGE --prompt TEXT`: sample text from a trained stage.

use super::common::{open_stage, Sampling};
use crate::data::chat::{Message, Role};
use crate::eval::answers::{answer, complete};
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
}

pub fn run(args: GenerateArgs) -> Result<bool> {
    generate(&args.stage, &args.prompt, args.chat, &args.sampling)
}

fn generate(stage: &Path, prompt: &str, chat: Option<bool>, sampling: &Sampling) -> Result<bool> {
    let (model, tok, is_chat) = open_stage(stage)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(sampling.seed);
    let opts = sampling.options();
    let text = if chat.unwrap_or(is_chat) {
        answer(
            model.as_ref(),
            &tok,
            &[Message {
                role: Role::User,
                content: prompt.to_string(),
            }],
            &opts,
            &mut rng,
        )
    } else {
        format!(
            "{prompt}{}",
            complete(model.as_ref(), &tok, prompt, &opts, &mut rng)
        )
    };
    println!("{text}");
    Ok(true)
}
