//! Byte-level BPE (the GPT-2 scheme), trained with HF's `BpeTrainer`.
//!
//! Every byte is in the initial alphabet, so any UTF-8 text encodes without `<|unk|>`.
//! Encoding is native: GPT-2 words (see `gpt2_split.rs`), then the merges in rank order, as
//! HF's BPE model applies them, with a cache of words already seen. It skips HF's
//! added-vocabulary pass, so text that merely looks like `<|user|>` stays plain text, and it is
//! several times faster than HF's pipeline, which builds offset tables for every piece.
//! Tests check it against HF id for id.

use std::collections::HashMap;

use anyhow::{bail, Context};
use rayon::prelude::*;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{ModelWrapper, PreTokenizerWrapper};

use super::gpt2_split;
use super::special::{self, Special};

/// The BPE trainer sees at most this much text. It counts distinct pre-tokenized words, and
/// its time and memory grow with their number (8 MB of Chinese poetry take ~30 s on two
/// cores); a few MB already give stable merges for vocabularies of a few thousand tokens.
/// Larger corpora are subsampled by taking evenly spaced chunks (see [`training_sample`]),
/// which keeps the sample spread over every file and deterministic.
const MAX_TRAINING_BYTES: usize = 4 << 20;

/// Texts are cut into chunks of about this size for parallel training and encoding.
const CHUNK_BYTES: usize = 64 << 10;

/// Words longer than this many bytes are merged with HF's model: the simple merge loop here
/// is quadratic in the word length (fine for words, not for a megabyte of `=====`).
const MAX_NATIVE_WORD_BYTES: usize = 256;

/// A cache of encoded words is dropped when it holds this many (bounds memory on huge corpora).
const MAX_CACHED_WORDS: usize = 200_000;

/// Rank of a pair that has no merge.
const NO_MERGE: u32 = u32::MAX;

/// Native encode/decode tables of a byte-level BPE vocabulary.
#[derive(Debug, Clone)]
pub(crate) struct BpeCodec {
    /// The bytes each id stands for; empty for the special ids.
    bytes: Vec<Vec<u8>>,
    /// The id of each single-byte token.
    byte_ids: Box<[u32; 256]>,
    /// `pair_key(left, right) -> (rank, merged id)`: lower ranks merge first.
    merges: HashMap<u64, (u32, u32), BuildPairHasher>,
}

impl BpeCodec {
    /// Trains a byte-level BPE with `vocab_size` ids in all (specials, 256 bytes, merges).
    pub(crate) fn train(
        texts: &[&str],
        vocab_size: usize,
    ) -> anyhow::Result<tokenizers::Tokenizer> {
        let minimum = Special::COUNT as usize + 256;
        if vocab_size < minimum {
            bail!("bpe vocab_size {vocab_size} is too small: it needs at least {minimum} (7 special tokens + 256 bytes)");
        }
        let sample = training_sample(texts, MAX_TRAINING_BYTES);
        if sample.iter().all(|chunk| chunk.is_empty()) {
            bail!("cannot train a bpe tokenizer: the training texts are empty");
        }
        let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(special::added_tokens())
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build()
            .into();
        let mut hf = tokenizers::Tokenizer::new(BPE::default());
        hf.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        hf.with_decoder(Some(ByteLevelDecoder::new(false, true, true)));
        // As in GPT-2's tokenizer.json (it only adjusts offsets, never ids).
        hf.with_post_processor(Some(ByteLevel::new(false, false, true)));
        hf.train(&mut trainer, sample.into_iter())
            .map_err(|e| anyhow::anyhow!("training the bpe tokenizer: {e}"))?;
        special::check_reserved_ids(&hf).context("after bpe training")?;
        Ok(hf)
    }

