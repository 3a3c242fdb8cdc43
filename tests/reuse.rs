//! End to end: a stage whose inputs did not change is taken from an earlier run instead of
//! trained (runner/identity.rs, runner/reuse.rs), two sweep points needing the same stage at
//! once share one, and `gptlab report RUN --set report...` reports again without training.

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// Two short stages: `base` on the demo text, `more` from `base` on `extra.txt` (a file in
/// the test's folder, so a test can change its contents).
fn spec() -> String {
    base_spec("reuse")
        .base("steps = 8\nbatch_size = 4\nwarmup_steps = 2\neval_every = 4\neval_batches = 1")
        .then(
            r#"
[[stages]]
name = "more"
kind = "pretrain"
from = "base"
data = "extra.txt"
steps = 6
batch_size = 4
warmup_steps = 2
eval_every = 3
eval_batches = 1

[report]
prompts = ["香蕉是"]
compare = ["more"]
sampling = { temperature = 0.0, max_new_tokens = 4 }
"#,
        )
        .text()
}

/// The demo corpus's lines, in order or reversed: the same characters (so the same
/// tokenizer), other contents.
fn write_extra(dir: &Path, reversed: bool) {
    let corpus = std::fs::read_to_string(repo().join("datasets/demo/corpus.txt")).unwrap();
    let mut lines: Vec<&str> = corpus.lines().collect();
    if reversed {
        lines.reverse();
    }
    std::fs::write(dir.join("extra.txt"), lines.join("\n")).unwrap();
}

fn setup() -> tempfile::TempDir {
    let tmp = tempdir();
    write_spec(tmp.path(), "reuse.toml", &spec());
    write_extra(tmp.path(), false);
    tmp
}

/// `gptlab run reuse.toml ARGS...`: the run folder and what it printed.
fn run(dir: &Path, args: &[&str]) -> (PathBuf, String) {
    let mut all = vec!["run", "reuse.toml"];
    all.extend_from_slice(args);
    let out = gptlab(&all, dir);
    (run_dir(&out), text(&out))
}

fn trained(log: &str, stage: &str) -> bool {
    log.contains(&format!("[{stage}] done:"))
}

fn reused(log: &str, stage: &str) -> bool {
    log.contains(&format!("[{stage}] reused, not trained"))
}

fn meta(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap()
}

#[test]
fn stages_are_reused_while_their_inputs_stay_the_same() {
    let tmp = setup();
    let dir = tmp.path();
    let (first, log) = run(dir, &[]);
    assert!(trained(&log, "base") && trained(&log, "more"), "{log}");

    // Another report setting: a new run whose stages are all the first run's.
    let (second, log) = run(dir, &["--set", "report.sampling.max_new_tokens=3"]);
    assert_ne!(second, first);
    assert!(reused(&log, "base") && reused(&log, "more"), "{log}");
    let stages = &meta(&second)["stages"];
    assert_eq!(stages[0]["reused"]["run"], first.to_str().unwrap());
    assert_eq!(stages[1]["reused"]["how"], "hard links");
    let weights = |run: &Path| std::fs::read(run.join("more/model.safetensors")).unwrap();
    assert_eq!(weights(&first), weights(&second));

    // A later stage changed: the earlier one is reused, the changed one trains.
    let (_, log) = run(dir, &["--set", "stages.more.lr=2e-3"]);
    assert!(reused(&log, "base") && trained(&log, "more"), "{log}");

    // An earlier stage changed: it and every stage after it train.
    let (_, log) = run(dir, &["--set", "stages.base.lr=2e-3"]);
    assert!(trained(&log, "base") && trained(&log, "more"), "{log}");

    // The same path with new contents: not the same input.
    write_extra(dir, true);
    let (_, log) = run(dir, &["--set", "report.sampling.max_new_tokens=2"]);
    assert!(reused(&log, "base") && trained(&log, "more"), "{log}");

    // --no-reuse trains what would have been reused.
    let (_, log) = run(
        dir,
        &["--set", "report.sampling.max_new_tokens=1", "--no-reuse"],
    );
    assert!(trained(&log, "base") && trained(&log, "more"), "{log}");
}

