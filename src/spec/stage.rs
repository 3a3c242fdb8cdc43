//! One training stage, in two forms. `FlatStage` is how a stage is written: one TOML table
//! with `kind` (and `algorithm` for rlhf stages). `Stage` is what the program uses: the keys
//! every stage has, and a `Method` variant per kind (for rlhf stages, an `RlhfKeys` variant
//! per algorithm, `methods/`) holding only that method's keys, so that an invalid combination
//! cannot be represented and every match is exhaustive.
//!
//! `FlatStage::into_stage` converts right after deserialising (`validate.rs` locates its
//! problems); a `Stage` serialises back through the flat form with every key written out,
//! which keeps the resolved spec, and so the run id, of every existing spec as it was.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::data_entry::{sources_of, DataEntry};
use super::flat::{FlatProblem, FlatStage};
use super::kinds::{Algorithm, StageKind};
use super::methods::rollout::RolloutKeys;
use super::methods::RlhfKeys;
use super::suggest;

/// One training stage: the keys every stage has, then what its method adds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "FlatStage", into = "FlatStage")]
pub struct Stage {
    pub name: String,
    /// The earlier stage whose model this one starts from.
    pub from: Option<String>,
    /// Data files or glob patterns, optionally weighted (PPO and GRPO read `prompts` instead).
    pub data: Vec<DataEntry>,
    pub steps: u64,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub lr: f64,
    /// The floor of the cosine schedule: as written, or a tenth of `lr`.
    pub min_lr: f64,
    pub warmup_steps: u64,
    pub weight_decay: f64,
    pub grad_clip: f64,
    pub betas: [f64; 2],
    pub eval_every: u64,
    pub eval_batches: usize,
    pub val_fraction: f64,
    pub val_data: Option<PathBuf>,
    /// Hold out whole groups of records sharing this field's value (every stage that reads
    /// records or prompts; a pretraining mixture's conversation sources).
    pub val_group: Option<String>,
    pub checkpoint_every: u64,
    /// RLHF stages: SFT conversations whose loss joins every update (`ptx_data`, `ptx_coef`).
    pub ptx: Option<Ptx>,
    pub method: Method,
}

/// InstructGPT's PPO-ptx, for any RLHF method: `coef` × the SFT loss on a batch of `data`
/// added to every update, so that moving toward what raters like does not cost what SFT
/// taught (the "alignment tax" on questions no rater asked).
#[derive(Debug, Clone, PartialEq)]
pub struct Ptx {
    pub data: PathBuf,
    pub coef: f64,
}

impl Stage {
    /// The path or glob of every `data` entry, weighted or not.
    pub fn data_paths(&self) -> Vec<PathBuf> {
        self.data.iter().map(|e| e.path.clone()).collect()
    }
}

/// What a stage trains: one variant per stage kind, and per algorithm for rlhf stages (their
/// keys are in `methods/`, one file per method).
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    Pretrain,
    Sft,
    Reward,
    Rlhf(RlhfKeys),
    Feedback(FeedbackKeys),
    /// The base model read from a Hugging Face GPT-2 folder (`path`).
    Pretrained { path: PathBuf },
}

#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackKeys {
    /// A JSONL file of prompts to answer and rate (its `val_group` / `val_fraction` split is
    /// never rated, so evaluation can ask prompts no rater saw).
    pub prompts: PathBuf,
    /// The `[judges.NAME]` that rates.
    pub judge: String,
    /// Answers sampled and ranked per prompt.
    pub samples: usize,
    /// The probability that a label or a pair is flipped.
    pub noise: f64,
    pub max_new_tokens: usize,
    pub temperature: f64,
}

impl Method {
    pub fn kind(&self) -> StageKind {
        match self {
            Method::Pretrain => StageKind::Pretrain,
            Method::Sft => StageKind::Sft,
            Method::Reward => StageKind::Reward,
            Method::Rlhf(_) => StageKind::Rlhf,
            Method::Feedback(_) => StageKind::Feedback,
            Method::Pretrained { .. } => StageKind::Pretrained,
        }
    }

    pub fn algorithm(&self) -> Option<Algorithm> {
        match self {
            Method::Rlhf(keys) => Some(keys.algorithm()),
            _ => None,
        }
    }

    /// The sampling part of PPO and GRPO.
    pub fn rollout(&self) -> Option<&RolloutKeys> {
        match self {
            Method::Rlhf(keys) => keys.spec().rollout(),
            _ => None,
        }
    }

    pub fn rollout_mut(&mut self) -> Option<&mut RolloutKeys> {
        match self {
            Method::Rlhf(keys) => keys.spec_mut().rollout_mut(),
            _ => None,
        }
    }

