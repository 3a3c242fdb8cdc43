//! Rollouts shared by PPO and GRPO: sample completions with the KV cache, lay prompt +
//! completion out as a padded batch whose mask marks the completion tokens, score them.

use super::RlhfData;
use crate::data::batches::{pad_examples, Batch, Example};
use crate::data::PromptExample;
use crate::eval::overlap::char_f1;
use crate::eval::preference::rewards;
use crate::infer::{Ask, Prompt};
use crate::model::sample::SampleOptions;
use crate::model::{Backend, LanguageModel};
use crate::spec::Checker;
use crate::stages::records::Split;
use crate::tokenizer::Tokenizer;
use crate::train::loss::token_logprobs;
use crate::util::readback;
use dfdx::prelude::*;

/// One sampled completion of a prompt.
#[derive(Clone, Debug)]
pub struct Sample {
    pub prompt: Vec<u32>,
    pub completion: Vec<u32>,
    pub text: String,
    pub reference: Option<String>,
}

impl Sample {
    pub fn example(&self) -> Example {
        let ids: Vec<u32> = self
            .prompt
            .iter()
            .chain(&self.completion)
            .copied()
            .collect();
        let loss_mask = (0..ids.len()).map(|i| i >= self.prompt.len()).collect();
        Example { ids, loss_mask }
    }
}

/// The prompts a rollout stage samples from, split into training and validation.
pub fn load_prompts(prompts: &std::path::Path, split: &Split) -> anyhow::Result<RlhfData> {
    let prompts = [prompts.to_path_buf()];
    let (train, val) = split.read(&prompts, "prompts", crate::data::read_prompts)?;
    Ok(RlhfData::Prompts { train, val })
}

/// `n` completions of each prompt (a group per prompt, in order), all sampled together, each
/// with its own random stream drawn from `rng`.
pub fn sample_groups<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    prompts: &[&PromptExample],
    n: usize,
    opts: &SampleOptions,
    rng: &mut impl rand::Rng,
) -> Vec<Sample> {
    let asked: Vec<(&PromptExample, Prompt)> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat((*p, Prompt::Chat(p.prompt.clone()))).take(n))
        .collect();
    let chat: Vec<Prompt> = asked.iter().map(|(_, c)| c.clone()).collect();
    let seeds: Vec<u64> = chat.iter().map(|_| rng.gen()).collect();
    let ask = Ask::new(model, tok);
    let requests = ask.requests(&chat, opts, &seeds);
    let completions = ask.run(requests.clone());
    asked
        .iter()
        .zip(requests)
        .zip(completions)
        .map(|(((p, _), request), completion)| Sample {
            text: tok.decode(&completion),
            // An empty answer (no room to generate) still ends, so it has a token to score.
            completion: if completion.is_empty() {
                vec![request.opts.stop[0]]
            } else {
                completion
            },
            prompt: request.prompt,
            reference: p.reference.clone(),
        })
        .collect()
}

/// A verifiable reward: 1 when the answer matches the reference, else 0; or, for
/// `char_f1`, the share of characters the two have in common.
pub fn check(checker: Checker, answer: &str, reference: Option<&str>) -> f64 {
    let Some(reference) = reference else {
        return 0.0;
    };
    let (a, r) = (answer.trim(), reference.trim());
    let ok = match checker {
        Checker::Exact => a == r,
        Checker::Contains => !r.is_empty() && a.contains(r),
        Checker::CharF1 => return char_f1(a, r),
    };
    ok as u8 as f64
}

/// Sequences a reward model scores together.
const SCORE_CHUNK: usize = 8;

/// Scores of samples from a reward model (read at each sequence's last token). They are
/// scored shortest first, in chunks of similar length: a chunk is padded to its longest
/// sequence, and one answer that ran on to the token limit padded all 16 rows of a PPO
/// rollout to its length (the scoring took a third of the rollout).
pub fn reward_model_scores<D: Backend>(
    rm: &dyn LanguageModel<D>,
    samples: &[Sample],
    pad: u32,
) -> Vec<f64> {
    let seqs: Vec<Vec<u32>> = samples.iter().map(|s| s.example().ids).collect();
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by_key(|&i| seqs[i].len());
    let mut out = vec![0.0; seqs.len()];
    for chunk in order.chunks(SCORE_CHUNK) {
        let rows: Vec<&[u32]> = chunk.iter().map(|&i| seqs[i].as_slice()).collect();
        for (&i, score) in chunk.iter().zip(rewards(rm, &rows, pad)) {
            out[i] = score as f64;
        }
    }
    out
}

