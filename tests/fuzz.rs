//! Property tests: the spec parser, the JSONL readers and the tokenizers never panic on
//! arbitrary input, errors name the file, and tokenizers round-trip text. Case counts are set
//! so that each target runs a few seconds in CI; `GPTLAB_FUZZ_SCALE=50 cargo test --test fuzz`
//! searches longer.

use gptlab::spec::{load_spec, LoadOptions};
use gptlab::tokenizer::{Tokenizer, TokenizerKind};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `cases` per target, times `$GPTLAB_FUZZ_SCALE` (default 1) for a longer local hunt.
fn config(cases: u32) -> ProptestConfig {
    let scale: u32 = std::env::var("GPTLAB_FUZZ_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    ProptestConfig {
        cases: cases * scale.max(1),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One scratch folder per test binary; each property writes its own file name.
fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------- spec parser

/// A valid spec whose data paths exist (relative to its folder).
fn valid_spec() -> String {
    let demo = repo().join("datasets/demo");
    format!(
        r#"name = "fuzz"
seed = 3
[model]
preset = "nano"
block_size = 32
[tokenizer]
kind = "char"
vocab_size = 512
[[stages]]
name = "base"
kind = "pretrain"
data = ["{demo}/corpus.txt"]
steps = 10
lr = 3e-3
warmup_steps = 2
[[stages]]
name = "rm"
kind = "reward"
from = "base"
data = "{demo}/prefs.jsonl"
steps = 5
[[stages]]
name = "ppo"
kind = "rlhf"
algorithm = "ppo"
from = "base"
reward_model = "rm"
prompts = "{demo}/prompts.jsonl"
steps = 4
[report]
prompts = ["你好"]
compare = ["base", "ppo"]
"#,
        demo = demo.display()
    )
}

/// Loads `text` as a spec: any result is fine, a panic is not; an error names the file.
fn check_spec(text: &str, sets: Vec<String>, name: &str) -> Result<(), TestCaseError> {
    let path = scratch().join(name);
    std::fs::write(&path, text).unwrap();
    let opts = LoadOptions {
        data_root: repo().join("datasets"),
        sets,
    };
    if let Err(e) = load_spec(&path, &opts) {
        let msg = format!("{e:#}");
        prop_assert!(
            msg.contains(name) || msg.contains("--set"),
            "error names neither the file nor the --set argument: {}",
            msg
        );
    }
    Ok(())
}

/// Edits that keep most of a valid spec: replace a value, drop a span, insert text.
#[derive(Debug, Clone)]
enum Mutation {
    ReplaceValue(usize, String),
    Delete(usize, usize),
    Insert(usize, String),
    DuplicateLine(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let value = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        "\"[a-z_$/*.]{0,12}\"",
        "\\[[0-9, \"a-z]{0,10}\\]",
        Just("true".to_string()),
        Just("{ a = 1 }".to_string()),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("1e400".to_string()),
        Just("\"nanoo\"".to_string()),
        "\\PC{0,8}",
    ];
    prop_oneof![
        (any::<usize>(), value).prop_map(|(i, v)| Mutation::ReplaceValue(i, v)),
        (any::<usize>(), 0usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<usize>(),
            "\\PC{0,20}|\n\\[\\[stages\\]\\]\n|[a-z_]{1,10} = [0-9]{1,3}\n"
        )
            .prop_map(|(i, s)| Mutation::Insert(i, s)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let clamp = |i: usize, n: usize| if n == 0 { 0 } else { i % n };
    match m {
        Mutation::ReplaceValue(i, v) => {
            let k = clamp(*i, lines.len());
            if let Some(eq) = lines[k].find(" = ") {
                lines[k] = format!("{} = {v}", &lines[k][..eq]);
            }
        }
        Mutation::Delete(i, n) => {
            let chars: Vec<char> = text.chars().collect();
            let start = clamp(*i, chars.len());
            let end = (start + n).min(chars.len());
            return chars[..start].iter().chain(&chars[end..]).collect();
        }
        Mutation::Insert(i, s) => {
            let chars: Vec<char> = text.chars().collect();
            let at = clamp(*i, chars.len() + 1);
            return chars[..at]
                .iter()
                .copied()
                .chain(s.chars())
                .chain(chars[at..].iter().copied())
                .collect();
        }
        Mutation::DuplicateLine(i) => {
            let k = clamp(*i, lines.len());
            let line = lines[k].clone();
            lines.insert(k, line);
        }
    }
    lines.join("\n") + "\n"
}

/// `--set` arguments: real keys with odd values, and odd keys.
fn set_arg() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("stages.base.lr".to_string()),
        Just("stages.ppo.steps".to_string()),
        Just("stages[1].from".to_string()),
        Just("model.preset".to_string()),
        Just("model.block_size".to_string()),
        Just("tokenizer.vocab_size".to_string()),
        Just("report.compare".to_string()),
        "[a-z_.\\[\\]0-9]{0,16}",
    ];
    (key, "\\PC{0,12}").prop_map(|(k, v)| format!("{k}={v}"))
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn spec_parser_survives_arbitrary_text(text in "\\PC{0,300}") {
        check_spec(&text, vec![], "arbitrary.toml")?;
    }

    #[test]
    fn spec_parser_survives_toml_like_text(
        text in "((\\[\\[?[a-z.]{0,8}\\]\\]?|[a-z_]{1,10} = (\"[^\"\n]{0,8}\"|[0-9.e-]{1,6}|\\[[0-9, ]{0,6}\\]|true))\n){0,15}"
    ) {
        check_spec(&text, vec![], "tomlish.toml")?;
    }

    #[test]
    fn spec_parser_survives_mutated_valid_specs(
        mutations in prop::collection::vec(mutation(), 1..4),
        sets in prop::collection::vec(set_arg(), 0..3),
    ) {
        let mut text = valid_spec();
        for m in &mutations {
            text = apply(&text, m);
        }
        check_spec(&text, sets, "mutated.toml")?;
    }
}

#[test]
fn the_unmutated_spec_is_valid() {
    let path = scratch().join("valid.toml");
    std::fs::write(&path, valid_spec()).unwrap();
    let opts = LoadOptions {
        data_root: repo().join("datasets"),
        sets: vec![],
    };
    load_spec(&path, &opts).unwrap();
}

// ---------------------------------------------------------------- JSONL readers

/// JSON values shaped like the TRL schemas, with every field sometimes of the wrong type.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|v| json!(v)),
        "\\PC{0,10}".prop_map(Value::String),
        prop_oneof![
            Just("user"),
            Just("assistant"),
            Just("system"),
            Just("tool")
        ]
        .prop_map(|r| json!(r)),
    ];
    let key = prop_oneof![
        Just("prompt"),
        Just("completion"),
        Just("messages"),
        Just("conversations"),
        Just("chosen"),
        Just("rejected"),
        Just("label"),
        Just("role"),
        Just("content"),
        Just("text"),
        Just("from"),
        Just("value"),
        Just("answer"),
        Just("x"),
    ];
    leaf.prop_recursive(4, 24, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..5).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

fn jsonl_line() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => json_value().prop_map(|v| v.to_string()),
        1 => "\\PC{0,40}",
        1 => Just(String::new()),
        1 => Just(r#"{"prompt": "a", "completion": "b"}"#.to_string()),
        1 => Just(r#"{"prompt": "a", "chosen": "b", "rejected": "c"}"#.to_string()),
        1 => Just(r#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}"#.to_string()),
    ]
}

fn check_readers(bytes: &[u8], name: &str) -> Result<(), TestCaseError> {
    let path = scratch().join(name);
    std::fs::write(&path, bytes).unwrap();
    let errors = [
        gptlab::data::read_sft(&path).err(),
        gptlab::data::read_preferences(&path).err(),
        gptlab::data::read_labelled(&path).err(),
        gptlab::data::read_prompts(&path).err(),
        gptlab::data::sniff_jsonl_kind(&path).err(),
        gptlab::data::read_text_corpus(&[path.clone()]).err(),
    ];
    for e in errors.into_iter().flatten() {
        let msg = format!("{e:#}");
        prop_assert!(msg.contains(name), "error does not name the file: {}", msg);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn jsonl_readers_survive_schema_like_lines(lines in prop::collection::vec(jsonl_line(), 0..6)) {
        check_readers(lines.join("\n").as_bytes(), "lines.jsonl")?;
    }

    #[test]
    fn jsonl_readers_survive_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        check_readers(&bytes, "bytes.jsonl")?;
    }
}

// ---------------------------------------------------------------- tokenizers

fn corpus() -> String {
    std::fs::read_to_string(repo().join("datasets/demo/corpus.txt")).unwrap()
}

fn bpe() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| Tokenizer::train(TokenizerKind::Bpe, &[&corpus()], 600).unwrap())
}