    /// The earlier reward stage this method scores with, if any.
    pub fn reward_model(&self) -> Option<&str> {
        match self {
            Method::Rlhf(keys) => keys.spec().reward_model(),
            _ => None,
        }
    }

    /// What a stage of this method without `data` is told; `None` when it reads none.
    fn missing_data(&self) -> Option<String> {
        match self {
            Method::Pretrain | Method::Sft | Method::Reward => Some(format!(
                "a {} stage needs `data`: a path, a glob or a list of them",
                self.kind()
            )),
            Method::Rlhf(keys) => keys.spec().missing_data().map(String::from),
            Method::Feedback(_) | Method::Pretrained { .. } => None,
        }
    }
}

/// Every method, as the `kind` and `algorithm` that select it: the rlhf ones in
/// `rlhf_methods!` order.
pub fn methods() -> Vec<(StageKind, Option<Algorithm>)> {
    let plain = [StageKind::Pretrain, StageKind::Sft, StageKind::Reward];
    let rlhf = Algorithm::ALL.iter().map(|&a| (StageKind::Rlhf, Some(a)));
    (plain.into_iter().map(|kind| (kind, None)))
        .chain(rlhf)
        .chain([(StageKind::Feedback, None), (StageKind::Pretrained, None)])
        .collect()
}

/// How a method is called in messages: its algorithm for rlhf stages, else its kind.
pub fn method_name(kind: StageKind, algorithm: Option<Algorithm>) -> &'static str {
    algorithm.map(|a| a.as_str()).unwrap_or(kind.as_str())
}

/// `min_lr` where a stage does not set it: a tenth of `lr`, so the schedule's floor follows
/// its peak (and a resolved spec's `min_lr` changes whenever `lr` does).
pub fn default_min_lr(lr: f64) -> f64 {
    lr / 10.0
}

impl FlatStage {
    /// The typed stage: the method that `kind` and `algorithm` select, with the inputs it
    /// needs. Keys of other methods are left out here; `keys.rs` rejects them in a spec file
    /// before this runs (the resolved spec writes them out, see the module comment).
    pub fn into_stage(self) -> Result<Stage, FlatProblem> {
        let method = self.method()?;
        if self.ptx_data.is_none() && self.ptx_coef != 1.0 {
            return Err(FlatProblem {
                key: "ptx_coef",
                message:
                    "`ptx_coef` weighs the SFT loss on `ptx_data`: add ptx_data = \"sft.jsonl\""
                        .into(),
            });
        }
        Ok(self.with_method(method))
    }

    fn with_method(self, method: Method) -> Stage {
        Stage {
            min_lr: self.min_lr.unwrap_or(default_min_lr(self.lr)),
            name: self.name,
            from: self.from,
            data: self.data,
            steps: self.steps,
            batch_size: self.batch_size,
            grad_accum: self.grad_accum,
            lr: self.lr,
            warmup_steps: self.warmup_steps,
            weight_decay: self.weight_decay,
            grad_clip: self.grad_clip,
            betas: self.betas,
            eval_every: self.eval_every,
            eval_batches: self.eval_batches,
            val_fraction: self.val_fraction,
            val_data: self.val_data,
            val_group: self.val_group,
            checkpoint_every: self.checkpoint_every,
            ptx: self.ptx_data.map(|data| Ptx {
                data,
                coef: self.ptx_coef,
            }),
            method,
        }
    }

    fn method(&self) -> Result<Method, FlatProblem> {
        let problem = |key, message: String| Err(FlatProblem { key, message });
        let method = match (self.kind, self.algorithm) {
            (StageKind::Rlhf, None) => {
                let names = Algorithm::ALL.iter().map(|a| a.as_str());
                return problem(
                    "algorithm",
                    format!(
                        "an rlhf stage needs `algorithm`: one of {}",
                        suggest::list(names)
                    ),
                );
            }
            (kind, Some(_)) if kind != StageKind::Rlhf => {
                return problem(
                    "algorithm",
                    format!("`algorithm` is only for rlhf stages, not {kind}"),
                )
            }
            (StageKind::Pretrain, _) => Method::Pretrain,
            (StageKind::Sft, _) => Method::Sft,
            (StageKind::Reward, _) => Method::Reward,
            (StageKind::Feedback, _) => Method::Feedback(self.feedback()?),
            (StageKind::Pretrained, _) => Method::Pretrained {
                path: self.path.clone().ok_or_else(|| FlatProblem {
                    key: "path",
                    message: "a pretrained stage needs `path`: a Hugging Face GPT-2 folder (config.json, model.safetensors and its tokenizer)".into(),
                })?,
            },
            (StageKind::Rlhf, Some(algorithm)) => Method::Rlhf(algorithm.read(self)?),
        };
        self.check_data(&method)?;
        Ok(method)
    }

