//! Supervised fine-tuning: conversations through the chat template, loss on assistant tokens
//! only. Logs val/loss, mean_token_accuracy and exact match on the validation split.

use super::StageEnv;
use crate::data::batches::{pad_examples, Example};
use crate::data::chat::{encode_chat, Message};
use crate::data::SftExample;
use crate::eval::answers::{exact_match, questions};
use crate::model::{Backend, LanguageModel, Logits, Tokens};
use crate::train::loss::{mask_weights, masked_cross_entropy};
use crate::train::trainer::{Metrics, Objective, StepContext, StepOutput};
use crate::util::readback;
use anyhow::{bail, Result};
use dfdx::prelude::*;
use dfdx::tensor::Gradients;
use rand::Rng;

pub struct Sft<D: Backend> {
    train: Vec<Example>,
    val: Vec<Example>,
    /// Validation questions with reference answers, for exact match.
    val_questions: Vec<(Vec<Message>, String, Option<String>)>,
    batch: usize,
    accum: usize,
    pad: u32,
    max_answer_tokens: usize,
    tokenizer: crate::tokenizer::Tokenizer,
    dev: D,
}

/// Tokenises conversations, cutting those longer than the context (counted, never silent).
pub fn encode_examples(
    env: &StageEnv<impl Backend>,
    examples: &[SftExample],
    what: &str,
) -> Vec<Example> {
    let limit = env.block_size + 1;
    let mut truncated = 0;
    let out: Vec<Example> = examples
        .iter()
        .map(|e| {
            let enc = encode_chat(env.tokenizer, &e.messages);
            let mut ex = Example {
                ids: enc.ids,
                loss_mask: enc.loss_mask,
            };
            if ex.ids.len() > limit {
                truncated += 1;
                ex.ids.truncate(limit);
                ex.loss_mask.truncate(limit);
            }
            ex
        })
        .filter(|e| e.loss_mask[1..].iter().any(|&m| m))
        .collect();
    if truncated > 0 {
        println!("[{}] {truncated} of {} {what} conversations were longer than the context ({limit} tokens) and were truncated", env.stage.name, examples.len());
    }
    out
}

impl<D: Backend> Sft<D> {
    pub fn new(env: &StageEnv<D>, train: &[SftExample], val: &[SftExample]) -> Result<Self> {
        let train_ex = encode_examples(env, train, "training");
        if train_ex.is_empty() {
            bail!(
                "stage `{}`: no training conversation has an assistant answer within the context",
                env.stage.name
            );
        }
        let val_ex = encode_examples(env, val, "validation");
        // Exact match generates answers, which is slow: a bounded sample of the split.
        let val_questions = questions(val)
            .into_iter()
            .take(env.stage.eval_batches * 8)
            .collect();
        println!(
            "[{}] {} training and {} validation conversations",
            env.stage.name,
            train_ex.len(),
            val_ex.len()
        );
        Ok(Self {
            train: train_ex,
            val: val_ex,
            val_questions,
            batch: env.stage.batch_size,
            accum: env.stage.grad_accum,
            pad: env.tokenizer.special(crate::tokenizer::Special::Pad),
            max_answer_tokens: 48.min(env.block_size / 2).max(8),
            tokenizer: env.tokenizer.clone(),
            dev: env.dev.clone(),
        })
    }
}

/// How many counted target tokens the model ranks first (a tie for first counts), computed on
/// the device: the logits never leave it. `weights` are `mask_weights`' (1/counted at counted
/// positions), so Σ hit·weight is the batch's accuracy.
fn correct_tokens<D: Backend>(
    logits: &Logits<D>,
    targets: &Tokens<D>,
    weights: &Tensor<(usize, usize), f32, D>,
    counted: usize,
) -> Tensor<Rank0, f32, D> {
    let best = logits.clone().max::<(usize, usize), Axis<2>>();
    let hit = logits.clone().select(targets.clone()).ge(&best);
    let dev = best.device();
    let hit = hit.choose(dev.ones_like(&best), dev.zeros_like(&best));
    (hit * weights.clone()).sum() * counted as f32
}

/// The sum of a step's micro-batch values, kept on the device until the step reads it.
fn add<D: Backend>(
    total: Option<Tensor<Rank0, f32, D>>,
    x: Tensor<Rank0, f32, D>,
) -> Option<Tensor<Rank0, f32, D>> {
    Some(match total {
        Some(t) => t + x,
        None => x,
    })
}

impl<D: Backend> Objective<D> for Sft<D> {
    fn step(&mut self, ctx: &mut StepContext<'_, D>) -> Result<StepOutput> {
        let mut grads = Gradients::leaky();
        let (mut loss_sum, mut correct, mut tokens, mut counted) = (None, None, 0, 0);
        for _ in 0..self.accum {
            let picks: Vec<&Example> = (0..self.batch)
                .map(|_| &self.train[ctx.rng.gen_range(0..self.train.len())])
                .collect();
            let b = pad_examples(&picks, self.pad);
            let (x, y) = b.tensors(&self.dev);
            let (w, n) = mask_weights(&self.dev, &b.mask, (b.batch, b.seq));
            let logits: Logits<D, _> = ctx.model.logits_traced(x, grads);
            let (plain, tape) = logits.split_tape();
            correct = add(correct, correct_tokens(&plain, &y, &w, n));
            counted += n;
            let loss = masked_cross_entropy(plain.put_tape(tape), y, w) / self.accum as f32;
            loss_sum = add(loss_sum, loss.retaped::<NoneTape>());
            grads = loss.backward();
            tokens += b.batch * b.seq;
        }
        // The loss and the accuracy come back together, in the step's one read besides the
        // gradient norm's.
        let sums = [loss_sum, correct].map(|s| s.expect("accum >= 1"));
        let [loss, correct] = readback::scalars(sums);
        ctx.apply(grads)?;
        let acc = correct.round() as f64 / counted.max(1) as f64;
        Ok(StepOutput {
            loss: loss as f64,
            tokens: tokens as u64,
            metrics: vec![("mean_token_accuracy".into(), acc)],
        })
    }

