//! A run that starts from a pretrained checkpoint (a `pretrained` stage) on a stand-in written
//! in Hugging Face's layout (`common::write_hf_stand_in`): imported, tuned by SFT, reported and
//! generated from end to end; its run id follows the checkpoint's content, not its path; and
//! each bad checkpoint or spec is a one-paragraph error naming the file, line and key.

mod common;
use common::*;
use std::path::Path;

const SPEC: &str = r#"name = "tuned"
seed = 2
[model]
block_size = 64
[[stages]]
name = "base"
kind = "pretrained"
path = "checkpoint"
[[stages]]
name = "assistant"
kind = "sft"
from = "base"
data = "{demo}/sft.jsonl"
steps = 40
batch_size = 8
lr = 3e-3
warmup_steps = 4
eval_every = 20
[report]
prompts = ["中国的首都是哪里?", "香蕉是"]
compare = ["base", "assistant"]
sampling = { temperature = 0.0, max_new_tokens = 12 }
"#;

/// A project folder with the stand-in checkpoint and the spec.
fn project() -> tempfile::TempDir {
    let tmp = tempdir();
    write_hf_stand_in(&tmp.path().join("checkpoint"));
    write_spec(tmp.path(), "spec.toml", SPEC);
    tmp
}

#[test]
fn a_pretrained_checkpoint_is_imported_tuned_reported_and_generated_from() {
    let tmp = project();
    let dir = tmp.path();
    let run = run_dir(&gptlab(&["run", "spec.toml"], dir));
    // The run's tokenizer is the checkpoint's: the same ids for the same text.
    let saved = tokenizers::Tokenizer::from_file(run.join("tokenizer.json")).unwrap();
    let original = stand_in_tokenizer();
    let sample = "我今天想去游乐园玩。What's your name?";
    let ids = |t: &tokenizers::Tokenizer| t.encode(sample, false).unwrap().get_ids().to_vec();
    assert_eq!(ids(&saved), ids(&original));
    // The imported weights are the checkpoint's (the embedding has the same name in both).
    let read = |p: &Path| gptlab::results::weights::read_tensors(p).unwrap().0;
    let imported = read(&run.join("base/model.safetensors"));
    let written = read(&dir.join("checkpoint/model.safetensors"));
    assert_eq!(
        imported["transformer.wte.weight"],
        written["transformer.wte.weight"]
    );
    let loss = read_metric(&run.join("assistant/metrics.csv"), "loss");
    assert!(
        loss.last().unwrap() < &(loss[0] * 0.8),
        "SFT on the pretrained base must learn: {loss:?}"
    );
    let samples = std::fs::read_to_string(run.join("samples.jsonl")).unwrap();
    assert_eq!(samples.lines().count(), 4, "{samples}");
    assert!(run.join("report.html").is_file());
    let stage = run.join("assistant");
    let out = gptlab(
        &[
            "generate",
            stage.to_str().unwrap(),
            "--prompt",
            "中国的首都是哪里?",
            "--max-new-tokens",
            "8",
        ],
        dir,
    );
    assert!(out.status.success(), "{}", text(&out));
    // Exported for transformers, it names the tokenizer's own end token, not gptlab's ids.
    let exported = dir.join("exported");
    let out = gptlab(
        &[
            "export",
            stage.to_str().unwrap(),
            "--format",
            "hf-gpt2",
            "--out",
            exported.to_str().unwrap(),
        ],
        dir,
    );
    assert!(out.status.success(), "{}", text(&out));
    let json = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(exported.join(f)).unwrap()).unwrap()
    };
    let end = original.token_to_id("<|endoftext|>").unwrap();
    assert_eq!(json("generation_config.json")["eos_token_id"], end);
    assert_eq!(json("config.json")["eos_token_id"], end);
    assert_eq!(json("tokenizer_config.json")["eos_token"], "<|endoftext|>");
}

fn run_id(spec: &Path, sets: &[String]) -> String {
    let opts = gptlab::spec::LoadOptions {
        sets: sets.to_vec(),
        ..Default::default()
    };
    gptlab::spec::load_spec(spec, &opts).unwrap().run_id
}

#[test]
fn the_run_id_follows_the_checkpoints_content_not_its_path() {
    let tmp = project();
    let (dir, spec) = (tmp.path(), tmp.path().join("spec.toml"));
    let first = run_id(&spec, &[]);
    std::fs::rename(dir.join("checkpoint"), dir.join("moved")).unwrap();
    let moved = vec!["stages.base.path=moved".to_string()];
    assert_eq!(
        run_id(&spec, &moved),
        first,
        "moving the folder keeps the id"
    );
    let weights = dir.join("moved/model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&weights, bytes).unwrap();
    assert_ne!(run_id(&spec, &moved), first, "one weight byte changes it");
}

/// One bad checkpoint or spec: what is changed, and what the error must say.
struct Case {
    name: &'static str,
    /// (old, new) replacements in the spec.
    edits: &'static [(&'static str, &'static str)],
    /// Changes to the checkpoint folder.
    folder: fn(&Path),
    /// What the error must say; `@text` stands for `spec.toml:<line of text>`.
    expect: &'static [&'static str],
}

fn unchanged(_: &Path) {}

