//! The stages of the recipe, each a small file on top of `train/`: it turns its data into an
//! `Objective` and hands it to the shared loop. Stages never call each other; the runner
//! gives each the model of its `from` stage.

pub mod adapters;
pub mod env;
pub mod feedback;
pub mod pretrain;
pub mod records;
pub mod reward;
pub mod rlhf;
pub mod sft;

pub use env::{load_reward_model, record_usage, Built, StageEnv};
pub use records::Split;
use records::{preference_texts, prompt_texts};

use crate::data::corpus_source::CorpusSource;
use crate::data::mixture::SourceSize;
use crate::data::{self, PreferenceRecord, PromptExample, SftExample};
use crate::eval::judge::Judge;
use crate::model::{Backend, LanguageModel};
use crate::results::meta::{usage_table, SourceUsage};
use crate::results::weights::load_model;
use crate::spec::{sources_of, FeedbackKeys, Method, RlhfKeys, Rollout, SampleSettings, Stage};
use crate::train::optim::{AdamWConfig, LrSchedule};
use crate::train::trainer::{train, TrainResult, TrainSettings};
use crate::util::fnv1a;
use anyhow::{Context, Result};
use std::path::PathBuf;

/// A stage's data, read once (the tokenizer is trained on all of it before any stage runs),
/// in the variant of the stage's method with that method's keys: the data decides which
/// objective trains.
pub enum StageData {
    Pretrain {
        train: Vec<String>,
        val: Option<Vec<String>>,
    },
    /// Pretraining on weighted `data` entries: one stream per source.
    PretrainMixture { sources: Vec<CorpusSource> },
    /// `sources` is empty unless `data` is weighted; then `train` holds each source's share.
    Sft {
        train: Vec<SftExample>,
        val: Vec<SftExample>,
        sources: Vec<SourceSize>,
    },
    Reward {
        train: Vec<PreferenceRecord>,
        val: Vec<PreferenceRecord>,
        sources: Vec<SourceSize>,
    },
    /// An RLHF stage: its method's keys and the data that method read
    /// (`rlhf::RlhfMethod::load_data`).
    Rlhf {
        keys: RlhfKeys,
        data: rlhf::RlhfData,
    },
    /// Only `train` is rated; `val` is what evaluation may ask without any rater having seen it.
    Feedback {
        keys: FeedbackKeys,
        train: Vec<PromptExample>,
        val: Vec<PromptExample>,
    },
    /// A pretrained stage reads no data: the runner imports its folder.
    Pretrained,
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
            StageData::PretrainMixture { sources } => sources
                .iter()
                .flat_map(|s| {
                    let chats = s.chats.iter().chain(&s.val_chats);
                    let contents =
                        chats.flat_map(|e| e.messages.iter().map(|m| m.content.as_str()));
                    s.text.iter().map(|t| t.as_str()).chain(contents)
                })
                .collect(),
            StageData::Sft { train, val, .. } => train
                .iter()
                .chain(val)
                .flat_map(|e| e.messages.iter().map(|m| m.content.as_str()))
                .collect(),
            StageData::Reward { train, val, .. } => preference_texts(train, val),
            StageData::Rlhf { data, .. } => data.texts(),
            StageData::Feedback { train, val, .. } => prompt_texts(train, val),
            StageData::Pretrained => Vec::new(),
        }
    }
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
        Method::Pretrain if stage.data.iter().any(|e| e.weight.is_some()) => {
            let held_out = split.held_out(stage.val_fraction);
            let sources = sources_of(&stage.data)
                .unwrap_or_default()
                .iter()
                .map(|s| data::corpus_source::read_corpus_source(s, &held_out))
                .collect::<Result<Vec<_>>>()
                .with_context(|| locate("data"))?;
            StageData::PretrainMixture { sources }
        }
        Method::Pretrain => {
            let read_text = |paths: &[PathBuf]| data::read_text_corpus(&data::expand_paths(paths)?);
            let train = read_text(&stage.data_paths()).with_context(|| locate("data"))?;
            let val = match &stage.val_data {
                Some(p) => {
                    Some(read_text(std::slice::from_ref(p)).with_context(|| locate("val_data"))?)
                }
                None => None,
            };
            StageData::Pretrain { train, val }
        }
        Method::Sft => {
            let (train, val, sources) = split.read_mixture(data::read_sft)?;
            StageData::Sft {
                train,
                val,
                sources,
            }
        }
        Method::Reward => {
            let (train, val, sources) = split.read_mixture(data::read_preferences)?;
            StageData::Reward {
                train,
                val,
                sources,
            }
        }
        Method::Rlhf(keys) => StageData::Rlhf {
            keys: keys.clone(),
            data: rlhf::load_data(keys, &split)?,
        },
        Method::Feedback(keys) => {
            let prompts = [keys.prompts_file().to_path_buf()];
            let (train, val) = split.read(&prompts, "prompts", data::read_prompts)?;
            let keys = keys.clone();
            StageData::Feedback { keys, train, val }
        }
        Method::Pretrained => StageData::Pretrained,
    })
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
            min_lr: s.min_lr(),
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
        seed: stage_seed(env.spec.seed, &s.name),
        flops_per_token: model.config().flops_per_token(params, env.block_size),
        peak_flops: env.peak_flops,
    }
}

/// Each stage draws its own random stream from the experiment seed and a stable hash of its
/// name.
fn stage_seed(experiment_seed: u64, stage: &str) -> u64 {
    experiment_seed ^ fnv1a(stage.bytes())
}

