//! Special tokens: reserved as the first ids of every vocabulary, in a fixed order, so a
//! checkpoint's embedding rows for them mean the same thing whatever the tokenizer kind.

use tokenizers::AddedToken;

/// A special token. Its id is its position in [`Special::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Special {
    Pad,
    Unk,
    EndOfText,
    System,
    User,
    Assistant,
    /// Closes one turn of a conversation (system, user or assistant).
    EndOfTurn,
}

impl Special {
    /// All special tokens in id order: `Special::ALL[i]` has id `i`.
    pub const ALL: [Special; 7] = [
        Special::Pad,
        Special::Unk,
        Special::EndOfText,
        Special::System,
        Special::User,
        Special::Assistant,
        Special::EndOfTurn,
    ];

    /// The reserved ids, `RESERVED_IDS[i] == i`, so that one can be lent as a slice.
    pub const RESERVED_IDS: [u32; 7] = [0, 1, 2, 3, 4, 5, 6];

    /// Number of reserved ids; the first ordinary token has this id.
    pub const COUNT: u32 = Self::ALL.len() as u32;

    /// The fixed id of this token in every gptlab vocabulary.
    pub fn id(self) -> u32 {
        Self::ALL
            .iter()
            .position(|s| *s == self)
            .expect("ALL lists every variant") as u32
    }

    /// The token's text as it appears in `tokenizer.json`.
    pub fn name(self) -> &'static str {
        match self {
            Special::Pad => "<|pad|>",
            Special::Unk => "<|unk|>",
            Special::EndOfText => "<|endoftext|>",
            Special::System => "<|system|>",
            Special::User => "<|user|>",
            Special::Assistant => "<|assistant|>",
            Special::EndOfTurn => "<|end|>",
        }
    }

    /// The special token with this id, if the id is reserved.
    pub fn from_id(id: u32) -> Option<Special> {
        Self::ALL.get(id as usize).copied()
    }
}

/// The special tokens as HF added tokens, in id order (for trainers and `add_special_tokens`).
pub(crate) fn added_tokens() -> Vec<AddedToken> {
    Special::ALL
        .iter()
        .map(|s| AddedToken::from(s.name(), true))
        .collect()
}

/// Whether an HF tokenizer has any of gptlab's own special tokens (GPT-2's `<|endoftext|>`
/// aside): then gptlab trained it.
pub(crate) fn has_gptlab_specials(hf: &tokenizers::Tokenizer) -> bool {
    Special::ALL
        .iter()
        .filter(|s| **s != Special::EndOfText)
        .any(|s| hf.token_to_id(s.name()).is_some())
}

/// Checks that an HF tokenizer maps every special token to its reserved id.
pub(crate) fn check_reserved_ids(hf: &tokenizers::Tokenizer) -> anyhow::Result<()> {
    for special in Special::ALL {
        match hf.token_to_id(special.name()) {
            Some(id) if id == special.id() => {}
            Some(id) => anyhow::bail!(
                "special token {} has id {id}, expected {}",
                special.name(),
                special.id()
            ),
            None => anyhow::bail!(
                "special token {} is missing (expected id {})",
                special.name(),
                special.id()
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_documented_order() {
        let expected = [
            ("<|pad|>", 0),
            ("<|unk|>", 1),
            ("<|endoftext|>", 2),
            ("<|system|>", 3),
            ("<|user|>", 4),
            ("<|assistant|>", 5),
            ("<|end|>", 6),
        ];
        for (special, (name, id)) in Special::ALL.iter().zip(expected) {
            assert_eq!(special.name(), name);
            assert_eq!(special.id(), id);
            assert_eq!(Special::from_id(id), Some(*special));
            assert_eq!(Special::RESERVED_IDS[id as usize], id);
        }
        assert_eq!(Special::from_id(7), None);
    }
}
