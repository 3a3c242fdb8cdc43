//! Drawing from a weighted mixture (see `spec::data_entry` for how `data` entries become
//! sources and shares).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Draws item indices: uniformly over all items, or for a mixture, first a source by its
/// share, then an item of that source uniformly.
#[derive(Debug, Clone)]
pub enum Picker {
    Uniform(usize),
    Mixture {
        /// The items of each source, as a range of indices.
        ranges: Vec<std::ops::Range<usize>>,
        /// Running sums of the shares, normalised to end at 1.
        cumulative: Vec<f64>,
    },
}

impl Picker {
    /// A picker over items grouped by source: `source_of[i]` is item i's source, in
    /// non-decreasing order; `shares[s]` is source s's share. Sources without items get none.
    pub fn new(source_of: &[usize], shares: &[f64]) -> Picker {
        let mut ranges = vec![0..0; shares.len()];
        for (i, &s) in source_of.iter().enumerate() {
            assert!(i == 0 || source_of[i - 1] <= s, "items grouped by source");
            if ranges[s].is_empty() {
                ranges[s] = i..i;
            }
            ranges[s].end = i + 1;
        }
        let live: Vec<f64> = shares
            .iter()
            .zip(&ranges)
            .map(|(&w, r)| if r.is_empty() { 0.0 } else { w })
            .collect();
        Picker::Mixture {
            ranges,
            cumulative: cumulative(&live),
        }
    }

    /// The index of the source a draw lands in, for a mixture.
    pub fn pick_source(cumulative: &[f64], rng: &mut impl Rng) -> usize {
        let u: f64 = rng.gen();
        let last_live = cumulative.iter().rposition(|&c| c > 0.0).unwrap_or(0);
        // A source with share 0 adds nothing to the running sum, so `c > u` never stops on it.
        cumulative.iter().position(|&c| c > u).unwrap_or(last_live)
    }

    pub fn pick(&self, rng: &mut impl Rng) -> usize {
        match self {
            Picker::Uniform(n) => rng.gen_range(0..*n),
            Picker::Mixture { ranges, cumulative } => {
                let r = &ranges[Self::pick_source(cumulative, rng)];
                rng.gen_range(r.clone())
            }
        }
    }
}

/// Running sums of `shares`, normalised to end at 1: what [`Picker::pick_source`] draws from.
pub fn cumulative(shares: &[f64]) -> Vec<f64> {
    let total: f64 = shares.iter().sum();
    let mut sum = 0.0;
    shares
        .iter()
        .map(|w| {
            sum += w / total;
            sum
        })
        .collect()
}

/// A source of records (SFT, reward, DPO), for the usage table: its training records.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSize {
    pub name: String,
    pub share: f64,
    pub size: usize,
}

/// One training list in which each source holds its share of the records, so that drawing
/// records uniformly draws each source by its share: `share x` (all records) from each source,
/// cycling through its records in a seeded order (repeating a small source, thinning a large
/// one), as nanochat's task mixtures repeat a task to weigh it up. A share of 0 adds nothing.
pub fn resample_by_share<T: Clone>(sources: Vec<Vec<T>>, shares: &[f64], seed: u64) -> Vec<T> {
    let total: usize = sources.iter().map(Vec::len).sum();
    let share_sum: f64 = shares.iter().sum();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(total);
    for (mut records, &share) in sources.into_iter().zip(shares) {
        let want = (share / share_sum * total as f64).round() as usize;
        if records.is_empty() || want == 0 {
            continue;
        }
        records.shuffle(&mut rng);
        out.extend(records.iter().cycle().take(want).cloned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn each_source_gets_its_share_and_weight_zero_is_never_drawn() {
        // Sources of very different sizes: the share, not the size, decides.
        let sizes = [10usize, 1000, 3, 50];
        let shares = [0.5, 0.2, 0.0, 0.3];
        let source_of: Vec<usize> = sizes
            .iter()
            .enumerate()
            .flat_map(|(s, &n)| std::iter::repeat(s).take(n))
            .collect();
        let picker = Picker::new(&source_of, &shares);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let draws = 200_000;
        let mut counts = [0usize; 4];
        for _ in 0..draws {
            counts[source_of[picker.pick(&mut rng)]] += 1;
        }
        assert_eq!(counts[2], 0, "a weight of 0 is never sampled");
        for (s, &share) in shares.iter().enumerate() {
            let got = counts[s] as f64 / draws as f64;
            // 4.5 standard deviations of a binomial share at this many draws.
            let tol = 4.5 * (share * (1.0 - share) / draws as f64).sqrt() + 1e-9;
            assert!((got - share).abs() <= tol, "source {s}: {got} vs {share}");
        }
    }

    #[test]
    fn resampled_records_hold_each_share_and_weight_zero_adds_none() {
        let sources = vec![vec!["a"; 30], vec!["b"; 600], vec!["c"; 70]];
        let out = resample_by_share(sources, &[0.5, 0.5, 0.0], 3);
        let count = |x| out.iter().filter(|&&r| r == x).count();
        assert_eq!((count("a"), count("b"), count("c")), (350, 350, 0));
    }

    #[test]
    fn uniform_picker_draws_like_gen_range() {
        // Unweighted stages keep drawing exactly as before mixtures existed.
        let (mut a, mut b) = (ChaCha8Rng::seed_from_u64(1), ChaCha8Rng::seed_from_u64(1));
        for _ in 0..100 {
            assert_eq!(Picker::Uniform(17).pick(&mut a), b.gen_range(0..17));
        }
    }
}
