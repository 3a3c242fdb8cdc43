//! Direct Preference Optimisation: −log σ(β·[(log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r))])
//! with the reference the frozen `from` model (its log-probabilities are computed once).

use super::{against_reference, read_records, RlhfData, RlhfMethod};
use crate::data::batches::{pad_examples, Example};
use crate::data::chat::encode_chat;
use crate::data::pairing::pair_feedback;
use crate::data::{Message, PreferencePair, PreferenceRecord};
use crate::eval::logprob::answer_logprobs;
use crate::model::{Backend, LanguageModel};
use crate::spec::methods::dpo::DpoKeys;
use crate::stages::env::{Built, StageEnv};
use crate::stages::records::Split;
use crate::stages::reward::neg_log_sigmoid_mean;
use crate::tokenizer::{Special, Tokenizer};
use crate::train::loss::token_logprobs;
use crate::train::trainer::{Metrics, Objective, StepContext, StepOutput};
use anyhow::{bail, Result};
use dfdx::prelude::*;
use dfdx::tensor::Gradients;
use rand::Rng;

pub struct DpoPair {
    pub chosen: Example,
    pub rejected: Example,
    /// Reference log-probabilities of chosen and rejected.
    pub ref_logps: (f64, f64),
}

fn encode(tok: &Tokenizer, p: &PreferencePair, limit: usize, chosen: bool) -> Example {
    let answer = if chosen { &p.chosen } else { &p.rejected };
    encode_answer(tok, &p.prompt, answer, limit)
}

/// A prompt and its answer through the chat template, the answer's tokens in the loss mask;
/// past `limit` tokens the start of the prompt is cut, never the answer's end (KTO too).
pub fn encode_answer(
    tok: &Tokenizer,
    prompt: &[Message],
    answer: &[Message],
    limit: usize,
) -> Example {
    let all: Vec<_> = prompt.iter().chain(answer).cloned().collect();
    let enc = encode_chat(tok, &all);
    let mut ex = Example {
        ids: enc.ids,
        loss_mask: enc.loss_mask,
    };
    if ex.ids.len() > limit {
        let cut = ex.ids.len() - limit;
        ex.ids.drain(..cut);
        ex.loss_mask.drain(..cut);
    }
    ex
}

/// Tokenised pairs with reference log-probabilities from `reference`.
pub fn prepare_pairs<D: Backend>(
    reference: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    records: &[PreferenceRecord],
    limit: usize,
) -> Vec<DpoPair> {
    let pad = tok.special(Special::Pad);
    // 👍/👎 lines pair up as the reward stage pairs them: opposite labels, same prompt.
    let (pairs, _) = pair_feedback(records);
    let pairs: Vec<(Example, Example)> = pairs
        .iter()
        .map(|p| (encode(tok, p, limit, true), encode(tok, p, limit, false)))
        .collect();
    let chosen: Vec<&Example> = pairs.iter().map(|p| &p.0).collect();
    let rejected: Vec<&Example> = pairs.iter().map(|p| &p.1).collect();
    let rc = answer_logprobs(reference, &chosen, pad);
    let rr = answer_logprobs(reference, &rejected, pad);
    pairs
        .into_iter()
        .zip(rc.into_iter().zip(rr))
        .map(|((chosen, rejected), ref_logps)| DpoPair {
            chosen,
            rejected,
            ref_logps,
        })
        .collect()
}

pub struct Dpo<D: Backend> {
    train: Vec<DpoPair>,
    val: Vec<DpoPair>,
    beta: f64,
    rpo_alpha: f64,
    batch: usize,
    pad: u32,
    dev: D,
}

/// β-scaled implicit rewards of chosen and rejected: β(log π − log π_ref).
fn implicit_rewards(beta: f64, pairs: &[&DpoPair], logps: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let b = pairs.len();
    let chosen = pairs
        .iter()
        .zip(&logps[..b])
        .map(|(p, lp)| beta * (lp - p.ref_logps.0))
        .collect();
    let rejected = pairs
        .iter()
        .zip(&logps[b..])
        .map(|(p, lp)| beta * (lp - p.ref_logps.1))
        .collect();
    (chosen, rejected)
}

