//! The stages of the recipe, each a small file on top of `train/`: it turns its data into an
//! `Objective` and hands it to the shared loop. Stages never call each other; the runner
//! gives each the model of its `from` stage.

pub mod pretrain;
pub mod reward;
pub mod rlhf;
pub mod sft;

use crate::data::{self, PreferenceRecord, PromptExample, SftExample};
use crate::model::{Backend, LanguageModel};
use crate::spec::{DpoKeys, Experiment, GrpoKeys, Method, PpoKeys, Stage};
use crate::tokenizer::Tokenizer;
use crate::train::checkpoint::load_model;
use crate::train::optim::{AdamWConfig, LrSchedule};
use crate::train::trainer::{train, TrainResult, TrainSettings};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// What the runner hands a stage.
pub struct StageEnv<'a, D: Backend> {
    pub spec: &'a Experiment,
    pub stage: &'a Stage,
    pub tokenizer: &'a Tokenizer,
    pub dev: D,
    pub dir: PathBuf,
    /// The run folder, where other stages' checkpoints live.
    pub run_dir: PathBuf,
    pub block_size: usize,
    pub peak_flops: f64,
}

/// A stage's data, read once (the tokenizer is trained on all of it before any stage runs),
/// in the variant of the stage's method with that method's keys: the data decides which
/// objective trains.
pub enum StageData {
    Pretrain {
        train: Vec<String>,
        val: Option<Vec<String>>,
    },
    Sft {
        train: Vec<SftExample>,
        val: Vec<SftExample>,
    },
    Reward {
        train: Vec<PreferenceRecord>,
        val: Vec<PreferenceRecord>,
    },
    Dpo {
        keys: DpoKeys,
        train: Vec<PreferenceRecord>,
        val: Vec<PreferenceRecord>,
    },
    Ppo {
        keys: PpoKeys,
        train: Vec<PromptExample>,
        val: Vec<PromptExample>,
    },
    Grpo {
        keys: GrpoKeys,
        train: Vec<PromptExample>,
        val: Vec<PromptExample>,
    },
}

impl StageData {
    /// Every piece of text, for training the tokenizer.
    pub fn texts(&self) -> Vec<&str> {
        match self {
            StageData::Pretrain { train, val } => train
                .iter()
                .chain(val.iter().flatten())
                .map(|s| s.as_str())
                .collect(),
            StageData::Sft { train, val } => train
                .iter()
                .chain(val)
                .flat_map(|e| e.messages.iter().map(|m| m.content.as_str()))
                .collect(),
            StageData::Reward { train, val } | StageData::Dpo { train, val, .. } => train
                .iter()
                .chain(val)
                .flat_map(|r| match r {
                    PreferenceRecord::Pair(p) => p
                        .prompt
                        .iter()
                        .chain(&p.chosen)
                        .chain(&p.rejected)
                        .collect::<Vec<_>>(),
                    PreferenceRecord::Feedback(f) => f.prompt.iter().chain(&f.completion).collect(),
                })
                .map(|m| m.content.as_str())
                .collect(),
            StageData::Ppo { train, val, .. } | StageData::Grpo { train, val, .. } => train
                .iter()
                .chain(val)
                .flat_map(|p| {
                    p.prompt
                        .iter()
                        .map(|m| m.content.as_str())
                        .chain(p.reference.as_deref())
                })
                .collect(),
        }
    }
}

fn read_many<T>(paths: &[PathBuf], read: fn(&Path) -> Result<Vec<T>>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for p in data::expand_paths(paths)? {
        out.extend(read(&p)?);
    }
    Ok(out)
}

/// Reads a stage's data. Errors start with `locate(key)` for the stage's key that named the
/// failing file (`data`, `val_data` or `prompts`): where that key is in the spec.
pub fn load_stage_data(
    stage: &Stage,
    seed: u64,
    locate: &dyn Fn(&str) -> String,
) -> Result<StageData> {
    let split = Split {
        stage,
        seed,
        locate,
    };
    Ok(match &stage.method {
        Method::Pretrain => {
            let read_text = |paths: &[PathBuf]| data::read_text_corpus(&data::expand_paths(paths)?);
            let train = read_text(&stage.data).with_context(|| locate("data"))?;
            let val = match &stage.val_data {
                Some(p) => {
                    Some(read_text(std::slice::from_ref(p)).with_context(|| locate("val_data"))?)
                }
                None => None,
            };
            StageData::Pretrain { train, val }
        }
        Method::Sft => {
            let (train, val) = split.read(&stage.data, "data", data::read_sft)?;
            StageData::Sft { train, val }
        }
        Method::Reward => {
            let (train, val) = split.read(&stage.data, "data", data::read_preferences)?;
            StageData::Reward { train, val }
        }
        Method::Dpo(keys) => {
            let (train, val) = split.read(&stage.data, "data", data::read_preferences)?;
            let keys = keys.clone();
            StageData::Dpo { keys, train, val }
        }
        Method::Ppo(keys) => {
            let prompts = std::slice::from_ref(&keys.rollout.prompts);
            let (train, val) = split.read(prompts, "prompts", data::read_prompts)?;
            let keys = keys.clone();
            StageData::Ppo { keys, train, val }
        }
        Method::Grpo(keys) => {
            let prompts = std::slice::from_ref(&keys.rollout.prompts);
            let (train, val) = split.read(prompts, "prompts", data::read_prompts)?;
            let keys = keys.clone();
            StageData::Grpo { keys, train, val }
        }
    })
}