    fn evaluate(&mut self, model: &dyn LanguageModel<D>) -> Result<Metrics> {
        let mut out = Vec::new();
        if !self.val.is_empty() {
            let (mut nats, mut counted, mut correct) = (0.0, 0, 0);
            for chunk in self.val.chunks(self.batch) {
                let refs: Vec<&Example> = chunk.iter().collect();
                let b = pad_examples(&refs, self.pad);
                let (x, y) = b.tensors(&self.dev);
                let logits = model.logits(x);
                let (w, n) = mask_weights(&self.dev, &b.mask, (b.batch, b.seq));
                let c = readback::scalar(&correct_tokens(&logits, &y, &w, n));
                correct += c.round() as usize;
                let lp = readback::to_vec(&crate::train::loss::token_logprobs(logits, y));
                nats -= lp
                    .iter()
                    .zip(&b.mask)
                    .filter(|(_, &m)| m)
                    .map(|(&v, _)| v as f64)
                    .sum::<f64>();
                counted += n;
            }
            out.push(("val/loss".into(), nats / counted.max(1) as f64));
            out.push((
                "val/mean_token_accuracy".into(),
                correct as f64 / counted.max(1) as f64,
            ));
        }
        if !self.val_questions.is_empty() {
            let (score, _, _) = exact_match(
                model,
                &self.tokenizer,
                &self.val_questions,
                self.max_answer_tokens,
            );
            out.push(("val/exact_match".into(), score.rate()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batches::{pad_examples, Batch};
    use crate::data::chat::Role;
    use crate::model::presets::{build_model, model_config};
    use crate::tokenizer::{Tokenizer, TokenizerKind};

    #[test]
    fn correct_tokens_counts_the_masked_targets_ranked_first() {
        let dev = Cpu::default();
        let (b, s, v) = (2, 3, 5);
        let logits: Logits<Cpu> = dev.sample_normal_like(&(b, s, v));
        let targets = vec![0, 1, 2, 3, 4, 0];
        let mask = [true, false, true, true, true, false];
        let host = readback::to_vec(&logits);
        let expected = (0..b * s)
            .filter(|&i| mask[i])
            .filter(|&i| crate::model::sample::argmax(&host[i * v..(i + 1) * v]) == targets[i])
            .count();
        // Every target ranked first once, to see hits as well as misses.
        let mut forced = host.clone();
        forced[2 * v + 2] = 10.0;
        let logits2: Logits<Cpu> = dev.tensor_from_vec(forced, (b, s, v));
        let y = dev.tensor_from_vec(targets, (b, s));
        let (w, n) = mask_weights(&dev, &mask, (b, s));
        let got = readback::scalar(&correct_tokens(&logits, &y, &w, n));
        assert_eq!(got.round() as usize, expected);
        let got2 = readback::scalar(&correct_tokens(&logits2, &y, &w, n));
        let expected2 =
            expected + (crate::model::sample::argmax(&host[2 * v..3 * v]) != 2) as usize;
        assert_eq!(got2.round() as usize, expected2);
    }

    /// The SFT loss of one conversation whose targets may be altered at chosen positions.
    fn loss_with(
        model: &dyn LanguageModel<Cpu>,
        b: &Batch,
        alter: impl Fn(usize, bool) -> bool,
    ) -> f32 {
        let dev = Cpu::default();
        let targets: Vec<usize> = b
            .targets
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                if alter(i, b.mask[i]) {
                    (t + 1) % 100
                } else {
                    t
                }
            })
            .collect();
        let x = dev.tensor_from_vec(b.inputs.clone(), (b.batch, b.seq));
        let y = dev.tensor_from_vec(targets, (b.batch, b.seq));
        let (w, _) = mask_weights(&dev, &b.mask, (b.batch, b.seq));
        masked_cross_entropy(model.logits(x), y, w).array()
    }

    #[test]
    fn prompt_tokens_carry_no_loss_and_answer_tokens_do() {
        let tok =
            Tokenizer::train(TokenizerKind::Char, &["中国的首都是哪里?北京。你好"], 64).unwrap();
        let model = build_model(
            &model_config("nano", tok.vocab_size()).unwrap(),
            &Cpu::default(),
            1,
        )
        .unwrap();
        let conv = [
            Message {
                role: Role::User,
                content: "中国的首都是哪里?".into(),
            },
            Message {
                role: Role::Assistant,
                content: "北京。".into(),
            },
        ];
        let enc = encode_chat(&tok, &conv);
        let ex = Example {
            ids: enc.ids,
            loss_mask: enc.loss_mask,
        };
        let b = pad_examples(&[&ex], 0);
        let base = loss_with(model.as_ref(), &b, |_, _| false);
        // Changing every prompt target leaves the loss exactly as it was...
        assert_eq!(base, loss_with(model.as_ref(), &b, |_, counted| !counted));
        // ...while changing one answer target changes it.
        let first_answer = b.mask.iter().position(|&m| m).unwrap();
        assert_ne!(
            base,
            loss_with(model.as_ref(), &b, |i, _| i == first_answer)
        );
        // The counted positions are the answer and its end-of-turn token only.
        assert_eq!(
            b.mask.iter().filter(|&&m| m).count(),
            "北京。".chars().count() + 1
        );
    }
}
