//! Behaviour of the public `Tokenizer` for both kinds.

use super::*;

const ENGLISH: &str =
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\n\tSpeak, speak.  ";
const CHINESE: &str = "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n";
const EMOJI: &str = "😀🦀 crab 𠀀 x\r\n";

fn corpus() -> String {
    format!("{ENGLISH}{CHINESE}{EMOJI}").repeat(20)
}

fn char_tokenizer() -> Tokenizer {
    Tokenizer::train(TokenizerKind::Char, &[&corpus()], 512).unwrap()
}

fn bpe_tokenizer() -> Tokenizer {
    Tokenizer::train(TokenizerKind::Bpe, &[&corpus()], 400).unwrap()
}

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gptlab-tokenizer-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("tokenizer.json")
}

#[test]
fn tokenizer_is_clone_send_sync() {
    fn assert_traits<T: Clone + Send + Sync>() {}
    assert_traits::<Tokenizer>();
}

#[test]
fn kind_parses_from_spec_strings() {
    assert_eq!(
        "char".parse::<TokenizerKind>().unwrap(),
        TokenizerKind::Char
    );
    assert_eq!("bpe".parse::<TokenizerKind>().unwrap(), TokenizerKind::Bpe);
    let err = "wordpiece"
        .parse::<TokenizerKind>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"char\" or \"bpe\""), "{err}");
    assert_eq!(TokenizerKind::Bpe.to_string(), "bpe");
}

#[test]
fn char_round_trips_ascii_chinese_whitespace_and_emoji() {
    let tok = char_tokenizer();
    for text in [ENGLISH, CHINESE, EMOJI, " \n\n\t \r\n", ""] {
        let ids = tok.encode(text);
        assert!(!ids.contains(&tok.special(Special::Unk)), "unk in {text:?}");
        assert_eq!(tok.decode(&ids), text);
    }
    assert_eq!(
        tok.encode("😀🦀").len(),
        2,
        "emoji outside the BMP are one token each"
    );
}

#[test]
fn char_maps_characters_beyond_the_vocabulary_to_unk() {
    let tok = Tokenizer::train(TokenizerKind::Char, &["aaaabbbc"], 7 + 2).unwrap();
    let unk = tok.special(Special::Unk);
    let ids = tok.encode("abcz");
    assert_eq!(
        ids[2], unk,
        "'c' is the rarest character and fell out of the vocabulary"
    );
    assert_eq!(ids[3], unk, "'z' never occurred");
    assert_ne!(ids[0], unk);
    assert_eq!(
        tok.decode(&ids),
        "ab",
        "unk is special and decodes to nothing"
    );
}

#[test]
fn bpe_round_trips_arbitrary_utf8() {
    let tok = bpe_tokenizer();
    let unseen = "Zebras ß∂ƒ © ÿ \u{0}\u{7f} \u{feff} 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ☃ 한국어 \r\n\t  end";
    for text in [ENGLISH, CHINESE, EMOJI, unseen, "   ", ""] {
        let ids = tok.encode(text);
        assert!(
            ids.iter().all(|&id| !tok.is_special(id)),
            "special id in {text:?}"
        );
        assert_eq!(tok.decode(&ids), text);
    }
}

#[test]
fn bpe_learns_merges() {
    let tok = bpe_tokenizer();
    // The corpus is small and repetitive: merges stop when no pair occurs twice.
    assert!(
        (300..=400).contains(&tok.vocab_size()),
        "{}",
        tok.vocab_size()
    );
    let ids = tok.encode(ENGLISH);
    assert!(
        ids.len() < ENGLISH.len() / 2,
        "{} ids for {} bytes",
        ids.len(),
        ENGLISH.len()
    );
}

#[test]
fn bpe_native_decode_agrees_with_hf() {
    let tok = bpe_tokenizer();
    let ids: Vec<u32> = (0..tok.vocab_size() as u32).collect();
    assert_eq!(tok.decode(&ids), tok.hf().decode(&ids, true).unwrap());
    // Encoding the corpus with HF's own pipeline gives the same ids too.
    let text = corpus();
    assert_eq!(
        tok.encode(&text),
        tok.hf().encode(text.as_str(), false).unwrap().get_ids()
    );
}

#[test]
fn text_that_looks_special_stays_plain_text() {
    for tok in [char_tokenizer(), bpe_tokenizer()] {
        let text = "<|user|>hi<|end|>";
        let ids = tok.encode(text);
        assert!(ids
            .iter()
            .all(|&id| !tok.is_special(id) || id == tok.special(Special::Unk)));
        assert!(ids.len() > 2);
    }
}

