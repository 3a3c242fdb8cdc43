//! Sampling from a model: temperature, top-k, top-p, greedy; with or without a KV cache.

use super::lm::{KvCache, LanguageModel};
use super::Backend;
use dfdx::prelude::*;
use rand::Rng;

#[derive(Clone, Debug, PartialEq)]
pub struct SampleOptions {
    pub max_new_tokens: usize,
    /// 0 means greedy.
    pub temperature: f32,
    /// 0 means no top-k filter.
    pub top_k: usize,
    pub top_p: f32,
    /// Generation stops after any of these ids (which is kept in the output).
    pub stop: Vec<u32>,
    pub use_cache: bool,
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 64,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            stop: vec![],
            use_cache: true,
        }
    }
}

/// Picks the next id from one row of logits.
pub fn sample_next(logits: &[f32], opts: &SampleOptions, rng: &mut impl Rng) -> u32 {
    if opts.temperature <= 0.0 {
        return argmax(logits) as u32;
    }
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    if opts.top_k > 0 {
        idx.truncate(opts.top_k);
    }
    let max = logits[idx[0]];
    let mut probs: Vec<f32> = idx
        .iter()
        .map(|&i| ((logits[i] - max) / opts.temperature).exp())
        .collect();
    let total: f32 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    if opts.top_p < 1.0 {
        let mut cum = 0.0;
        let keep = probs
            .iter()
            .take_while(|&&p| {
                let before = cum;
                cum += p;
                before < opts.top_p
            })
            .count();
        probs.truncate(keep.max(1));
        idx.truncate(keep.max(1));
        let total: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
    }
    let mut r: f32 = rng.gen();
    for (p, &i) in probs.iter().zip(&idx) {
        if r < *p {
            return i as u32;
        }
        r -= p;
    }
    *idx.last().unwrap() as u32
}

pub fn argmax(xs: &[f32]) -> usize {
    xs.iter()
        .enumerate()
        .fold(0, |best, (i, &x)| if x > xs[best] { i } else { best })
}

/// Generates continuations of one prompt for `n` samples at once (a batch of identical
/// prompts, as GRPO and PPO rollouts need). Returns the new ids of each sample.
/// Logits of ids >= `vocab_limit` (bucket padding) are never sampled.
pub fn generate<D: Backend>(
    model: &dyn LanguageModel<D>,
    prompt: &[u32],
    n: usize,
    vocab_limit: usize,
    opts: &SampleOptions,
    rng: &mut impl Rng,
) -> Vec<Vec<u32>> {
    generate_with(model, prompt, n, vocab_limit, opts, rng, &mut |_| true)
}

/// [`generate`], calling `on_step` after each step with every sample's new id (`None` for a
/// sample that had already stopped); generation ends early when it returns false (a client
/// of `gptlab serve` went away).
pub fn generate_with<D: Backend>(
    model: &dyn LanguageModel<D>,
    prompt: &[u32],
    n: usize,
    vocab_limit: usize,
    opts: &SampleOptions,
    rng: &mut impl Rng,
    on_step: &mut dyn FnMut(&[Option<u32>]) -> bool,
) -> Vec<Vec<u32>> {
    let ctx = model.config().n_ctx;
    let dev = model.device();
    let mut seqs: Vec<Vec<u32>> = vec![prompt.to_vec(); n];
    let mut done = vec![false; n];
    let mut cache: KvCache<D> = Vec::new();
    let mut fed = 0; // how many positions of seqs are in the cache
    for _ in 0..opts.max_new_tokens {
        let len = seqs[0].len();
        // Beyond the context the cache cannot grow: recompute over the last `ctx` tokens.
        let window_start = len.saturating_sub(ctx);
        let (input_start, cached) = if opts.use_cache && window_start == 0 {
            (fed, true)
        } else {
            cache.clear();
            (window_start, false)
        };
        let width = len - input_start;
        let flat: Vec<usize> = seqs
            .iter()
            .flat_map(|s| s[input_start..].iter().map(|&t| t as usize))
            .collect();
        let tokens = dev.tensor_from_vec(flat, (n, width));
        let logits = if cached {
            model.logits_cached(tokens, &mut cache)
        } else {
            model.logits(tokens)
        };
        fed = if cached { len } else { 0 };
        let vocab = logits.shape().2;
        let last = logits.slice((.., width - 1.., ..)).as_vec();
        let mut step = vec![None; n];
        for (i, seq) in seqs.iter_mut().enumerate() {
            if done[i] {
                // Finished samples keep a placeholder so the batch stays rectangular.
                seq.push(*seq.last().unwrap());
                continue;
            }
            let row = &last[i * vocab..i * vocab + vocab_limit.min(vocab)];
            let next = sample_next(row, opts, rng);
            seq.push(next);
            step[i] = Some(next);
            if opts.stop.contains(&next) {
                done[i] = true;
            }
        }
        if !on_step(&step) || done.iter().all(|&d| d) {
            break;
        }
    }
    seqs.into_iter()
        .map(|s| {
            let new = &s[prompt.len()..];
            match new.iter().position(|t| opts.stop.contains(t)) {
                Some(p) => new[..=p].to_vec(),
                None => new.to_vec(),
            }
        })
        .collect()
}
