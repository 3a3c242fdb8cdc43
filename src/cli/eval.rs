//! `gptlab eval RUN/STAGE --data FILE`: exact match, preference accuracy or loss on a data file;
//! with `--judge NAME`, the gold measures of the stage's sampled answers, asked as the run's
//! `[report] eval` asked them (its questions, samples, answer length and seeds) unless a flag
//! says otherwise, so the numbers equal summary.json's.

use super::common::open_stage;
use super::device::{on_device, DeviceArg};
use crate::model::Backend;
use crate::spec::ReportEval;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct EvalArgs {
    pub stage: PathBuf,
    /// The records to evaluate (with --judge, default: the questions the report's judge was
    /// asked).
    #[arg(long, required_unless_present = "judge")]
    pub data: Option<PathBuf>,
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
    /// ...with this experiment seed (default: the run's; with --judge also the seed of the
    /// win rate's bootstrap, as in the report)...
    #[arg(long)]
    pub seed: Option<u64>,
    /// ...and this val_group: hold out whole groups of records sharing this field's value.
    #[arg(long, value_name = "FIELD", requires = "held_out")]
    pub held_out_group: Option<String>,
}

impl HeldOutArgs {
    fn split(self, run_seed: u64) -> Option<crate::data::HeldOut> {
        Some(crate::data::HeldOut {
            fraction: self.held_out?,
            seed: self.seed.unwrap_or(run_seed),
            group: self.held_out_group,
        })
    }
}

/// The seed of the run a stage folder belongs to (its spec.toml), else the default 1337.
fn run_seed(run: &Path) -> u64 {
    let text = std::fs::read_to_string(run.join(crate::results::SPEC_FILE)).ok();
    let spec = text.and_then(|t| t.parse::<toml::Table>().ok());
    let seed = spec.and_then(|s| s.get("seed")?.as_integer());
    seed.map_or(1337, |s| s as u64)
}

/// `gptlab eval`'s gold measures: a judge of the run's spec scoring sampled answers. Every
/// setting defaults to what the run's `[report] eval` used.
#[derive(clap::Args, Clone)]
pub struct GoldArgs {
    /// Judge S sampled answers per question with this `[judges.NAME]` of the run's spec.toml
    /// (prints gold/rate and what the answers say; with a baseline also the win rate and KL).
    #[arg(long, value_name = "NAME")]
    pub judge: Option<String>,
    /// Answers sampled per question for the judge (default: the report's `samples`).
    #[arg(long, requires = "judge")]
    pub samples: Option<usize>,
    /// The stage to compare with (its folder): win rate against it and KL to it (default:
    /// the report's baseline, for a chat stage other than it).
    #[arg(long, value_name = "RUN/STAGE", requires = "judge")]
    pub baseline: Option<PathBuf>,
    /// Longest answer, in tokens (default: the report's `sampling.max_new_tokens`).
    #[arg(long, requires = "judge")]
    pub max_new_tokens: Option<usize>,
    /// The sampling seed (default: the report's `sampling.seed`).
    #[arg(long, requires = "judge")]
    pub sample_seed: Option<u64>,
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
    let run_seed = run_seed(stage.parent().unwrap_or(&stage));
    on_device!(
        device.chosen(&stage)?,
        |dev| match (gold.judge.clone(), &data) {
            (Some(judge), data) => {
                let numbers = eval_gold(
                    &dev,
                    &stage,
                    data.as_deref(),
                    limit,
                    held_out,
                    &judge,
                    &gold,
                )?;
                print_gold(&numbers, json)?;
                Ok(true)
            }
            (None, Some(data)) => eval(
                &dev,
                &stage,
                data,
                json,
                limit,
                chat,
                held_out.split(run_seed)
            ),
            (None, None) => anyhow::bail!("--data FILE is needed without --judge"),
        }
    )
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

/// `gptlab eval --judge NAME`: the gold measures of a stage's sampled answers. With no
/// flags, the questions, answers per question, answer length, sampling seed, bootstrap seed and
/// baseline are the run's `[report] eval`'s, so the numbers are summary.json's, bit for bit.
fn eval_gold<D: Backend>(
    dev: &D,
    stage: &Path,
    data: Option<&Path>,
    limit: Option<usize>,
    held_out: HeldOutArgs,
    judge: &str,
    gold: &GoldArgs,
) -> Result<BTreeMap<String, f64>> {
    use crate::eval::gold::{gold_numbers, Asked};
    use crate::runner::{baseline_stage, compared_stages, judge_questions};
    let run = stage.parent().unwrap_or(stage);
    let spec_file = run.join(crate::results::SPEC_FILE);
    let loaded = crate::spec::load_spec(&spec_file, &Default::default())?;
    let spec = &loaded.spec;
    let report = spec.report.eval.clone().unwrap_or_default();
    let judge = crate::eval::judge::Judge::declared(spec, judge)
        .with_context(|| spec_file.display().to_string())?;
    let seed = held_out.seed.unwrap_or(spec.seed);
    let conversations = match data {
        Some(data) => {
            let split = held_out.split(spec.seed);
            crate::eval::dataset::read_conversations(data, limit, split.as_ref())?
        }
        None => {
            let limit = limit.or(report.limit);
            judge_questions(
                &loaded,
                &ReportEval {
                    limit,
                    ..report.clone()
                },
            )
            .with_context(|| {
                format!(
                    "{}: the report's questions (or give --data FILE)",
                    spec_file.display()
                )
            })?
        }
    };
    let (model, tok, chat) = open_stage(stage, dev)?;
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let baseline = gold.baseline.clone().or_else(|| {
        let base = baseline_stage(&report, &compared_stages(&loaded))?;
        (chat && name(stage).as_deref() != Some(base.as_str())).then(|| run.join(base))
    });
    let base = baseline
        .as_deref()
        .map(|b| open_stage(b, dev))
        .transpose()?;
    let base_name = baseline.as_deref().and_then(name).unwrap_or_default();
    let asked = |model, chat| Asked { model, chat };
    let sampling = &spec.report.sampling;
    // A flag overrides the report's setting; the gold rule decides the rest.
    let mut settings = sampling.gold();
    settings.max_new_tokens = gold.max_new_tokens.unwrap_or(settings.max_new_tokens);
    settings.check_flags()?;
    Ok(gold_numbers(
        asked(model.as_ref(), chat),
        base.as_ref()
            .map(|(m, _, c)| (base_name.as_str(), asked(m.as_ref(), *c))),
        &tok,
        &judge,
        &conversations,
        gold.samples.unwrap_or(report.samples()),
        &settings.into(),
        (gold.sample_seed.unwrap_or(sampling.seed), seed),
    ))
}

/// The gold numbers as one JSON object (`--json`), else a line each.
fn print_gold(numbers: &BTreeMap<String, f64>, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(numbers)?);
        return Ok(());
    }
    let width = numbers.keys().map(|k| k.chars().count()).max().unwrap_or(0);
    for (key, value) in numbers {
        let pad = " ".repeat(width - key.chars().count());
        println!("{key}{pad}  {value:.4}");
    }
    Ok(())
}