    /// Reads the vocabulary of an HF byte-level BPE tokenizer.
    pub(crate) fn from_hf(hf: &tokenizers::Tokenizer) -> anyhow::Result<BpeCodec> {
        let ModelWrapper::BPE(model) = hf.get_model() else {
            bail!("expected a BPE model for a bpe tokenizer");
        };
        if !matches!(
            hf.get_pre_tokenizer(),
            Some(PreTokenizerWrapper::ByteLevel(_))
        ) {
            bail!("expected a ByteLevel pre-tokenizer: gptlab's bpe is byte-level");
        }
        special::check_reserved_ids(hf)?;
        let vocab = tokenizers::Model::get_vocab(model);
        let char_to_byte = char_to_byte();
        let mut bytes: Vec<Option<Vec<u8>>> = vec![None; vocab.len()];
        for (token, &id) in &vocab {
            let slot = bytes.get_mut(id as usize).with_context(|| {
                format!(
                    "token {token:?} has id {id}, but ids must be 0..{} without gaps",
                    vocab.len()
                )
            })?;
            *slot = Some(if Special::from_id(id).is_some() {
                Vec::new()
            } else {
                token
                    .chars()
                    .map(|c| char_to_byte.get(&c).copied())
                    .collect::<Option<Vec<u8>>>()
                    .with_context(|| {
                        format!("token {token:?} (id {id}) is not in the byte-level alphabet")
                    })?
            });
        }
        let bytes: Vec<Vec<u8>> = bytes
            .into_iter()
            .enumerate()
            .map(|(id, b)| {
                b.with_context(|| format!("no token has id {id}: ids must not have gaps"))
            })
            .collect::<anyhow::Result<_>>()?;
        // Without every single byte some text could not be encoded (there is no unk fallback).
        let mut byte_ids = Box::new([u32::MAX; 256]);
        for (id, b) in bytes.iter().enumerate() {
            if let [single] = b.as_slice() {
                byte_ids[*single as usize] = id as u32;
            }
        }
        if let Some(missing) = byte_ids.iter().position(|&id| id == u32::MAX) {
            bail!("the vocabulary has no token for byte 0x{missing:02X}: byte-level BPE needs all 256");
        }
        // The native encoder implements plain BPE; refuse options that would change its result.
        if model.dropout.is_some_and(|p| p > 0.0) || model.ignore_merges {
            bail!("BPE dropout and ignore_merges are not supported");
        }
        if model.continuing_subword_prefix.is_some() || model.end_of_word_suffix.is_some() {
            bail!("BPE continuing_subword_prefix / end_of_word_suffix are not supported by byte-level BPE");
        }
        let merges = read_merges(model, &vocab)?;
        Ok(BpeCodec {
            bytes,
            byte_ids,
            merges,
        })
    }

    pub(crate) fn vocab_size(&self) -> usize {
        self.bytes.len()
    }

