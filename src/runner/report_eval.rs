//! `[report] eval`: once every stage has trained, each compared stage answers the same
//! questions; exact match overall and by task goes into summary.json under the stage
//! (`eval/exact_match`, `eval/<task>/exact_match`), where the report and sweeps read it.

use super::is_chat_stage;
use crate::data::HeldOut;
use crate::eval::dataset::{evaluate_file, EvalReport};
use crate::model::Backend;
use crate::results::{
    merge_into_summary, task_exact_match_key as task_key, EVAL_EXACT_MATCH as OVERALL, NO_TASK,
};
use crate::spec::{Device, LoadedSpec, ReportEval, Stage, StageKind};
use crate::tokenizer::Tokenizer;
use crate::train::checkpoint::load_model;
use anyhow::{Context, Result};
use dfdx::tensor::Cpu;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Evaluates the compared stages (every non-reward stage when `compare` is empty) and merges
/// the numbers into `run_dir/summary.json`. Does nothing without `[report] eval`. Generation
/// runs one sequence at a time, mostly on one core, so on the CPU the stages are asked in
/// parallel, each with its own device and copy of the model.
pub fn evaluate_compared<D: Backend>(
    loaded: &LoadedSpec,
    run_dir: &Path,
    tok: &Tokenizer,
    dev: &D,
) -> Result<()> {
    let spec = &loaded.spec;
    let Some(eval) = &spec.report.eval else {
        return Ok(());
    };
    let (file, held_out) = questions(loaded, eval)?;
    let asked = Asked {
        loaded,
        run_dir,
        tok,
        eval,
        file,
        held_out,
    };
    let stages: Vec<&Stage> = spec
        .stages
        .iter()
        .filter(|s| {
            if spec.report.compare.is_empty() {
                s.method.kind() != StageKind::Reward
            } else {
                spec.report.compare.contains(&s.name)
            }
        })
        .collect();
    let results: Vec<Result<BTreeMap<String, f64>>> = match spec.device {
        // Stages at once, as jobs of the compute pool itself: a pool thread never waits on
        // work only the pool can do (a one-thread pool asks them one after another, where
        // plain threads waiting for it would deadlock). Results stay in stage order.
        Device::Cpu => stages
            .par_iter()
            .map(|s| asked.ask(s, &Cpu::default()))
            .collect(),
        _ => stages.iter().map(|s| asked.ask(s, dev)).collect(),
    };
    for (stage, numbers) in stages.iter().zip(results) {
        merge_into_summary(run_dir, &stage.name, numbers?)?;
    }
    Ok(())
}

/// The questions every compared stage answers.
struct Asked<'a> {
    loaded: &'a LoadedSpec,
    run_dir: &'a Path,
    tok: &'a Tokenizer,
    eval: &'a ReportEval,
    file: PathBuf,
    held_out: Option<HeldOut>,
}

impl Asked<'_> {
    /// `stage`'s exact match, overall and per task.
    fn ask<D: Backend>(&self, stage: &Stage, dev: &D) -> Result<BTreeMap<String, f64>> {
        let file = &self.file;
        let model = load_model(&self.run_dir.join(&stage.name), dev)?;
        let report = evaluate_file(
            model.as_ref(),
            self.tok,
            file,
            is_chat_stage(stage.method.kind()),
            self.eval.limit,
            self.loaded.spec.model.block_size,
            self.held_out.as_ref(),
        )
        .with_context(|| {
            format!(
                "[report] eval of stage `{}` on {}",
                stage.name,
                file.display()
            )
        })?;
        let numbers = exact_match_numbers(&report).with_context(|| {
            format!(
                "report.eval: {} holds no questions with answers",
                file.display()
            )
        })?;
        println!(
            "[{}] exact match {:.3} on {}",
            stage.name,
            numbers[OVERALL],
            file.display()
        );
        Ok(numbers)
    }
}

/// The questions file, and the split to take from it for a stage's held-out questions.
fn questions(loaded: &LoadedSpec, eval: &ReportEval) -> Result<(PathBuf, Option<HeldOut>)> {
    if let Some(file) = &eval.data {
        return Ok((file.clone(), None));
    }
    let name = eval.held_out.as_deref().unwrap_or_default();
    let stage = loaded
        .spec
        .stages
        .iter()
        .find(|s| s.name == name)
        .with_context(|| format!("report.eval.held_out: no stage `{name}`"))?;
    Ok(match (&stage.val_data, stage.data.as_slice()) {
        (Some(val), _) => (val.clone(), None),
        (None, [data]) => {
            let held_out = HeldOut {
                fraction: stage.val_fraction,
                seed: loaded.spec.seed,
                group: stage.val_group.clone(),
            };
            (data.path.clone(), Some(held_out))
        }
        _ => anyhow::bail!("report.eval.held_out: `{name}` has no single data file to split"),
    })
}

/// `eval/exact_match`, and `eval/<task>/exact_match` for every task (questions without one
/// counted under `other`); `None` when the file was not a questions file.
fn exact_match_numbers(report: &EvalReport) -> Option<BTreeMap<String, f64>> {
    let EvalReport::ExactMatch {
        exact_match,
        correct,
        count,
        per_task,
        ..
    } = report
    else {
        return None;
    };
    let mut out = BTreeMap::from([(OVERALL.to_string(), *exact_match)]);
    let (mut tasked_correct, mut tasked) = (0, 0);
    for (task, score) in per_task {
        out.insert(task_key(task), score.exact_match);
        tasked_correct += score.correct;
        tasked += score.count;
    }
    if !per_task.is_empty() && tasked < *count {
        let rate = (correct - tasked_correct) as f64 / (count - tasked) as f64;
        out.insert(task_key(NO_TASK), rate);
    }
    Some(out)
}
