//! `[report] eval`: once every stage has trained, each compared stage answers the same
//! questions; exact match overall and by task goes into summary.json under the stage
//! (`eval/exact_match`, `eval/<task>/exact_match`), where the report and sweeps read it.

use crate::data::chat::Message;
use crate::data::HeldOut;
use crate::eval::answers::last_user_turn;
use crate::eval::dataset::{evaluate_file, read_conversations, EvalReport};
use crate::eval::diversity::diversity_numbers;
use crate::eval::gold::{
    best_of_n, gold_rate, kl_per_answer, reward_scores, sample_answers, scores, win_rate, Samples,
};
use crate::eval::judge::Judge;
use crate::infer::is_chat;
use crate::model::Backend;
use crate::results::weights::load_model;
use crate::results::{
    gold_best_of_key, gold_win_key, kl_key, merge_into_summary, proxy_win_key,
    task_exact_match_key as task_key, BEST_OF, EVAL_EXACT_MATCH as OVERALL, EVAL_REWARD, GOLD_RATE,
    NO_TASK,
};
use crate::spec::{LoadedSpec, ReportEval, Stage, StageKind};
use crate::tokenizer::Tokenizer;
use anyhow::{Context, Result};
use dfdx::tensor::Cpu;
use rayon::prelude::*;
use std::any::Any;
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
    let conversations = match &eval.judge {
        Some(_) => judge_questions(loaded, eval)?,
        None => Vec::new(),
    };
    let asked = Asked {
        loaded,
        run_dir,
        tok,
        eval,
        file,
        held_out,
        conversations,
    };
    let stages = compared_stages(loaded);
    let results: Vec<Result<Answered>> = on_each(&stages, dev, |s, dev| asked.ask(s, dev));
    let mut answered = results.into_iter().collect::<Result<Vec<_>>>()?;
    if let Some(judge) = &eval.judge {
        asked.add_gold(judge, &stages, &mut answered, dev)?;
    }
    for (stage, answered) in stages.iter().zip(answered) {
        merge_into_summary(run_dir, &stage.name, answered.numbers)?;
    }
    Ok(())
}

/// The stages `[report] eval` asks: `compare`, else every stage but reward and feedback ones.
pub fn compared_stages(loaded: &LoadedSpec) -> Vec<&Stage> {
    let spec = &loaded.spec;
    spec.stages
        .iter()
        .filter(|s| {
            if spec.report.compare.is_empty() {
                !matches!(s.method.kind(), StageKind::Reward | StageKind::Feedback)
            } else {
                spec.report.compare.contains(&s.name)
            }
        })
        .collect()
}

/// The questions the judge is asked: `judge_prompts`, else the exact-match questions.
pub fn judge_questions(loaded: &LoadedSpec, eval: &ReportEval) -> Result<Vec<Vec<Message>>> {
    if let Some(prompts) = &eval.judge_prompts {
        return read_conversations(prompts, eval.limit, None);
    }
    let (file, held_out) = questions(loaded, eval)?;
    read_conversations(&file, eval.limit, held_out.as_ref())
}

/// The stage the others are compared with: `baseline`, else the `held_out` stage, else the
/// first compared SFT stage.
pub fn baseline_stage(eval: &ReportEval, stages: &[&Stage]) -> Option<String> {
    let named = eval.baseline.clone().or_else(|| eval.held_out.clone());
    named
        .filter(|n| stages.iter().any(|s| &s.name == n))
        .or_else(|| {
            let sft = stages.iter().find(|s| s.method.kind() == StageKind::Sft)?;
            Some(sft.name.clone())
        })
}

/// `work` for every stage on the run's device, in stage order. On the CPU the stages run at
/// once as jobs of the compute pool itself (each with its own handle on the device and copy of
/// the model): a pool thread never waits on work only the pool can do, so a one-thread pool
/// asks them one after another where plain threads waiting for it would deadlock. A GPU (whose
/// handle threads cannot share) asks them one after another: it is busy with one already.
fn on_each<T: Send, D: Backend>(
    stages: &[&Stage],
    dev: &D,
    work: impl Fn(&Stage, &D) -> T + Sync,
) -> Vec<T> {
    let Some(cpu) = (dev as &dyn Any).downcast_ref::<Cpu>() else {
        return stages.iter().map(|s| work(s, dev)).collect();
    };
    stages
        .par_iter()
        .map(|s| {
            let cpu = cpu.clone();
            let dev = (&cpu as &dyn Any).downcast_ref::<D>().expect("D is Cpu");
            work(s, dev)
        })
        .collect()
}

/// What one stage gave: its numbers for summary.json, and its sampled answers for the judge.
struct Answered {
    numbers: BTreeMap<String, f64>,
    samples: Option<Samples>,
}

/// The questions every compared stage answers.
struct Asked<'a> {
    loaded: &'a LoadedSpec,
    run_dir: &'a Path,
    tok: &'a Tokenizer,
    eval: &'a ReportEval,
    file: PathBuf,
    held_out: Option<HeldOut>,
    /// The questions' conversations, for the judge's samples (empty without a judge).
    conversations: Vec<Vec<Message>>,
}

