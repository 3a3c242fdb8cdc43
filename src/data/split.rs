//! Holding out a validation set: a share of the records, or of the groups of records that
//! share a field's value (so that no group is on both sides).

use super::paths::expand_paths;
use super::records::{for_each_record, Record};
use crate::util::fnv1a;
use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::collections::HashSet;
use std::path::PathBuf;

/// How a stage holds out validation records from its data files, so that `gptlab eval` can
/// hold out the very same ones: `fraction` of the records, or with `group` set, `fraction` of
/// the groups of records sharing that field's value; shuffled with `seed`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldOut {
    pub fraction: f64,
    pub seed: u64,
    pub group: Option<String>,
}

impl HeldOut {
    /// `(train, val)` of `items`, the records read from `paths` in order.
    pub fn split<T>(&self, items: Vec<T>, paths: &[PathBuf]) -> Result<(Vec<T>, Vec<T>)> {
        Ok(match &self.group {
            None => split_off_validation(items, self.fraction, self.seed),
            Some(field) => {
                let groups = read_groups(paths, field)?;
                split_by_group(items, &groups, self.fraction, self.seed)
            }
        })
    }
}

/// The value of `field` in every record of `paths`, in the order the readers return them.
pub fn read_groups(paths: &[PathBuf], field: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for path in expand_paths(paths)? {
        out.extend(for_each_record(&path, |record| group_of(record, field))?);
    }
    Ok(out)
}

fn group_of(record: &Record, field: &str) -> Result<String> {
    match record.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Null) | None => {
            bail!("no `{field}` field, which `val_group` splits the records by")
        }
        Some(other) => Ok(other.to_string()),
    }
}

/// Splits `items` (whose groups are `groups`, one per item) so that about `fraction` of the
/// distinct groups go to val whole. A group is held out when a seeded hash of its name falls
/// below `fraction`, so the choice depends only on the seed and the name: every file that
/// names the same groups (questions in `sft.jsonl`, pairs in `pref.jsonl`) holds out the same
/// ones. With `fraction > 0` and at least 2 groups both sides get one.
pub fn split_by_group<T>(
    items: Vec<T>,
    groups: &[String],
    fraction: f64,
    seed: u64,
) -> (Vec<T>, Vec<T>) {
    assert_eq!(items.len(), groups.len(), "one group per item");
    let mut distinct: Vec<(f64, &str)> = groups
        .iter()
        .map(|g| (unit_hash(seed, g), g.as_str()))
        .collect();
    distinct.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
    distinct.dedup_by(|a, b| a.1 == b.1);
    let mut n_val = distinct.iter().filter(|(u, _)| *u < fraction).count();
    if fraction > 0.0 && distinct.len() >= 2 {
        n_val = n_val.clamp(1, distinct.len() - 1);
    }
    let val_groups: HashSet<&str> = distinct[..n_val].iter().map(|(_, g)| *g).collect();
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (item, group) in items.into_iter().zip(groups) {
        match val_groups.contains(group.as_str()) {
            true => val.push(item),
            false => train.push(item),
        }
    }
    (train, val)
}

/// A stable hash of `(seed, name)` mapped into [0, 1) (FNV-1a; the same on every platform).
fn unit_hash(seed: u64, name: &str) -> f64 {
    let h = fnv1a(seed.to_le_bytes().into_iter().chain(name.bytes()));
    // FNV's low bits mix poorly: finish with a 64-bit avalanche (splitmix64's).
    let mut z = h;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

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
    fn unit_hash_values_are_pinned() {
        // Validation splits depend on these exact values: a change reshuffles every split.
        assert_eq!(unit_hash(0, "a"), 465207119103257.0 / (1u64 << 53) as f64);
        assert_eq!(
            unit_hash(1337, "task-7"),
            69406015341023.0 / (1u64 << 53) as f64
        );
    }

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

    /// 120 records in 40 groups of 3, interleaved (record `i` is in group `7i mod 40`).
    fn grouped() -> (Vec<usize>, Vec<String>) {
        let groups: Vec<String> = (0..120).map(|i| format!("g{}", (i * 7) % 40)).collect();
        ((0..120).collect(), groups)
    }

    #[test]
    fn a_group_is_never_on_both_sides() {
        let (items, groups) = grouped();
        let (train, val) = split_by_group(items, &groups, 0.2, 3);
        assert_eq!(train.len() + val.len(), 120);
        let group_set = |side: &[usize]| -> HashSet<String> {
            side.iter().map(|&i| groups[i].clone()).collect()
        };
        let (train_groups, val_groups) = (group_set(&train), group_set(&val));
        assert!(train_groups.is_disjoint(&val_groups));
        // About val_fraction of the groups (not of the records) are held out.
        let all = train_groups.len() + val_groups.len();
        assert!(
            (3..=14).contains(&val_groups.len()),
            "{} of {all}",
            val_groups.len()
        );
    }

    #[test]
    fn every_file_holds_out_the_same_groups() {
        // Two files naming overlapping groups in different orders and counts.
        let a: Vec<String> = (0..300).map(|i| format!("poem{}", i % 100)).collect();
        let b: Vec<String> = (0..80)
            .rev()
            .map(|i| format!("poem{}", (i * 7) % 100))
            .collect();
        let held = |groups: &[String]| -> HashSet<String> {
            let (_, val) = split_by_group(groups.to_vec(), groups, 0.1, 5);
            val.into_iter().collect()
        };
        let (held_a, held_b) = (held(&a), held(&b));
        let in_b: HashSet<String> = b.iter().cloned().collect();
        assert_eq!(held_b, held_a.intersection(&in_b).cloned().collect());
        assert!((4..=18).contains(&held_a.len()), "{}", held_a.len());
    }

    #[test]
    fn grouped_split_follows_the_seed() {
        let (items, groups) = grouped();
        let a = split_by_group(items.clone(), &groups, 0.25, 1);
        let b = split_by_group(items.clone(), &groups, 0.25, 1);
        let c = split_by_group(items, &groups, 0.25, 2);
        assert_eq!(a, b);
        assert_ne!(a.1, c.1);
    }

    #[test]
    fn held_out_by_group_reads_the_field_and_names_a_record_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qa.jsonl");
        let line =
            |g: &str| format!("{{\"prompt\": \"q\", \"completion\": \"a\", \"group\": \"{g}\"}}\n");
        let text: String = ["a", "a", "b", "c", "c", "c", "d"].map(line).concat();
        std::fs::write(&path, &text).unwrap();
        let held = HeldOut {
            fraction: 0.5,
            seed: 9,
            group: Some("group".into()),
        };
        let paths = [path.clone()];
        let (train, val) = held.split((0..7).collect::<Vec<_>>(), &paths).unwrap();
        let groups = read_groups(&paths, "group").unwrap();
        assert_eq!(groups, ["a", "a", "b", "c", "c", "c", "d"]);
        // Half of the 4 groups, whole.
        let side = |s: &[usize]| s.iter().map(|&i| groups[i].clone()).collect::<HashSet<_>>();
        assert_eq!((side(&train).len(), side(&val).len()), (2, 2));
        assert!(side(&train).is_disjoint(&side(&val)));
        std::fs::write(
            &path,
            format!("{text}{{\"prompt\": \"q\", \"completion\": \"a\"}}\n"),
        )
        .unwrap();
        let error = format!(
            "{:#}",
            held.split((0..8).collect::<Vec<_>>(), &paths).unwrap_err()
        );
        assert!(
            error.contains("qa.jsonl:8:") && error.contains("`group`"),
            "{error}"
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
