//! Pretraining: next-token prediction on plain text. Logs val/loss and val/bpb (bits per
//! byte, comparable across tokenizers).

use super::StageEnv;
use crate::data::batches::{random_windows, token_stream};
use crate::eval::loss::stream_loss;
use crate::model::{Backend, LanguageModel};
use crate::train::loss::{mask_weights, masked_cross_entropy};
use crate::train::trainer::{Metrics, Objective, StepContext, StepOutput};
use anyhow::{bail, Result};
use dfdx::prelude::*;
use dfdx::tensor::Gradients;

pub struct Pretrain<D: Backend> {
    train: Vec<u32>,
    val: Vec<u32>,
    batch: usize,
    accum: usize,
    seq: usize,
    eval_windows: usize,
    token_bytes: Vec<usize>,
    dev: D,
}

impl<D: Backend> Pretrain<D> {
    pub fn new(env: &StageEnv<D>, docs: &[String], val_docs: Option<&[String]>) -> Result<Self> {
        let stage = env.stage;
        let stream = token_stream(env.tokenizer, docs);
        let seq = env.block_size;
        // nanoGPT's split: the last fraction of the stream is validation.
        let (train, val) = match val_docs {
            Some(v) => (stream, token_stream(env.tokenizer, v)),
            None => {
                let cut = ((1.0 - stage.val_fraction) * stream.len() as f64) as usize;
                (stream[..cut].to_vec(), stream[cut..].to_vec())
            }
        };
        if train.len() <= seq + 1 {
            bail!("stage `{}`: {} training tokens are fewer than one context of {} (more data or a smaller block_size)", stage.name, train.len(), seq + 1);
        }
        let token_bytes = (0..env.tokenizer.vocab_size() as u32)
            .map(|i| env.tokenizer.token_bytes(i))
            .collect();
        println!(
            "[{}] {} train tokens, {} validation tokens",
            stage.name,
            train.len(),
            val.len()
        );
        Ok(Self {
            train,
            val,
            batch: stage.batch_size,
            accum: stage.grad_accum,
            seq,
            eval_windows: stage.eval_batches * stage.batch_size,
            token_bytes,
            dev: env.dev.clone(),
        })
    }
}

impl<D: Backend> Objective<D> for Pretrain<D> {
    fn step(&mut self, ctx: &mut StepContext<'_, D>) -> Result<StepOutput> {
        let mut grads = Gradients::leaky();
        let mut loss_sum = 0.0;
        for _ in 0..self.accum {
            let b = random_windows(&self.train, self.batch, self.seq, ctx.rng);
            let (x, y) = b.tensors(&self.dev);
            let (w, _) = mask_weights(&self.dev, &b.mask, (b.batch, b.seq));
            let loss =
                masked_cross_entropy(ctx.model.logits_traced(x, grads), y, w) / self.accum as f32;
            loss_sum += loss.retaped::<NoneTape>().as_vec()[0] as f64;
            grads = loss.backward();
        }
        ctx.apply(grads)?;
        Ok(StepOutput {
            loss: loss_sum,
            tokens: (self.accum * self.batch * self.seq) as u64,
            metrics: vec![],
        })
    }

    fn evaluate(&mut self, model: &dyn LanguageModel<D>) -> Result<Metrics> {
        if self.val.len() <= self.seq + 1 {
            return Ok(vec![]);
        }
        let (nats, tokens, bytes) = stream_loss(
            model,
            &self.dev,
            &self.val,
            self.seq,
            self.eval_windows,
            self.batch,
            &self.token_bytes,
        );
        Ok(vec![
            ("val/loss".into(), nats / tokens as f64),
            (
                "val/bpb".into(),
                nats / bytes.max(1) as f64 / std::f64::consts::LN_2,
            ),
        ])
    }
}