    /// What `data` (and `val_data`, `val_group`) must be for `method`.
    fn check_data(&self, method: &Method) -> Result<(), FlatProblem> {
        let problem = |key, message: String| Err(FlatProblem { key, message });
        if let Some(message) = method.missing_data().filter(|_| self.data.is_empty()) {
            return problem("data", message);
        }
        check_weights(&self.data).map_err(|message| FlatProblem {
            key: "data",
            message,
        })?;
        let weighted = self.data.iter().any(|e| e.weight.is_some());
        if *method != Method::Pretrain && self.data.iter().any(|e| e.transform.is_some()) {
            return problem(
                "data",
                "a data `transform` rewrites pretraining text; this stage does not pretrain".into(),
            );
        }
        if self.val_group.is_some() && self.val_data.is_some() {
            return problem("val_group", "`val_group` chooses which groups of `data` to hold out, but `val_data` already names the held-out file: keep one".into());
        }
        if weighted && *method == Method::Pretrain && self.val_data.is_some() {
            return problem("val_data", "a weighted pretraining mixture holds out the last `val_fraction` of each source (and `val_group` groups of its conversations) to log val/loss per source; drop `val_data`".into());
        }
        Ok(())
    }

    fn feedback(&self) -> Result<FeedbackKeys, FlatProblem> {
        Ok(FeedbackKeys {
            prompts: self.prompts.clone().ok_or_else(|| FlatProblem {
                key: "prompts",
                message: "a feedback stage needs `prompts`: a JSONL file of prompts to answer and rate".into(),
            })?,
            judge: self.judge.clone().ok_or_else(|| FlatProblem {
                key: "judge",
                message: "a feedback stage needs `judge`: the name of a [judges.NAME] table that rates the answers".into(),
            })?,
            samples: self.samples,
            noise: self.noise,
            max_new_tokens: self.max_new_tokens,
            temperature: self.temperature,
        })
    }
}

impl TryFrom<FlatStage> for Stage {
    type Error = FlatProblem;

    fn try_from(flat: FlatStage) -> Result<Stage, FlatProblem> {
        flat.into_stage()
    }
}

/// Back to the flat form, every key written: a method's own keys as set, the keys of other
/// methods at their defaults, as the flat format always wrote them.
impl From<Stage> for FlatStage {
    fn from(stage: Stage) -> FlatStage {
        let mut flat = FlatStage::new(&stage.name, stage.method.kind());
        flat.algorithm = stage.method.algorithm();
        match stage.method {
            Method::Pretrain | Method::Sft | Method::Reward => {}
            Method::Feedback(keys) => {
                flat.prompts = Some(keys.prompts);
                flat.judge = Some(keys.judge);
                (flat.samples, flat.noise) = (keys.samples, keys.noise);
                (flat.max_new_tokens, flat.temperature) = (keys.max_new_tokens, keys.temperature);
            }
            Method::Rlhf(keys) => keys.spec().write(&mut flat),
            Method::Pretrained { path } => flat.path = Some(path),
        }
        FlatStage {
            from: stage.from,
            data: stage.data,
            steps: stage.steps,
            batch_size: stage.batch_size,
            grad_accum: stage.grad_accum,
            lr: stage.lr,
            min_lr: Some(stage.min_lr),
            warmup_steps: stage.warmup_steps,
            weight_decay: stage.weight_decay,
            grad_clip: stage.grad_clip,
            betas: stage.betas,
            eval_every: stage.eval_every,
            eval_batches: stage.eval_batches,
            val_fraction: stage.val_fraction,
            val_data: stage.val_data,
            val_group: stage.val_group,
            checkpoint_every: stage.checkpoint_every,
            ptx_coef: stage.ptx.as_ref().map_or(1.0, |p| p.coef),
            ptx_data: stage.ptx.map(|p| p.data),
            ..flat
        }
    }
}

impl Stage {
    /// A stage with every default filled in, as if only `name` and the method's required
    /// inputs were written.
    pub fn new(name: &str, method: Method) -> Stage {
        FlatStage::new(name, method.kind()).with_method(method)
    }
}

