//! Arg groups and helpers that several commands share.

use crate::model::sample::SampleOptions;
use crate::model::{Backend, LanguageModel};
use crate::spec::{data_root_from, LoadOptions, SampleSettings};
use crate::tokenizer::Tokenizer;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// `--set` and `--data-root`, for the commands that load experiment specs.
#[derive(clap::Args, Clone)]
pub struct SpecArgs {
    /// Override any spec key, e.g. `--set stages.base.lr=3e-4` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Where `$DATA/...` paths point (default: $GPTLAB_DATA, else ./datasets).
    #[arg(long)]
    pub data_root: Option<PathBuf>,
}

impl SpecArgs {
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            data_root: data_root_from(self.data_root.clone()),
            sets: self.sets.clone(),
        }
    }
}

/// How `generate` and `chat` sample an answer.
#[derive(clap::Args, Clone)]
pub struct Sampling {
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f32,
    #[arg(long, default_value_t = 20)]
    pub top_k: usize,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Always pick the most likely token (same as --temperature 0).
    #[arg(long)]
    pub greedy: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
}

impl Sampling {
    /// The flags as sampling settings, held to the rules a spec's are.
    pub fn options(&self) -> Result<SampleOptions> {
        let settings = SampleSettings {
            max_new_tokens: self.max_new_tokens,
            temperature: if self.greedy {
                0.0
            } else {
                self.temperature as f64
            },
            top_k: self.top_k,
            top_p: self.top_p as f64,
        };
        settings.check_flags()?;
        Ok(settings.into())
    }
}

/// The results folder: `--results`, else $GPTLAB_RESULTS, else ./results.
pub fn results_root(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("GPTLAB_RESULTS").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("results"))
}

/// A trained stage folder on `dev`: its model, the run's tokenizer, and whether it is a chat
/// model.
pub fn open_stage<D: Backend>(
    stage: &Path,
    dev: &D,
) -> Result<(Box<dyn LanguageModel<D>>, Tokenizer, bool)> {
    let s = crate::infer::open_stage(stage, dev)?;
    let chat = s.is_chat();
    Ok((s.model, s.tokenizer, chat))
}
