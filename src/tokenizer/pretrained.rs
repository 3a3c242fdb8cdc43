//! The tokenizer of a pretrained Hugging Face GPT-2 folder, built by the `tokenizers` crate
//! from whichever of GPT-2's three forms the folder ships:
//!
//! - `tokenizer.json`: the whole pipeline, read as is;
//! - `vocab.json` + `merges.txt`: byte-level BPE, set up as `gpt2`'s own `tokenizer.json`
//!   (no prefix space, ByteLevel decoder);
//! - `vocab.txt`: BERT WordPiece, as the Chinese GPT-2 family (`uer/gpt2-chinese-*`) ships
//!   with `BertTokenizer`: BERT's normaliser (clean text, a space around every CJK character,
//!   lowercase and, with it, accents stripped), BERT's pre-tokenizer, `##` continuations.
//!   No `[CLS] … [SEP]` is added around encoded text (a language model continues text), and
//!   the decoder does not "clean up" (HF's cleanup turns " do not" into " don't"), so decoding
//!   gives the tokens joined by spaces.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

/// GPT-2's one special token, the end of a text.
const GPT2_END: &str = "<|endoftext|>";

/// BERT's special tokens, kept whole by the tokenizer when they are in `vocab.txt`.
const BERT_SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// The tokenizer of the HF folder `dir`, from `tokenizer.json`, else `vocab.json` +
/// `merges.txt`, else `vocab.txt`.
pub fn load_pretrained_tokenizer(dir: &Path) -> Result<Tokenizer> {
    let file = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
    let read = || format!("reading the tokenizer of {}", dir.display());
    if let Some(json) = file("tokenizer.json") {
        return Tokenizer::from_file(&json)
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| format!("reading {} as an HF tokenizer.json", json.display()));
    }
    match (file("vocab.json"), file("merges.txt"), file("vocab.txt")) {
        (Some(vocab), Some(merges), _) => byte_level_bpe(&vocab, &merges).with_context(read),
        (_, _, Some(vocab)) => bert_wordpiece(&vocab).with_context(read),
        (vocab_json, merges, _) => bail!(
            "{} holds no tokenizer gptlab can read: expected tokenizer.json (any HF \
             tokenizer), or vocab.json with merges.txt (GPT-2's byte-level BPE), or vocab.txt \
             (a BERT WordPiece vocabulary, as the Chinese GPT-2 models ship){}. Download the \
             model's tokenizer files into the folder too (`huggingface-cli download <model> \
             --local-dir <folder>` fetches them with the weights).",
            dir.display(),
            match (vocab_json, merges) {
                (Some(_), None) => "; vocab.json is there but merges.txt is missing",
                (None, Some(_)) => "; merges.txt is there but vocab.json is missing",
                _ => "",
            }
        ),
    }
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| anyhow!("{} is not a UTF-8 path", path.display()))
}

/// GPT-2's byte-level BPE, configured as the `tokenizer.json` that `gpt2` ships.
fn byte_level_bpe(vocab: &Path, merges: &Path) -> Result<Tokenizer> {
    let bpe = BPE::from_file(path_str(vocab)?, path_str(merges)?)
        .build()
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("reading {} and {}", vocab.display(), merges.display()))?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_decoder(Some(ByteLevelDecoder::new(false, true, true)));
    tokenizer.with_post_processor(Some(ByteLevel::new(false, true, true)));
    // GPT-2's vocab.json lists `<|endoftext|>` as an ordinary entry; its tokenizer.json makes
    // it a special token, kept whole and skipped when decoding.
    if tokenizer.token_to_id(GPT2_END).is_some() {
        tokenizer.add_special_tokens(&[AddedToken::from(GPT2_END, true)]);
    }
    Ok(tokenizer)
}

/// BERT's WordPiece as `BertTokenizer` (uncased Chinese) applies it; see the module doc.
fn bert_wordpiece(vocab: &Path) -> Result<Tokenizer> {
    let wordpiece = WordPiece::from_file(path_str(vocab)?)
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("reading {} as a WordPiece vocabulary", vocab.display()))?;
    let unk_known = tokenizers::Model::token_to_id(&wordpiece, "[UNK]").is_some();
    if !unk_known {
        bail!(
            "{} has no [UNK] token: a BERT vocab.txt lists it",
            vocab.display()
        );
    }
    let mut tokenizer = Tokenizer::new(wordpiece);
    tokenizer.with_normalizer(Some(BertNormalizer::new(true, true, None, true)));
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_decoder(Some(WordPieceDecoder::new("##".into(), false)));
    let specials: Vec<AddedToken> = BERT_SPECIALS
        .iter()
        .filter(|s| tokenizer.token_to_id(s).is_some())
        .map(|s| AddedToken::from(*s, true))
        .collect();
    tokenizer.add_special_tokens(&specials);
    Ok(tokenizer)
}

