//! `gptlab import HF_DIR --out STAGE_DIR`: a Hugging Face GPT-2 folder back into a stage folder
//! (`crate::export::import`).

use crate::export::import::import_hf_gpt2;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug)]
pub struct ImportArgs {
    /// A Hugging Face GPT-2 folder: config.json, model.safetensors, tokenizer.json.
    pub hf_dir: PathBuf,
    /// The stage folder to write; the tokenizer goes to its parent folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace a different tokenizer.json already in the parent folder.
    #[arg(long)]
    pub force: bool,
}

/// Imports and prints the stage folder written.
pub fn run(args: ImportArgs) -> Result<bool> {
    import_hf_gpt2(
        &super::device::files_only(),
        &args.hf_dir,
        &args.out,
        args.force,
    )?;
    println!("{}", args.out.display());
    Ok(true)
}