    /// The bytes token `id` stands for (empty for specials and unknown ids).
    pub(crate) fn bytes_of(&self, id: u32) -> &[u8] {
        self.bytes
            .get(id as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub(crate) fn encode(&self, hf: &tokenizers::Tokenizer, text: &str) -> Vec<u32> {
        if text.len() <= CHUNK_BYTES {
            return self.encode_chunk(hf, text, &mut HashMap::new());
        }
        chunks(text, CHUNK_BYTES)
            .par_iter()
            .map_init(HashMap::new, |cache, chunk| {
                self.encode_chunk(hf, chunk, cache)
            })
            .collect::<Vec<_>>()
            .concat()
    }

    fn encode_chunk(
        &self,
        hf: &tokenizers::Tokenizer,
        text: &str,
        cache: &mut HashMap<Box<str>, Box<[u32]>>,
    ) -> Vec<u32> {
        if cache.len() > MAX_CACHED_WORDS {
            cache.clear();
        }
        let mut ids = Vec::with_capacity(text.len() / 2);
        gpt2_split::for_each_word(text, |word| match cache.get(word) {
            Some(cached) => ids.extend_from_slice(cached),
            None => {
                let encoded = self.encode_word(hf, word);
                ids.extend_from_slice(&encoded);
                cache.insert(word.into(), encoded.into());
            }
        });
        ids
    }

    /// One GPT-2 word: its bytes, then merges lowest rank first (leftmost on ties), as HF does.
    fn encode_word(&self, hf: &tokenizers::Tokenizer, word: &str) -> Vec<u32> {
        if word.len() > MAX_NATIVE_WORD_BYTES {
            return hf_encode_word(hf, word);
        }
        let mut ids: Vec<u32> = word.bytes().map(|b| self.byte_ids[b as usize]).collect();
        // merges[i]: (rank, merged id) of the pair ids[i], ids[i + 1]; updated locally after
        // each merge so only two pairs are looked up again.
        let mut pairs: Vec<(u32, u32)> =
            ids.windows(2).map(|w| self.merge_of(w[0], w[1])).collect();
        while let Some((i, &(rank, merged))) =
            pairs.iter().enumerate().min_by_key(|(_, (rank, _))| *rank)
        {
            if rank == NO_MERGE {
                break;
            }
            ids[i] = merged;
            ids.remove(i + 1);
            pairs.remove(i);
            if i > 0 {
                pairs[i - 1] = self.merge_of(ids[i - 1], ids[i]);
            }
            if i + 1 < ids.len() {
                pairs[i] = self.merge_of(ids[i], ids[i + 1]);
            }
        }
        ids
    }

    /// `(rank, merged id)` of a pair, or `(NO_MERGE, 0)`.
    fn merge_of(&self, left: u32, right: u32) -> (u32, u32) {
        self.merges
            .get(&pair_key(left, right))
            .copied()
            .unwrap_or((NO_MERGE, 0))
    }

    pub(crate) fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .flat_map(|&id| self.bytes_of(id))
            .copied()
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The merges of an HF BPE model, read from its serialized form (the model keeps them private).
fn read_merges(
    model: &BPE,
    vocab: &HashMap<String, u32>,
) -> anyhow::Result<HashMap<u64, (u32, u32), BuildPairHasher>> {
    let json = serde_json::to_value(model).context("serializing the BPE model")?;
    let list = json
        .get("merges")
        .and_then(|m| m.as_array())
        .context("the BPE model has no merges list")?;
    let id = |token: &str| {
        vocab
            .get(token)
            .copied()
            .with_context(|| format!("merge part {token:?} is not in the vocabulary"))
    };
    let mut merges = HashMap::with_capacity_and_hasher(list.len(), BuildPairHasher::default());
    for (rank, entry) in list.iter().enumerate() {
        // Newer files store ["a", "b"], older ones "a b".
        let (left, right) = match entry {
            serde_json::Value::Array(pair) => match pair.as_slice() {
                [serde_json::Value::String(l), serde_json::Value::String(r)] => {
                    (l.as_str(), r.as_str())
                }
                _ => bail!("merge {rank} is not a pair of strings: {entry}"),
            },
            serde_json::Value::String(pair) => pair
                .split_once(' ')
                .with_context(|| format!("merge {rank} {pair:?} is not \"left right\""))?,
            _ => bail!("merge {rank} is not a pair of strings: {entry}"),
        };
        let merged = id(&format!("{left}{right}"))?;
        merges.insert(pair_key(id(left)?, id(right)?), (rank as u32, merged));
    }
    Ok(merges)
}

fn pair_key(left: u32, right: u32) -> u64 {
    (u64::from(left) << 32) | u64::from(right)
}

/// Multiplicative hashing for the merge table: its keys are trusted ids, and SipHash (the
/// default, built against hostile keys) would be most of the encoding time.
#[derive(Default, Clone, Copy)]
struct PairHasher(u64);

impl std::hash::Hasher for PairHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, key: u64) {
        self.0 = (self.0 ^ key)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(26);
    }
}

type BuildPairHasher = std::hash::BuildHasherDefault<PairHasher>;

/// HF's BPE model on one GPT-2 word (the byte-level characters of its bytes).
fn hf_encode_word(hf: &tokenizers::Tokenizer, word: &str) -> Vec<u32> {
    let byte_chars = byte_to_char();
    let chars: String = word.bytes().map(|b| byte_chars[b as usize]).collect();
    tokenizers::Model::tokenize(hf.get_model(), &chars)
        .expect("byte-level BPE has a token for every byte")
        .into_iter()
        .map(|t| t.id)
        .collect()
}

/// Cuts `text` into pieces of about `target` bytes, only right after a newline that is
/// followed by a non-whitespace character. The GPT-2 pre-tokenizer regex always has a piece
/// boundary there, so encoding the chunks separately gives exactly the ids of the whole.
fn chunks(text: &str, target: usize) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    while text.len() - start > target {
        let mut cut = start + target;
        while cut < bytes.len() && !is_safe_cut(bytes, cut) {
            cut += 1;
        }
        out.push(&text[start..cut]);
        start = cut;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// A cut right after a newline, before a byte that surely starts no whitespace character.
fn is_safe_cut(bytes: &[u8], cut: usize) -> bool {
    bytes[cut - 1] == b'\n' && !is_ascii_or_utf8_space_start(bytes[cut])
}

/// Conservative "might start a whitespace character" test on one byte: ASCII whitespace, or
/// any non-ASCII lead byte (some of which start Unicode spaces). Cutting only before bytes that
/// are surely not whitespace keeps the boundary argument in [`chunks`] exact; and since the
/// byte follows a `\n`, it is always at a char boundary.
fn is_ascii_or_utf8_space_start(b: u8) -> bool {
    b.is_ascii_whitespace() || b == 0x0b || b >= 0x80
}

/// The text the trainer sees: everything when it fits in `budget` bytes, else every k-th
/// chunk (deterministic, spread evenly over all texts).
fn training_sample<'a>(texts: &[&'a str], budget: usize) -> Vec<&'a str> {
    let all: Vec<&str> = texts.iter().flat_map(|t| chunks(t, CHUNK_BYTES)).collect();
    let total: usize = all.iter().map(|c| c.len()).sum();
    if total <= budget {
        return all;
    }
    let stride = total.div_ceil(budget);
    all.into_iter().step_by(stride).collect()
}

