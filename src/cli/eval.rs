//! `gptlab eval RUN/STAGE --data FILE`: exact match, preference accuracy or loss on a data file;
//! with `--judge NAME`, the gold measures of the stage's sampled answers.

use super::common::open_stage;
use super::device::{on_device, DeviceArg};
use crate::model::Backend;
use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct EvalArgs {
    pub stage: PathBuf,
    #[arg(long)]
    pub data: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Evaluate at most N records.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Ask questions through the chat template (default: for every stage but pretrain).
    #[arg(long)]
    pub chat: Option<bool>,
    #[command(flatten)]
    pub held_out: HeldOutArgs,
    #[command(flatten)]
    pub gold: GoldArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// `gptlab eval`'s choice of records: what a stage held out of the file.
#[derive(clap::Args, Clone)]
pub struct HeldOutArgs {
    /// Only the validation split a stage with this val_fraction held out of the file...
    #[arg(long)]
    pub held_out: Option<f64>,
    /// ...with this experiment seed...
    #[arg(long, default_value_t = 1337)]
    pub seed: u64,
    /// ...and this val_group: hold out whole groups of records sharing this field's value.
    #[arg(long, value_name = "FIELD", requires = "held_out")]
    pub held_out_group: Option<String>,
}

impl HeldOutArgs {
    fn split(self) -> Option<crate::data::HeldOut> {
        Some(crate::data::HeldOut {
            fraction: self.held_out?,
            seed: self.seed,
            group: self.held_out_group,
        })
    }
}

/// `gptlab eval`'s gold measures: a judge of the run's spec scoring sampled answers.
#[derive(clap::Args, Clone)]
pub struct GoldArgs {
    /// Judge S sampled answers per question with this `[judges.NAME]` of the run's spec.toml
    /// (prints gold/rate; with --baseline also the win rate and KL, as [report] eval does).
    #[arg(long, value_name = "NAME")]
    pub judge: Option<String>,
    /// Answers sampled per question for the judge.
    #[arg(long, default_value_t = 4, requires = "judge")]
    pub samples: usize,
    /// The stage to compare with (its folder): win rate against it and KL to it.
    #[arg(long, value_name = "RUN/STAGE", requires = "judge")]
    pub baseline: Option<PathBuf>,
    /// Longest answer, in tokens (the report's default).
    #[arg(long, default_value_t = 48, requires = "judge")]
    pub max_new_tokens: usize,
    /// The sampling seed (the report's default, so the numbers match its).
    #[arg(long, default_value_t = 0, requires = "judge")]
    pub sample_seed: u64,
}

pub fn run(args: EvalArgs) -> Result<bool> {
    let EvalArgs {
        stage,
        data,
        json,
        limit,
        chat,
        held_out,
        gold,
        device,
    } = args;
    on_device!(device.chosen(&stage)?, |dev| match gold.judge.clone() {
        Some(judge) => eval_gold(&dev, &stage, &data, limit, held_out, &judge, &gold),
        None => eval(&dev, &stage, &data, json, limit, chat, held_out.split()),
    })
}

/// `gptlab eval`: the stage's context is the run's block size (else the preset's).
fn eval<D: Backend>(
    dev: &D,
    stage: &Path,
    data: &Path,
    json: bool,
    limit: Option<usize>,
    chat: Option<bool>,
    held_out: Option<crate::data::HeldOut>,
) -> Result<bool> {
    let (model, tok, is_chat) = open_stage(stage, dev)?;
    let block = crate::results::read_meta(stage.parent().unwrap_or(stage))
        .map(|m| m.block_size)
        .filter(|&b| b > 0)
        .unwrap_or(model.config().n_ctx);
    let report = crate::eval::dataset::evaluate_file(
        model.as_ref(),
        &tok,
        data,
        chat.unwrap_or(is_chat),
        limit,
        block,
        held_out.as_ref(),
    )?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}: {}", data.display(), report.describe());
    }
    Ok(true)
}

/// `gptlab eval --judge NAME`: the gold measures of a stage's sampled answers, as JSON.
fn eval_gold<D: Backend>(
    dev: &D,
    stage: &Path,
    data: &Path,
    limit: Option<usize>,
    held_out: HeldOutArgs,
    judge: &str,
    gold: &GoldArgs,
) -> Result<bool> {
    use crate::eval::gold::{gold_numbers, gold_sampling, Asked};
    let run = stage.parent().unwrap_or(stage);
    let judge = crate::eval::judge::Judge::of_run(run, judge)?;
    let seed = held_out.seed;
    let split = held_out.split();
    let conversations = crate::eval::dataset::read_conversations(data, limit, split.as_ref())?;
    let (model, tok, chat) = open_stage(stage, dev)?;
    let base = gold
        .baseline
        .as_deref()
        .map(|b| open_stage(b, dev))
        .transpose()?;
    let baseline = base.as_ref().map(|(m, _, chat)| {
        let name = gold.baseline.as_deref().and_then(Path::file_name);
        let name = name
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (
            name,
            Asked {
                model: m.as_ref(),
                chat: *chat,
            },
        )
    });
    let numbers = gold_numbers(
        Asked {
            model: model.as_ref(),
            chat,
        },
        baseline.as_ref().map(|(n, a)| {
            (
                n.as_str(),
                Asked {
                    model: a.model,
                    chat: a.chat,
                },
            )
        }),
        &tok,
        &judge,
        &conversations,
        gold.samples,
        &gold_sampling(gold.max_new_tokens),
        (gold.sample_seed, seed),
    );
    println!("{}", serde_json::to_string(&numbers)?);
    Ok(true)
}