impl Asked<'_> {
    /// `stage`'s exact match, overall and per task; with a judge, its sampled answers too.
    fn ask<D: Backend>(&self, stage: &Stage, dev: &D) -> Result<Answered> {
        let file = &self.file;
        let model = load_model(&self.run_dir.join(&stage.name), dev)?;
        let chat = is_chat(Some(stage.method.kind()));
        let report = evaluate_file(
            model.as_ref(),
            self.tok,
            file,
            chat,
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
        let samples = self.eval.judge.as_ref().map(|_| {
            let sampling = &self.loaded.spec.report.sampling;
            let opts = sampling.gold().into();
            let n = self.eval.samples();
            sample_answers(
                model.as_ref(),
                self.tok,
                &self.conversations,
                chat,
                n,
                &opts,
                sampling.seed,
            )
        });
        Ok(Answered { numbers, samples })
    }

    /// The judge's measures (see `eval::gold`) added to every stage's numbers: its gold rate,
    /// and for chat stages besides the baseline the win rate against it and the KL to it;
    /// the proxy reward when the run has a reward stage.
    fn add_gold<D: Backend>(
        &self,
        judge: &str,
        stages: &[&Stage],
        answered: &mut [Answered],
        dev: &D,
    ) -> Result<()> {
        let spec = &self.loaded.spec;
        let judge = Judge::declared(spec, judge)?;
        let scores: Vec<_> = answered
            .iter()
            .map(|a| {
                scores(
                    &judge,
                    &self.conversations,
                    a.samples.as_ref().expect("sampled"),
                )
            })
            .collect();
        for (a, s) in answered.iter_mut().zip(&scores) {
            if let Some(rate) = gold_rate(s) {
                a.numbers.insert(GOLD_RATE.into(), rate);
            }
            let said = diversity_numbers(&judge, s, a.samples.as_ref().expect("sampled"));
            a.numbers.extend(said);
        }
        let proxies = self.add_proxy(stages, answered, &scores, dev)?;
        let Some(base) = baseline_stage(self.eval, stages) else {
            return Ok(());
        };
        let b = stages
            .iter()
            .position(|s| s.name == base)
            .expect("a compared stage");
        if let Some(rm) = self.reward_stage() {
            let best = self.best_of(&judge, rm, stages[b], dev)?;
            answered[b].numbers.extend(best);
        }
        let others: Vec<&Stage> = stages
            .iter()
            .copied()
            .filter(|s| s.name != base && is_chat(Some(s.method.kind())))
            .collect();
        let kls = on_each(&others, dev, |s, dev| {
            self.kl(s, stages[b], stages, answered, dev)
        });
        for (stage, kl) in others.iter().zip(kls) {
            let i = stages
                .iter()
                .position(|s| s.name == stage.name)
                .expect("compared");
            let numbers = &mut answered[i].numbers;
            numbers.insert(kl_key(&base), kl?);
            if let Some(w) = win_rate(&scores[i], &scores[b], spec.seed) {
                numbers.insert(gold_win_key(&base), w.rate);
                numbers.insert(format!("{}/low", gold_win_key(&base)), w.low);
                numbers.insert(format!("{}/high", gold_win_key(&base)), w.high);
            }
            if let (Some(ours), Some(theirs)) = (proxies.get(i), proxies.get(b)) {
                if let Some(w) = win_rate(ours, theirs, spec.seed) {
                    numbers.insert(proxy_win_key(&base), w.rate);
                }
            }
        }
        Ok(())
    }

    /// The reward model's mean score (`eval/reward`) added to every stage's numbers; returns
    /// each stage's scores where the judge scored too (empty without a reward stage).
    fn add_proxy<D: Backend>(
        &self,
        stages: &[&Stage],
        answered: &mut [Answered],
        judged: &[Vec<Vec<Option<f64>>>],
        dev: &D,
    ) -> Result<Vec<Vec<Vec<Option<f64>>>>> {
        let Some(rm) = self.reward_stage() else {
            return Ok(Vec::new());
        };
        let proxy = on_each(stages, dev, |s, dev| {
            self.proxy(rm, s, answered, stages, dev)
        });
        let mut out = Vec::new();
        for ((a, p), judged) in answered.iter_mut().zip(proxy).zip(judged) {
            let p = p?;
            let all: Vec<f64> = p.iter().flatten().copied().collect();
            let mean = all.iter().sum::<f64>() / all.len().max(1) as f64;
            a.numbers.insert(EVAL_REWARD.into(), mean);
            out.push(only_where_judged(p, judged));
        }
        Ok(out)
    }

    /// The run's last reward stage: the proxy the gold measures are read against.
    fn reward_stage(&self) -> Option<&Stage> {
        let stages = &self.loaded.spec.stages;
        stages
            .iter()
            .rev()
            .find(|s| s.method.kind() == StageKind::Reward)
    }

    /// The reward model `rm`'s mean score of `stage`'s sampled answers.
    fn proxy<D: Backend>(
        &self,
        rm: &Stage,
        stage: &Stage,
        answered: &[Answered],
        stages: &[&Stage],
        dev: &D,
    ) -> Result<Vec<Vec<f64>>> {
        let model = load_model(&self.run_dir.join(&rm.name), dev)?;
        let samples = self.samples_of(stage, answered, stages);
        Ok(reward_scores(
            model.as_ref(),
            self.tok,
            &self.conversations,
            samples,
        ))
    }

    /// The judge's rate of best-of-n answers of `base` by the reward model `rm` (n = 1, 4,
    /// 16), on the questions the judge applies to: what sampling more and keeping the answer
    /// the reward model likes best achieves without training.
    fn best_of<D: Backend>(
        &self,
        judge: &Judge,
        rm: &Stage,
        base: &Stage,
        dev: &D,
    ) -> Result<BTreeMap<String, f64>> {
        let judged: Vec<Vec<Message>> = self
            .conversations
            .iter()
            .filter(|c| judge.score(last_user_turn(c), "").is_some())
            .cloned()
            .collect();
        let policy = load_model(&self.run_dir.join(&base.name), dev)?;
        let reward_model = load_model(&self.run_dir.join(&rm.name), dev)?;
        let sampling = &self.loaded.spec.report.sampling;
        let opts = sampling.gold().into();
        let seed = sampling.seed ^ 0xb0;
        let samples = sample_answers(policy.as_ref(), self.tok, &judged, true, 16, &opts, seed);
        let reward = reward_scores(reward_model.as_ref(), self.tok, &judged, &samples);
        let mut numbers = BTreeMap::new();
        for n in BEST_OF {
            let best = best_of_n(&samples, &reward, n);
            if let Some(rate) = gold_rate(&scores(judge, &judged, &best)) {
                numbers.insert(gold_best_of_key(n), rate);
            }
        }
        Ok(numbers)
    }

    /// `stage`'s KL to `base` per answer, over its own sampled answers.
    fn kl<D: Backend>(
        &self,
        stage: &Stage,
        base: &Stage,
        stages: &[&Stage],
        answered: &[Answered],
        dev: &D,
    ) -> Result<f64> {
        let model = load_model(&self.run_dir.join(&stage.name), dev)?;
        let reference = load_model(&self.run_dir.join(&base.name), dev)?;
        let samples = self.samples_of(stage, answered, stages);
        Ok(kl_per_answer(
            model.as_ref(),
            reference.as_ref(),
            self.tok,
            &self.conversations,
            samples,
        ))
    }

    fn samples_of<'b>(
        &self,
        stage: &Stage,
        answered: &'b [Answered],
        stages: &[&Stage],
    ) -> &'b Samples {
        let i = stages
            .iter()
            .position(|s| s.name == stage.name)
            .expect("a compared stage");
        answered[i].samples.as_ref().expect("sampled for the judge")
    }
}

