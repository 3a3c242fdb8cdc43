//! RLHF stages: PPO against a reward model with a KL penalty (InstructGPT), DPO on preference
//! pairs, GRPO with verifiable rewards, and KTO on unpaired 👍/👎 answers;
//! any of them with the SFT loss in every update (`ptx`).
//!
//! A method is its view of the stage keys (`spec/methods/<name>.rs`) and, in `<name>.rs`
//! here, that view's `RlhfMethod`: the data it reads and the objective it trains. The list of methods
//! is `rlhf_methods!` in `spec/methods/mod.rs`; `load_data` and `objective` below dispatch
//! on it.
pub mod clipped;
pub mod dpo;
pub mod gae;
pub mod grpo;
pub mod kto;
pub mod ppo;
pub mod ptx;
pub mod rollout;
#[cfg(test)]
pub mod toy;

use crate::data::mixture::SourceSize;
use crate::data::{PreferenceRecord, PromptExample};
use crate::model::{Backend, LanguageModel};
use crate::spec::kinds::rlhf_methods;
use crate::spec::RlhfKeys;
use crate::stages::env::{record_usage, Built, StageEnv};
use crate::stages::records::{preference_texts, prompt_texts, Split};
use crate::train::trainer::Objective;
use anyhow::{bail, Result};
use std::path::Path;

/// What an RLHF method does in a run, implemented by its view of the stage keys.
pub trait RlhfMethod {
    /// Reads the stage's data, before any stage trains (the tokenizer is trained on all of
    /// it), so that bad data fails early; errors name the key through `split`.
    fn load_data(&self, split: &Split) -> Result<RlhfData>;
    /// The objective that trains `model` on `data` (what `load_data` read), and for
    /// weighted data how much each source supplies.
    fn objective<'a, D: Backend>(
        &'a self,
        env: &'a StageEnv<D>,
        model: &mut dyn LanguageModel<D>,
        data: &'a RlhfData,
    ) -> Result<Built<'a, D>>;
}

/// What an RLHF method reads: records to score (pairs or 👍/👎 answers), or prompts to answer.
pub enum RlhfData {
    /// `sources` is empty unless `data` is weighted; then `train` holds each source's share.
    Records {
        train: Vec<PreferenceRecord>,
        val: Vec<PreferenceRecord>,
        sources: Vec<SourceSize>,
    },
    Prompts {
        train: Vec<PromptExample>,
        val: Vec<PromptExample>,
    },
}

/// Training records, validation records and sources.
pub type Records<'a> = (
    &'a [PreferenceRecord],
    &'a [PreferenceRecord],
    &'a [SourceSize],
);

impl RlhfData {
    /// Every piece of text, for training the tokenizer.
    pub fn texts(&self) -> Vec<&str> {
        match self {
            RlhfData::Records { train, val, .. } => preference_texts(train, val),
            RlhfData::Prompts { train, val } => prompt_texts(train, val),
        }
    }

    /// The records a method that reads records gets back from `load_data`.
    pub fn records(&self) -> Result<Records<'_>> {
        match self {
            RlhfData::Records {
                train,
                val,
                sources,
            } => Ok((train, val, sources)),
            RlhfData::Prompts { .. } => bail!("expected records, the method read prompts"),
        }
    }

    /// The prompts a method that reads prompts gets back from `load_data`.
    pub fn prompts(&self) -> Result<(&[PromptExample], &[PromptExample])> {
        match self {
            RlhfData::Prompts { train, val } => Ok((train, val)),
            RlhfData::Records { .. } => bail!("expected prompts, the method read records"),
        }
    }
}

/// The stage's data as records, read by `read` (pairs, or 👍/👎 answers).
pub fn read_records(
    split: &Split,
    read: fn(&Path) -> Result<Vec<PreferenceRecord>>,
) -> Result<RlhfData> {
    let (train, val, sources) = split.read_mixture(read)?;
    Ok(RlhfData::Records {
        train,
        val,
        sources,
    })
}

/// The objective of a method that scores records against a frozen reference (DPO, KTO): the
/// `from` model as it was before any update (a copy, or with LoRA the same weights with the
/// adapters off); `build` gets it and the records.
pub fn against_reference<'a, D: Backend, O: Objective<D> + 'a>(
    env: &'a StageEnv<D>,
    model: &mut dyn LanguageModel<D>,
    data: &'a RlhfData,
    build: impl FnOnce(&dyn LanguageModel<D>, &[PreferenceRecord], &[PreferenceRecord]) -> Result<O>,
) -> Result<Built<'a, D>> {
    let (train, val, sources) = data.records()?;
    let reference = model.base_only();
    let objective = build(reference.as_ref(), train, val)?;
    Ok((Box::new(objective), record_usage(env.stage, sources)))
}

/// `load_data` and `objective` of the stage's method, one match arm per line of
/// `rlhf_methods!`.
macro_rules! dispatch {
    ($($(#[$cfg:meta])* $variant:ident($module:ident::$keys:ident) = $name:literal,)*) => {
        /// The data of the stage's method (`RlhfMethod::load_data`).
        pub fn load_data(keys: &RlhfKeys, split: &Split) -> Result<RlhfData> {
            match keys {
                $($(#[$cfg])* RlhfKeys::$variant(keys) => keys.load_data(split),)*
            }
        }

        /// The objective of the stage's method (`RlhfMethod::objective`).
        pub fn objective<'a, D: Backend>(
            keys: &'a RlhfKeys,
            env: &'a StageEnv<D>,
            model: &mut dyn LanguageModel<D>,
            data: &'a RlhfData,
        ) -> Result<Built<'a, D>> {
            match keys {
                $($(#[$cfg])* RlhfKeys::$variant(keys) => keys.objective(env, model, data),)*
            }
        }
    };
}

rlhf_methods!(dispatch);
