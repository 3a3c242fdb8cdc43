//! Bad input of every kind ends with a non-zero exit, a one-paragraph error naming the file
//! and line (or key) and what was expected, no panic, and no run folder that looks finished.

mod common;
use common::*;
use std::path::Path;

/// A valid spec; each case edits one thing. Data lives in the case's own folder (`{dir}`).
fn base() -> String {
    base_spec("bad")
        .block_size(16)
        .data(r#""{dir}/corpus.txt""#)
        .base(
            r#"
steps = 2
batch_size = 2
lr = 1e-3
eval_every = 0
"#,
        )
        .then(
            r#"
[[stages]]
name = "assistant"
kind = "sft"
from = "base"
data = "{dir}/sft.jsonl"
steps = 2
batch_size = 2
"#,
        )
        .text()
}

const CORPUS: &str = "今天天气很好。我们去公园玩。\n小明喜欢吃苹果和香蕉。\n";
const SFT: &str = "{\"prompt\": \"你好\", \"completion\": \"你好!\"}\n{\"prompt\": \"1+1=?\", \"completion\": \"2。\"}\n";

struct Case {
    name: &'static str,
    /// (old, new) replacements applied to `base()`.
    edits: &'static [(&'static str, &'static str)],
    /// Files written into the case folder besides `corpus.txt` and `sft.jsonl` (which these
    /// replace when named the same).
    files: &'static [(&'static str, &'static [u8])],
    /// Extra arguments after `run bad.toml`; `{dir}` is the case folder.
    args: &'static [&'static str],
    /// What the error must say. `@LINE:text` stands for `bad.toml:<line of text>`.
    expect: &'static [&'static str],
}

/// The second stage as a KTO stage reading `thumbs.jsonl`.
const KTO_ON_THUMBS: &[(&str, &str)] = &[
    ("kind = \"sft\"", "kind = \"rlhf\"\nalgorithm = \"kto\""),
    ("{dir}/sft.jsonl", "{dir}/thumbs.jsonl"),
];

