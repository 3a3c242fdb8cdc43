//! GPT-2's pre-tokenizer: cuts text into the words that BPE merges never cross.
//!
//! HF runs the pattern below with a `\s+(?!\S)` alternative, whose lookahead forces the slow
//! backtracking engine of fancy-regex. The `regex` crate has no lookahead, so this file matches
//! `\s+` instead and gives back the last whitespace character when the run is followed by a
//! non-space: exactly what the lookahead alternative matches (it lets `" word"` keep its space).
//! `tests::same_words_as_hf` checks the equivalence against HF itself.

use std::sync::LazyLock;

use regex::Regex;

static WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+")
        .expect("the GPT-2 pattern is valid")
});

/// Calls `f` on each GPT-2 word of `text`, in order; the words concatenate to `text`.
pub(crate) fn for_each_word<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    let mut pos = 0;
    while pos < text.len() {
        // Every character is a letter, a number, whitespace or none of those, so a match
        // always starts right at `pos`.
        let found = WORD
            .find_at(text, pos)
            .expect("every character matches the GPT-2 pattern");
        debug_assert_eq!(found.start(), pos);
        let mut end = found.end();
        let word = found.as_str();
        let followed_by_non_space = text[end..]
            .chars()
            .next()
            .is_some_and(|c| !c.is_whitespace());
        if followed_by_non_space && word.chars().all(char::is_whitespace) {
            // `\s+(?!\S)`: leave the last whitespace character to the next word.
            let last = word.chars().next_back().expect("matches are non-empty");
            if last.len_utf8() < word.len() {
                end -= last.len_utf8();
            }
        }
        f(&text[pos..end]);
        pos = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

    fn ours(text: &str) -> Vec<&str> {
        let mut words = Vec::new();
        for_each_word(text, |w| words.push(w));
        words
    }

    /// HF's word boundaries, as byte offsets into `text`.
    fn hf_boundaries(text: &str) -> Vec<(usize, usize)> {
        let mut pieces = PreTokenizedString::from(text);
        ByteLevel::new(false, false, true)
            .pre_tokenize(&mut pieces)
            .unwrap();
        pieces
            .get_splits(OffsetReferential::Original, OffsetType::Byte)
            .into_iter()
            .map(|(_, offsets, _)| offsets)
            .collect()
    }

    fn our_boundaries(text: &str) -> Vec<(usize, usize)> {
        let mut pos = 0;
        ours(text)
            .into_iter()
            .map(|w| {
                pos += w.len();
                (pos - w.len(), pos)
            })
            .collect()
    }

    #[test]
    fn splits_like_gpt2() {
        assert_eq!(ours("Hello world"), vec!["Hello", " world"]);
        assert_eq!(ours("a   b"), vec!["a", "  ", " b"]);
        assert_eq!(ours("a \n\n b\n"), vec!["a", " \n\n", " b", "\n"]);
        assert_eq!(ours("it's 2024!!"), vec!["it", "'s", " 2024", "!!"]);
        assert_eq!(ours("床前明月光，疑是"), vec!["床前明月光", "，", "疑是"]);
        assert_eq!(ours("   "), vec!["   "]);
        assert_eq!(ours(""), Vec::<&str>::new());
    }

    #[test]
    fn same_words_as_hf() {
        let mut texts = vec![
            "To be, or not to be:\n  that is the question.\n\n\tWhether 'tis nobler I'll we've\r\n"
                .to_string(),
            "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。　全角空格\u{3000}x".to_string(),
            "😀🦀 𠀀 ½ ² ٣ Ⅻ \u{a0}nbsp \u{2028}sep \u{85}nel é\u{301} ᾯ 🇨🇳 ".to_string(),
        ];
        // Pseudo-random strings over a mixed alphabet, to hit odd neighbours.
        let alphabet: Vec<char> = " \n\t\r\u{a0}\u{3000}aZ'sé9½,.!-_😀床\u{301}ⅫIı"
            .chars()
            .collect();
        let mut state = 12345u64;
        for _ in 0..300 {
            let len = (state % 40) as usize;
            let mut s = String::new();
            for _ in 0..len {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push(alphabet[(state >> 33) as usize % alphabet.len()]);
            }
            texts.push(s);
        }
        for text in &texts {
            assert_eq!(our_boundaries(text), hf_boundaries(text), "{text:?}");
        }
    }
}
