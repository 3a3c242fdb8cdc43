//! The codec of a pretrained tokenizer (a Hugging Face folder's, `pretrained.rs`): text goes
//! through the HF pipeline as the model was trained with it, and the chat template is written
//! with what that vocabulary already has.
//!
//! A pretrained vocabulary has no `<|user|>` rows, and adding some would not help: under LoRA
//! the embedding is frozen, so new rows could never learn. So the turn headers are plain text
//! (the same `<|system|>`, `<|user|>`, `<|assistant|>` strings a trained tokenizer reserves ids
//! for), split by the tokenizer into several ordinary ids, and the end of a turn, of a text and
//! the padding are all the tokenizer's own end token (GPT-2's `<|endoftext|>`, a BERT
//! vocabulary's `[SEP]`), the one token the model already learnt to stop at.

use anyhow::{bail, Result};

use super::special::Special;

/// End tokens in the order they are looked for: GPT-2's, BERT's, then the common `</s>`.
const END_TOKENS: [&str; 3] = ["<|endoftext|>", "[SEP]", "</s>"];

#[derive(Clone, Debug)]
pub struct HfCodec {
    end: u32,
    unk: Option<u32>,
    /// The ids of each turn header's text, in `Special::ALL` order (system, user, assistant).
    headers: [Vec<u32>; 3],
    vocab_size: usize,
}

impl HfCodec {
    /// The codec of `hf`; refused when it has no end token to stop generation at.
    pub fn new(hf: &tokenizers::Tokenizer) -> Result<HfCodec> {
        let Some(end) = END_TOKENS.iter().find_map(|t| hf.token_to_id(t)) else {
            bail!(
                "the tokenizer has none of the end tokens {}: a chat answer must end with a token \
                 the model knows",
                END_TOKENS.join(", ")
            );
        };
        let encode = |s: Special| encode(hf, s.name());
        Ok(HfCodec {
            end,
            unk: ["[UNK]", "<unk>", "<|unk|>"]
                .iter()
                .find_map(|t| hf.token_to_id(t)),
            headers: [
                encode(Special::System),
                encode(Special::User),
                encode(Special::Assistant),
            ],
            vocab_size: hf.get_vocab_size(true),
        })
    }

    pub fn encode(&self, hf: &tokenizers::Tokenizer, text: &str) -> Vec<u32> {
        encode(hf, text)
    }

    /// Ids beyond the vocabulary (a padded LM head may sample them) and special tokens are
    /// skipped, as in a trained tokenizer.
    pub fn decode(&self, hf: &tokenizers::Tokenizer, ids: &[u32]) -> String {
        let known: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&id| (id as usize) < self.vocab_size)
            .collect();
        hf.decode(&known, true).unwrap_or_default()
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The ids that stand for `s`: see the module comment.
    pub fn marker(&self, s: Special) -> &[u32] {
        match s {
            Special::System => &self.headers[0],
            Special::User => &self.headers[1],
            Special::Assistant => &self.headers[2],
            Special::Unk => self.unk.as_slice(),
            Special::Pad | Special::EndOfText | Special::EndOfTurn => {
                std::slice::from_ref(&self.end)
            }
        }
    }

    /// The text of one token, as the pipeline decodes it alone (special tokens included).
    pub fn token_text(&self, hf: &tokenizers::Tokenizer, id: u32) -> String {
        hf.decode(&[id], false).unwrap_or_default()
    }

    /// UTF-8 bytes of text the token stands for, for bits per byte: a byte-level BPE token's
    /// bytes (one per character of its stored form), else its decoded text without a `##`
    /// continuation mark; 0 for special tokens.
    pub fn token_bytes(&self, hf: &tokenizers::Tokenizer, id: u32) -> usize {
        if self.is_special(hf, id) || id as usize >= self.vocab_size {
            return 0;
        }
        let Some(stored) = hf.id_to_token(id) else {
            return 0;
        };
        match hf.get_pre_tokenizer() {
            Some(tokenizers::PreTokenizerWrapper::ByteLevel(_)) => stored.chars().count(),
            _ => stored.trim_start_matches("##").len(),
        }
    }

    pub fn is_special(&self, hf: &tokenizers::Tokenizer, id: u32) -> bool {
        id == self.end
            || Some(id) == self.unk
            || hf
                .get_added_tokens_decoder()
                .get(&id)
                .is_some_and(|t| t.special)
    }
}

/// The pipelines gptlab builds or reads (no truncation, no padding) do not fail on text: a
/// failure is a bug, not bad input.
fn encode(hf: &tokenizers::Tokenizer, text: &str) -> Vec<u32> {
    hf.encode(text, false)
        .unwrap_or_else(|e| panic!("the HF tokenizer failed on {text:?}: {e}"))
        .get_ids()
        .to_vec()
}