const CASES: &[Case] = &[
    Case {
        name: "malformed TOML",
        edits: &[("[model]", "[model")],
        files: &[],
        args: &[],
        expect: &["@LINE:[model"],
    },
    Case {
        name: "unknown key",
        edits: &[("lr = 1e-3", "lrr = 1e-3")],
        files: &[],
        args: &[],
        expect: &["@LINE:lrr", "lrr", "lr"],
    },
    Case {
        name: "wrong type",
        edits: &[("steps = 2\nbatch_size = 2\nlr", "steps = \"two\"\nbatch_size = 2\nlr")],
        files: &[],
        args: &[],
        expect: &["@LINE:\"two\"", "steps", "whole number"],
    },
    Case {
        name: "negative learning rate",
        edits: &[("lr = 1e-3", "lr = -1e-3")],
        files: &[],
        args: &[],
        expect: &["@LINE:lr = -1e-3", "lr"],
    },
    Case {
        name: "zero learning rate",
        edits: &[("lr = 1e-3", "lr = 0.0")],
        files: &[],
        args: &[],
        expect: &["@LINE:lr = 0.0", "lr"],
    },
    Case {
        name: "batch size 0",
        edits: &[("batch_size = 2\nlr", "batch_size = 0\nlr")],
        files: &[],
        args: &[],
        expect: &["@LINE:batch_size = 0", "batch_size"],
    },
    Case {
        name: "context longer than the preset",
        edits: &[("block_size = 16", "block_size = 4096")],
        files: &[],
        args: &[],
        expect: &["@LINE:block_size", "block_size", "128"],
    },
    Case {
        name: "steps 0",
        edits: &[("steps = 2\nbatch_size = 2\nlr", "steps = 0\nbatch_size = 2\nlr")],
        files: &[],
        args: &[],
        expect: &["@LINE:steps = 0", "steps"],
    },
    Case {
        name: "unknown preset",
        edits: &[("preset = \"nano\"", "preset = \"huge\"")],
        files: &[],
        args: &[],
        expect: &["@LINE:huge", "preset", "nano"],
    },
    Case {
        name: "unknown stage kind",
        edits: &[("kind = \"pretrain\"", "kind = \"pretrian\"")],
        files: &[],
        args: &[],
        expect: &["@LINE:pretrian", "kind", "pretrain"],
    },
    Case {
        name: "unknown algorithm",
        edits: &[("kind = \"sft\"", "kind = \"rlhf\"\nalgorithm = \"ppoo\"")],
        files: &[],
        args: &[],
        expect: &["@LINE:ppoo", "algorithm", "ppo"],
    },
    Case {
        name: "from names a missing stage",
        edits: &[("from = \"base\"", "from = \"bsae\"")],
        files: &[],
        args: &[],
        expect: &["@LINE:bsae", "from", "base"],
    },
    Case {
        name: "from names a later stage",
        edits: &[("kind = \"pretrain\"", "kind = \"pretrain\"\nfrom = \"assistant\"")],
        files: &[],
        args: &[],
        expect: &["@LINE:from = \"assistant\"", "from", "earlier"],
    },
    Case {
        name: "from cycle",
        edits: &[
            ("kind = \"pretrain\"", "kind = \"sft\"\nfrom = \"assistant\""),
            ("data = \"{dir}/corpus.txt\"", "data = \"{dir}/sft.jsonl\""),
        ],
        files: &[],
        args: &[],
        expect: &["@LINE:from = \"assistant\"", "from"],
    },
    Case {
        name: "missing data file",
        edits: &[("{dir}/corpus.txt", "{dir}/nope.txt")],
        files: &[],
        args: &[],
        expect: &["nope.txt", "not found", "base"],
    },
    Case {
        name: "empty glob",
        edits: &[("{dir}/corpus.txt", "{dir}/*.nothing")],
        files: &[],
        args: &[],
        expect: &["*.nothing", "matches no files", "base"],
    },
    Case {
        name: "empty text data",
        edits: &[],
        files: &[("corpus.txt", b"  \n\n")],
        args: &[],
        expect: &["corpus.txt", "no text"],
    },
    Case {
        name: "empty JSONL data",
        edits: &[],
        files: &[("sft.jsonl", b"\n\n")],
        args: &[],
        expect: &["sft.jsonl", "assistant"],
    },
    Case {
        name: "val_group field missing from a record",
        edits: &[("data = \"{dir}/sft.jsonl\"", "data = \"{dir}/sft.jsonl\"\nval_group = \"group\"")],
        files: &[(
            "sft.jsonl",
            b"{\"prompt\": \"a\", \"completion\": \"b\", \"group\": \"x\"}\n{\"prompt\": \"c\", \"completion\": \"d\"}\n",
        )],
        args: &[],
        expect: &["sft.jsonl:2", "`group`", "val_group"],
    },
    Case {
        name: "invalid UTF-8",
        edits: &[],
        files: &[("corpus.txt", b"good line\nbad \xff\xfe line\n")],
        args: &[],
        expect: &["corpus.txt:2", "UTF-8"],
    },
    Case {
        name: "invalid UTF-8 in JSONL",
        edits: &[],
        files: &[(
            "sft.jsonl",
            b"{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"\xff\", \"completion\": \"b\"}\n",
        )],
        args: &[],
        expect: &["sft.jsonl:2", "UTF-8"],
    },
    Case {
        name: "malformed JSONL line",
        edits: &[],
        files: &[(
            "sft.jsonl",
            b"{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\",\n",
        )],
        args: &[],
        expect: &["sft.jsonl:2", "JSON"],
    },
    Case {
        name: "JSONL line of the wrong schema",
        edits: &[],
        files: &[(
            "sft.jsonl",
            b"{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"question\": \"a\", \"answer\": \"b\"}\n",
        )],
        args: &[],
        expect: &["sft.jsonl:2", "prompt"],
    },
    Case {
        name: "missing ptx_data file",
        edits: &[
            ("kind = \"sft\"", "kind = \"rlhf\"\nalgorithm = \"kto\"\nptx_data = \"{dir}/sft-typo.jsonl\"\nval_fraction = 0.0"),
            ("{dir}/sft.jsonl", "{dir}/thumbs.jsonl"),
        ],
        files: &[(
            "thumbs.jsonl",
            "{\"prompt\": \"你好\", \"completion\": \"你好!\", \"label\": true}\n{\"prompt\": \"1+1=?\", \"completion\": \"3\", \"label\": false}\n".as_bytes(),
        )],
        args: &[],
        expect: &["@LINE:ptx_data", "`stages.assistant.ptx_data`", "sft-typo.jsonl"],
    },
    Case {
        name: "missing report eval file",
        edits: &[("[[stages]]\nname = \"assistant\"", "[report.eval]\ndata = \"{dir}/questions-typo.jsonl\"\n\n[[stages]]\nname = \"assistant\"")],
        files: &[],
        args: &[],
        expect: &["@LINE:questions-typo", "`report.eval.data`", "questions-typo.jsonl"],
    },
    Case {
        name: "KTO data without labels",
        edits: KTO_ON_THUMBS,
        files: &[(
            "thumbs.jsonl",
            "{\"prompt\": \"你好\", \"completion\": \"你好!\"}\n".as_bytes(),
        )],
        args: &[],
        expect: &[
            "@LINE:thumbs.jsonl",
            "thumbs.jsonl:1",
            "\"label\"",
            "KTO needs both 👍 and 👎",
        ],
    },
    Case {
        name: "KTO data with only 👍",
        edits: KTO_ON_THUMBS,
        files: &[(
            "thumbs.jsonl",
            "{\"prompt\": \"你好\", \"completion\": \"你好!\", \"label\": true}\n\
             {\"prompt\": \"1+1=?\", \"completion\": \"2。\", \"label\": true}\n"
                .as_bytes(),
        )],
        args: &[],
        expect: &[
            "@LINE:thumbs.jsonl",
            "thumbs.jsonl",
            "KTO needs both 👍 and 👎",
            "0 👎",
        ],
    },
    Case {
        name: "KTO negative weight",
        edits: &[
            KTO_ON_THUMBS[0],
            ("data = \"{dir}/sft.jsonl\"", "data = \"{dir}/sft.jsonl\"\nundesirable_weight = -1.0"),
        ],
        files: &[],
        args: &[],
        expect: &["@LINE:undesirable_weight = -1.0", "undesirable_weight", ">= 0"],
    },
    Case {
        name: "negative report temperature",
        edits: &[("[model]", "[report]\nsampling = { temperature = -0.5 }\n[model]")],
        files: &[],
        args: &[],
        expect: &["@LINE:temperature = -0.5", "report.sampling.temperature", ">= 0"],
    },
    Case {
        name: "GRPO sampling greedily",
        edits: &[
            ("kind = \"sft\"", "kind = \"rlhf\"\nalgorithm = \"grpo\"\ntemperature = 0.0"),
            ("data = \"{dir}/sft.jsonl\"", "prompts = \"{dir}/sft.jsonl\""),
        ],
        files: &[],
        args: &[],
        expect: &["@LINE:temperature = 0.0", "stages.assistant.temperature", "greedy"],
    },
    Case {
        name: "results folder that cannot be written",
        edits: &[],
        files: &[("not-a-folder", b"a file")],
        args: &["--results", "{dir}/not-a-folder/results"],
        expect: &["not-a-folder/results"],
    },
];