/// Opens and reads `[report] eval`'s files (`data`, `judge_prompts`) as the evaluation will,
/// before anything trains: a misspelt path fails at once, naming the key, not after hours.
pub fn check_files(loaded: &LoadedSpec) -> Result<()> {
    let Some(eval) = &loaded.spec.report.eval else {
        return Ok(());
    };
    if let Some(file) = &eval.data {
        let read = match (&eval.judge, &eval.judge_prompts) {
            // The judge asks the same questions.
            (Some(_), None) => read_conversations(file, None, None).map(drop),
            _ => read_any(file),
        };
        read.with_context(|| loaded.locate("report.eval.data"))?;
    }
    if let Some(prompts) = &eval.judge_prompts {
        read_conversations(prompts, None, None)
            .with_context(|| loaded.locate("report.eval.judge_prompts"))?;
    }
    Ok(())
}

/// Reads a file `evaluate_file` takes, in whichever of its formats it is.
fn read_any(path: &Path) -> Result<()> {
    use crate::data::{self, JsonlKind};
    if path.extension().is_some_and(|e| e == "txt") {
        return data::read_text_corpus(&[path.to_path_buf()]).map(drop);
    }
    match data::sniff_jsonl_kind(path)? {
        JsonlKind::Sft => data::read_sft(path).map(drop),
        JsonlKind::Prompts => data::read_prompts(path).map(drop),
        JsonlKind::Preference => data::read_preferences(path).map(drop),
        JsonlKind::Text => data::read_text_corpus(&[path.to_path_buf()]).map(drop),
    }
}

/// Reward-model scores kept only where the judge scored the answer too, so the proxy's win
/// rate is counted over the same answers as the gold one.
fn only_where_judged(proxy: Vec<Vec<f64>>, judged: &[Vec<Option<f64>>]) -> Vec<Vec<Option<f64>>> {
    proxy
        .into_iter()
        .zip(judged)
        .map(|(row, j)| row.into_iter().zip(j).map(|(p, g)| g.map(|_| p)).collect())
        .collect()
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
