//! PPO-ptx (InstructGPT, Ouyang et al. 2022), for any RLHF method: every update the method
//! applies also carries `ptx_coef` × the SFT loss on a batch of `ptx_data`. RLHF moves the
//! policy wherever the reward (or the preference margin) pulls it, and on a small model that
//! pull reaches questions no rater asked: answers that start like the rated ones drift toward
//! them. Keeping the SFT loss in the update holds those answers where SFT left them.

use crate::data::batches::{pad_examples, Example};
use crate::data::SftExample;
use crate::model::{Backend, LanguageModel, Logits};
use crate::stages::env::StageEnv;
use crate::stages::sft::encode_examples;
use crate::train::loss::{mask_weights, masked_cross_entropy};
use crate::train::trainer::{
    ExtraLoss, Metrics, Objective, ObjectiveState, StepContext, StepOutput,
};
use anyhow::{bail, Result};
use dfdx::prelude::*;
use dfdx::tensor::Gradients;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The SFT loss on random batches of the `ptx_data` conversations, weighted by `coef`.
pub struct SftAnchor<D: Backend> {
    examples: Vec<Example>,
    batch: usize,
    coef: f32,
    pad: u32,
    dev: D,
    /// The unweighted SFT loss of each batch added since the last step's metrics.
    losses: Vec<f64>,
}

impl<D: Backend> SftAnchor<D> {
    pub fn new(env: &StageEnv<D>, conversations: &[SftExample], coef: f64) -> Result<Self> {
        let examples = encode_examples(env, conversations, "ptx_data");
        if examples.is_empty() {
            bail!(
                "stage `{}`: ptx_data has no conversation with an assistant answer within the context",
                env.stage.name
            );
        }
        println!(
            "[{}] ptx: the SFT loss on {} conversations, weighted {coef}, joins every update",
            env.stage.name,
            examples.len()
        );
        Ok(Self {
            examples,
            batch: env.stage.batch_size,
            coef: coef as f32,
            pad: env.tokenizer.special(crate::tokenizer::Special::Pad),
            dev: env.dev.clone(),
            losses: Vec::new(),
        })
    }
}

impl<D: Backend> ExtraLoss<D> for SftAnchor<D> {
    fn add(
        &mut self,
        model: &dyn LanguageModel<D>,
        grads: Gradients<f32, D>,
        rng: &mut ChaCha8Rng,
    ) -> Result<Gradients<f32, D>> {
        let picks: Vec<&Example> = (0..self.batch)
            .map(|_| &self.examples[rng.gen_range(0..self.examples.len())])
            .collect();
        let b = pad_examples(&picks, self.pad);
        let (x, y) = b.tensors(&self.dev);
        let (w, _) = mask_weights(&self.dev, &b.mask, (b.batch, b.seq));
        let logits: Logits<D, _> = model.logits_traced(x, grads);
        let loss = masked_cross_entropy(logits, y, w);
        self.losses
            .push(crate::util::readback::scalar(&loss) as f64);
        Ok((loss * self.coef).backward())
    }
}

/// An RLHF objective with the SFT anchor in every update it applies; logs `ptx_loss`.
pub struct WithPtx<'a, D: Backend> {
    pub inner: Box<dyn Objective<D> + 'a>,
    pub anchor: SftAnchor<D>,
}

impl<D: Backend> Objective<D> for WithPtx<'_, D> {
    fn step(&mut self, ctx: &mut StepContext<'_, D>) -> Result<StepOutput> {
        let inner = &mut self.inner;
        let mut out = ctx.with_extra_loss(&mut self.anchor, |c| inner.step(c))?;
        let losses = std::mem::take(&mut self.anchor.losses);
        if !losses.is_empty() {
            let mean = losses.iter().sum::<f64>() / losses.len() as f64;
            out.metrics.push(("ptx_loss".into(), mean));
        }
        Ok(out)
    }

    fn evaluate(&mut self, model: &dyn LanguageModel<D>) -> Result<Metrics> {
        self.inner.evaluate(model)
    }

    fn save_state(&mut self) -> Result<ObjectiveState> {
        self.inner.save_state()
    }

    fn load_state(&mut self, state: ObjectiveState) -> Result<()> {
        self.inner.load_state(state)
    }
}
