//! `gptlab keys [KIND-OR-ALGORITHM]`: the key reference (`experiments/KEYS.md`), or the keys
//! of one kind of stage.

use crate::spec::reference::{reference_markdown, stage_reference};
use anyhow::{anyhow, Result};

#[derive(clap::Args)]
pub struct KeysArgs {
    /// A stage kind (`sft`, `rlhf`, `feedback`, ...) or an rlhf algorithm (`dpo`, ...):
    /// only the keys such a stage takes.
    pub stage: Option<String>,
}

pub fn run(args: KeysArgs) -> Result<bool> {
    let text = match args.stage {
        None => reference_markdown(),
        Some(name) => stage_reference(&name).map_err(|message| anyhow!(message))?,
    };
    print!("{text}");
    Ok(true)
}
