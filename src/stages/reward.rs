//! The reward model: the transformer with a scalar head read at the last token of the
//! answer, trained on preference pairs with the Bradley–Terry loss −log σ(r_chosen − r_rejected),
//! and on unpaired thumbs-up/down feedback (opposite labels for one prompt are paired; the
//! rest get a logistic loss on the reward itself).

use super::StageEnv;
use crate::data::PreferenceRecord;
use crate::eval::preference::{pad_rows, pair_rewards, rewards, split_records, Labelled, Pair};
use crate::model::{Backend, LanguageModel};
use crate::tokenizer::Special;
use crate::train::trainer::{Metrics, Objective, StepContext, StepOutput};
use anyhow::{bail, Result};
use dfdx::prelude::*;
use dfdx::tensor::Gradients;
use rand::Rng;

/// Rewards of a batch of sequences, read at each one's last token.
pub fn rewards_traced<D: Backend>(
    model: &dyn LanguageModel<D>,
    rows: &[&[u32]],
    pad: u32,
    grads: Gradients<f32, D>,
) -> Tensor<(usize,), f32, D, OwnedTape<f32, D>> {
    let dev = model.device();
    let (flat, seq, last) = pad_rows(rows, pad);
    let x = dev.tensor_from_vec(flat, (rows.len(), seq));
    let idx = dev.tensor_from_vec(last, (rows.len(),));
    model.scores_traced(x, grads).select(idx)
}

/// −log σ(x), averaged: Bradley–Terry on margins, or the logistic loss on labelled rewards
/// (with x = ±r).
pub fn neg_log_sigmoid_mean<D: Backend, T: Tape<f32, D>>(
    x: Tensor<(usize,), f32, D, T>,
) -> Tensor<Rank0, f32, D, T> {
    let n = x.shape().0;
    let ones = x.device().ones_like(&(n,));
    binary_cross_entropy_with_logits_loss(x, ones)
}

pub struct Reward<D: Backend> {
    train: (Vec<Pair>, Vec<Labelled>),
    val: (Vec<Pair>, Vec<Labelled>),
    batch: usize,
    pad: u32,
    dev: D,
}

impl<D: Backend> Reward<D> {
    pub fn new(
        env: &StageEnv<D>,
        train: &[PreferenceRecord],
        val: &[PreferenceRecord],
    ) -> Result<Self> {
        let limit = env.block_size;
        let train = split_records(env.tokenizer, train, limit);
        if train.0.is_empty() && train.1.is_empty() {
            bail!("stage `{}`: no preference records", env.stage.name);
        }
        let val = split_records(env.tokenizer, val, limit);
        println!(
            "[{}] {} training pairs + {} unpaired labels; {} validation pairs + {} unpaired",
            env.stage.name,
            train.0.len(),
            train.1.len(),
            val.0.len(),
            val.1.len()
        );
        Ok(Self {
            train,
            val,
            batch: env.stage.batch_size,
            pad: env.tokenizer.special(Special::Pad),
            dev: env.dev.clone(),
        })
    }
}

/// Accuracy, margin and reward statistics of a set of pairs (no gradients).
fn pair_metrics<D: Backend>(
    model: &dyn LanguageModel<D>,
    pairs: &[Pair],
    labelled: &[Labelled],
    pad: u32,
    prefix: &str,
    batch: usize,
) -> Metrics {
    let (mut correct, mut margin, mut all) = (0usize, 0f64, Vec::new());
    for (chosen, rejected) in pair_rewards(model, pairs, pad, batch) {
        for (a, b) in chosen.iter().zip(&rejected) {
            correct += (a > b) as usize;
            margin += (a - b) as f64;
        }
        all.extend(chosen.iter().chain(&rejected).map(|&x| x as f64));
    }
    let mut label_correct = 0;
    for chunk in labelled.chunks(batch.max(1)) {
        let rows: Vec<&[u32]> = chunk.iter().map(|l| l.ids.as_slice()).collect();
        let r = rewards(model, &rows, pad);
        label_correct += r
            .iter()
            .zip(chunk)
            .filter(|(r, l)| (**r > 0.0) == l.label)
            .count();
        all.extend(r.iter().map(|&x| x as f64));
    }
    let mut out = Vec::new();
    if !pairs.is_empty() {
        out.push((
            format!("{prefix}accuracy"),
            correct as f64 / pairs.len() as f64,
        ));
        out.push((format!("{prefix}margin"), margin / pairs.len() as f64));
    }
    if !labelled.is_empty() {
        out.push((
            format!("{prefix}label_accuracy"),
            label_correct as f64 / labelled.len() as f64,
        ));
    }
    if !all.is_empty() {
        out.push((
            format!("{prefix}mean_reward"),
            all.iter().sum::<f64>() / all.len() as f64,
        ));
        out.push((
            format!("{prefix}min_reward"),
            all.iter().cloned().fold(f64::INFINITY, f64::min),
        ));
        out.push((
            format!("{prefix}max_reward"),
            all.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        ));
    }
    out
}

