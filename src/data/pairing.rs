//! 👍/👎 as preference pairs: an answer liked and one disliked for the same prompt say the
//! same as a pair of chosen and rejected answers. The reward stage and DPO read feedback
//! files this way, so simulated or clicked 👍/👎 train either.

use super::jsonl::{Feedback, PreferencePair, PreferenceRecord};

/// The records' pairs, then pairs made of opposite labels for the same prompt (each label
/// used once, in file order); and the feedback left without a partner.
pub fn pair_feedback(records: &[PreferenceRecord]) -> (Vec<PreferencePair>, Vec<&Feedback>) {
    let mut pairs = Vec::new();
    let mut feedback: Vec<&Feedback> = Vec::new();
    for r in records {
        match r {
            PreferenceRecord::Pair(p) => pairs.push(p.clone()),
            PreferenceRecord::Feedback(f) => feedback.push(f),
        }
    }
    let mut used = vec![false; feedback.len()];
    for i in 0..feedback.len() {
        if used[i] {
            continue;
        }
        if let Some(j) = (i + 1..feedback.len()).find(|&j| {
            !used[j]
                && feedback[j].prompt == feedback[i].prompt
                && feedback[j].label != feedback[i].label
        }) {
            used[i] = true;
            used[j] = true;
            let (good, bad) = if feedback[i].label {
                (feedback[i], feedback[j])
            } else {
                (feedback[j], feedback[i])
            };
            pairs.push(PreferencePair {
                prompt: good.prompt.clone(),
                chosen: good.completion.clone(),
                rejected: bad.completion.clone(),
                task: None,
            });
        }
    }
    let unpaired = feedback
        .into_iter()
        .zip(&used)
        .filter(|(_, &u)| !u)
        .map(|(f, _)| f)
        .collect();
    (pairs, unpaired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Message;

    fn thumb(prompt: &str, answer: &str, label: bool) -> PreferenceRecord {
        PreferenceRecord::Feedback(Feedback {
            prompt: vec![Message::user(prompt)],
            completion: vec![Message::assistant(answer)],
            label,
        })
    }

    #[test]
    fn opposite_labels_for_one_prompt_become_a_pair_and_the_rest_stay_unpaired() {
        let records = [
            thumb("q", "bad", false),
            thumb("other", "x", true),
            thumb("q", "good", true),
            thumb("q", "also bad", false),
        ];
        let (pairs, unpaired) = pair_feedback(&records);
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].chosen[0].content, "good");
        assert_eq!(pairs[0].rejected[0].content, "bad");
        let left: Vec<&str> = unpaired
            .iter()
            .map(|f| f.completion[0].content.as_str())
            .collect();
        assert_eq!(left, ["x", "also bad"]);
    }
}
