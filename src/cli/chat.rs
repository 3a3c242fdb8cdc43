//! `gptlab chat RUN/STAGE`: talk to a stage; + / - rate its answers into a feedback file.

use super::common::{open_stage, Sampling};
use super::device::{on_device, DeviceArg};
use crate::model::Backend;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct ChatArgs {
    pub stage: PathBuf,
    /// Feedback file (default: RUN/feedback.jsonl).
    #[arg(long)]
    pub feedback: Option<PathBuf>,
    #[command(flatten)]
    pub sampling: Sampling,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: ChatArgs) -> Result<bool> {
    on_device!(args.device.chosen(&args.stage)?, |dev| {
        chat(&dev, &args.stage, args.feedback, &args.sampling)
    })
}

/// `gptlab chat`: feedback goes to the run folder's feedback file unless one is named.
fn chat<D: Backend>(
    dev: &D,
    stage: &Path,
    feedback: Option<PathBuf>,
    sampling: &Sampling,
) -> Result<bool> {
    let sampling_opts = sampling.options()?;
    let (model, tok, _) = open_stage(stage, dev)?;
    let run = stage
        .parent()
        .context("a stage folder lies inside a run folder")?;
    let feedback = feedback.unwrap_or_else(|| run.join(crate::results::FEEDBACK_FILE));
    let opts = crate::chat::ChatOptions {
        sampling: sampling_opts,
        seed: sampling.seed,
        feedback: &feedback,
        model_name: &stage.display().to_string(),
        interactive: std::io::IsTerminal::is_terminal(&std::io::stdin()),
    };
    let stdin = std::io::stdin();
    crate::chat::run_chat(model.as_ref(), &tok, &opts, stdin.lock(), std::io::stdout())?;
    Ok(true)
}