/// Trains `model` for this stage, leaving its checkpoint in `env.dir`; returns the result
/// and, for weighted data, how much each source supplied.
pub fn run_stage<D: Backend>(
    env: &StageEnv<D>,
    model: &mut dyn LanguageModel<D>,
    data: &StageData,
    params: usize,
) -> Result<(TrainResult, Vec<SourceUsage>)> {
    let settings = settings(env, model, params);
    let (mut objective, usage) = objective(env, model, data)?;
    if let Some(ptx_data) = &env.stage.ptx_data {
        let conversations = data::read_sft(ptx_data)
            .with_context(|| format!("stage `{}`: ptx_data", env.stage.name))?;
        let anchor = rlhf::ptx::SftAnchor::new(env, &conversations, env.stage.ptx_coef)?;
        objective = Box::new(rlhf::ptx::WithPtx {
            inner: objective,
            anchor,
        });
    }
    if !usage.is_empty() {
        print!("{}", usage_table(&env.stage.name, &usage));
    }
    let result = train(model, objective.as_mut(), &settings, &env.dir)?;
    Ok((result, usage))
}

/// The objective that trains `data`'s method, built on the `from` model where it needs one.
fn objective<'a, D: Backend>(
    env: &'a StageEnv<D>,
    model: &mut dyn LanguageModel<D>,
    data: &'a StageData,
) -> Result<Built<'a, D>> {
    let usage = |sources: &[SourceSize]| record_usage(env.stage, sources);
    Ok(match data {
        StageData::Pretrain { train: docs, val } => (
            Box::new(pretrain::Pretrain::new(env, docs, val.as_deref())?),
            vec![],
        ),
        StageData::PretrainMixture { sources } => {
            let obj = pretrain::Pretrain::mixture(env, sources)?;
            let usage = obj.usage(env.stage.steps);
            (Box::new(obj), usage)
        }
        StageData::Sft {
            train: t,
            val,
            sources,
        } => (Box::new(sft::Sft::new(env, t, val)?), usage(sources)),
        StageData::Reward {
            train: t,
            val,
            sources,
        } => {
            let obj = reward::Reward::new(env, t, val, raters_judge(env)?.as_ref())?;
            (Box::new(obj), usage(sources))
        }
        StageData::Rlhf { keys, data } => rlhf::objective(keys, env, model, data)?,
        StageData::Feedback { .. } => {
            anyhow::bail!(
                "stage `{}`: a feedback stage rates answers, it does not train",
                env.stage.name
            )
        }
        StageData::Pretrained => {
            anyhow::bail!(
                "stage `{}`: a pretrained stage is imported, it does not train",
                env.stage.name
            )
        }
    })
}

/// Runs a feedback stage: `from` answers the training prompts and a judge rates the answers
/// into the stage folder's rating files. Returns what was generated, for the stage record.
pub fn run_feedback_stage<D: Backend>(
    env: &StageEnv<D>,
    data: &StageData,
) -> Result<feedback::Summary> {
    let (stage, spec) = (env.stage, env.spec);
    let StageData::Feedback { keys, train, .. } = data else {
        anyhow::bail!("stage `{}` is not a feedback stage", stage.name);
    };
    let from = stage
        .from
        .as_deref()
        .context("a feedback stage needs `from`")?;
    let model = load_model(&env.run_dir.join(from), &env.dev)
        .with_context(|| format!("stage `{}` rates the answers of `{from}`", stage.name))?;
    let judge = Judge::declared(spec, keys.judge_name())?;
    let raters = feedback::Raters {
        judge: &judge,
        samples: keys.samples,
        noise: keys.noise,
        sampling: SampleSettings::from(&**keys).into(),
        from,
    };
    let seed = stage_seed(spec.seed, &stage.name);
    let s = feedback::run(env, model.as_ref(), &raters, train, seed)?;
    println!(
        "[{}] rated {} prompts x {} answers of `{from}` with judge `{}`: {} 👍/👎 ({:.0}% 👍), {} ranked pairs; noise flipped {} labels and {} pairs",
        stage.name, s.prompts, keys.samples, keys.judge_name(), s.labels,
        100.0 * s.thumbs_up as f64 / s.labels.max(1) as f64, s.pairs, s.flipped_labels, s.flipped_pairs
    );
    Ok(s)
}

/// The judge of the feedback stage whose ratings a reward stage reads (`@NAME/...` in its
/// `val_data`, else in its `data`): the clean taste its noisy labels stand for.
fn raters_judge<D: Backend>(env: &StageEnv<D>) -> Result<Option<Judge>> {
    let stage = env.stage;
    let paths = stage
        .val_data
        .iter()
        .chain(stage.data.iter().map(|e| &e.path));
    let Some((name, _)) = paths.filter_map(|p| crate::spec::rating_path(p)).next() else {
        return Ok(None);
    };
    let Some(Method::Feedback(keys)) = env
        .spec
        .stages
        .iter()
        .find(|s| s.name == name)
        .map(|s| &s.method)
    else {
        return Ok(None);
    };
    Ok(Some(Judge::declared(env.spec, keys.judge_name())?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn stage_seeds_are_pinned() {
        assert_eq!(super::stage_seed(0, "pretrain"), 0x18a62030d3f129fc);
        assert_eq!(super::stage_seed(1, "sft"), 0x823195195cd9d169);
    }
}