/// A stand-in for a pretrained GPT-2 tokenizer, for tests: a byte-level BPE of `vocab_size`
/// ids trained by the crate's `BpeTrainer` on `texts`, with GPT-2's `<|endoftext|>`.
#[cfg(test)]
pub(crate) fn stand_in_gpt2_tokenizer(texts: &[&str], vocab_size: usize) -> Tokenizer {
    use tokenizers::models::bpe::BpeTrainerBuilder;
    use tokenizers::models::TrainerWrapper;
    let mut tokenizer = Tokenizer::new(BPE::default());
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_decoder(Some(ByteLevelDecoder::new(false, true, true)));
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from("<|endoftext|>", true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    tokenizer.train(&mut trainer, texts.iter()).unwrap();
    tokenizer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::open::read_data;
    use std::collections::BTreeSet;
    use std::path::PathBuf;
    use tokenizers::models::bpe::BpeTrainerBuilder;
    use tokenizers::models::TrainerWrapper;
    use tokenizers::{Model, NormalizedString, Normalizer};

    fn repo(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
    }

    /// The demo corpus and Q&A, and the first 200 KB of the Tang poems (gunzipped by
    /// `read_data`): English, Chinese, punctuation, digits and newlines.
    fn texts() -> Vec<String> {
        let text = |p: &str| String::from_utf8(read_data(&repo(p)).unwrap()).unwrap();
        let mut poems = text("datasets/zh_classical_poetry/tang_poems.txt");
        let cut = (0..=200_000)
            .rev()
            .find(|&i| poems.is_char_boundary(i))
            .unwrap();
        poems.truncate(cut);
        vec![
            text("datasets/demo/corpus.txt"),
            text("datasets/demo/sft.jsonl"),
            text("datasets/demo/amusement_park.txt"),
            poems,
        ]
    }

    fn encode_decode(tokenizer: &Tokenizer, text: &str) -> String {
        let ids = tokenizer.encode(text, false).unwrap().get_ids().to_vec();
        assert!(!ids.is_empty());
        tokenizer.decode(&ids, true).unwrap()
    }

    /// A byte-level BPE trained on the texts, saved as `vocab.json` + `merges.txt` in `dir`.
    fn write_bpe_files(dir: &Path, texts: &[String]) {
        let mut tokenizer = byte_level_bpe_untrained();
        let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
            .vocab_size(600)
            .show_progress(false)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build()
            .into();
        tokenizer.train(&mut trainer, texts.iter()).unwrap();
        tokenizer.get_model().save(dir, None).unwrap();
    }

    fn byte_level_bpe_untrained() -> Tokenizer {
        let mut tokenizer = Tokenizer::new(BPE::default());
        tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        tokenizer
    }

    #[test]
    fn gpt2_bpe_files_and_their_tokenizer_json_round_trip_the_demo_data_and_poems_exactly() {
        let texts = texts();
        let dir = tempfile::tempdir().unwrap();
        write_bpe_files(dir.path(), &texts);
        let from_files = load_pretrained_tokenizer(dir.path()).unwrap();
        assert!(
            from_files.get_vocab_size(false) > 256,
            "the BPE must have merges"
        );
        // The same tokenizer saved whole is preferred over the two files when present.
        from_files
            .save(dir.path().join("tokenizer.json"), false)
            .unwrap();
        std::fs::write(dir.path().join("merges.txt"), "not merges").unwrap();
        let from_json = load_pretrained_tokenizer(dir.path()).unwrap();
        for text in &texts {
            assert_eq!(&encode_decode(&from_files, text), text);
            let ids = |t: &Tokenizer| t.encode(text.as_str(), false).unwrap().get_ids().to_vec();
            assert_eq!(ids(&from_json), ids(&from_files));
            assert!(
                ids(&from_files).len() < text.len(),
                "merges must shorten the text"
            );
        }
    }

    /// `text` as BERT's normaliser leaves it (lowercased, accents stripped, CJK spaced),
    /// with all whitespace removed.
    fn normalised_without_spaces(text: &str) -> String {
        let mut n = NormalizedString::from(text);
        BertNormalizer::new(true, true, None, true)
            .normalize(&mut n)
            .unwrap();
        n.get().chars().filter(|c| !c.is_whitespace()).collect()
    }

    /// A vocab.txt of BERT's specials, every character of the texts and its `##` form.
    fn write_vocab_txt(dir: &Path, texts: &[String]) {
        let chars: BTreeSet<char> = texts
            .iter()
            .flat_map(|t| normalised_without_spaces(t).chars().collect::<Vec<_>>())
            .collect();
        let mut lines: Vec<String> = BERT_SPECIALS.iter().map(|s| s.to_string()).collect();
        lines.extend(chars.iter().map(|c| c.to_string()));
        lines.extend(chars.iter().map(|c| format!("##{c}")));
        std::fs::write(dir.join("vocab.txt"), lines.join("\n") + "\n").unwrap();
    }

    /// WordPiece is not lossless: it drops whitespace and the normaliser lowercases. The round
    /// trip asserted is: decode(encode(x)) with whitespace removed equals x normalised by
    /// BERT's normaliser with whitespace removed, no [UNK] appears, and for the poems (no
    /// Latin letters) that is x itself without whitespace.
    #[test]
    fn a_bert_vocab_txt_round_trips_the_demo_data_and_poems_up_to_whitespace_and_case() {
        let texts = texts();
        let dir = tempfile::tempdir().unwrap();
        write_vocab_txt(dir.path(), &texts);
        let tokenizer = load_pretrained_tokenizer(dir.path()).unwrap();
        let unk = tokenizer.token_to_id("[UNK]").unwrap();
        let no_spaces = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        for text in &texts {
            let encoding = tokenizer.encode(text.as_str(), false).unwrap();
            assert!(
                !encoding.get_ids().contains(&unk),
                "no character is unknown"
            );
            let decoded = tokenizer.decode(encoding.get_ids(), true).unwrap();
            assert_eq!(no_spaces(&decoded), normalised_without_spaces(text));
        }
        let poems = &texts[3];
        assert_eq!(
            no_spaces(&encode_decode(&tokenizer, poems)),
            no_spaces(poems)
        );
        // Chinese characters are single tokens; an English word splits into `##` pieces.
        let pieces = tokenizer.encode("床前明月光 Hello", false).unwrap();
        assert_eq!(pieces.get_tokens()[..5], ["床", "前", "明", "月", "光"]);
        assert_eq!(pieces.get_tokens()[5..7], ["h", "##e"]);
        assert_eq!(
            tokenizer.encode("[SEP]", false).unwrap().get_tokens(),
            ["[SEP]"]
        );
        assert!(tokenizer.get_model().token_to_id("##光").is_some());
    }

    /// The run's tokenizer (`crate::tokenizer::Tokenizer`) made from a folder, saved as the
    /// run's tokenizer.json and loaded back as `generate` and `serve` load it.
    fn as_run_tokenizer(dir: &Path) -> crate::tokenizer::Tokenizer {
        let tok = crate::tokenizer::Tokenizer::from_hf(load_pretrained_tokenizer(dir).unwrap());
        let saved = dir.join("run-tokenizer.json");
        tok.unwrap().save(&saved).unwrap();
        crate::tokenizer::Tokenizer::load(&saved).unwrap()
    }

    #[test]
    fn as_a_runs_tokenizer_bpe_and_wordpiece_round_trip_the_demo_data_and_poems() {
        use crate::tokenizer::{Special, TokenizerKind};
        let texts = texts();
        let bpe_dir = tempfile::tempdir().unwrap();
        write_bpe_files(bpe_dir.path(), &texts);
        let wordpiece_dir = tempfile::tempdir().unwrap();
        write_vocab_txt(wordpiece_dir.path(), &texts);
        let no_spaces = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        // vocab.json + merges.txt has no end token of its own: the run refuses it.
        let bpe = crate::tokenizer::Tokenizer::from_hf(
            load_pretrained_tokenizer(bpe_dir.path()).unwrap(),
        );
        assert!(format!("{:#}", bpe.unwrap_err()).contains("<|endoftext|>"));
        let mut with_end = load_pretrained_tokenizer(bpe_dir.path()).unwrap();
        with_end.add_special_tokens(&[AddedToken::from("<|endoftext|>", true)]);
        with_end
            .save(bpe_dir.path().join("tokenizer.json"), false)
            .unwrap();
        let bpe = as_run_tokenizer(bpe_dir.path());
        let wordpiece = as_run_tokenizer(wordpiece_dir.path());
        assert_eq!(
            wordpiece.special(Special::EndOfTurn),
            wordpiece.hf().token_to_id("[SEP]").unwrap()
        );
        for text in &texts {
            assert_eq!(&bpe.decode(&bpe.encode(text)), text);
            assert_eq!(
                no_spaces(&wordpiece.decode(&wordpiece.encode(text))),
                normalised_without_spaces(text)
            );
        }
        for tok in [&bpe, &wordpiece] {
            assert_eq!(tok.kind(), TokenizerKind::Pretrained);
            let end = tok.special(Special::EndOfText);
            assert_eq!(tok.decode(&[end]), "", "special tokens are not text");
            assert_eq!(tok.token_bytes(end), 0);
        }
        let bytes: usize = bpe
            .encode(&texts[0])
            .iter()
            .map(|&id| bpe.token_bytes(id))
            .sum();
        assert_eq!(
            bytes,
            texts[0].len(),
            "a byte-level token's bytes add up to the text"
        );
    }

    #[test]
    fn a_folder_without_a_tokenizer_gets_one_paragraph_naming_the_files_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vocab.json"), "{}").unwrap();
        let err = format!("{:#}", load_pretrained_tokenizer(dir.path()).unwrap_err());
        for expected in [
            "tokenizer.json",
            "merges.txt is missing",
            "vocab.txt",
            "huggingface-cli",
        ] {
            assert!(err.contains(expected), "{expected:?} missing from: {err}");
        }
        assert!(!err.contains('\n'), "one paragraph: {err}");
    }

    #[test]
    fn a_vocab_txt_without_unk_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vocab.txt"), "a\nb\n##b\n").unwrap();
        let err = format!("{:#}", load_pretrained_tokenizer(dir.path()).unwrap_err());
        assert!(err.contains("[UNK]"), "{err}");
    }
}
