//! Pretraining: next-token prediction on plain text. Logs val/loss and val/bpb (bits per
//! byte, comparable across tokenizers).

use super::batches::{random_windows, spaced_starts, windows_at};
use super::StageEnv;
use crate::model::{Backend, LanguageModel};
use crate::tokenizer::{Special, Tokenizer};
use crate::train::loss::{mask_weights, masked_cross_entropy, token_logprobs};
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

/// Documents joined into one stream, separated by end-of-text.
pub fn token_stream(tok: &Tokenizer, docs: &[String]) -> Vec<u32> {
    let eot = tok.special(Special::EndOfText);
    let mut out = Vec::new();
    for d in docs {
        out.extend(tok.encode(d));
        out.push(eot);
    }
    out
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

/// Total negative log-likelihood (nats), target tokens and target bytes over `windows` evenly
/// spaced windows of a token stream.
pub fn stream_loss<D: Backend>(
    model: &dyn LanguageModel<D>,
    dev: &D,
    stream: &[u32],
    seq: usize,
    windows: usize,
    batch: usize,
    token_bytes: &[usize],
) -> (f64, usize, usize) {
    let seq = seq.min(stream.len() - 1);
    let starts = spaced_starts(stream.len(), seq, windows);
    let (mut nats, mut tokens, mut bytes) = (0.0, 0, 0);
    for chunk in starts.chunks(batch.max(1)) {
        let b = windows_at(stream, chunk, seq);
        let x = dev.tensor_from_vec(b.inputs.clone(), (b.batch, b.seq));
        let y = dev.tensor_from_vec(b.targets.clone(), (b.batch, b.seq));
        let lp = token_logprobs(model.logits(x), y).as_vec();
        nats -= lp.iter().map(|&v| v as f64).sum::<f64>();
        tokens += lp.len();
        bytes += b
            .targets
            .iter()
            .map(|&t| token_bytes.get(t).copied().unwrap_or(0))
            .sum::<usize>();
    }
    (nats, tokens, bytes)
}
