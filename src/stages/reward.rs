//! The reward model: the transformer with a scalar head read at the last token of the
//! answer, trained on preference pairs with the Bradley–Terry loss −log σ(r_chosen − r_rejected),
//! and on unpaired thumbs-up/down feedback (opposite labels for one prompt are paired; the
//! rest get a logistic loss on the reward itself).
//!
//! The pairs of one prompt (the K·(K−1)/2 pairs a ranking of K answers implies) are drawn
//! together into a batch, each answer scored once: InstructGPT found that shuffling a
//! ranking's correlated pairs apart makes the reward model overfit. With a judge (the clean
//! taste behind simulated raters) it also reports how often it orders held-out pairs as the
//! judge does, besides how often it agrees with the noisy labels.

use super::StageEnv;
use crate::data::PreferenceRecord;
use crate::eval::judge::Judge;
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
    /// The training pairs' indices by prompt, in order of first appearance.
    rankings: Vec<Vec<usize>>,
    val: (Vec<Pair>, Vec<Labelled>),
    /// For each validation pair, whether the judge prefers its chosen answer (`None` when the
    /// judge scores both alike or has no opinion, or when there is no judge).
    judge_says: Vec<Option<bool>>,
    batch: usize,
    pad: u32,
    dev: D,
}

/// Indices of `pairs` grouped by prompt, groups in order of first appearance.
fn rankings(pairs: &[Pair]) -> Vec<Vec<usize>> {
    let mut index: std::collections::HashMap<&str, usize> = Default::default();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        let g = *index.entry(p.words.prompt.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

/// Whether `judge` prefers each pair's chosen answer (`None` on a tie or no opinion).
fn judge_verdicts(judge: Option<&Judge>, pairs: &[Pair]) -> Vec<Option<bool>> {
    pairs
        .iter()
        .map(|p| {
            let w = &p.words;
            let judge = judge?;
            let (c, r) = (
                judge.score(&w.prompt, &w.chosen)?,
                judge.score(&w.prompt, &w.rejected)?,
            );
            (c != r).then_some(c > r)
        })
        .collect()
}

impl<D: Backend> Reward<D> {
    /// `judge`: the taste the (possibly noisy) ratings stand for, to score held-out pairs
    /// against as well.
    pub fn new(
        env: &StageEnv<D>,
        train: &[PreferenceRecord],
        val: &[PreferenceRecord],
        judge: Option<&Judge>,
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
            rankings: rankings(&train.0),
            judge_says: judge_verdicts(judge, &val.0),
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
    judge_says: &[Option<bool>],
    pad: u32,
    prefix: &str,
    batch: usize,
) -> Metrics {
    let (mut correct, mut margin, mut all) = (0usize, 0f64, Vec::new());
    let (mut as_judge, mut judged) = (0usize, 0usize);
    let scored = pair_rewards(model, pairs, pad, batch);
    let ordered = scored.iter().flat_map(|(c, r)| c.iter().zip(r));
    for ((a, b), says) in ordered.zip(judge_says.iter().chain(std::iter::repeat(&None))) {
        correct += (a > b) as usize;
        margin += (a - b) as f64;
        if let Some(chosen_better) = says {
            judged += 1;
            as_judge += ((a > b) == *chosen_better) as usize;
        }
    }
    for (chosen, rejected) in &scored {
        all.extend(chosen.iter().chain(rejected).map(|&x| x as f64));
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
    if judged > 0 {
        // Against the clean judge rather than the (noisy) labels.
        out.push((
            format!("{prefix}judge_accuracy"),
            as_judge as f64 / judged as f64,
        ));
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

impl<D: Backend> Reward<D> {
    /// Whole rankings (all the pairs of a prompt), drawn at random until the batch holds at
    /// least `batch` pairs. Data with one pair per prompt draws exactly `batch` pairs.
    fn pick_rankings(&self, rng: &mut impl Rng) -> Vec<&Pair> {
        let mut pick = Vec::with_capacity(self.batch);
        while pick.len() < self.batch {
            let ranking = &self.rankings[rng.gen_range(0..self.rankings.len())];
            pick.extend(ranking.iter().map(|&i| &self.train.0[i]));
        }
        pick
    }
}

/// The distinct answers of `pairs` (chosen ones first, then rejected ones, so that pairs
/// without shared answers keep the plain layout), and where each pair's two answers sit.
fn unique_rows<'p>(pairs: &[&'p Pair]) -> (Vec<&'p [u32]>, Vec<usize>, Vec<usize>) {
    let mut rows: Vec<&[u32]> = Vec::new();
    let mut at = std::collections::HashMap::new();
    let mut place = |ids: &'p [u32]| {
        *at.entry(ids).or_insert_with(|| {
            rows.push(ids);
            rows.len() - 1
        })
    };
    let chosen: Vec<usize> = pairs.iter().map(|p| place(&p.chosen)).collect();
    let rejected: Vec<usize> = pairs.iter().map(|p| place(&p.rejected)).collect();
    (rows, chosen, rejected)
}

impl<D: Backend> Objective<D> for Reward<D> {
    fn step(&mut self, ctx: &mut StepContext<'_, D>) -> Result<StepOutput> {
        let (pairs, labelled) = &self.train;
        let mut grads = Gradients::leaky();
        let (mut loss_sum, mut tokens, mut metrics) = (0.0, 0usize, Vec::new());
        if !pairs.is_empty() {
            let pick = self.pick_rankings(ctx.rng);
            let (rows, chosen_at, rejected_at) = unique_rows(&pick);
            tokens += rows.iter().map(|r| r.len()).sum::<usize>();
            let r = rewards_traced(ctx.model, &rows, self.pad, grads);
            let b = pick.len();
            let (r, tape) = r.split_tape();
            let scores = crate::util::readback::to_vec(&r);
            let index = |at: &[usize]| self.dev.tensor_from_vec(at.to_vec(), (at.len(),));
            let chosen = r.clone().put_tape(tape).gather(index(&chosen_at));
            let rejected = r.retaped::<OwnedTape<f32, D>>().gather(index(&rejected_at));
            let loss = neg_log_sigmoid_mean(chosen - rejected);
            loss_sum += crate::util::readback::scalar(&loss) as f64;
            grads = loss.backward();
            let c: Vec<f32> = chosen_at.iter().map(|&i| scores[i]).collect();
            let rj: Vec<f32> = rejected_at.iter().map(|&i| scores[i]).collect();
            let values: Vec<f32> = c.iter().chain(&rj).copied().collect();
            let acc = c.iter().zip(&rj).filter(|(a, b)| a > b).count() as f64 / b as f64;
            let margin = c.iter().zip(&rj).map(|(a, b)| (a - b) as f64).sum::<f64>() / b as f64;
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
            loss_sum += crate::util::readback::scalar(&loss) as f64;
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
            model,
            pairs,
            labelled,
            &self.judge_says,
            self.pad,
            "val/",
            self.batch,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(prompt: &str, chosen: &[u32], rejected: &[u32]) -> Pair {
        Pair {
            chosen: chosen.to_vec(),
            rejected: rejected.to_vec(),
            words: crate::eval::preference::PairWords {
                prompt: prompt.into(),
                chosen: format!("{chosen:?}"),
                rejected: format!("{rejected:?}"),
            },
        }
    }

    #[test]
    fn a_rankings_pairs_are_grouped_and_each_answer_is_scored_once() {
        // A ranking of answers 1 > 2 > 3 to prompt a (three pairs), one pair for prompt b.
        let pairs = [
            pair("a", &[1], &[2]),
            pair("b", &[7], &[8]),
            pair("a", &[1], &[3]),
            pair("a", &[2], &[3]),
        ];
        assert_eq!(rankings(&pairs), vec![vec![0, 2, 3], vec![1]]);
        let ranking: Vec<&Pair> = [0, 2, 3].iter().map(|&i| &pairs[i]).collect();
        let (rows, chosen, rejected) = unique_rows(&ranking);
        assert_eq!(rows, vec![&[1u32][..], &[2], &[3]]);
        assert_eq!((chosen, rejected), (vec![0, 0, 1], vec![1, 2, 2]));
        // Pairs that share no answer keep the plain layout: chosen rows, then rejected rows.
        let apart = [&pairs[0], &pairs[1]];
        let (rows, chosen, rejected) = unique_rows(&apart);
        assert_eq!(rows, vec![&[1u32][..], &[7], &[2], &[8]]);
        assert_eq!((chosen, rejected), (vec![0, 1], vec![2, 3]));
    }

    #[test]
    fn the_judge_says_which_answer_of_a_pair_it_prefers_and_abstains_on_ties() {
        let spec = crate::spec::JudgeSpec {
            prefer: vec!["跑步".into()],
            ..Default::default()
        };
        let judge = Judge::new("me", &spec).unwrap();
        let words = |chosen: &str, rejected: &str| Pair {
            chosen: vec![],
            rejected: vec![],
            words: crate::eval::preference::PairWords {
                prompt: "你周末做什么?".into(),
                chosen: chosen.into(),
                rejected: rejected.into(),
            },
        };
        let pairs = [
            words("我喜欢跑步。", "我喜欢画画。"),
            words("我喜欢画画。", "我喜欢跑步。"),
            words("我喜欢画画。", "我喜欢唱歌。"),
        ];
        assert_eq!(
            judge_verdicts(Some(&judge), &pairs),
            vec![Some(true), Some(false), None]
        );
        assert_eq!(judge_verdicts(None, &pairs), vec![None, None, None]);
    }

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