#[test]
fn specials_have_fixed_ids_and_names() {
    for tok in [char_tokenizer(), bpe_tokenizer()] {
        assert_eq!(tok.special(Special::Pad), 0);
        assert_eq!(tok.special(Special::Unk), 1);
        assert_eq!(tok.special(Special::EndOfText), 2);
        assert_eq!(tok.special(Special::System), 3);
        assert_eq!(tok.special(Special::User), 4);
        assert_eq!(tok.special(Special::Assistant), 5);
        assert_eq!(tok.special(Special::EndOfTurn), 6);
        for s in Special::ALL {
            assert_eq!(tok.hf().token_to_id(s.name()), Some(s.id()));
            assert!(tok.is_special(s.id()));
            assert_eq!(tok.token_text(s.id()), s.name());
            assert_eq!(tok.token_bytes(s.id()), 0);
        }
        assert!(!tok.is_special(7));
        let user = tok.special(Special::User);
        assert_eq!(
            tok.decode(&[user, tok.encode("x")[0], tok.special(Special::EndOfTurn)]),
            "x"
        );
    }
}

#[test]
fn token_bytes_sum_to_the_text_length() {
    for tok in [char_tokenizer(), bpe_tokenizer()] {
        let text = corpus();
        let ids = tok.encode(&text);
        let bytes: usize = ids.iter().map(|&id| tok.token_bytes(id)).sum();
        assert_eq!(bytes, text.len(), "{:?}", tok.kind());
    }
}

#[test]
fn token_text_is_readable() {
    let tok = char_tokenizer();
    assert_eq!(tok.token_text(tok.encode("月")[0]), "月");
    assert_eq!(tok.token_text(100_000), "<|id 100000|>");
    let tok = bpe_tokenizer();
    let pieces: String = tok
        .encode(ENGLISH)
        .iter()
        .map(|&id| tok.token_text(id))
        .collect();
    assert_eq!(pieces, ENGLISH, "ASCII tokens display as their text");
    // A lone byte of a 3-byte character is shown escaped, not as U+FFFD.
    let first_byte = tok.hf().token_to_id("ä").unwrap(); // GPT-2's printable form of 0xE4
    assert_eq!(tok.token_text(first_byte), "\\xE4");
}

#[test]
fn out_of_range_ids_are_harmless() {
    for tok in [char_tokenizer(), bpe_tokenizer()] {
        let big = tok.vocab_size() as u32 + 5;
        assert_eq!(tok.token_bytes(big), 0);
        let a = tok.encode("a");
        assert_eq!(tok.decode(&[a[0], big]), "a");
    }
}

#[test]
fn save_then_load_gives_identical_encodings() {
    for tok in [char_tokenizer(), bpe_tokenizer()] {
        let path = temp_path(&format!("roundtrip-{}", tok.kind()));
        tok.save(&path).unwrap();
        assert!(
            !path.with_extension("json.tmp").exists(),
            "temporary file left behind"
        );
        let back = Tokenizer::load(&path).unwrap();
        assert_eq!(back.kind(), tok.kind());
        assert_eq!(back.vocab_size(), tok.vocab_size());
        let text = format!("{}<|user|>", corpus());
        assert_eq!(back.encode(&text), tok.encode(&text));
        let ids: Vec<u32> = (0..tok.vocab_size() as u32).collect();
        assert_eq!(back.decode(&ids), tok.decode(&ids));
    }
}

#[test]
fn loading_a_corrupt_or_foreign_file_is_an_error_naming_it() {
    let tok = char_tokenizer();
    let path = temp_path("corrupt");
    tok.save(&path).unwrap();
    let json = std::fs::read_to_string(&path).unwrap();

    let cases = [
        ("truncated", json[..json.len() / 2].to_string()),
        ("not json", "hello".to_string()),
        ("empty", String::new()),
        (
            "special moved",
            json.replace("\"<|end|>\": 6", "\"<|end|>\": 99999"),
        ),
        ("multi-char token", json.replacen("\"床\":", "\"床前\":", 1)),
    ];
    for (what, contents) in cases {
        std::fs::write(&path, &contents).unwrap();
        let err = format!("{:#}", Tokenizer::load(&path).unwrap_err());
        assert!(err.contains(&path.display().to_string()), "{what}: {err}");
    }
    let missing = path.with_file_name("missing.json");
    let err = format!("{:#}", Tokenizer::load(&missing).unwrap_err());
    assert!(err.contains("missing.json"), "{err}");
}

#[test]
fn training_is_deterministic() {
    for kind in [TokenizerKind::Char, TokenizerKind::Bpe] {
        let a = Tokenizer::train(kind, &[&corpus()], 300).unwrap();
        let b = Tokenizer::train(kind, &[&corpus()], 300).unwrap();
        assert_eq!(
            a.hf().to_string(false).unwrap(),
            b.hf().to_string(false).unwrap()
        );
    }
}
