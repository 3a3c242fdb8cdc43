//! `gptlab export RUN/STAGE --format hf-gpt2|peft --out DIR`: a stage as a folder another library
//! loads (`crate::export`).

use super::device::{on_device, DeviceArg};
use crate::export::hf_gpt2::export_hf_gpt2;
use crate::export::peft::export_peft;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    /// Hugging Face transformers GPT-2 (`GPT2LMHeadModel`), adapters merged in.
    HfGpt2,
    /// A LoRA stage's adapters for `peft`, with the stage they adapt in OUT/base as HF GPT-2.
    Peft,
}

#[derive(clap::Args, Clone, Debug)]
pub struct ExportArgs {
    /// A trained stage folder, RUN/STAGE.
    pub stage: PathBuf,
    #[arg(long, value_enum, default_value = "hf-gpt2")]
    pub format: Format,
    /// The folder to write (created; must be empty unless --force).
    #[arg(long)]
    pub out: PathBuf,
    /// Overwrite the files of an existing, non-empty folder.
    #[arg(long)]
    pub force: bool,
    /// Where the weights are read (they are written as files either way).
    #[command(flatten)]
    pub device: DeviceArg,
}

/// Exports and prints the folder written.
pub fn run(args: ExportArgs) -> Result<bool> {
    match args.format {
        Format::HfGpt2 => on_device!(args.device.chosen(&args.stage)?, |dev| {
            export_hf_gpt2(&dev, &args.stage, &args.out, args.force)
        })?,
        Format::Peft => on_device!(args.device.chosen(&args.stage)?, |dev| {
            export_peft(&dev, &args.stage, &args.out, args.force)
        })?,
    }
    println!("{}", args.out.display());
    Ok(true)
}
