//! Choosing the next token from logits: temperature, top-k, top-p, greedy. Generation itself
//! (prompts, the cache, stopping) is `generate.rs`.

use super::kernels::simd;
use rand::Rng;

/// How the next tokens are drawn. Outside tests these come from `spec::SampleSettings`, which
/// hold each setting's rule (`infer::sampling` converts), so none is built by hand.
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

impl SampleOptions {
    /// The same sampling, ending after any of `stop` (a prompt's own end-of-answer ids).
    pub fn stopping_at(self, stop: Vec<u32>) -> SampleOptions {
        SampleOptions { stop, ..self }
    }
}

/// How many of the likeliest ids are ranked first when there is no top-k: a draw mostly lands
/// among them, and sorting all ids for every token was a tenth of a PPO rollout with a
/// 4,096-id vocabulary.
const FIRST_RANKS: usize = 64;

/// Picks the next id from one row of logits: ids ranked by logit, the nucleus of `top_p`
/// kept, and one drawn from it.
pub fn sample_next(logits: &[f32], opts: &SampleOptions, rng: &mut impl Rng) -> u32 {
    if opts.temperature <= 0.0 {
        return argmax(logits) as u32;
    }
    let weight = weights(logits, opts.temperature);
    let r: f32 = rng.gen();
    if opts.top_k == 0 && logits.len() > FIRST_RANKS {
        let total = simd::sum(&weight);
        let first = ranked(logits, FIRST_RANKS);
        if let Some(id) = draw(&first, |i| weight[i] / total, false, opts.top_p, r) {
            return id;
        }
    }
    let candidates = ranked(logits, opts.top_k);
    let total: f32 = candidates.iter().map(|&i| weight[i]).sum();
    draw(&candidates, |i| weight[i] / total, true, opts.top_p, r)
        .expect("a draw over all candidates always lands")
}

/// Each id's unnormalised probability, exp((logit − max) / temperature).
fn weights(logits: &[f32], temperature: f32) -> Vec<f32> {
    let mut weight = vec![0.0; logits.len()];
    exp_scaled(logits, simd::max(logits), 1.0 / temperature, &mut weight);
    weight
}

simd::avx2_variants! {
    /// `out = exp((xs − shift) · scale)`, vectorised (libm's exp was a fifth of a small
    /// model's sampling).
    fn exp_scaled(xs: &[f32], shift: f32, scale: f32, out: &mut [f32]) {
        for (o, &x) in out.iter_mut().zip(xs) {
            *o = simd::exp((x - shift) * scale);
        }
    }
}

/// Draws with `r` (uniform in [0, 1)) from the nucleus of `ranks`: the highest-ranked
/// candidates, in order, up to the first whose preceding probability reaches `top_p`.
/// `ranks` may be only the first of the candidates (`complete` false): then `None` when the
/// nucleus or the draw reaches past them.
fn draw(
    ranks: &[usize],
    prob: impl Fn(usize) -> f32,
    complete: bool,
    top_p: f32,
    r: f32,
) -> Option<u32> {
    let mut before = 0.0;
    let nucleus_end = (top_p < 1.0)
        .then(|| {
            ranks.iter().position(|&i| {
                let reached = before >= top_p;
                before += prob(i);
                reached
            })
        })
        .flatten();
    let (nucleus, mass) = match nucleus_end {
        Some(end) => {
            let nucleus = &ranks[..end.max(1)];
            (nucleus, nucleus.iter().map(|&i| prob(i)).sum())
        }
        None if top_p >= 1.0 => (ranks, 1.0),
        None if complete => (ranks, before),
        None => return None,
    };
    let mut left = r * mass;
    for &i in nucleus {
        let p = prob(i);
        if left < p {
            return Some(i as u32);
        }
        left -= p;
    }
    // Rounding can leave a sliver past the last candidate: it belongs to the last.
    (complete || nucleus_end.is_some()).then(|| *nucleus.last().unwrap() as u32)
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

/// Tests' shorthand: the model's own distribution, 64 tokens. (Last before the tests: the
/// grep-style tests read a file only up to its first `#[cfg(test)]`.)
#[cfg(test)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::Rng;

    /// How far rounding may move a share's bounds: f32 sums over a few hundred ids.
    const ROUNDING: f64 = 1e-4;

    /// Whether `id` is a draw that `r` may give under the definition, worked in f64: the
    /// candidates ranked, the nucleus of `top_p` kept and renormalised, each id owning its share
    /// of [0, 1). Where the nucleus's end or a share's bound lies within rounding of `top_p` or
    /// `r`, either side is accepted: f32 sums in another order may fall on either.
    fn is_exact_draw(logits: &[f32], opts: &SampleOptions, r: f32, id: u32) -> bool {
        let ranks = ranked(logits, opts.top_k);
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
        let weight: Vec<f64> = (ranks.iter())
            .map(|&i| ((logits[i] as f64 - max) / opts.temperature as f64).exp())
            .collect();
        let total: f64 = weight.iter().sum();
        let mut before = vec![0.0];
        for w in &weight {
            before.push(before.last().unwrap() + w / total);
        }
        let nucleus_ends: Vec<usize> = if opts.top_p >= 1.0 {
            vec![ranks.len()]
        } else {
            [-ROUNDING, 0.0, ROUNDING]
                .iter()
                .map(|shift| {
                    let end = before[..ranks.len()]
                        .iter()
                        .filter(|&&b| b < opts.top_p as f64 + shift)
                        .count();
                    end.max(1)
                })
                .collect()
        };
        let Some(at) = ranks.iter().position(|&i| i as u32 == id) else {
            return false;
        };
        let r = r as f64;
        nucleus_ends.iter().any(|&end| {
            let mass = before[end];
            at < end && before[at] / mass - ROUNDING <= r && r < before[at + 1] / mass + ROUNDING
        })
    }

    proptest! {
        /// Each draw lands in the drawn id's share of the exact distribution: flat and peaked
        /// logits (draws past the first ranks, and within them), with and without top-k and
        /// top-p. A draw from the first ranks with the wrong mass lands outside its share.
        #[test]
        fn a_draw_lands_in_its_share_of_the_exact_distribution(
            logits in prop::collection::vec(-4.0f32..4.0, 1..400),
            temperature in prop::sample::select(vec![0.3f32, 1.0, 3.0]),
            top_k in prop::sample::select(vec![0usize, 1, 5, 100]),
            top_p in prop::sample::select(vec![1.0f32, 0.95, 0.5, 0.0]),
            seed in 0u64..1000,
        ) {
            use rand::SeedableRng;
            let opts = SampleOptions { temperature, top_k, top_p, ..Default::default() };
            for draw in 0..20u64 {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed * 100 + draw);
                let r: f32 = rng.clone().gen();
                let id = sample_next(&logits, &opts, &mut rng);
                prop_assert!(is_exact_draw(&logits, &opts, r, id), "r = {r}, drew {id}");
            }
        }

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
