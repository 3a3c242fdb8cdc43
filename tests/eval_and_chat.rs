//! `gptlab eval` against numbers computed by hand, `gptlab chat` driven through a pipe, and
//! every printing command ending quietly when its pipe closes.
//!
//! The fixture model has every weight zero, so its logits are all zero and every next token has
//! probability 1/512 (the compiled vocabulary bucket): loss = ln 512 per token exactly, and a
//! sequence's log-probability is −(tokens)·ln 512, so shorter answers are always preferred.

mod common;
use common::*;
use dfdx::prelude::*;
use gptlab::model::presets::{build_model, model_config};
use gptlab::tokenizer::{Tokenizer, TokenizerKind};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A run folder with one stage `sft` holding the all-zero model.
fn zero_model_run(dir: &Path) -> PathBuf {
    let run = dir.join("run");
    let stage = run.join("sft");
    let tok = Tokenizer::train(
        TokenizerKind::Char,
        &["hello world 北京上海你好中国的首都是哪里?"],
        64,
    )
    .unwrap();
    tok.save(&run.join("tokenizer.json")).unwrap();
    let cfg = model_config("nano", 512).unwrap();
    assert_eq!(cfg.vocab_size, 512);
    let mut model = build_model(&cfg, &Cpu::default(), 0).unwrap();
    model
        .visit_params(&mut |_, p, _| {
            p.copy_from_host(&vec![0.0; p.numel()]);
            Ok(())
        })
        .unwrap();
    gptlab::results::weights::save_model(model.as_mut(), &stage).unwrap();
    std::fs::write(
        stage.join("done.json"),
        r#"{"name":"sft","kind":"sft","steps":0,"tokens":0,"wall_s":0,"tok_per_sec":0}"#,
    )
    .unwrap();
    stage
}

fn eval_json(stage: &Path, data: &Path, dir: &Path) -> serde_json::Value {
    let out = gptlab(
        &[
            "eval",
            stage.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--json",
        ],
        dir,
    );
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn eval_numbers_match_hand_computation() {
    let tmp = tempdir();
    let stage = zero_model_run(tmp.path());
    let ln512 = 512f64.ln();

    // Plain text: "hello world" is 11 tokens + end-of-text; 11 targets ("ello world" + EOT)
    // carrying 10 bytes (EOT has none): loss ln 512, bpb = 11·ln 512 / (10 · ln 2) = 9.9.
    let txt = tmp.path().join("t.txt");
    std::fs::write(&txt, "hello world").unwrap();
    let v = eval_json(&stage, &txt, tmp.path());
    assert_eq!(v["kind"], "text");
    assert_eq!(v["tokens"], 11);
    assert_eq!(v["bytes"], 10);
    assert!((v["loss"].as_f64().unwrap() - ln512).abs() < 1e-4, "{v}");
    assert!((v["bpb"].as_f64().unwrap() - 9.9).abs() < 1e-4, "{v}");

    // Pairs: the uniform model prefers the shorter answer; chosen is shorter in 2 of 3.
    let prefs = tmp.path().join("p.jsonl");
    std::fs::write(
        &prefs,
        concat!(
            r#"{"prompt":"中国的首都是哪里?","chosen":"北京","rejected":"上海上海"}"#,
            "\n",
            r#"{"prompt":"你好","chosen":"你好","rejected":"hello world"}"#,
            "\n",
            r#"{"prompt":"你好","chosen":"hello world","rejected":"你好"}"#,
            "\n",
        ),
    )
    .unwrap();
    let v = eval_json(&stage, &prefs, tmp.path());
    assert_eq!(v["kind"], "preference");
    assert_eq!(
        (v["correct"].as_u64(), v["count"].as_u64()),
        (Some(2), Some(3)),
        "{v}"
    );

    // Questions: greedy picks id 0 (padding, decoded as nothing) forever, so no answer
    // matches; the counts per task are still reported.
    let qa = tmp.path().join("q.jsonl");
    std::fs::write(
        &qa,
        concat!(
            r#"{"prompt":"中国的首都是哪里?","completion":"北京","task":"capital"}"#,
            "\n",
            r#"{"prompt":"你好","completion":"你好","task":"greeting"}"#,
            "\n",
            r#"{"prompt":"hello","completion":"world","task":"greeting"}"#,
            "\n",
        ),
    )
    .unwrap();
    let v = eval_json(&stage, &qa, tmp.path());
    assert_eq!(v["kind"], "exact_match");
    assert_eq!(
        (v["correct"].as_u64(), v["count"].as_u64()),
        (Some(0), Some(3))
    );
    assert_eq!(v["per_task"]["greeting"]["count"], 2);
    assert_eq!(v["per_task"]["capital"]["count"], 1);
}

#[test]
fn chat_through_a_pipe_writes_feedback_lines() {
    let tmp = tempdir();
    let stage = zero_model_run(tmp.path());
    let feedback = tmp.path().join("fb.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gptlab"))
        .args([
            "chat",
            stage.to_str().unwrap(),
            "--feedback",
            feedback.to_str().unwrap(),
            "--max-new-tokens",
            "4",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all("中国的首都是哪里?\n+\n你好\n-\n".as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        2,
        "one answer line per message"
    );

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&feedback)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["label"], true);
    assert_eq!(lines[1]["label"], false);
    assert_eq!(lines[0]["prompt"][0]["role"], "user");
    assert_eq!(lines[0]["prompt"][0]["content"], "中国的首都是哪里?");
    // The second rating's prompt carries the history: user, assistant, user.
    assert_eq!(lines[1]["prompt"].as_array().unwrap().len(), 3);
    assert_eq!(lines[1]["completion"][0]["role"], "assistant");
    assert!(lines[0]["ts"].as_str().unwrap().ends_with('Z'));
    // The same line as `gptlab serve` writes: the stage that answered and how it sampled.
    assert!(lines[0]["stage"].as_str().unwrap().contains("sft"));
    assert_eq!(lines[0]["sampling"]["max_tokens"], 4);
    // The reward stage's reader accepts what chat wrote.
    let records = gptlab::data::read_preferences(&feedback).unwrap();
    assert_eq!(records.len(), 2);
}

