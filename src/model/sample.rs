//! Choosing the next token from logits: temperature, top-k, top-p, greedy. Generation itself
//! (prompts, the cache, stopping) is `generate.rs`.

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