fn prepare(dir: &Path, case_edits: &[(&str, &str)], files: &[(&str, &[u8])]) -> String {
    let mut spec = base();
    for (old, new) in case_edits {
        assert!(
            spec.contains(old),
            "edit target {old:?} not in the base spec"
        );
        spec = spec.replacen(old, new, 1);
    }
    std::fs::write(dir.join("corpus.txt"), CORPUS).unwrap();
    std::fs::write(dir.join("sft.jsonl"), SFT).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let spec = spec.replace("{dir}", dir.to_str().unwrap());
    std::fs::write(dir.join("bad.toml"), &spec).unwrap();
    spec
}

/// `bad.toml:<line>` of the first line containing `needle`.
fn location(spec: &str, needle: &str) -> String {
    let line = spec
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in spec:\n{spec}"));
    format!("bad.toml:{}", line + 1)
}

/// Nothing under `results` may claim to be finished.
fn assert_nothing_looks_complete(results: &Path, stage: Option<&str>, what: &str) {
    let pattern = format!("{}/**/*.json", results.display());
    for file in glob::glob(&pattern).unwrap().flatten() {
        let name = file.file_name().unwrap().to_str().unwrap();
        if name == "meta.json" {
            let meta: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            assert_ne!(
                meta["complete"],
                true,
                "{what}: {} says complete",
                file.display()
            );
        }
        if name == "done.json" {
            let folder = file
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap();
            assert!(
                stage.is_some_and(|s| s != folder),
                "{what}: {} left behind",
                file.display()
            );
        }
    }
}

