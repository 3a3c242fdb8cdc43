//! Pretraining: next-token prediction on plain text, or on a weighted mixture of sources
//! (text, and conversations through the chat template). Logs val/loss and val/bpb (bits per
//! byte, comparable across tokenizers), and for a mixture val/loss per source.

use super::StageEnv;
use crate::data::batches::{mixture_windows, random_windows, token_stream, Batch};
use crate::data::chat::encode_chat;
use crate::data::corpus_source::CorpusSource;
use crate::data::mixture::cumulative;
use crate::data::SftExample;
use crate::eval::loss::stream_loss;
use crate::model::{Backend, LanguageModel};
use crate::results::meta::SourceUsage;
use crate::tokenizer::{Special, Tokenizer};
use crate::train::loss::{mask_weights, masked_cross_entropy};
use crate::train::trainer::{Metrics, Objective, StepContext, StepOutput};
use anyhow::{bail, Result};
use dfdx::prelude::*;
use dfdx::tensor::Gradients;
use rand::Rng;

/// A token stream to draw windows from, and its held-out part.
struct Stream {
    name: String,
    share: f64,
    train: Vec<u32>,
    val: Vec<u32>,
}

/// Windows are drawn from the training part.
impl AsRef<[u32]> for Stream {
    fn as_ref(&self) -> &[u32] {
        &self.train
    }
}

pub struct Pretrain<D: Backend> {
    streams: Vec<Stream>,
    /// For a weighted mixture: running sums of the shares (one stream per source).
    cumulative: Option<Vec<f64>>,
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
            None => cut_tail(stream, stage.val_fraction),
        };
        if train.len() <= seq + 1 {
            bail!("stage `{}`: {} training tokens are fewer than one context of {} (more data or a smaller block_size)", stage.name, train.len(), seq + 1);
        }
        println!(
            "[{}] {} train tokens, {} validation tokens",
            stage.name,
            train.len(),
            val.len()
        );
        let stream = Stream {
            name: String::new(),
            share: 1.0,
            train,
            val,
        };
        Ok(Self::with_streams(env, vec![stream], None))
    }

    /// A weighted mixture: each source's text (its last `val_fraction` held out) and its
    /// conversations through the chat template, one stream per source.
    pub fn mixture(env: &StageEnv<D>, sources: &[CorpusSource]) -> Result<Self> {
        let (stage, tok, seq) = (env.stage, env.tokenizer, env.block_size);
        let mut streams = Vec::new();
        for source in sources {
            let (mut train, mut val) =
                cut_tail(token_stream(tok, &source.text), source.val_fraction);
            train.extend(chat_stream(tok, &source.chats));
            val.extend(chat_stream(tok, &source.val_chats));
            if source.share > 0.0 && train.len() <= seq + 1 {
                bail!("stage `{}`: data source `{}` has {} training tokens, fewer than one context of {} (more data, a smaller block_size, or weight 0)", stage.name, source.name, train.len(), seq + 1);
            }
            streams.push(Stream {
                name: source.name.clone(),
                share: source.share,
                train,
                val,
            });
        }
        let shares: Vec<f64> = streams.iter().map(|s| s.share).collect();
        Ok(Self::with_streams(env, streams, Some(cumulative(&shares))))
    }

    fn with_streams(env: &StageEnv<D>, streams: Vec<Stream>, cumulative: Option<Vec<f64>>) -> Self {
        let stage = env.stage;
        Self {
            streams,
            cumulative,
            batch: stage.batch_size,
            accum: stage.grad_accum,
            seq: env.block_size,
            eval_windows: stage.eval_batches * stage.batch_size,
            token_bytes: (0..env.tokenizer.vocab_size() as u32)
                .map(|i| env.tokenizer.token_bytes(i))
                .collect(),
            dev: env.dev.clone(),
        }
    }

    /// Per source of a mixture: share, training tokens and passes over `steps` steps.
    pub fn usage(&self, steps: u64) -> Vec<SourceUsage> {
        if self.cumulative.is_none() {
            return vec![];
        }
        let drawn = (steps as usize * self.accum * self.batch * self.seq) as f64;
        self.streams
            .iter()
            .map(|s| SourceUsage {
                name: s.name.clone(),
                share: s.share,
                size: s.train.len() as u64,
                unit: "tokens".into(),
                passes: drawn * s.share / s.train.len().max(1) as f64,
            })
            .collect()
    }

    fn windows(&self, rng: &mut impl Rng) -> Batch {
        match &self.cumulative {
            None => random_windows(&self.streams[0].train, self.batch, self.seq, rng),
            Some(cumulative) => {
                mixture_windows(&self.streams, cumulative, self.batch, self.seq, rng)
            }
        }
    }

    /// Loss and bits per byte on a held-out stream; None when it is shorter than a window.
    fn val_loss(&self, model: &dyn LanguageModel<D>, val: &[u32]) -> Option<(f64, f64)> {
        if val.len() <= self.seq + 1 {
            return None;
        }
        let (nats, tokens, bytes) = stream_loss(
            model,
            &self.dev,
            val,
            self.seq,
            self.eval_windows,
            self.batch,
            &self.token_bytes,
        );
        let bpb = nats / bytes.max(1) as f64 / std::f64::consts::LN_2;
        Some((nats / tokens as f64, bpb))
    }
}

