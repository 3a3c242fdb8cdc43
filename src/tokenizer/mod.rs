//! Tokenizers: character-level and byte-level BPE trained by gptlab, and a pretrained
//! model's own tokenizer, behind one type.
//!
//! Every kind is stored as an HF `tokenizer.json` (so Python `transformers` can load it). The
//! trained kinds reserve the same first ids for the special tokens (see [`Special`]) and
//! encode and decode with native tables where HF's general pipeline would be slow or would
//! turn text that looks like `<|user|>` into a special token. A pretrained tokenizer keeps its
//! vocabulary as the model learnt it and runs the HF pipeline; it writes the chat template's
//! markers with ids it already has ([`Tokenizer::marker`], `hf_codec.rs`).

mod bpe;
mod char;
mod gpt2_split;
mod hf_codec;
pub mod pretrained;
mod special;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::Context;

use self::bpe::BpeCodec;
use self::char::CharCodec;
use self::hf_codec::HfCodec;
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
    /// A pretrained model's tokenizer, read from its folder (never trained by gptlab).
    Pretrained,
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
            TokenizerKind::Pretrained => "pretrained",
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
    Pretrained(HfCodec),
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
            TokenizerKind::Pretrained => {
                anyhow::bail!("a pretrained tokenizer is read from its model's folder, not trained")
            }
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

    /// A pretrained model's tokenizer (see [`load_pretrained_tokenizer`]), used as it is.
    pub fn pretrained(hf: tokenizers::Tokenizer) -> anyhow::Result<Tokenizer> {
        Ok(Tokenizer {
            codec: Codec::Pretrained(HfCodec::new(&hf)?),
            hf,
        })
    }

    /// Token ids of plain text. Text that looks like a special token (`"<|user|>"`) is
    /// encoded as ordinary characters: only the chat template inserts special ids. (A
    /// pretrained tokenizer's pipeline keeps its own special tokens, such as GPT-2's
    /// `<|endoftext|>`, whole, as the model was trained.)
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match &self.codec {
            Codec::Char(codec) => codec.encode(text),
            Codec::Bpe(codec) => codec.encode(&self.hf, text),
            Codec::Pretrained(codec) => codec.encode(&self.hf, text),
        }
    }

    /// The text of `ids`. Special ids, and ids beyond the vocabulary (a model whose compiled
    /// vocabulary is larger may sample them), are skipped. Byte-level tokens that do not
    /// form valid UTF-8 become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        match &self.codec {
            Codec::Char(codec) => codec.decode(ids),
            Codec::Bpe(codec) => codec.decode(ids),
            Codec::Pretrained(codec) => codec.decode(&self.hf, ids),
        }
    }

    /// Number of ids, special tokens included (ids are `0..vocab_size()`).
    pub fn vocab_size(&self) -> usize {
        match &self.codec {
            Codec::Char(codec) => codec.vocab_size(),
            Codec::Bpe(codec) => codec.vocab_size(),
            Codec::Pretrained(codec) => codec.vocab_size(),
        }
    }

    /// The one id of a special token that is one id in every tokenizer: pad, end of text and
    /// end of turn (and unk where the vocabulary has one). A trained tokenizer's turn headers
    /// are one id too, but a pretrained one writes them as several: the chat template asks
    /// [`Tokenizer::marker`] for those.
    pub fn special(&self, s: Special) -> u32 {
        let marker = self.marker(s);
        debug_assert_eq!(marker.len(), 1, "{} is {marker:?}", s.name());
        marker.first().copied().unwrap_or(s.id())
    }

    /// The ids that stand for `s`: its reserved id in a trained tokenizer; in a pretrained
    /// one, the turn headers' text as ordinary tokens and the tokenizer's own end token for
    /// pad, end of text and end of turn (`hf_codec.rs` says why).
    pub fn marker(&self, s: Special) -> &[u32] {
        match &self.codec {
            Codec::Pretrained(codec) => codec.marker(s),
            _ => &Special::RESERVED_IDS[s.id() as usize..s.id() as usize + 1],
        }
    }

    /// The text of the token that ends a turn: `<|end|>` in a trained tokenizer, the
    /// tokenizer's own end token in a pretrained one (for templates written elsewhere).
    pub fn end_of_turn_text(&self) -> String {
        self.token_text(self.special(Special::EndOfTurn))
    }

    pub fn is_special(&self, id: u32) -> bool {
        match &self.codec {
            Codec::Pretrained(codec) => codec.is_special(&self.hf, id),
            _ => Special::from_id(id).is_some(),
        }
    }

    /// How many UTF-8 bytes of text token `id` stands for (for bits per byte); 0 for special
    /// tokens (including `<|unk|>`) and ids beyond the vocabulary.
    pub fn token_bytes(&self, id: u32) -> usize {
        match &self.codec {
            Codec::Char(codec) => codec.char_of(id).map_or(0, |c| c.len_utf8()),
            Codec::Bpe(codec) => codec.bytes_of(id).len(),
            Codec::Pretrained(codec) => codec.token_bytes(&self.hf, id),
        }
    }

    /// One token as readable text, for probe tables: specials by name, byte-level pieces
    /// that are not whole UTF-8 characters as `\xNN` escapes.
    pub fn token_text(&self, id: u32) -> String {
        if let Codec::Pretrained(codec) = &self.codec {
            return codec.token_text(&self.hf, id);
        }
        if let Some(special) = Special::from_id(id) {
            return special.name().to_string();
        }
        if id as usize >= self.vocab_size() {
            return format!("<|id {id}|>");
        }
        match &self.codec {
            Codec::Char(codec) => codec.char_of(id).map(String::from).unwrap_or_default(),
            Codec::Bpe(codec) => escape_invalid_utf8(codec.bytes_of(id)),
            Codec::Pretrained(codec) => codec.token_text(&self.hf, id),
        }
    }

    pub fn kind(&self) -> TokenizerKind {
        match self.codec {
            Codec::Char(_) => TokenizerKind::Char,
            Codec::Bpe(_) => TokenizerKind::Bpe,
            Codec::Pretrained(_) => TokenizerKind::Pretrained,
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

    /// Reads a `tokenizer.json` written by [`Tokenizer::save`]: a trained one (a WordLevel
    /// model of single characters, or a byte-level BPE, with the special tokens at their
    /// reserved ids), or any other HF tokenizer, taken as a pretrained model's.
    pub fn load(path: &Path) -> anyhow::Result<Tokenizer> {
        let json = std::fs::read_to_string(path)
            .with_context(|| format!("reading tokenizer file {}", path.display()))?;
        Self::from_json(&json).with_context(|| format!("loading tokenizer file {}", path.display()))
    }

    fn from_json(json: &str) -> anyhow::Result<Tokenizer> {
        let hf = tokenizers::Tokenizer::from_str(json)
            .map_err(|e| anyhow::anyhow!("not a valid HF tokenizer.json: {e}"))?;
        Tokenizer::from_hf(hf)
    }

    /// An HF tokenizer as gptlab uses it: one gptlab trained (it has gptlab's own special
    /// tokens, e.g. a folder `gptlab export` wrote) with its native tables, and refused when
    /// they are not at their reserved ids; any other as a pretrained model's.
    pub fn from_hf(hf: tokenizers::Tokenizer) -> anyhow::Result<Tokenizer> {
        if !special::has_gptlab_specials(&hf) {
            return Tokenizer::pretrained(hf);
        }
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