fn char_tok() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| Tokenizer::train(TokenizerKind::Char, &[&corpus()], 512).unwrap())
}

proptest! {
    #![proptest_config(config(500))]

    /// Byte-level BPE covers every string.
    #[test]
    fn bpe_round_trips_arbitrary_strings(text in "\\PC{0,64}|.{0,64}") {
        let tok = bpe();
        let ids = tok.encode(&text);
        prop_assert!(ids.iter().all(|&id| (id as usize) < tok.vocab_size()));
        prop_assert_eq!(tok.decode(&ids), text);
    }

    /// A char tokenizer round-trips the characters it knows and drops the others (`<|unk|>`).
    #[test]
    fn char_round_trips_known_characters(text in "\\PC{0,64}|.{0,64}") {
        let tok = char_tok();
        let ids = tok.encode(&text);
        prop_assert!(ids.iter().all(|&id| (id as usize) < tok.vocab_size()));
        let known: String = text
            .chars()
            .filter(|c| {
                let id = tok.encode(&c.to_string());
                id.len() == 1 && !tok.is_special(id[0])
            })
            .collect();
        prop_assert_eq!(tok.decode(&ids), known);
    }

    /// Trained on the text itself, a char tokenizer round-trips it exactly.
    #[test]
    fn char_trained_on_text_round_trips_it(text in "\\PC{1,64}") {
        let tok = Tokenizer::train(TokenizerKind::Char, &[&text], 512).unwrap();
        prop_assert_eq!(tok.decode(&tok.encode(&text)), text);
    }

    #[test]
    fn decoding_arbitrary_ids_never_panics(ids in prop::collection::vec(any::<u32>(), 0..32),
                                           small in prop::collection::vec(0u32..700, 0..32)) {
        for tok in [bpe(), char_tok()] {
            let _ = tok.decode(&ids);
            let _ = tok.decode(&small);
            for &id in ids.iter().chain(&small) {
                let _ = tok.token_text(id);
                let _ = tok.token_bytes(id);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(40))]

    /// Training on arbitrary (small) text never panics; BPE then round-trips it.
    #[test]
    fn bpe_trained_on_arbitrary_text_round_trips_it(text in "\\PC{0,80}", vocab in 262usize..400) {
        if let Ok(tok) = Tokenizer::train(TokenizerKind::Bpe, &[&text], vocab) {
            prop_assert_eq!(tok.decode(&tok.encode(&text)), text);
        }
    }
}
