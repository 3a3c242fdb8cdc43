//! End to end: train a tiny model, export it for transformers, import it back, and check the
//! exported folder against an independent NumPy GPT-2 (scripts/hf_reference.py).

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn spec() -> String {
    base_spec("export")
        .top("seed = 3")
        .block_size(48)
        .base(
            r#"
steps = 80
batch_size = 16
lr = 3e-3
warmup_steps = 10
eval_every = 40
"#,
        )
        .text()
}

const PROMPT: &str = "我今天想去游乐园";
const NEW_TOKENS: usize = 20;

fn ok(args: &[&str], cwd: &Path) -> String {
    let o = gptlab(args, cwd);
    assert!(o.status.success(), "gptlab {args:?} failed:\n{}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

/// `$GPTLAB_PYTHON`, else `python3`, if it runs and has NumPy.
fn python_with_numpy() -> Option<String> {
    let py = std::env::var("GPTLAB_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(py)
}

#[test]
fn exported_model_round_trips_and_matches_an_independent_gpt2() {
    let tmp = tempdir();
    let spec = write_spec(tmp.path(), "export.toml", &spec());
    let run = run_dir(&gptlab(&["run", spec.to_str().unwrap()], tmp.path()));
    let stage = run.join("base");
    let hf = tmp.path().join("hf");
    ok(
        &[
            "export",
            stage.to_str().unwrap(),
            "--format",
            "hf-gpt2",
            "--out",
            hf.to_str().unwrap(),
        ],
        tmp.path(),
    );
    let config = json(&std::fs::read_to_string(hf.join("config.json")).unwrap());
    assert_eq!(config["activation_function"], "gelu_new");
    assert_eq!(config["architectures"][0], "GPT2LMHeadModel");

    // What gptlab itself computes, and its greedy continuation of the prompt.
    let s = stage.to_str().unwrap();
    let n = NEW_TOKENS.to_string();
    let ours = json(&ok(
        &["logits", s, "--text", PROMPT, "--generate", &n, "--json"],
        tmp.path(),
    ));
    let ids: Vec<String> = ours["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.to_string())
        .collect();
    let ids = ids.join(",");
    let generated: Vec<u64> = ours["generated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect();
    assert!(!generated.is_empty());
    // `logits --generate` is the same continuation `gptlab generate --greedy` prints.
    let printed = ok(
        &[
            "generate",
            s,
            "--prompt",
            PROMPT,
            "--greedy",
            "--max-new-tokens",
            &n,
        ],
        tmp.path(),
    );
    assert_eq!(
        printed,
        format!("{PROMPT}{}\n", ours["generated_text"].as_str().unwrap())
    );

    // Import it back: bitwise the same logits, and the same answer from `gptlab generate`.
    let back = tmp.path().join("imported/base");
    ok(
        &[
            "import",
            hf.to_str().unwrap(),
            "--out",
            back.to_str().unwrap(),
        ],
        tmp.path(),
    );
    let b = back.to_str().unwrap();
    let theirs = json(&ok(&["logits", b, "--tokens", &ids, "--json"], tmp.path()));
    let bits = |v: &Value| -> Vec<u32> {
        rows(v)
            .into_iter()
            .flatten()
            .map(|x| (x as f32).to_bits())
            .collect()
    };
    assert_eq!(bits(&ours), bits(&theirs), "imported logits differ");
    let text_back = ok(
        &[
            "generate",
            b,
            "--prompt",
            PROMPT,
            "--greedy",
            "--max-new-tokens",
            &n,
        ],
        tmp.path(),
    );
    assert_eq!(text_back, printed);

    // An independent NumPy GPT-2 reading only the exported folder.
    let Some(py) = python_with_numpy() else {
        // Optional even on CI (.ci/run goes on when pip cannot install NumPy), but visible.
        say("SKIPPED the NumPy reference check of export: needs python3 with numpy (pip install numpy)");
        return;
    };
    let script = repo().join("scripts/hf_reference.py");
    let mut command = Command::new(&py);
    command.args([
        script.to_str().unwrap(),
        hf.to_str().unwrap(),
        "--tokens",
        &ids,
        "--generate",
        &n,
        "--json",
    ]);
    let out = output_within(&mut command, COMMAND_TIMEOUT);
    assert!(
        out.status.success(),
        "hf_reference.py failed:\n{}",
        text(&out)
    );
    let reference = json(&String::from_utf8(out.stdout).unwrap());
    let (a, r) = (rows(&ours), rows(&reference));
    assert_eq!((a.len(), a[0].len()), (r.len(), r[0].len()));
    let scale = r.iter().flatten().fold(0.0f64, |m, x| m.max(x.abs()));
    let max_diff = a
        .iter()
        .flatten()
        .zip(r.iter().flatten())
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    eprintln!("max |gptlab - numpy| logit difference {max_diff:.3e} (largest logit {scale:.3})");
    assert!(
        max_diff <= 1e-4 * scale,
        "logits differ by {max_diff} (relative {})",
        max_diff / scale
    );
    let ref_generated: Vec<u64> = reference["generated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect();
    assert_eq!(ref_generated, generated, "greedy generation differs");
}
