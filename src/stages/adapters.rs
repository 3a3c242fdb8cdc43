//! LoRA in a stage: a stage with a `lora` table freezes the model it starts from and trains
//! adapters on it (peft's LoRA on GPT-2). Its folder then holds the adapters only, with a
//! record of the stage they adapt (`results::adapters`). The frozen reference of DPO, KTO,
//! PPO and GRPO is the same weights with the adapters switched off (`base_only`), as TRL
//! does with peft, so it costs no second copy.

use super::env::StageEnv;
use crate::model::lora::LoraSpec;
use crate::model::{Backend, LanguageModel};
use crate::results::adapters::{write_adapter_record, AdapterRecord};
use crate::spec::LoraKeys;
use crate::util::fnv1a;
use anyhow::{Context, Result};

/// The model's adapter settings for a stage's `lora` table.
pub fn lora_spec(keys: &LoraKeys) -> LoraSpec {
    LoraSpec {
        rank: keys.rank,
        alpha: keys.alpha as f32,
        dropout: keys.dropout as f32,
        targets: keys.modules().into_iter().map(String::from).collect(),
    }
}

/// Freezes `model` and adds the stage's adapters, when it has a `lora` table, recording in
/// the stage's folder which stage they adapt. `seed` draws the adapters' A matrices.
pub fn adapt_for_stage<D: Backend>(
    env: &StageEnv<D>,
    model: &mut dyn LanguageModel<D>,
    seed: u64,
) -> Result<()> {
    let Some(keys) = &env.stage.lora else {
        return Ok(());
    };
    let stage = &env.stage.name;
    let base = env
        .stage
        .from
        .clone()
        .with_context(|| format!("stage `{stage}`: LoRA adapts the model of `from`"))?;
    let lora = lora_spec(keys);
    model
        .add_adapters(&lora, seed ^ fnv1a(b"lora".iter().copied()))
        .with_context(|| format!("stage `{stage}`: lora"))?;
    write_adapter_record(&env.dir, &AdapterRecord { base, lora })
}

/// A second trained model beside the policy (PPO's value model, started from `source`):
/// with LoRA, adapters on a view of `source`'s frozen weights; else a full copy.
pub fn trainable_copy<D: Backend>(
    env: &StageEnv<D>,
    source: &dyn LanguageModel<D>,
    seed: u64,
) -> Result<Box<dyn LanguageModel<D>>> {
    let mut copy = source.boxed_clone();
    copy.set_checkpointing(env.stage.gradient_checkpointing);
    if let Some(keys) = &env.stage.lora {
        copy.add_adapters(
            &lora_spec(keys),
            seed ^ fnv1a(b"value lora".iter().copied()),
        )?;
    }
    Ok(copy)
}
