//! `gptlab logits RUN/STAGE --tokens 1,2,3`: a stage's raw logits (`crate::export::logits`).

use super::device::{on_device, DeviceArg};
use crate::export::logits::LogitsOptions;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug)]
pub struct LogitsArgs {
    /// A trained stage folder, RUN/STAGE.
    pub stage: PathBuf,
    /// Comma-separated token ids, e.g. `--tokens 7,8,9`.
    #[arg(
        long,
        value_delimiter = ',',
        required_unless_present = "text",
        conflicts_with = "text"
    )]
    pub tokens: Vec<u32>,
    /// Text to encode with the run's tokenizer instead of ids.
    #[arg(long)]
    pub text: Option<String>,
    /// Also continue the ids greedily for up to N tokens, exactly as
    /// `gptlab generate --greedy` continues a base model's prompt (stops after <|endoftext|>).
    #[arg(long, default_value_t = 0)]
    pub generate: usize,
    /// One JSON object: tokens, logits (one row of vocab_size values per position), generated.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: LogitsArgs) -> Result<bool> {
    let options = LogitsOptions {
        stage: args.stage,
        tokens: args.tokens,
        text: args.text,
        generate: args.generate,
        json: args.json,
    };
    on_device!(args.device.chosen(&options.stage)?, |dev| {
        crate::export::logits::run(&dev, &options).map(|()| true)
    })
}