fn reward_metrics(prefix: &str, chosen: &[f64], rejected: &[f64]) -> Metrics {
    let n = chosen.len().max(1) as f64;
    vec![
        (
            format!("{prefix}rewards/chosen"),
            chosen.iter().sum::<f64>() / n,
        ),
        (
            format!("{prefix}rewards/rejected"),
            rejected.iter().sum::<f64>() / n,
        ),
        (
            format!("{prefix}rewards/margins"),
            chosen.iter().zip(rejected).map(|(c, r)| c - r).sum::<f64>() / n,
        ),
        (
            format!("{prefix}rewards/accuracies"),
            chosen.iter().zip(rejected).filter(|(c, r)| c > r).count() as f64 / n,
        ),
    ]
}

/// The DPO loss of given log-probability tensors (exposed for the hand-computed test).
pub fn dpo_loss<D: Backend, T: Tape<f32, D>>(
    policy_chosen: Tensor<(usize,), f32, D, T>,
    policy_rejected: Tensor<(usize,), f32, D, T>,
    ref_margin: Tensor<(usize,), f32, D>,
    beta: f32,
) -> Tensor<Rank0, f32, D, T> {
    neg_log_sigmoid_mean((policy_chosen - policy_rejected - ref_margin) * beta)
}

/// RPO's extra term: the chosen answers' negative log-likelihood per answer token, from their
/// summed log-probabilities and how many answer tokens they have together.
pub fn chosen_nll<D: Backend, T: Tape<f32, D>>(
    policy_chosen: Tensor<(usize,), f32, D, T>,
    answer_tokens: usize,
) -> Tensor<Rank0, f32, D, T> {
    policy_chosen.sum::<Rank0, _>() * (-1.0 / answer_tokens.max(1) as f32)
}

impl<D: Backend> Dpo<D> {
    pub fn new(
        env: &StageEnv<D>,
        keys: &DpoKeys,
        reference: &dyn LanguageModel<D>,
        train: &[PreferenceRecord],
        val: &[PreferenceRecord],
    ) -> Result<Self> {
        let limit = env.block_size + 1;
        let train = prepare_pairs(reference, env.tokenizer, train, limit);
        if train.is_empty() {
            bail!(
                "stage `{}`: DPO needs {{\"prompt\",\"chosen\",\"rejected\"}} pairs, or 👍 and 👎 answers to the same prompts, in its data",
                env.stage.name
            );
        }
        let val = prepare_pairs(reference, env.tokenizer, val, limit);
        println!(
            "[{}] DPO on {} pairs ({} validation), beta {}",
            env.stage.name,
            train.len(),
            val.len(),
            keys.beta
        );
        Ok(Self {
            train,
            val,
            beta: keys.beta,
            rpo_alpha: keys.rpo_alpha,
            batch: env.stage.batch_size,
            pad: env.tokenizer.special(Special::Pad),
            dev: env.dev.clone(),
        })
    }
}

