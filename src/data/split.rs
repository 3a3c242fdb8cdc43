//! Holding out a validation set.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Splits `items` into `(train, val)` with about `fraction` of them (rounded) in val, chosen
/// by a shuffle seeded with `seed`. Each side keeps the items' original order. With
/// `fraction > 0` and at least 2 items, both sides get at least one item; a single item
/// always goes to train.
pub fn split_off_validation<T>(items: Vec<T>, fraction: f64, seed: u64) -> (Vec<T>, Vec<T>) {
    let n = items.len();
    let fraction = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    // Training needs data more than validation does: train always keeps at least one item.
    let mut n_val = ((n as f64 * fraction).round() as usize).min(n.saturating_sub(1));
    if fraction > 0.0 && n >= 2 {
        n_val = n_val.max(1);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut is_val = vec![false; n];
    for &i in &order[..n_val] {
        is_val[i] = true;
    }
    let (mut train, mut val) = (Vec::with_capacity(n - n_val), Vec::with_capacity(n_val));
    for (item, to_val) in items.into_iter().zip(is_val) {
        if to_val {
            val.push(item)
        } else {
            train.push(item)
        }
    }
    (train, val)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_fraction() {
        let (train, val) = split_off_validation((0..100).collect(), 0.1, 7);
        assert_eq!((train.len(), val.len()), (90, 10));
        let mut all: Vec<i32> = train.iter().chain(&val).copied().collect();
        all.sort();
        assert_eq!(
            all,
            (0..100).collect::<Vec<_>>(),
            "every item lands on exactly one side"
        );
        assert!(
            train.windows(2).all(|w| w[0] < w[1]),
            "train keeps the original order"
        );
    }

    #[test]
    fn same_seed_same_split_and_other_seed_differs() {
        let a = split_off_validation((0..1000).collect::<Vec<i32>>(), 0.2, 1);
        let b = split_off_validation((0..1000).collect::<Vec<i32>>(), 0.2, 1);
        let c = split_off_validation((0..1000).collect::<Vec<i32>>(), 0.2, 2);
        assert_eq!(a, b);
        assert_ne!(a.1, c.1);
        assert_ne!(
            a.1,
            (0..200).collect::<Vec<_>>(),
            "val is a random sample, not the first items"
        );
    }

    #[test]
    fn small_inputs_keep_both_sides_non_empty() {
        assert_eq!(split_off_validation(vec![1, 2], 0.01, 0).1.len(), 1);
        assert_eq!(split_off_validation(vec![1, 2], 0.99, 0).0.len(), 1);
        assert_eq!(split_off_validation(vec![1], 0.5, 0), (vec![1], vec![]));
        assert_eq!(
            split_off_validation(Vec::<i32>::new(), 0.5, 0),
            (vec![], vec![])
        );
        assert_eq!(
            split_off_validation(vec![1, 2, 3], 0.0, 0),
            (vec![1, 2, 3], vec![])
        );
    }
}