/// `COMMAND | head -c 1`, with the reader gone before the command prints: every printing
/// command ends quietly (by SIGPIPE, as Unix tools do), never with a panic about a broken pipe.
#[test]
fn printing_commands_end_quietly_when_their_reader_closes() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempdir();
    let stage = zero_model_run(tmp.path());
    let stage = stage.to_str().unwrap();
    let txt = tmp.path().join("t.txt");
    std::fs::write(&txt, "hello world").unwrap();
    let spec = repo().join("experiments/quickstart.toml");
    let tokens = vec!["1"; 40].join(",");
    let commands: [&[&str]; 10] = [
        &["--help"],
        &["validate", spec.to_str().unwrap()],
        &["schema"],
        &["keys"],
        &["keys", "dpo"],
        &["logits", stage, "--tokens", &tokens, "--json"],
        &["logits", stage, "--text", "hello", "--generate", "4"],
        &[
            "generate",
            stage,
            "--prompt",
            "hello",
            "--max-new-tokens",
            "8",
        ],
        &["probe", stage, "--prompt", "hello", "--json"],
        &["eval", stage, "--data", txt.to_str().unwrap(), "--json"],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut child = Command::new(env!("CARGO_BIN_EXE_gptlab"))
            .args(args)
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(started.elapsed() < COMMAND_TIMEOUT, "{args:?} hangs");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
        // clap prints help before any command runs, and ignores a failed write itself.
        let by_sigpipe = status.signal() == Some(libc::SIGPIPE);
        let help = args == ["--help"] && status.success();
        assert!(by_sigpipe || help, "{args:?}: {status:?} {stderr}");
    }
}

#[test]
fn generate_n_samples_several_answers_the_first_being_the_one_answer() {
    let tmp = tempdir();
    let stage = zero_model_run(tmp.path());
    let generate = |n: &str| {
        let args = [
            "generate",
            stage.to_str().unwrap(),
            "--prompt",
            "你好",
            "-n",
            n,
            "--max-new-tokens",
            "6",
            "--seed",
            "3",
        ];
        let out = gptlab(&args, tmp.path());
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let one = generate("1");
    let three = generate("3");
    let answers: Vec<&str> = three.split_inclusive('\n').collect();
    assert_eq!(answers.len(), 6, "{three}");
    for (i, header) in answers.iter().step_by(2).enumerate() {
        assert_eq!(header.trim(), format!("--- {}/3", i + 1), "{three}");
    }
    assert_eq!(answers[1], one, "the first of N is the answer -n 1 gives");
    // The all-zero model picks uniformly: three answers of six tokens do not all agree.
    assert!(
        answers[1] != answers[3] || answers[3] != answers[5],
        "{three}"
    );
}