fn assert_clean_failure(out: &std::process::Output, expect: &[String], what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: exited 0:\n{}", text(out));
    assert!(!err.contains("panicked"), "{what}: panic:\n{err}");
    let err = err.trim();
    assert!(err.starts_with("error: "), "{what}: stderr:\n{err}");
    assert!(
        !err.contains("\n\n"),
        "{what}: more than one paragraph:\n{err}"
    );
    for e in expect {
        assert!(err.contains(e.as_str()), "{what}: missing {e:?} in:\n{err}");
    }
}

#[test]
fn every_bad_input_is_a_clear_error_and_leaves_no_finished_run() {
    for case in CASES {
        let tmp = tempdir();
        let dir = tmp.path();
        let spec = prepare(dir, case.edits, case.files);
        let mut args = vec!["run".to_string(), "bad.toml".to_string()];
        args.extend(
            case.args
                .iter()
                .map(|a| a.replace("{dir}", dir.to_str().unwrap())),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = gptlab(&args, dir);
        let expect: Vec<String> = case
            .expect
            .iter()
            .map(|e| match e.strip_prefix("@LINE:") {
                Some(needle) => location(&spec, needle),
                None => e.to_string(),
            })
            .collect();
        assert_clean_failure(&out, &expect, case.name);
        assert_nothing_looks_complete(&dir.join("results"), None, case.name);

        // `validate` makes every check `run` makes before training, data files included,
        // with the same message (all but a results folder, which only `run` writes).
        if case.args.is_empty() {
            let out = gptlab(&["validate", "bad.toml"], dir);
            assert_clean_failure(&out, &expect, &format!("validate: {}", case.name));
        }
    }
}

/// Checkpoints that are not what the spec's preset needs: a stage's `from` model with other
/// shapes, a truncated model file, and a corrupt resume file.
#[test]
fn bad_checkpoints_are_clear_errors() {
    let tmp = tempdir();
    let dir = tmp.path();
    prepare(dir, &[], &[]);
    let run = run_dir(&gptlab(&["run", "bad.toml"], dir));
    let base = run.join("base/model.safetensors");
    let good = std::fs::read(&base).unwrap();

    // Undo the second stage so that the next run redoes it from `base`.
    let reopen = || {
        let _ = std::fs::remove_dir_all(run.join("assistant"));
        let meta = std::fs::read_to_string(run.join("meta.json")).unwrap();
        std::fs::write(
            run.join("meta.json"),
            meta.replace("\"complete\": true", "\"complete\": false"),
        )
        .unwrap();
    };

    // 1. Shapes from another preset.
    reopen();
    let tensors = vec![(
        "transformer.wte.weight".to_string(),
        vec![3, 3],
        vec![0.0; 9],
    )];
    let bytes = gptlab::results::weights::encode_tensors(&tensors, Default::default()).unwrap();
    std::fs::write(&base, bytes).unwrap();
    let out = gptlab(&["run", "bad.toml"], dir);
    let expect = [
        "model.safetensors".to_string(),
        "transformer.wte.weight".into(),
        "shape".into(),
    ];
    assert_clean_failure(&out, &expect, "shape mismatch");
    assert_nothing_looks_complete(&dir.join("results"), Some("assistant"), "shape mismatch");

    // 2. Truncated.
    reopen();
    std::fs::write(&base, &good[..good.len() / 3]).unwrap();
    let out = gptlab(&["run", "bad.toml"], dir);
    let expect = ["model.safetensors".to_string(), "truncated".into()];
    assert_clean_failure(&out, &expect, "truncated checkpoint");
    assert_nothing_looks_complete(&dir.join("results"), Some("assistant"), "truncated");

    // 3. A corrupt resume file for the stage being trained.
    reopen();
    std::fs::write(&base, &good).unwrap();
    std::fs::create_dir_all(run.join("assistant")).unwrap();
    std::fs::write(
        run.join("assistant/resume.safetensors"),
        b"\x10\x00\x00garbage",
    )
    .unwrap();
    let out = gptlab(&["run", "bad.toml"], dir);
    let expect = ["resume.safetensors".to_string(), "corrupt".into()];
    assert_clean_failure(&out, &expect, "corrupt resume file");
    assert_nothing_looks_complete(&dir.join("results"), Some("assistant"), "corrupt resume");

    // With the bad file gone, the same command finishes the run.
    std::fs::remove_file(run.join("assistant/resume.safetensors")).unwrap();
    assert_eq!(run_dir(&gptlab(&["run", "bad.toml"], dir)), run);
}

/// The numerical guard: a learning rate that blows the weights up stops the stage with an
/// error naming the step and the last good checkpoint, and that checkpoint is kept.
#[test]
fn diverging_training_stops_naming_the_step_and_keeps_the_checkpoint() {
    let tmp = tempdir();
    let dir = tmp.path();
    prepare(
        dir,
        &[
            (
                "lr = 1e-3",
                "lr = 1e30\ncheckpoint_every = 1\ngrad_clip = 0.0",
            ),
            (
                "steps = 2\nbatch_size = 2\nlr",
                "steps = 20\nbatch_size = 2\nlr",
            ),
        ],
        &[],
    );
    let out = gptlab(&["run", "bad.toml"], dir);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "diverging run exited 0:\n{}",
        text(&out)
    );
    assert!(!err.contains("panicked"), "{err}");
    let number_after = |marker: &str| -> u64 {
        let rest = &err[err
            .find(marker)
            .unwrap_or_else(|| panic!("no {marker:?} in:\n{err}"))
            + marker.len()..];
        rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap()]
            .parse()
            .unwrap()
    };
    let stopped = number_after("stopped at step ");
    let kept = number_after("last good checkpoint (step ");
    assert!(kept <= stopped && kept >= 1, "{err}");
    assert!(err.contains("stage `base`"), "{err}");

    let run = glob::glob(&format!("{}/results/bad/*", dir.display()))
        .unwrap()
        .next()
        .expect("a run folder")
        .unwrap();
    let resume = run.join("base/resume.safetensors");
    let (tensors, meta) = gptlab::results::weights::read_tensors(&resume).unwrap();
    assert_eq!(meta["step"], kept.to_string(), "{err}");
    assert!(tensors
        .values()
        .all(|(_, v)| v.iter().all(|x| x.is_finite())));
    assert_nothing_looks_complete(&dir.join("results"), None, "diverged");
}