/// Weights are finite and not negative; beside plain entries (which share what the weights
/// leave) they sum to at most 1, and alone to more than 0; source names are distinct.
fn check_weights(entries: &[DataEntry]) -> Result<(), String> {
    let weights: Vec<f64> = entries.iter().filter_map(|e| e.weight).collect();
    if let Some(w) = weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
        return Err(format!("a data weight must be a number >= 0, found {w}"));
    }
    let sum: f64 = weights.iter().sum();
    let has_plain = entries.iter().any(|e| e.weight.is_none());
    if has_plain && !weights.is_empty() && sum > 1.0 + 1e-9 {
        return Err(format!("the data weights sum to {sum}, more than 1: beside plain paths a weight is a share of the training data, and the plain paths share what is left"));
    }
    if !has_plain && !weights.is_empty() && sum <= 0.0 {
        return Err("every data weight is 0: nothing to train on".into());
    }
    if let Some(f) = entries
        .iter()
        .filter_map(|e| e.val_fraction)
        .find(|f| !(0.0..1.0).contains(f))
    {
        return Err(format!(
            "a data `val_fraction` must be in [0, 1), found {f}"
        ));
    }
    if entries
        .iter()
        .any(|e| (e.transform.is_some() || e.val_fraction.is_some()) && e.weight.is_none())
    {
        return Err("a data `transform` or `val_fraction` needs a `weight`: it makes the entry a source of its own".into());
    }
    if let Some(sources) = sources_of(entries) {
        let mut names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|p| p[0] == p[1]) {
            return Err(format!(
                "two data sources are named `{}`: give one a `name`",
                pair[0]
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::methods::dpo::DpoKeys;

    fn flat(kind: StageKind, algorithm: Option<Algorithm>) -> FlatStage {
        let mut flat = FlatStage::new("s", kind);
        flat.algorithm = algorithm;
        flat.data = vec![DataEntry::plain("d.jsonl")];
        flat.prompts = Some(PathBuf::from("p.jsonl"));
        flat.reward_model = Some("rm".into());
        flat.judge = Some("taste".into());
        flat.path = (kind == StageKind::Pretrained).then(|| PathBuf::from("gpt2"));
        flat.min_lr = Some(flat.lr / 10.0);
        flat
    }

    #[test]
    fn every_method_round_trips_through_the_flat_form() {
        for (kind, algorithm) in methods() {
            let mut written = flat(kind, algorithm);
            (written.beta, written.gamma, written.group_size) = (0.3, 0.9, 3);
            (written.samples, written.noise) = (6, 0.2);
            let stage = written.clone().into_stage().unwrap();
            assert_eq!(stage.method.kind(), kind);
            assert_eq!(stage.method.algorithm(), algorithm);
            let back = FlatStage::from(stage.clone());
            assert_eq!(back.into_stage().unwrap(), stage);
        }
    }

    #[test]
    fn a_method_keeps_only_its_own_keys() {
        let mut written = flat(StageKind::Rlhf, Some(Algorithm::Dpo));
        (written.beta, written.gamma) = (0.3, 0.9);
        let stage = written.into_stage().unwrap();
        assert_eq!(
            stage.method,
            Method::Rlhf(RlhfKeys::Dpo(DpoKeys {
                beta: 0.3,
                rpo_alpha: 0.0
            }))
        );
        // Written back, other methods' keys are at their defaults, as the flat form has them.
        let back = FlatStage::from(stage);
        assert_eq!(back.gamma, 1.0);
        assert_eq!(back.reward_model, None);
        assert_eq!(back.prompts, None);
    }

    #[test]
    fn inputs_each_method_needs() {
        let problem = |mut flat: FlatStage, clear: fn(&mut FlatStage)| {
            clear(&mut flat);
            flat.into_stage().unwrap_err()
        };
        let ppo = flat(StageKind::Rlhf, Some(Algorithm::Ppo));
        assert_eq!(problem(ppo.clone(), |f| f.prompts = None).key, "prompts");
        assert_eq!(problem(ppo, |f| f.reward_model = None).key, "reward_model");
        let grpo = flat(StageKind::Rlhf, Some(Algorithm::Grpo));
        let stage = FlatStage {
            reward_model: None,
            ..grpo
        }
        .into_stage()
        .unwrap();
        assert_eq!(stage.method.reward_model(), None);
        let sft = flat(StageKind::Sft, None);
        assert_eq!(problem(sft.clone(), |f| f.data.clear()).key, "data");
        let wrong = problem(sft, |f| f.algorithm = Some(Algorithm::Dpo));
        assert_eq!(wrong.key, "algorithm");
        let rlhf = flat(StageKind::Rlhf, None);
        assert!(problem(rlhf, |_| {})
            .message
            .contains("`ppo`, `dpo`, `grpo`"));
    }
}
