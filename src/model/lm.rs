//! `LanguageModel`: the shape-erased interface the rest of gptlab uses, so training,
//! evaluation and sampling code is written once, not once per compiled preset.

use super::config::ModelConfig;
use super::gpt::Gpt;
use super::kv_cache::KvCache;
use super::lora::LoraSpec;
use super::params::ParamFn;
use super::Backend;
use anyhow::Result;
use dfdx::prelude::*;
use dfdx::tensor::Gradients;

pub type Tokens<D> = Tensor<(usize, usize), usize, D>;
pub type Logits<D, T = NoneTape> = Tensor<(usize, usize, usize), f32, D, T>;
pub type Traced<D> = OwnedTape<f32, D>;

pub trait LanguageModel<D: Backend> {
    fn config(&self) -> &ModelConfig;
    fn device(&self) -> D;
    /// Next-token logits `(batch, seq, vocab)` without gradient tracking.
    fn logits(&self, tokens: Tokens<D>) -> Logits<D>;
    /// Next-token logits recording a tape into `grads`.
    fn logits_traced(&self, tokens: Tokens<D>, grads: Gradients<f32, D>) -> Logits<D, Traced<D>>;
    /// Prompts into a generation cache, right-padded rows of `lens` real tokens, into
    /// `slots`; returns each row's next-token logits (`rows × vocab`). See [`Gpt::prefill`].
    fn prefill(
        &self,
        tokens: Tokens<D>,
        lens: &[usize],
        slots: &[usize],
        cache: &mut KvCache<D>,
    ) -> Vec<f32>;
    /// One new token per cached sequence; next-token logits `slots.len() × vocab`.
    fn decode(&self, tokens: &[u32], slots: &[usize], cache: &mut KvCache<D>) -> Vec<f32>;
    /// Per layer, the attention weights `(batch, head, query, key)` (the explorer's heatmaps).
    fn attention_weights(&self, tokens: Tokens<D>) -> Vec<Vec<f32>>;
    /// Scalar head at every position `(batch, seq)` (reward / value models).
    fn scores(&self, tokens: Tokens<D>) -> Tensor<(usize, usize), f32, D>;
    fn scores_traced(
        &self,
        tokens: Tokens<D>,
        grads: Gradients<f32, D>,
    ) -> Tensor<(usize, usize), f32, D, Traced<D>>;
    fn has_score_head(&self) -> bool;
    fn add_score_head(&mut self, seed: u64);
    /// Every trainable parameter with its Hugging Face name: all of them, or with LoRA
    /// adapters only the adapters (peft's names) and the scalar head.
    fn visit_params(&mut self, f: &mut ParamFn<'_, D>) -> Result<()>;
    fn boxed_clone(&self) -> Box<dyn LanguageModel<D>>;
    /// The adapters' spec, when the model has LoRA adapters (its base is then frozen).
    fn lora(&self) -> Option<&LoraSpec>;
    /// Freezes the base and adds fresh adapters (B = 0: outputs unchanged), A drawn from
    /// `seed`. Saving and loading them goes through `visit_params`, which then lists them.
    fn add_adapters(&mut self, spec: &LoraSpec, seed: u64) -> Result<()>;
    /// The model with its adapters folded in and none left: generation, export, and the
    /// base of a later stage. Without adapters, a clone.
    fn merged(&self) -> Box<dyn LanguageModel<D>>;
    /// The base with the adapters switched off, sharing every tensor with this model (no
    /// copy of the weights): the frozen reference of DPO, KTO and PPO.
    fn base_only(&self) -> Box<dyn LanguageModel<D>>;
    /// Whether traced forwards recompute each block's activations in the backward
    /// (gradient checkpointing) instead of keeping them.
    fn set_checkpointing(&mut self, on: bool);
}

impl<const V: usize, const C: usize, const M: usize, const F: usize, D: Backend> LanguageModel<D>
    for Gpt<V, C, M, F, D>
{
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }
    fn device(&self) -> D {
        self.wte.device().clone()
    }
    fn logits(&self, tokens: Tokens<D>) -> Logits<D> {
        self.lm_head(self.hidden(tokens, NoneTape)).realize()
    }
    fn logits_traced(&self, tokens: Tokens<D>, grads: Gradients<f32, D>) -> Logits<D, Traced<D>> {
        let tape = OwnedTape_from(grads, &self.wte);
        self.lm_head(self.hidden(tokens, tape)).realize()
    }
    fn prefill(
        &self,
        tokens: Tokens<D>,
        lens: &[usize],
        slots: &[usize],
        cache: &mut KvCache<D>,
    ) -> Vec<f32> {
        Gpt::prefill(self, tokens, lens, slots, cache)
    }
    fn decode(&self, tokens: &[u32], slots: &[usize], cache: &mut KvCache<D>) -> Vec<f32> {
        Gpt::decode(self, tokens, slots, cache)
    }
    fn attention_weights(&self, tokens: Tokens<D>) -> Vec<Vec<f32>> {
        Gpt::attention_weights(self, tokens)
    }
    fn scores(&self, tokens: Tokens<D>) -> Tensor<(usize, usize), f32, D> {
        self.score_head(self.hidden(tokens, NoneTape))
    }
    fn scores_traced(
        &self,
        tokens: Tokens<D>,
        grads: Gradients<f32, D>,
    ) -> Tensor<(usize, usize), f32, D, Traced<D>> {
        let tape = OwnedTape_from(grads, &self.wte);
        self.score_head(self.hidden(tokens, tape))
    }
    fn has_score_head(&self) -> bool {
        self.score.is_some()
    }
    fn add_score_head(&mut self, seed: u64) {
        Gpt::add_score_head(self, seed);
        self.cfg.score_head = true;
    }
    fn visit_params(&mut self, f: &mut ParamFn<'_, D>) -> Result<()> {
        Gpt::visit_params(self, f)
    }
    fn boxed_clone(&self) -> Box<dyn LanguageModel<D>> {
        Box::new(self.clone())
    }
    fn lora(&self) -> Option<&LoraSpec> {
        self.lora.as_ref().map(|l| &l.spec)
    }
    fn add_adapters(&mut self, spec: &LoraSpec, seed: u64) -> Result<()> {
        Gpt::add_adapters(self, spec, seed)
    }
    fn merged(&self) -> Box<dyn LanguageModel<D>> {
        Box::new(Gpt::merged(self))
    }
    fn base_only(&self) -> Box<dyn LanguageModel<D>> {
        Box::new(Gpt::base_only(self))
    }
    fn set_checkpointing(&mut self, on: bool) {
        self.checkpoint = on;
    }
}

/// dfdx only builds an `OwnedTape` from gradients through `traced`; take it off a tensor.
#[allow(non_snake_case)]
fn OwnedTape_from<S: Shape, D: Backend>(
    grads: Gradients<f32, D>,
    any: &Tensor<S, f32, D>,
) -> Traced<D> {
    any.clone().traced(grads).split_tape().1
}