#[test]
fn report_set_evaluates_again_and_trains_nothing() {
    let tmp = setup();
    let dir = tmp.path();
    let (first, _) = run(dir, &[]);
    let old_report = std::fs::read_to_string(first.join("report.md")).unwrap();

    let out = gptlab(
        &[
            "report",
            first.to_str().unwrap(),
            "--set",
            "report.sampling.max_new_tokens=2",
        ],
        dir,
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("done:"), "a stage trained:\n{log}");
    assert!(reused(&log, "base") && reused(&log, "more"), "{log}");
    assert!(log.contains("a new report beside the old one"), "{log}");
    let new_run = run_dir(&out);
    assert_ne!(new_run, first);
    assert!(new_run.join("report.html").exists());
    assert_eq!(
        std::fs::read_to_string(first.join("report.md")).unwrap(),
        old_report
    );
    // The new run is the one `gptlab run` makes with the same change: it is complete.
    let (again, log) = run(dir, &["--set", "report.sampling.max_new_tokens=2"]);
    assert_eq!(again, new_run);
    assert!(log.contains("already complete"), "{log}");

    // A key that needs training is refused.
    let out = gptlab(
        &[
            "report",
            first.to_str().unwrap(),
            "--set",
            "stages.more.lr=1e-3",
        ],
        dir,
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("changes only `[report]` keys"),
        "{}",
        text(&out)
    );
}

#[test]
fn two_sweep_points_at_once_share_the_stage_they_both_need() {
    let tmp = setup();
    let dir = tmp.path();
    let sweep =
        "base = \"reuse.toml\"\nname = \"later\"\n[grid]\n\"stages.more.lr\" = [1e-3, 2e-3]\n";
    write_spec(dir, "sweep.toml", sweep);
    // A thread count set by the user turns the pilot off, so both points start at once.
    let mut command = gptlab_command(&["sweep", "sweep.toml", "--jobs", "2"], dir);
    command.env("RAYON_NUM_THREADS", "1");
    let out = output_within(&mut command, COMMAND_TIMEOUT);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !text(&out).contains("alone on every core"),
        "{}",
        text(&out)
    );
    let points = dir.join("results/later/points");
    let logs: Vec<String> = (0..2)
        .map(|i| std::fs::read_to_string(points.join(format!("{i}.log"))).unwrap())
        .collect();
    let base_trained = logs.iter().filter(|l| trained(l, "base")).count();
    let base_reused = logs.iter().filter(|l| reused(l, "base")).count();
    assert_eq!((base_trained, base_reused), (1, 1), "{logs:#?}");
    assert!(logs.iter().all(|l| trained(l, "more")), "{logs:#?}");
    // Both points' base is one model.
    let runs = dir.join("results/later/runs/reuse");
    let bases: Vec<Vec<u8>> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path().join("base/model.safetensors")).unwrap())
        .collect();
    assert_eq!(bases.len(), 2);
    assert_eq!(bases[0], bases[1]);
}

#[test]
fn a_sweep_runs_the_point_whose_stages_the_others_take_first() {
    let tmp = setup();
    let dir = tmp.path();
    let sweep =
        "base = \"reuse.toml\"\nname = \"later\"\n[grid]\n\"stages.more.lr\" = [1e-3, 2e-3, 3e-3]\n";
    write_spec(dir, "sweep.toml", sweep);
    let out = gptlab(&["sweep", "sweep.toml", "--jobs", "2"], dir);
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    let pilot = "point 0 first, alone on every core: the other points take its stages base";
    assert!(printed.contains(pilot), "{printed}");
    let points = dir.join("results/later/points");
    let log = |i: usize| std::fs::read_to_string(points.join(format!("{i}.log"))).unwrap();
    assert!(trained(&log(0), "base"), "{}", log(0));
    for i in 1..3 {
        assert!(
            reused(&log(i), "base") && trained(&log(i), "more"),
            "{}",
            log(i)
        );
    }
}