const CASES: &[Case] = &[
    Case {
        name: "no such folder",
        edits: &[("path = \"checkpoint\"", "path = \"nowhere\"")],
        folder: unchanged,
        expect: &["@path =", "`stages.base.path`", "is not a folder", "huggingface-cli"],
    },
    Case {
        name: "pickle weights only",
        edits: &[],
        folder: |d| {
            std::fs::rename(d.join("model.safetensors"), d.join("pytorch_model.bin")).unwrap()
        },
        expect: &["@path =", "pytorch_model.bin", "safetensors", "safe_serialization=True"],
    },
    Case {
        name: "no weights",
        edits: &[],
        folder: |d| std::fs::remove_file(d.join("model.safetensors")).unwrap(),
        expect: &["@path =", "has no model.safetensors"],
    },
    Case {
        name: "no config.json",
        edits: &[],
        folder: |d| std::fs::remove_file(d.join("config.json")).unwrap(),
        expect: &["@path =", "has no config.json"],
    },
    Case {
        name: "no tokenizer",
        edits: &[],
        folder: |d| std::fs::remove_file(d.join("tokenizer.json")).unwrap(),
        expect: &["@path =", "no tokenizer gptlab can read", "vocab.txt"],
    },
    Case {
        name: "a shape no preset compiles",
        edits: &[],
        folder: |d| {
            let config = stand_in_config().replace("\"n_layer\":2", "\"n_layer\":3");
            std::fs::write(d.join("config.json"), config).unwrap()
        },
        expect: &["@path =", "config.json", "no compiled gptlab preset", "nano (n_layer 2"],
    },
    Case {
        name: "a tokenizer larger than the model's vocabulary",
        edits: &[],
        folder: |d| {
            let config = stand_in_config().replace("\"vocab_size\":512", "\"vocab_size\":128");
            std::fs::write(d.join("config.json"), config).unwrap()
        },
        expect: &["@path =", "checkpoint/tokenizer.json has 400 tokens, but config.json says the model has 128"],
    },
    Case {
        name: "a [tokenizer] table beside a pretrained base",
        edits: &[("[model]", "[tokenizer]\nkind = \"bpe\"\nvocab_size = 512\n[model]")],
        folder: unchanged,
        expect: &["@[tokenizer]", "checkpoint's own tokenizer"],
    },
    Case {
        name: "a preset that is not the checkpoint's",
        edits: &[("block_size = 64", "preset = \"small\"\nblock_size = 64")],
        folder: unchanged,
        expect: &["@preset =", "`model.preset`", "is preset `nano`", "not `small`"],
    },
    Case {
        name: "a pretrained stage that is not first",
        edits: &[
            ("name = \"base\"\nkind = \"pretrained\"\npath = \"checkpoint\"\n", "name = \"zero\"\nkind = \"pretrain\"\ndata = \"{demo}/corpus.txt\"\n[[stages]]\nname = \"base\"\nkind = \"pretrained\"\npath = \"checkpoint\"\n"),
        ],
        folder: unchanged,
        expect: &["@kind = \"pretrained\"", "must be the first stage"],
    },
];

#[test]
fn bad_checkpoints_and_specs_are_one_paragraph_errors_naming_file_and_key() {
    for case in CASES {
        let tmp = project();
        let dir = tmp.path();
        let mut spec = std::fs::read_to_string(dir.join("spec.toml")).unwrap();
        let demo = repo().join("datasets/demo");
        for (old, new) in case.edits {
            assert!(spec.contains(old), "{}: {old:?} not in the spec", case.name);
            spec = spec.replace(old, &new.replace("{demo}", demo.to_str().unwrap()));
        }
        std::fs::write(dir.join("spec.toml"), &spec).unwrap();
        (case.folder)(&dir.join("checkpoint"));
        for command in ["validate", "run"] {
            let out = gptlab(&[command, "spec.toml"], dir);
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            let what = format!("{} ({command})", case.name);
            assert!(!out.status.success(), "{what}: exited 0:\n{}", text(&out));
            assert!(!err.contains("panicked"), "{what}: panic:\n{err}");
            assert!(err.starts_with("error: "), "{what}: stderr:\n{err}");
            assert!(
                !err.contains('\n'),
                "{what}: more than one paragraph:\n{err}"
            );
            for e in case.expect {
                let e = match e.strip_prefix('@') {
                    Some(needle) => location(&spec, needle),
                    None => e.to_string(),
                };
                assert!(err.contains(&e), "{what}: missing {e:?} in:\n{err}");
            }
        }
        assert!(
            !dir.join("results").exists() || no_finished_stage(&dir.join("results")),
            "{}",
            case.name
        );
    }
}

/// `spec.toml:<line>` of the first line containing `needle`.
fn location(spec: &str, needle: &str) -> String {
    let line = spec
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in spec:\n{spec}"));
    format!("spec.toml:{}", line + 1)
}

fn no_finished_stage(results: &Path) -> bool {
    let pattern = format!("{}/**/done.json", results.display());
    glob::glob(&pattern).unwrap().flatten().next().is_none()
}

/// By hand: the pretrained stage's import of a 124M folder (`GPTLAB_124M` names one, e.g. a
/// `huggingface-cli download gpt2` folder), split into reading and writing the stage folder.
#[test]
#[ignore]
fn importing_a_124m_folder_as_a_stage_by_hand() {
    let Some(folder) = std::env::var_os("GPTLAB_124M") else {
        return skip("importing_a_124m_folder_as_a_stage_by_hand", "GPTLAB_124M");
    };
    let folder = std::path::PathBuf::from(folder);
    let tmp = tempdir();
    let dev = dfdx::tensor::Cpu::default();
    for _ in 0..2 {
        let start = std::time::Instant::now();
        let (mut model, _) = gptlab::hf::import_hf_model(&folder, &dev).unwrap();
        let read = start.elapsed().as_secs_f64();
        gptlab::results::weights::save_model(model.as_mut(), tmp.path()).unwrap();
        let total = start.elapsed().as_secs_f64();
        let hash = std::time::Instant::now();
        gptlab::spec::pretrained::content_hash(&folder).unwrap();
        let hash = hash.elapsed().as_secs_f64();
        eprintln!(
            "read {read:.2} s, written {:.2} s, content hash {hash:.2} s",
            total - read
        );
    }
}
