//! "Did you mean ...?" for misspelt keys and values.

/// The candidate closest to `typed`, if it is close enough to be a likely typo: a small edit
/// distance (about one edit per three letters) or one name being a prefix of the other
/// (`warmup` -> `warmup_steps`).
pub fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed_lower = typed.to_lowercase();
    let allowed = (typed.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter_map(|candidate| {
            let distance = edit_distance(&typed_lower, &candidate.to_lowercase());
            let prefix = typed_lower.len() >= 3
                && candidate.len() >= 3
                && (candidate.starts_with(typed_lower.as_str())
                    || typed_lower.starts_with(candidate));
            if distance <= allowed || prefix {
                Some((distance, candidate))
            } else {
                None
            }
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// `"; did you mean `x`?"`, or nothing when no candidate is close.
pub fn did_you_mean<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match closest(typed, candidates) {
        Some(candidate) => format!("; did you mean `{candidate}`?"),
        None => String::new(),
    }
}

/// "`a`, `b`, `c`" for messages that list the valid choices.
pub fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items
        .into_iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Edits (insert, delete, substitute a char, or swap two neighbours) that turn `a` into `b`:
/// the "optimal string alignment" distance, so the common typo `cdua` is one edit from `cuda`.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // table[i][j] = distance between the first i chars of a and the first j chars of b.
    let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in table.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in table[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitute = table[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let mut best = substitute.min(table[i - 1][j] + 1).min(table[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(table[i - 2][j - 2] + 1);
            }
            table[i][j] = best;
        }
    }
    table[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("lr", "lrr"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("香蕉", "香"), 1);
        assert_eq!(edit_distance("cdua", "cuda"), 1);
    }

    #[test]
    fn suggests_the_nearest_key() {
        let keys = ["lr", "min_lr", "steps", "warmup_steps", "batch_size"];
        assert_eq!(closest("lrr", keys), Some("lr"));
        assert_eq!(closest("step", keys), Some("steps"));
        assert_eq!(closest("batchsize", keys), Some("batch_size"));
        assert_eq!(closest("warmup", keys), Some("warmup_steps"));
        assert_eq!(closest("temperature", keys), None);
        assert_eq!(did_you_mean("lrr", keys), "; did you mean `lr`?");
        assert_eq!(did_you_mean("zzzzzz", keys), "");
    }
}
