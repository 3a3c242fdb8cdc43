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
    let mut idx = ranked(logits, opts.top_k);
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

/// The ids of the `top_k` largest logits (all of them when `top_k` is 0), largest first, equal
/// logits in id order: the order a stable sort of all ids gives. Each id is sorted as one
/// integer key (the logit's bits, ordered, then the id), and with `top_k` only the top `k`
/// are sorted after selecting them: a comparison sort of all ids was a quarter of sampling.
fn ranked(logits: &[f32], top_k: usize) -> Vec<usize> {
    let mut keys: Vec<u64> = (logits.iter().enumerate())
        .map(|(id, &x)| (descending(x) as u64) << 32 | id as u64)
        .collect();
    if top_k > 0 && top_k < keys.len() {
        keys.select_nth_unstable(top_k - 1);
        keys.truncate(top_k);
    }
    keys.sort_unstable();
    keys.iter().map(|&k| (k & 0xffff_ffff) as usize).collect()
}

/// A key that sorts ascending as `x` sorts descending under `f32::total_cmp`.
fn descending(x: f32) -> u32 {
    let bits = x.to_bits();
    // total_cmp's order as unsigned integers: flip all bits of negatives, the sign of the rest.
    let ascending = if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    };
    !ascending
}

pub fn argmax(xs: &[f32]) -> usize {
    xs.iter()
        .enumerate()
        .fold(0, |best, (i, &x)| if x > xs[best] { i } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Selecting then sorting gives the stable sort's first `k`, ties included (logits
        /// drawn from few values, so many are equal; signed zeros and infinities too).
        #[test]
        fn ranked_is_the_stable_sorts_prefix(
            levels in prop::collection::vec(0u8..9, 1..300),
            k in 0usize..40,
        ) {
            let logits: Vec<f32> = (levels.iter())
                .map(|&l| match l {
                    6 => -0.0,
                    7 => f32::NEG_INFINITY,
                    8 => f32::INFINITY,
                    l => l as f32 * 0.5 - 1.0,
                })
                .collect();
            let mut stable: Vec<usize> = (0..logits.len()).collect();
            stable.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
            if k > 0 {
                stable.truncate(k);
            }
            prop_assert_eq!(ranked(&logits, k), stable);
        }
    }
}
