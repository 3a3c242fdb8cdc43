//! Preference measures: a reward model's score of prompt + answer (read at the answer's last
//! token), preference records tokenised into pairs and unpaired feedback, and the share of
//! pairs a reward model orders correctly. The reward stage trains on these; `gptlab eval`
//! and RLHF's rollouts read the scores.

use crate::data::chat::{encode_chat, Message};
use crate::data::pairing::pair_feedback;
use crate::data::PreferenceRecord;
use crate::model::{Backend, LanguageModel};
use crate::tokenizer::{Special, Tokenizer};
use dfdx::prelude::*;

/// A tokenised prompt + answer, scored at its last token.
pub fn encode_answer(
    tok: &Tokenizer,
    prompt: &[Message],
    answer: &[Message],
    limit: usize,
) -> Vec<u32> {
    let all: Vec<Message> = prompt.iter().chain(answer).cloned().collect();
    let mut ids = encode_chat(tok, &all).ids;
    if ids.len() > limit {
        // Keep the end: the answer and its closing token are what is being judged.
        ids.drain(..ids.len() - limit);
    }
    ids
}

/// Inputs padded to a rectangle, and the index of each row's last real token.
pub fn pad_rows(rows: &[&[u32]], pad: u32) -> (Vec<usize>, usize, Vec<usize>) {
    let seq = rows.iter().map(|r| r.len()).max().unwrap_or(1);
    let mut flat = Vec::with_capacity(rows.len() * seq);
    for r in rows {
        flat.extend(r.iter().map(|&t| t as usize));
        flat.extend(std::iter::repeat(pad as usize).take(seq - r.len()));
    }
    (flat, seq, rows.iter().map(|r| r.len() - 1).collect())
}

pub fn rewards<D: Backend>(model: &dyn LanguageModel<D>, rows: &[&[u32]], pad: u32) -> Vec<f32> {
    let dev = model.device();
    let (flat, seq, last) = pad_rows(rows, pad);
    let x = dev.tensor_from_vec(flat, (rows.len(), seq));
    let idx = dev.tensor_from_vec(last, (rows.len(),));
    crate::util::readback::to_vec(&model.scores(x).select(idx))
}

/// A preference pair, tokenised: the same prompt with each answer; with its words, for
/// grouping a ranking's pairs and for judges.
pub struct Pair {
    pub chosen: Vec<u32>,
    pub rejected: Vec<u32>,
    pub words: PairWords,
}

/// A pair's prompt (its last user turn) and answers as text.
#[derive(Debug, Clone, PartialEq)]
pub struct PairWords {
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
}

impl PairWords {
    fn of(prompt: &[Message], chosen: &[Message], rejected: &[Message]) -> PairWords {
        let text = |m: &[Message]| m.iter().map(|m| m.content.as_str()).collect::<String>();
        PairWords {
            prompt: crate::eval::answers::last_user_turn(prompt).to_string(),
            chosen: text(chosen),
            rejected: text(rejected),
        }
    }
}

/// Unpaired feedback, tokenised.
pub struct Labelled {
    pub ids: Vec<u32>,
    pub label: bool,
}

/// Pairs from preference pairs and from feedback with opposite labels on the same prompt;
/// the remaining feedback stays unpaired.
pub fn split_records(
    tok: &Tokenizer,
    records: &[PreferenceRecord],
    limit: usize,
) -> (Vec<Pair>, Vec<Labelled>) {
    let (pairs, unpaired) = pair_feedback(records);
    let pairs = pairs
        .iter()
        .map(|p| Pair {
            chosen: encode_answer(tok, &p.prompt, &p.chosen, limit),
            rejected: encode_answer(tok, &p.prompt, &p.rejected, limit),
            words: PairWords::of(&p.prompt, &p.chosen, &p.rejected),
        })
        .collect();
    let unpaired = unpaired
        .iter()
        .map(|f| Labelled {
            ids: encode_answer(tok, &f.prompt, &f.completion, limit),
            label: f.label,
        })
        .collect();
    (pairs, unpaired)
}

/// Share of pairs where the reward model scores `chosen` above `rejected` (for `gptlab eval`).
pub fn pair_accuracy<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    records: &[PreferenceRecord],
    limit: usize,
) -> (usize, usize) {
    let (pairs, _) = split_records(tok, records, limit);
    let pad = tok.special(Special::Pad);
    let correct = pair_rewards(model, &pairs, pad, 16)
        .iter()
        .map(|(chosen, rejected)| chosen.iter().zip(rejected).filter(|(a, b)| a > b).count())
        .sum();
    (correct, pairs.len())
}

/// The rewards of each pair's chosen and rejected answer, `batch` pairs per forward pass:
/// one `(chosen, rejected)` list per batch.
pub fn pair_rewards<D: Backend>(
    model: &dyn LanguageModel<D>,
    pairs: &[Pair],
    pad: u32,
    batch: usize,
) -> Vec<(Vec<f32>, Vec<f32>)> {
    pairs
        .chunks(batch.max(1))
        .map(|chunk| {
            let rows: Vec<&[u32]> = chunk
                .iter()
                .map(|p| p.chosen.as_slice())
                .chain(chunk.iter().map(|p| p.rejected.as_slice()))
                .collect();
            let mut chosen = rewards(model, &rows, pad);
            let rejected = chosen.split_off(chunk.len());
            (chosen, rejected)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_padded_and_last_indices_point_at_real_tokens() {
        let (flat, seq, last) = pad_rows(&[&[4, 5, 6], &[7]], 0);
        assert_eq!(seq, 3);
        assert_eq!(flat, vec![4, 5, 6, 7, 0, 0]);
        assert_eq!(last, vec![2, 0]);
    }
}