/// `(train, val)`: the last `fraction` of the stream is validation (nanoGPT's split).
fn cut_tail(stream: Vec<u32>, fraction: f64) -> (Vec<u32>, Vec<u32>) {
    let cut = ((1.0 - fraction) * stream.len() as f64) as usize;
    (stream[..cut].to_vec(), stream[cut..].to_vec())
}

/// Conversations through the chat template, each followed by end-of-text like a document.
fn chat_stream(tok: &Tokenizer, chats: &[SftExample]) -> Vec<u32> {
    let eot = tok.special(Special::EndOfText);
    let mut out = Vec::new();
    for chat in chats {
        out.extend(encode_chat(tok, &chat.messages).ids);
        out.push(eot);
    }
    out
}

impl<D: Backend> Objective<D> for Pretrain<D> {
    fn step(&mut self, ctx: &mut StepContext<'_, D>) -> Result<StepOutput> {
        let mut grads = Gradients::leaky();
        // Summed on the device and read once, after the micro-batches.
        let mut loss_sum: Option<Tensor<Rank0, f32, D>> = None;
        for _ in 0..self.accum {
            let b = self.windows(ctx.rng);
            let (x, y) = b.tensors(&self.dev);
            let (w, _) = mask_weights(&self.dev, &b.mask, (b.batch, b.seq));
            let loss =
                masked_cross_entropy(ctx.model.logits_traced(x, grads), y, w) / self.accum as f32;
            let plain = loss.retaped::<NoneTape>();
            loss_sum = Some(match loss_sum.take() {
                Some(total) => total + plain,
                None => plain,
            });
            grads = loss.backward();
        }
        let loss = crate::util::readback::scalar(&loss_sum.expect("accum >= 1"));
        ctx.apply(grads)?;
        Ok(StepOutput {
            loss: loss as f64,
            tokens: (self.accum * self.batch * self.seq) as u64,
            metrics: vec![],
        })
    }

    /// `val/loss` and `val/bpb`; for a mixture, also `val/loss/<source>` per source, and the
    /// overall numbers are the sources' weighted by their shares (the training distribution).
    fn evaluate(&mut self, model: &dyn LanguageModel<D>) -> Result<Metrics> {
        let mut metrics = Vec::new();
        let (mut loss, mut bpb, mut weight) = (0.0, 0.0, 0.0);
        for s in &self.streams {
            let Some((l, b)) = self.val_loss(model, &s.val) else {
                continue;
            };
            if self.cumulative.is_some() {
                metrics.push((format!("val/loss/{}", s.name), l));
            }
            loss += s.share * l;
            bpb += s.share * b;
            weight += s.share;
        }
        if weight > 0.0 {
            metrics.insert(0, ("val/loss".into(), loss / weight));
            metrics.insert(1, ("val/bpb".into(), bpb / weight));
        }
        Ok(metrics)
    }
}
