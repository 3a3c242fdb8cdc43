//! Tokenizers: character-level and byte-level BPE behind one type.
//!
//! Both kinds are stored as an HF `tokenizer.json` (so Python `transformers` can load them)
//! and reserve the same first ids for the special tokens (see [`Special`]). Encoding and
//! decoding use native tables where HF's general pipeline would be slow or would turn text
//! that looks like `<|user|>` into a special token.

mod bpe;
mod char;
mod gpt2_split;
pub mod pretrained;
mod special;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::Context;

use self::bpe::BpeCodec;
use self::char::CharCodec;
pub use self::pretrained::load_pretrained_tokenizer;
pub use self::special::Special;

/// Which tokenizer a spec asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKind {
    /// One token per Unicode character; the most frequent characters form the vocabulary.
    Char,
    /// Byte-level BPE (GPT-2 style) trained on the data.
    Bpe,
}

impl FromStr for TokenizerKind {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "char" => Ok(TokenizerKind::Char),
            "bpe" => Ok(TokenizerKind::Bpe),
            other => {
                anyhow::bail!("unknown tokenizer kind {other:?}: expected \"char\" or \"bpe\"")
            }
        }
    }
}

impl fmt::Display for TokenizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenizerKind::Char => "char",
            TokenizerKind::Bpe => "bpe",
        })
    }
}

/// A trained tokenizer: the HF form (what is saved) plus the native tables used to encode
/// and decode.
#[derive(Clone)]
pub struct Tokenizer {
    hf: tokenizers::Tokenizer,
    codec: Codec,
}

#[derive(Clone)]
enum Codec {
    Char(CharCodec),
    Bpe(BpeCodec),
}

impl Tokenizer {
    /// Trains a tokenizer with `vocab_size` ids in all, special tokens included.
    ///
    /// A char vocabulary holds the `vocab_size - 7` most frequent characters, so it is smaller
    /// when the texts have fewer distinct characters; likewise BPE stops early when no pair
    /// occurs twice. [`Tokenizer::vocab_size`] gives the size actually reached. BPE training
    /// sees at most 4 MB of evenly spaced chunks of the texts (see `bpe.rs`).
    pub fn train(
        kind: TokenizerKind,
        texts: &[&str],
        vocab_size: usize,
    ) -> anyhow::Result<Tokenizer> {
        let tokenizer = match kind {
            TokenizerKind::Char => {
                let codec = CharCodec::train(texts, vocab_size)?;
                Tokenizer {
                    hf: codec.to_hf()?,
                    codec: Codec::Char(codec),
                }
            }
            TokenizerKind::Bpe => {
                let hf = BpeCodec::train(texts, vocab_size)?;
                Tokenizer {
                    codec: Codec::Bpe(BpeCodec::from_hf(&hf)?),
                    hf,
                }
            }
        };
        Ok(tokenizer)
    }

    /// Token ids of plain text. Text that looks like a special token (`"<|user|>"`) is
    /// encoded as ordinary characters: only the chat template inserts special ids.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match &self.codec {
            Codec::Char(codec) => codec.encode(text),
            Codec::Bpe(codec) => codec.encode(&self.hf, text),
        }
    }

    /// The text of `ids`. Special ids, and ids beyond the vocabulary (a model whose compiled
    /// vocabulary is larger may sample them), are skipped. Byte-level tokens that do not
    /// form valid UTF-8 become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        match &self.codec {
            Codec::Char(codec) => codec.decode(ids),
            Codec::Bpe(codec) => codec.decode(ids),
        }
    }

    /// Number of ids, special tokens included (ids are `0..vocab_size()`).
    pub fn vocab_size(&self) -> usize {
        match &self.codec {
            Codec::Char(codec) => codec.vocab_size(),
            Codec::Bpe(codec) => codec.vocab_size(),
        }
    }

    /// The fixed id of a special token (the same in every gptlab tokenizer).
    pub fn special(&self, s: Special) -> u32 {
        s.id()
    }

    pub fn is_special(&self, id: u32) -> bool {
        Special::from_id(id).is_some()
    }

    /// How many UTF-8 bytes of text token `id` stands for (for bits per byte); 0 for special
    /// tokens (including `<|unk|>`) and ids beyond the vocabulary.
    pub fn token_bytes(&self, id: u32) -> usize {
        match &self.codec {
            Codec::Char(codec) => codec.char_of(id).map_or(0, |c| c.len_utf8()),
            Codec::Bpe(codec) => codec.bytes_of(id).len(),
        }
    }

    /// One token as readable text, for probe tables: specials by name, byte-level pieces
    /// that are not whole UTF-8 characters as `\xNN` escapes.
    pub fn token_text(&self, id: u32) -> String {
        if let Some(special) = Special::from_id(id) {
            return special.name().to_string();
        }
        if id as usize >= self.vocab_size() {
            return format!("<|id {id}|>");
        }
        match &self.codec {
            Codec::Char(codec) => codec.char_of(id).map(String::from).unwrap_or_default(),
            Codec::Bpe(codec) => escape_invalid_utf8(codec.bytes_of(id)),
        }
    }

    pub fn kind(&self) -> TokenizerKind {
        match self.codec {
            Codec::Char(_) => TokenizerKind::Char,
            Codec::Bpe(_) => TokenizerKind::Bpe,
        }
    }

    /// The HF tokenizer (e.g. to export a model for `transformers`). Note that its `encode`
    /// turns `<|user|>`-like text into special ids, unlike [`Tokenizer::encode`].
    pub fn hf(&self) -> &tokenizers::Tokenizer {
        &self.hf
    }

    /// Writes the HF `tokenizer.json` atomically.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let json = self
            .hf
            .to_string(true)
            .map_err(|e| anyhow::anyhow!("serializing tokenizer for {}: {e}", path.display()))?;
        crate::util::write_atomic(path, json.as_bytes())
    }

    /// Reads a `tokenizer.json` written by [`Tokenizer::save`] (or any HF tokenizer with the
    /// same layout: a WordLevel model of single characters, or a byte-level BPE, with the
    /// special tokens at their reserved ids).
    pub fn load(path: &Path) -> anyhow::Result<Tokenizer> {
        let json = std::fs::read_to_string(path)
            .with_context(|| format!("reading tokenizer file {}", path.display()))?;
        Self::from_json(&json).with_context(|| format!("loading tokenizer file {}", path.display()))
    }

    fn from_json(json: &str) -> anyhow::Result<Tokenizer> {
        let hf = tokenizers::Tokenizer::from_str(json)
            .map_err(|e| anyhow::anyhow!("not a valid HF tokenizer.json: {e}"))?;
        let codec = match hf.get_model() {
            tokenizers::ModelWrapper::WordLevel(_) => Codec::Char(CharCodec::from_hf(&hf)?),
            tokenizers::ModelWrapper::BPE(_) => Codec::Bpe(BpeCodec::from_hf(&hf)?),
            _ => anyhow::bail!("unsupported model type: expected WordLevel (char) or BPE (bpe)"),
        };
        Ok(Tokenizer { hf, codec })
    }
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.kind())
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

/// Valid UTF-8 as text, the other bytes as `\xNN`.
fn escape_invalid_utf8(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
