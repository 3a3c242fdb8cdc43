//! `gptlab export RUN/STAGE --format hf-gpt2 --out DIR`: a stage as a folder another library
//! loads (`crate::export`).

use crate::export::hf_gpt2::export_hf_gpt2;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    /// Hugging Face transformers GPT-2 (`GPT2LMHeadModel`).
    HfGpt2,
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
}

/// Exports and prints the folder written.
pub fn run(args: ExportArgs) -> Result<bool> {
    match args.format {
        Format::HfGpt2 => export_hf_gpt2(
            &dfdx::tensor::Cpu::default(),
            &args.stage,
            &args.out,
            args.force,
        )?,
    }
    println!("{}", args.out.display());
    Ok(true)
}
