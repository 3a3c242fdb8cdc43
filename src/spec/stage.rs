//! One training stage, in two forms. `FlatStage` is how a stage is written: one TOML table
//! with `kind` (and `algorithm` for rlhf stages), every key declared once as its field.
//! `Stage` is what the program uses: that table, validated, with its defaults filled in, read
//! through `Deref` (`stage.lr`), and the `Method` that `kind` and `algorithm` select (for rlhf
//! stages, an `RlhfKeys` variant per algorithm, `methods/`), a view of the same table, so that
//! every match on the method is exhaustive and no key is named twice.
//!
//! `FlatStage::into_stage` converts right after deserialising (`validate.rs` locates its
//! problems); a `Stage` serialises back as its flat table, every key written out, which keeps
//! the resolved spec, and so the run id, of every existing spec as it was.

use std::ops::Deref;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::data_entry::{sources_of, DataEntry};
use super::flat::{FlatProblem, FlatStage};
use super::kinds::{Algorithm, StageKind};
use super::methods::rollout::{require_prompts, Rollout};
use super::methods::{keys_view, RlhfKeys};
use super::suggest;

/// One training stage: its keys, checked, and the method they select.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "FlatStage", into = "FlatStage")]
pub struct Stage {
    /// Every key, defaults filled in and `min_lr` resolved.
    keys: FlatStage,
    pub method: Method,
}

impl Deref for Stage {
    type Target = FlatStage;
    fn deref(&self) -> &FlatStage {
        &self.keys
    }
}

impl Stage {
    /// The path or glob of every `data` entry, weighted or not.
    pub fn data_paths(&self) -> Vec<PathBuf> {
        self.data.iter().map(|e| e.path.clone()).collect()
    }

    /// The HF folder a pretrained stage imports; `None` for every other stage.
    pub fn pretrained_path(&self) -> Option<&std::path::Path> {
        match self.method {
            Method::Pretrained => self.path.as_deref(),
            _ => None,
        }
    }

    /// The floor of the cosine schedule: as written, or `default_min_lr` of `lr`.
    pub fn min_lr(&self) -> f64 {
        self.keys.min_lr.expect("resolved when the stage is made")
    }

    /// Changes keys (paths resolved against the spec's folder, ratings found in the run);
    /// the method's view is made again from the changed keys.
    pub fn edit(&mut self, change: impl FnOnce(&mut FlatStage)) -> Result<(), FlatProblem> {
        let mut keys = self.keys.clone();
        change(&mut keys);
        *self = keys.into_stage()?;
        Ok(())
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
    Pretrained,
}

keys_view!(
    /// A feedback stage's keys: `from` answers `prompts` (its held-out split is never rated,
    /// so evaluation can ask prompts no rater saw), and the judge rates the answers.
    FeedbackKeys
);

impl Rollout for FeedbackKeys {}

impl FeedbackKeys {
    /// The `[judges.NAME]` that rates: present in every view, since `feedback` made it.
    pub fn judge_name(&self) -> &str {
        self.judge
            .as_deref()
            .expect("a feedback view is made only with its judge")
    }
}

impl Method {
    pub fn kind(&self) -> StageKind {
        match self {
            Method::Pretrain => StageKind::Pretrain,
            Method::Sft => StageKind::Sft,
            Method::Reward => StageKind::Reward,
            Method::Rlhf(_) => StageKind::Rlhf,
            Method::Feedback(_) => StageKind::Feedback,
            Method::Pretrained => StageKind::Pretrained,
        }
    }

    pub fn algorithm(&self) -> Option<Algorithm> {
        match self {
            Method::Rlhf(keys) => Some(keys.algorithm()),
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
            Method::Feedback(_) | Method::Pretrained => None,
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
    pub fn into_stage(mut self) -> Result<Stage, FlatProblem> {
        if self.ptx_data.is_none() && self.ptx_coef != 1.0 {
            return Err(FlatProblem {
                key: "ptx_coef",
                message:
                    "`ptx_coef` weighs the SFT loss on `ptx_data`: add ptx_data = \"sft.jsonl\""
                        .into(),
            });
        }
        let dropout = self.lora.as_ref().map_or(0.0, |lora| lora.dropout);
        if self.gradient_checkpointing && dropout > 0.0 {
            return Err(FlatProblem {
                key: "gradient_checkpointing",
                message: format!(
                    "gradient checkpointing runs each block twice and needs the same result \
                     both times, which LoRA dropout ({dropout}) does not give: set the lora \
                     table's dropout = 0.0 or leave gradient_checkpointing out"
                ),
            });
        }
        self.min_lr = Some(self.min_lr.unwrap_or(default_min_lr(self.lr)));
        let method = self.method()?;
        Ok(Stage { keys: self, method })
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
            (StageKind::Pretrained, _) => match self.path {
                Some(_) => Method::Pretrained,
                None => return Err(FlatProblem {
                    key: "path",
                    message: "a pretrained stage needs `path`: a Hugging Face GPT-2 folder (config.json, model.safetensors and its tokenizer)".into(),
                }),
            },
            (StageKind::Rlhf, Some(algorithm)) => Method::Rlhf(algorithm.view(self.clone())?),
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
        require_prompts(self, || {
            "a feedback stage needs `prompts`: a JSONL file of prompts to answer and rate".into()
        })?;
        if self.judge.is_none() {
            return Err(FlatProblem {
                key: "judge",
                message: "a feedback stage needs `judge`: the name of a [judges.NAME] table that rates the answers".into(),
            });
        }
        Ok(FeedbackKeys(self.clone()))
    }
}

impl TryFrom<FlatStage> for Stage {
    type Error = FlatProblem;

    fn try_from(flat: FlatStage) -> Result<Stage, FlatProblem> {
        flat.into_stage()
    }
}

/// Back to the flat form: every key, as checked and resolved.
impl From<Stage> for FlatStage {
    fn from(stage: Stage) -> FlatStage {
        stage.keys
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
    fn a_method_views_the_stage_keys_and_writes_back_as_written() {
        let mut written = flat(StageKind::Rlhf, Some(Algorithm::Dpo));
        written.beta = 0.3;
        let stage = written.clone().into_stage().unwrap();
        let Method::Rlhf(RlhfKeys::Dpo(keys)) = &stage.method else {
            panic!("a dpo stage: {:?}", stage.method);
        };
        assert_eq!((keys.beta, keys.rpo_alpha), (0.3, 0.0));
        assert_eq!(FlatStage::from(stage), written);
    }

    #[test]
    fn min_lr_is_resolved_and_an_edit_makes_the_method_again() {
        let mut written = flat(StageKind::Rlhf, Some(Algorithm::Ppo));
        written.min_lr = None;
        let mut stage = written.into_stage().unwrap();
        assert_eq!(stage.min_lr(), default_min_lr(stage.lr));
        stage
            .edit(|keys| keys.prompts = Some("elsewhere.jsonl".into()))
            .unwrap();
        let Method::Rlhf(RlhfKeys::Ppo(keys)) = &stage.method else {
            panic!("a ppo stage: {:?}", stage.method);
        };
        assert_eq!(keys.prompts_file(), std::path::Path::new("elsewhere.jsonl"));
        assert_eq!(
            stage.edit(|keys| keys.prompts = None).unwrap_err().key,
            "prompts"
        );
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
