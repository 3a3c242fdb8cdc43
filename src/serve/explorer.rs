//! The explorer routes' work: what the model would say next after a prompt (the top-k tokens
//! and the probability of whole candidate continuations, the 过山车/大风车 probe), and where it
//! looks (attention weights per layer and head over the prompt's tokens).

use crate::infer::probe::{continuation_prob, top_tokens, CandidateProb, TokenProb};
use crate::model::{Backend, LanguageModel};
use crate::tokenizer::Tokenizer;

#[derive(Debug, serde::Serialize)]
pub struct NextToken {
    pub tokens: Vec<TokenProb>,
    pub candidates: Vec<CandidateProb>,
}

/// The explorer's two questions, asked of a model on whichever device it lives: the workers'
/// queue carries jobs that know nothing of the device.
pub trait Explore {
    fn next_token(
        &self,
        tok: &Tokenizer,
        prompt: &[u32],
        top_k: usize,
        candidates: &[String],
    ) -> NextToken;
    fn attention(&self, tok: &Tokenizer, prompt: &[u32]) -> Attention;
}

/// A worker's model, as the explorer asks it.
pub struct Explored<'m, D: Backend>(pub &'m dyn LanguageModel<D>);

impl<D: Backend> Explore for Explored<'_, D> {
    fn next_token(
        &self,
        tok: &Tokenizer,
        prompt: &[u32],
        top_k: usize,
        candidates: &[String],
    ) -> NextToken {
        next_token(self.0, tok, prompt, top_k, candidates)
    }
    fn attention(&self, tok: &Tokenizer, prompt: &[u32]) -> Attention {
        attention(self.0, tok, prompt)
    }
}

pub fn next_token<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    prompt: &[u32],
    top_k: usize,
    candidates: &[String],
) -> NextToken {
    let candidates = candidates
        .iter()
        .map(|c| CandidateProb {
            text: c.clone(),
            prob: continuation_prob(model, prompt, &tok.encode(c), tok.vocab_size()),
        })
        .collect();
    NextToken {
        tokens: top_tokens(model, tok, prompt, top_k),
        candidates,
    }
}

#[derive(Debug, serde::Serialize)]
pub struct Attention {
    /// The prompt's tokens as text, one per position.
    pub tokens: Vec<String>,
    pub n_layer: usize,
    pub n_head: usize,
    /// `layers[l][h][query][key]`: how much `query` attends to `key` (0 for later keys).
    pub layers: Vec<Vec<Vec<Vec<f32>>>>,
}

pub fn attention<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    prompt: &[u32],
) -> Attention {
    let t = prompt.len();
    let x = model
        .device()
        .tensor_from_vec(prompt.iter().map(|&i| i as usize).collect(), (1, t));
    let n_head = model.config().n_head;
    let layers: Vec<_> = model
        .attention_weights(x)
        .into_iter()
        .map(|flat| {
            flat.chunks(t * t)
                .map(|head| head.chunks(t).map(|row| row.to_vec()).collect())
                .collect()
        })
        .collect();
    Attention {
        tokens: prompt.iter().map(|&i| tok.token_text(i)).collect(),
        n_layer: layers.len(),
        n_head,
        layers,
    }
}
