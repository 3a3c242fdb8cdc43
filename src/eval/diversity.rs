//! What a stage says, beside how much the judge likes it. A judge's `prefer` means "contains
//! any of these", so a policy that collapsed onto one liked answer scores as well as one that
//! spreads over all of them; these measures tell the two apart.
//!
//! Over every sampled answer the judge scored (the same answers as the gold rate), pooled
//! over the held-out questions, each answer trimmed:
//! - `gold/share/<term>`: the share of answers containing the judge's `prefer` or `avoid`
//!   term (an answer with two terms counts for both);
//! - `gold/distinct`: the number of different answers;
//! - `gold/entropy`: the entropy, in nats, of the empirical distribution of those answers:
//!   0 when every question got the same answer, ln(N) when all N answers differ.

use super::judge::Judge;
use crate::results::{gold_share_key, GOLD_DISTINCT, GOLD_ENTROPY};
use std::collections::{BTreeMap, HashMap};

/// The diversity keys of a stage's answers (`samples`, with the judge's `scores` of each);
/// empty when the judge scored none.
pub fn diversity_numbers(
    judge: &Judge,
    scores: &[Vec<Option<f64>>],
    samples: &[Vec<String>],
) -> BTreeMap<String, f64> {
    let judged: Vec<&str> = samples
        .iter()
        .zip(scores)
        .flat_map(|(answers, s)| answers.iter().zip(s))
        .filter(|(_, score)| score.is_some())
        .map(|(a, _)| a.trim())
        .collect();
    let mut out = BTreeMap::new();
    if judged.is_empty() {
        return out;
    }
    let (prefer, avoid) = judge.terms();
    for term in prefer.into_iter().chain(avoid) {
        let containing = judged.iter().filter(|a| a.contains(term)).count();
        out.insert(
            gold_share_key(term),
            containing as f64 / judged.len() as f64,
        );
    }
    let (distinct, entropy) = distinct_and_entropy(&judged);
    out.insert(GOLD_DISTINCT.into(), distinct as f64);
    out.insert(GOLD_ENTROPY.into(), entropy);
    out
}

/// How many different answers, and the entropy in nats of their empirical distribution.
pub fn distinct_and_entropy(answers: &[&str]) -> (usize, f64) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for a in answers {
        *counts.entry(a).or_default() += 1;
    }
    let n = answers.len() as f64;
    // Summed in a fixed order, so the same answers give the same bits every time.
    let mut shares: Vec<f64> = counts.values().map(|&c| c as f64 / n).collect();
    shares.sort_by(f64::total_cmp);
    let entropy = -shares.iter().map(|p| p * p.ln()).sum::<f64>();
    (counts.len(), entropy.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::JudgeSpec;

    fn judge() -> Judge {
        let spec = JudgeSpec {
            prefer: vec!["唱歌".into(), "做饭".into()],
            avoid: vec!["挖洞".into()],
            ..Default::default()
        };
        Judge::new("mine", &spec).unwrap()
    }

    fn answers(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| r.iter().map(|a| a.to_string()).collect())
            .collect()
    }

    #[test]
    fn a_policy_collapsed_onto_one_liked_answer_has_no_entropy() {
        // Every question answered 「我喜欢唱歌。」 (one with a trailing space): one answer.
        let samples = answers(&[
            &["我喜欢唱歌。", "我喜欢唱歌。 "],
            &["我喜欢唱歌。", "我喜欢唱歌。"],
        ]);
        let scores = vec![vec![Some(1.0); 2]; 2];
        let m = diversity_numbers(&judge(), &scores, &samples);
        assert_eq!(m["gold/share/唱歌"], 1.0);
        assert_eq!(m["gold/share/做饭"], 0.0);
        assert_eq!(m["gold/share/挖洞"], 0.0);
        assert_eq!(m["gold/distinct"], 1.0);
        assert_eq!(m["gold/entropy"], 0.0);
    }

    #[test]
    fn shares_and_entropy_of_a_hand_made_set_of_answers() {
        // Six judged answers: 唱歌 ×3 (two identical), 做饭 ×1, 挖洞 ×1, one with both liked
        // terms; the unjudged question's answers do not count.
        let samples = answers(&[
            &["我喜欢唱歌。", "我喜欢唱歌。", "我爱挖洞。"],
            &["唱歌和做饭。", "我喜欢做饭。", "睡觉。"],
            &["不算。", "不算。", "不算。"],
        ]);
        let scores = vec![
            vec![Some(1.0), Some(1.0), Some(0.0)],
            vec![Some(1.0), Some(1.0), Some(0.0)],
            vec![None, None, None],
        ];
        let m = diversity_numbers(&judge(), &scores, &samples);
        assert_eq!(m["gold/share/唱歌"], 3.0 / 6.0);
        assert_eq!(m["gold/share/做饭"], 2.0 / 6.0);
        assert_eq!(m["gold/share/挖洞"], 1.0 / 6.0);
        // Five different answers, one of them twice: H = -(2/6 ln 2/6 + 4 × 1/6 ln 1/6).
        assert_eq!(m["gold/distinct"], 5.0);
        let expected =
            -((2.0 / 6.0) * (2.0f64 / 6.0).ln() + 4.0 * (1.0 / 6.0) * (1.0f64 / 6.0).ln());
        assert!((m["gold/entropy"] - expected).abs() < 1e-12, "{m:?}");
        // All different: ln N.
        let (d, h) = distinct_and_entropy(&["a", "b", "c", "d"]);
        assert_eq!(d, 4);
        assert!((h - 4f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn nothing_judged_gives_no_keys() {
        let m = diversity_numbers(&judge(), &[vec![None]], &answers(&[&["唱歌"]]));
        assert!(m.is_empty());
    }
}
