//! The next-token distribution after a prompt, and the probability of whole continuations
//! (the amusement-park experiment: P(过山车) vs P(大风车) after "我今天想去游乐园玩").

use crate::model::{Backend, LanguageModel};
use crate::tokenizer::Tokenizer;
use dfdx::shapes::HasShape;

pub use crate::results::{CandidateProb, TokenProb};

fn softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = row.iter().map(|&x| (x as f64 - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / total).collect()
}

/// Probabilities of the next token after `prompt_ids` (ids beyond the tokenizer excluded).
pub fn next_token_probs<D: Backend>(
    model: &dyn LanguageModel<D>,
    prompt_ids: &[u32],
    vocab: usize,
) -> Vec<f64> {
    let ctx = model.config().n_ctx;
    let ids = &prompt_ids[prompt_ids.len().saturating_sub(ctx)..];
    let dev = model.device();
    let x = dev.tensor_from_vec(ids.iter().map(|&t| t as usize).collect(), (1, ids.len()));
    // Only the last position's row leaves the device.
    let logits = model.logits(x);
    let (_, t, v) = *logits.shape();
    let last = crate::util::readback::to_vec(&logits.slice((0..1, t - 1..t, 0..v)));
    softmax(&last[..vocab.min(v)])
}

pub fn top_tokens<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    prompt_ids: &[u32],
    k: usize,
) -> Vec<TokenProb> {
    let probs = next_token_probs(model, prompt_ids, tok.vocab_size());
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    idx.into_iter()
        .take(k)
        .map(|i| TokenProb {
            token: tok.token_text(i as u32),
            id: i as u32,
            prob: probs[i],
        })
        .collect()
}

/// P(continuation | prompt): the product of each continuation token's probability.
pub fn continuation_prob<D: Backend>(
    model: &dyn LanguageModel<D>,
    prompt_ids: &[u32],
    cont: &[u32],
    vocab: usize,
) -> f64 {
    let dev = model.device();
    let all: Vec<usize> = prompt_ids.iter().chain(cont).map(|&t| t as usize).collect();
    let n = all.len() - 1;
    let x = dev.tensor_from_vec(all[..n].to_vec(), (1, n));
    // Only the rows that predict the continuation leave the device.
    let first = prompt_ids.len() - 1;
    let logits = model.logits(x);
    let v = logits.shape().2;
    let logits = crate::util::readback::to_vec(&logits.slice((0..1, first..n, 0..v)));
    let mut logp = 0.0;
    for (j, &t) in cont.iter().enumerate() {
        let pos = j;
        let p = softmax(&logits[pos * v..pos * v + vocab.min(v)]);
        logp += p[t as usize].ln();
    }
    logp.exp()
}