/// Training and validation records: `val_data` when written, else `val_fraction` of the data
/// (of its records, or of its groups of records with `val_group`).
struct Split<'a> {
    stage: &'a Stage,
    seed: u64,
    locate: &'a dyn Fn(&str) -> String,
}

impl Split<'_> {
    fn read<T>(
        &self,
        paths: &[PathBuf],
        key: &str,
        read: fn(&Path) -> Result<Vec<T>>,
    ) -> Result<(Vec<T>, Vec<T>)> {
        let all = read_many(paths, read).with_context(|| (self.locate)(key))?;
        Ok(match &self.stage.val_data {
            Some(p) => (
                all,
                read_many(std::slice::from_ref(p), read)
                    .with_context(|| (self.locate)("val_data"))?,
            ),
            None => self
                .held_out()
                .split(all, paths)
                .with_context(|| (self.locate)("val_group"))?,
        })
    }

    fn held_out(&self) -> data::HeldOut {
        data::HeldOut {
            fraction: self.stage.val_fraction,
            seed: self.seed,
            group: self.stage.val_group.clone(),
        }
    }
}

fn settings(
    env: &StageEnv<impl Backend>,
    model: &dyn LanguageModel<impl Backend>,
    params: usize,
) -> TrainSettings {
    let s = env.stage;
    TrainSettings {
        stage: s.name.clone(),
        steps: s.steps,
        schedule: LrSchedule {
            max_lr: s.lr,
            min_lr: s.min_lr,
            warmup: s.warmup_steps,
            total: s.steps,
        },
        adamw: AdamWConfig {
            betas: s.betas,
            eps: 1e-8,
            weight_decay: s.weight_decay,
            grad_clip: s.grad_clip,
        },
        eval_every: s.eval_every,
        checkpoint_every: s.checkpoint_every,
        seed: env.spec.seed ^ fxhash(&s.name),
        flops_per_token: model.config().flops_per_token(params, env.block_size),
        peak_flops: env.peak_flops,
    }
}

/// A stable small hash so each stage draws its own random stream from the experiment seed.
fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Trains `model` for this stage, leaving its checkpoint in `env.dir`.
pub fn run_stage<D: Backend>(
    env: &StageEnv<D>,
    model: &mut dyn LanguageModel<D>,
    data: &StageData,
    params: usize,
) -> Result<TrainResult> {
    let settings = settings(env, model, params);
    match data {
        StageData::Pretrain { train: docs, val } => {
            let mut obj = pretrain::Pretrain::new(env, docs, val.as_deref())?;
            train(model, &mut obj, &settings, &env.dir)
        }
        StageData::Sft { train: t, val } => {
            let mut obj = sft::Sft::new(env, t, val)?;
            train(model, &mut obj, &settings, &env.dir)
        }
        StageData::Reward { train: t, val } => {
            let mut obj = reward::Reward::new(env, t, val)?;
            train(model, &mut obj, &settings, &env.dir)
        }
        StageData::Dpo {
            keys,
            train: t,
            val,
        } => {
            // The reference is the frozen `from` model: a copy taken before any update.
            let reference = model.boxed_clone();
            let mut obj = rlhf::dpo::Dpo::new(env, keys, reference.as_ref(), t, val)?;
            drop(reference);
            train(model, &mut obj, &settings, &env.dir)
        }
        StageData::Ppo {
            keys,
            train: t,
            val,
        } => {
            let rm = load_reward_model(env, &keys.reward_model)?;
            let mut obj = rlhf::ppo::Ppo::new(env, keys, model, rm, t.clone(), val.clone())?;
            train(model, &mut obj, &settings, &env.dir)
        }
        StageData::Grpo {
            keys,
            train: t,
            val,
        } => {
            let rm = match &keys.reward_model {
                Some(name) => Some(load_reward_model(env, name)?),
                None => None,
            };
            let mut obj = rlhf::grpo::Grpo::new(env, keys, model, rm, t.clone(), val.clone())?;
            train(model, &mut obj, &settings, &env.dir)
        }
    }
}

/// The stage's `reward_model`: the finished model of that earlier stage of the run.
fn load_reward_model<D: Backend>(
    env: &StageEnv<D>,
    name: &str,
) -> Result<Box<dyn LanguageModel<D>>> {
    load_model(&env.run_dir.join(name), &env.dev).with_context(|| format!("reward model `{name}`"))
}