impl<D: Backend> Objective<D> for Reward<D> {
    fn step(&mut self, ctx: &mut StepContext<'_, D>) -> Result<StepOutput> {
        let (pairs, labelled) = &self.train;
        let mut grads = Gradients::leaky();
        let (mut loss_sum, mut tokens, mut metrics) = (0.0, 0usize, Vec::new());
        if !pairs.is_empty() {
            let pick: Vec<&Pair> = (0..self.batch)
                .map(|_| &pairs[ctx.rng.gen_range(0..pairs.len())])
                .collect();
            let rows: Vec<&[u32]> = pick
                .iter()
                .map(|p| p.chosen.as_slice())
                .chain(pick.iter().map(|p| p.rejected.as_slice()))
                .collect();
            tokens += rows.iter().map(|r| r.len()).sum::<usize>();
            let r = rewards_traced(ctx.model, &rows, self.pad, grads);
            let b = pick.len();
            let (r, tape) = r.split_tape();
            let values = r.as_vec();
            let chosen = r.clone().put_tape(tape).slice((0..b,));
            let rejected = r.retaped::<OwnedTape<f32, D>>().slice((b..2 * b,));
            let loss = neg_log_sigmoid_mean(chosen - rejected);
            loss_sum += loss.retaped::<NoneTape>().as_vec()[0] as f64;
            grads = loss.backward();
            let (c, rj) = values.split_at(b);
            let acc = c.iter().zip(rj).filter(|(a, b)| a > b).count() as f64 / b as f64;
            let margin = c.iter().zip(rj).map(|(a, b)| (a - b) as f64).sum::<f64>() / b as f64;
            metrics.push(("accuracy".to_string(), acc));
            metrics.push(("margin".to_string(), margin));
            metrics.push((
                "mean_reward".to_string(),
                values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64,
            ));
            metrics.push((
                "min_reward".to_string(),
                values.iter().cloned().fold(f32::INFINITY, f32::min) as f64,
            ));
            metrics.push((
                "max_reward".to_string(),
                values.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64,
            ));
        }
        if !labelled.is_empty() {
            let pick: Vec<&Labelled> = (0..self.batch)
                .map(|_| &labelled[ctx.rng.gen_range(0..labelled.len())])
                .collect();
            let rows: Vec<&[u32]> = pick.iter().map(|l| l.ids.as_slice()).collect();
            tokens += rows.iter().map(|r| r.len()).sum::<usize>();
            let r = rewards_traced(ctx.model, &rows, self.pad, grads);
            // Logistic loss: −log σ(r) for thumbs up, −log σ(−r) for thumbs down.
            let signs = self.dev.tensor_from_vec(
                pick.iter()
                    .map(|l| if l.label { 1.0 } else { -1.0 })
                    .collect(),
                (pick.len(),),
            );
            let loss = neg_log_sigmoid_mean(r * signs);
            loss_sum += loss.retaped::<NoneTape>().as_vec()[0] as f64;
            grads = loss.backward();
        }
        ctx.apply(grads)?;
        Ok(StepOutput {
            loss: loss_sum,
            tokens: tokens as u64,
            metrics,
        })
    }

    fn evaluate(&mut self, model: &dyn LanguageModel<D>) -> Result<Metrics> {
        let (pairs, labelled) = &self.val;
        Ok(pair_metrics(
            model, pairs, labelled, self.pad, "val/", self.batch,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bradley_terry_loss_matches_hand_computed_values() {
        let dev = Cpu::default();
        // −log σ(x) for x = 0, 2, −1: ln 2, ln(1 + e^−2), ln(1 + e).
        let x = dev.tensor_from_vec(vec![0.0f32, 2.0, -1.0], (3,));
        let expected = (2f64.ln() + (1.0 + (-2f64).exp()).ln() + (1.0 + 1f64.exp()).ln()) / 3.0;
        let got = neg_log_sigmoid_mean(x).array() as f64;
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    }
}