/// A padded batch of samples and its tensors.
pub struct RolloutBatch<D: Backend> {
    pub batch: Batch,
    pub inputs: Tensor<(usize, usize), usize, D>,
    pub targets: Tensor<(usize, usize), usize, D>,
    pub mask: Tensor<(usize, usize), f32, D>,
}

pub fn rollout_batch<D: Backend>(dev: &D, samples: &[&Sample], pad: u32) -> RolloutBatch<D> {
    let examples: Vec<Example> = samples.iter().map(|s| s.example()).collect();
    let refs: Vec<&Example> = examples.iter().collect();
    let batch = pad_examples(&refs, pad);
    let shape = (batch.batch, batch.seq);
    RolloutBatch {
        inputs: dev.tensor_from_vec(batch.inputs.clone(), shape),
        targets: dev.tensor_from_vec(batch.targets.clone(), shape),
        mask: dev.tensor_from_vec(batch.mask.iter().map(|&m| m as u8 as f32).collect(), shape),
        batch,
    }
}

/// Per-position log-probabilities of the targets `(batch * seq)` without gradients.
pub fn logprobs_of<D: Backend>(model: &dyn LanguageModel<D>, rb: &RolloutBatch<D>) -> Vec<f32> {
    readback::to_vec(&token_logprobs(
        model.logits(rb.inputs.clone()),
        rb.targets.clone(),
    ))
}

/// Mean entropy of the policy over completion positions (over the tokenizer's ids, not the
/// vocabulary's padding), computed on the device: one scalar read.
pub fn mean_entropy<D: Backend>(
    model: &dyn LanguageModel<D>,
    rb: &RolloutBatch<D>,
    vocab: usize,
) -> f64 {
    let logits = model.logits(rb.inputs.clone());
    let (b, s, v) = *logits.shape();
    let lp = logits
        .log_softmax::<Axis<2>>()
        .slice((0..b, 0..s, 0..vocab.min(v)));
    let entropy = (lp.clone().exp() * lp)
        .sum::<(usize, usize), Axis<2>>()
        .negate();
    let total = readback::scalar(&(entropy * rb.mask.clone()).sum::<Rank0, _>());
    let n = rb.batch.mask.iter().filter(|&&m| m).count();
    total as f64 / n.max(1) as f64
}

/// The values at masked positions of each row, in order.
pub fn masked_rows(values: &[f32], b: &Batch) -> Vec<Vec<f64>> {
    (0..b.batch)
        .map(|r| {
            (r * b.seq..(r + 1) * b.seq)
                .filter(|&i| b.mask[i])
                .map(|i| values[i] as f64)
                .collect()
        })
        .collect()
}

/// Puts per-row values back at the masked positions of a `(batch * seq)` layout.
pub fn scatter_rows(rows: &[Vec<f64>], b: &Batch) -> Vec<f32> {
    let mut out = vec![0.0f32; b.batch * b.seq];
    for (r, row) in rows.iter().enumerate() {
        let positions = (r * b.seq..(r + 1) * b.seq).filter(|&i| b.mask[i]);
        for (i, v) in positions.zip(row) {
            out[i] = *v as f32;
        }
    }
    out
}

pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

pub fn std(xs: &[f64]) -> f64 {
    let m = mean(xs);
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len().max(1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkers_compare_trimmed_answers() {
        assert_eq!(check(Checker::Exact, " 北京。 ", Some("北京。")), 1.0);
        assert_eq!(check(Checker::Exact, "北京", Some("北京。")), 0.0);
        assert_eq!(check(Checker::Contains, "答案是北京。", Some("北京")), 1.0);
        assert_eq!(check(Checker::Contains, "上海", None), 0.0);
        assert!((check(Checker::CharF1, "床前看月光", Some("床前明月光")) - 0.8).abs() < 1e-12);
        assert_eq!(check(Checker::CharF1, "床前看月光", None), 0.0);
    }
}
