//! Partial credit for an answer: character-overlap F1 against the reference, so that a poem
//! line with one wrong character scores 0.8 rather than the 0 of exact match.

use std::collections::HashMap;

/// Character-overlap F1 of `answer` against `reference`, in [0, 1].
///
/// Both are trimmed of surrounding whitespace first, as [`super::answers::is_exact_match`]
/// does, so F1 is 1 exactly when exact match holds. Punctuation (such as a final `。`) counts
/// as characters like any other, again as in exact match. Characters are compared as a
/// multiset: each character of the answer matches at most one equal character of the
/// reference. Precision = overlap / answer length, recall = overlap / reference length,
/// F1 = 2PR / (P + R); 0 when either side is empty.
pub fn char_f1(answer: &str, reference: &str) -> f64 {
    let (answer, reference) = (answer.trim(), reference.trim());
    let mut left = HashMap::<char, usize>::new();
    for c in reference.chars() {
        *left.entry(c).or_default() += 1;
    }
    let mut overlap = 0usize;
    for c in answer.chars() {
        if let Some(n) = left.get_mut(&c).filter(|n| **n > 0) {
            *n -= 1;
            overlap += 1;
        }
    }
    if overlap == 0 {
        return 0.0;
    }
    let precision = overlap as f64 / answer.chars().count() as f64;
    let recall = overlap as f64 / reference.chars().count() as f64;
    2.0 * precision * recall / (precision + recall)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn identical_answers_score_one_and_disjoint_ones_zero() {
        assert_eq!(char_f1("床前明月光", "床前明月光"), 1.0);
        assert_eq!(char_f1(" 北京。\n", "北京。"), 1.0);
        assert_eq!(char_f1("上海", "北京"), 0.0);
    }

    #[test]
    fn one_wrong_character_in_five_scores_four_fifths() {
        assert!(close(char_f1("床前看月光", "床前明月光"), 0.8));
    }

    #[test]
    fn empty_sides_score_zero() {
        assert_eq!(char_f1("", "北京"), 0.0);
        assert_eq!(char_f1("北京", "  "), 0.0);
        assert_eq!(char_f1("", ""), 0.0);
    }

    #[test]
    fn repeated_characters_count_as_a_multiset() {
        // Answer 月月月 against 明月: one 月 overlaps; P = 1/3, R = 1/2, F1 = 0.4.
        assert!(close(char_f1("月月月", "明月"), 0.4));
        // Reference 月月 against answer 月: P = 1, R = 1/2, F1 = 2/3.
        assert!(close(char_f1("月", "月月"), 2.0 / 3.0));
    }

    #[test]
    fn ascii_and_punctuation_are_characters_too() {
        // "abc" vs "abd": overlap 2 of 3 each side.
        assert!(close(char_f1("abc", "abd"), 2.0 / 3.0));
        // A missing final 。 costs recall only: P = 1, R = 2/3, F1 = 0.8.
        assert!(close(char_f1("北京", "北京。"), 0.8));
        // Order is not compared: an anagram scores 1.
        assert_eq!(char_f1("ba", "ab"), 1.0);
    }
}