/// GPT-2's byte -> printable character table (`tokenizer.json` stores byte-level tokens as
/// these characters): printable Latin-1 bytes stand for themselves, the others are shifted to
/// 256 and up.
fn byte_to_char() -> [char; 256] {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut table = ['\0'; 256];
    let mut shifted = 0u32;
    for b in 0..=255u8 {
        table[b as usize] = if printable(b) {
            b as char
        } else {
            shifted += 1;
            char::from_u32(255 + shifted).expect("256..512 are valid chars")
        };
    }
    table
}

fn char_to_byte() -> HashMap<char, u8> {
    byte_to_char().into_iter().zip(0..=255u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_matches_hf_alphabet() {
        let ours: std::collections::HashSet<char> = char_to_byte().keys().copied().collect();
        let hf: std::collections::HashSet<char> = ByteLevel::alphabet().into_iter().collect();
        assert_eq!(ours, hf);
        assert_eq!(char_to_byte()[&'Ġ'], b' ');
        assert_eq!(char_to_byte()[&'Ā'], 0);
        assert_eq!(char_to_byte()[&'Ċ'], b'\n');
    }

    #[test]
    fn chunks_cover_the_text_and_cut_only_after_newlines() {
        let text = "line one\n  indented\nnext\n\n\nafter blanks\n世界\nend".repeat(50);
        let pieces = chunks(&text, 40);
        assert!(pieces.len() > 10);
        assert_eq!(pieces.concat(), text);
        for piece in &pieces[1..] {
            let first = piece.as_bytes()[0];
            assert!(
                !first.is_ascii_whitespace() && first < 0x80,
                "cut before {piece:?}"
            );
        }
    }

    fn trained(text: &str) -> (tokenizers::Tokenizer, BpeCodec) {
        let hf = BpeCodec::train(&[text], 400).unwrap();
        let codec = BpeCodec::from_hf(&hf).unwrap();
        (hf, codec)
    }

    fn hf_reference(hf: &tokenizers::Tokenizer, text: &str) -> Vec<u32> {
        hf.encode(text, false).unwrap().get_ids().to_vec()
    }

    #[test]
    fn chunked_native_encoding_equals_hf_on_the_whole_text() {
        let text =
            "To be, or not to be:\n  that is the question.\n\n\nWhether 'tis nobler\n世界 你好\n"
                .repeat(40);
        let (hf, codec) = trained(&text);
        let mut cache = HashMap::new();
        let pieces: Vec<u32> = chunks(&text, 100)
            .iter()
            .flat_map(|c| codec.encode_chunk(&hf, c, &mut cache))
            .collect();
        assert_eq!(pieces, hf_reference(&hf, &text));
        assert_eq!(
            codec.encode(&hf, &text.repeat(50)),
            hf_reference(&hf, &text.repeat(50))
        );
    }

    #[test]
    fn long_words_use_hf_and_agree() {
        let (hf, codec) = trained(&"aaaa bbbb ==== ab=a\n".repeat(50));
        for text in [
            "a".repeat(1000),
            "=".repeat(777),
            format!("x{}y", " ".repeat(300)),
        ] {
            assert_eq!(codec.encode(&hf, &text), hf_reference(&hf, &text));
        }
    }

    #[test]
    fn sample_is_everything_under_budget_and_bounded_over_it() {
        let text = "abc\n".repeat(100_000);
        assert_eq!(training_sample(&[&text], usize::MAX).concat(), text);
        let sample: usize = training_sample(&[&text], 100_000)
            .iter()
            .map(|c| c.len())
            .sum();
        assert!(sample <= 100_000 + CHUNK_BYTES, "sample of {sample} bytes");
        assert!(sample > 0);
    }

    #[test]
    fn too_small_a_vocabulary_is_an_error() {
        let err = BpeCodec::train(&["hello"], 200).unwrap_err().to_string();
        assert!(err.contains("at least 263"), "{err}");
    }
}