impl<D: Backend> Objective<D> for Dpo<D> {
    fn step(&mut self, ctx: &mut StepContext<'_, D>) -> Result<StepOutput> {
        let pick: Vec<&DpoPair> = (0..self.batch)
            .map(|_| &self.train[ctx.rng.gen_range(0..self.train.len())])
            .collect();
        let rows: Vec<&Example> = pick
            .iter()
            .map(|p| &p.chosen)
            .chain(pick.iter().map(|p| &p.rejected))
            .collect();
        let b = pad_examples(&rows, self.pad);
        let x = self.dev.tensor_from_vec(b.inputs.clone(), (b.batch, b.seq));
        let y = self
            .dev
            .tensor_from_vec(b.targets.clone(), (b.batch, b.seq));
        let mask = self.dev.tensor_from_vec(
            b.mask.iter().map(|&m| m as u8 as f32).collect(),
            (b.batch, b.seq),
        );
        let logps = (token_logprobs(ctx.model.logits_traced(x, Gradients::leaky()), y) * mask)
            .sum::<(usize,), Axis<1>>();
        let (logps, tape) = logps.split_tape();
        let values: Vec<f64> = crate::util::readback::to_vec(&logps)
            .iter()
            .map(|&v| v as f64)
            .collect();
        let n = pick.len();
        // The NLL term reads the chosen rows through a third branch of the same tape.
        let nll = (self.rpo_alpha > 0.0).then(|| {
            let answer_tokens = b.mask[..n * b.seq].iter().filter(|&&m| m).count();
            chosen_nll(
                logps.retaped::<OwnedTape<f32, D>>().slice((0..n,)),
                answer_tokens,
            )
        });
        let chosen = logps.clone().put_tape(tape).slice((0..n,));
        let rejected = logps.retaped::<OwnedTape<f32, D>>().slice((n..2 * n,));
        let ref_margin = self.dev.tensor_from_vec(
            pick.iter()
                .map(|p| (p.ref_logps.0 - p.ref_logps.1) as f32)
                .collect(),
            (n,),
        );
        let mut loss = dpo_loss(chosen, rejected, ref_margin, self.beta as f32);
        let (rc, rr) = implicit_rewards(self.beta, &pick, &values);
        let mut metrics = reward_metrics("", &rc, &rr);
        if let Some(nll) = nll {
            metrics.push(("nll".into(), crate::util::readback::scalar(&nll) as f64));
            loss = loss + nll * self.rpo_alpha as f32;
        }
        let loss_value = crate::util::readback::scalar(&loss) as f64;
        ctx.apply(loss.backward())?;
        Ok(StepOutput {
            loss: loss_value,
            tokens: (b.batch * b.seq) as u64,
            metrics,
        })
    }

    fn evaluate(&mut self, model: &dyn LanguageModel<D>) -> Result<Metrics> {
        if self.val.is_empty() {
            return Ok(vec![]);
        }
        let pairs: Vec<&DpoPair> = self.val.iter().collect();
        let rows: Vec<&Example> = pairs
            .iter()
            .map(|p| &p.chosen)
            .chain(pairs.iter().map(|p| &p.rejected))
            .collect();
        let logps = answer_logprobs(model, &rows, self.pad);
        let (rc, rr) = implicit_rewards(self.beta, &pairs, &logps);
        let mut m = reward_metrics("val/", &rc, &rr);
        let n = pairs.len();
        let pref = logps[..n]
            .iter()
            .zip(&logps[n..])
            .filter(|(c, r)| c > r)
            .count() as f64
            / n as f64;
        m.push(("val/preference_accuracy".into(), pref));
        Ok(m)
    }
}

impl RlhfMethod for DpoKeys {
    fn load_data(&self, split: &Split) -> Result<RlhfData> {
        read_records(split, crate::data::read_preferences)
    }

    fn objective<'a, D: Backend>(
        &'a self,
        env: &'a StageEnv<D>,
        model: &mut dyn LanguageModel<D>,
        data: &'a RlhfData,
    ) -> Result<Built<'a, D>> {
        against_reference(env, model, data, |reference, train, val| {
            Dpo::new(env, self, reference, train, val)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpo_loss_matches_a_hand_computed_value() {
        let dev = Cpu::default();
        // policy margin (−1) − (−3) = 2, reference margin 0.5, β = 0.1: z = 0.15, loss = ln(1 + e^−0.15).
        let pc = dev.tensor_from_vec(vec![-1.0f32], (1,));
        let pr = dev.tensor_from_vec(vec![-3.0f32], (1,));
        let rm = dev.tensor_from_vec(vec![0.5f32], (1,));
        let got = dpo_loss(pc, pr, rm, 0.1).array() as f64;
        let expected = (1.0 + (-0.15f64).exp()).ln();
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    }

    #[test]
    fn chosen_nll_is_per_answer_token() {
        let dev = Cpu::default();
        // Two chosen answers with summed log-probabilities −2 and −4 over 3 tokens in all.
        let pc = dev.tensor_from_vec(vec![-2.0f32, -4.0], (2,));
        assert!((chosen_nll(pc, 3).array() - 2.0).abs() < 1e-6);
    }
}
