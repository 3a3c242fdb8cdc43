//! End to end: batch runs and sweeps with the real binary on a tiny pretraining spec, points
//! running as child processes, killed, failing, rerun and spread over concurrent processes.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Pretraining only, a few seconds a run.
fn spec() -> String {
    base_spec("tiny")
        .top("seed = 5")
        .data(r#""{demo}/corpus.txt""#)
        .base(
            r#"
steps = 40
batch_size = 8
lr = 3e-3
warmup_steps = 4
eval_every = 20
eval_batches = 2
"#,
        )
        .then(
            r#"
[report]
prompts = ["香蕉是"]
compare = ["base"]
sampling = { temperature = 0.0, max_new_tokens = 4 }
"#,
        )
        .text()
}

const LR_SWEEP: &str = r#"
base = "tiny.toml"
name = "lr"
[grid]
"stages.base.lr" = [1e-3, 3e-3, 1e-2]
"#;

/// A temp folder with tiny.toml and the sweep file `sweep.toml`.
fn setup(sweep: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempdir();
    write_spec(tmp.path(), "tiny.toml", &spec());
    let path = write_spec(tmp.path(), "sweep.toml", sweep);
    (tmp, path)
}

/// summary.csv as rows of column -> value.
fn summary(sweep_root: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(sweep_root.join("summary.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("a well-formed summary.csv row");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn states(sweep_root: &Path) -> Vec<String> {
    summary(sweep_root)
        .iter()
        .map(|row| row["status"].clone())
        .collect()
}

fn point_status(sweep_root: &Path, i: usize) -> serde_json::Value {
    let text = std::fs::read_to_string(sweep_root.join(format!("points/{i}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn attempts(sweep_root: &Path, i: usize) -> u64 {
    point_status(sweep_root, i)["attempts"].as_u64().unwrap()
}

#[test]
fn batch_run_reports_a_failure_and_runs_the_others() {
    let tmp = tempdir();
    write_spec(tmp.path(), "a.toml", &spec());
    write_spec(
        tmp.path(),
        "b.toml",
        &spec().replace("seed = 5", "seed = 6"),
    );
    write_spec(
        tmp.path(),
        "bad.toml",
        &spec().replace("{demo}/corpus.txt", "missing-corpus.txt"),
    );
    let out = gptlab(&["run", "a.toml", "bad.toml", "b.toml"], tmp.path());
    let log = text(&out);
    assert!(
        !out.status.success(),
        "one spec failed: exit status must say so\n{log}"
    );
    assert!(log.contains("1 of 3 experiments failed"), "{log}");
    assert!(log.contains("bad.toml"), "{log}");
    let complete = std::fs::read_dir(tmp.path().join("results/tiny"))
        .unwrap()
        .filter(|e| {
            let meta = std::fs::read_to_string(e.as_ref().unwrap().path().join("meta.json"));
            meta.is_ok_and(|m| m.contains("\"complete\": true"))
        })
        .count();
    assert_eq!(complete, 2, "a.toml and b.toml both ran to the end\n{log}");
}

#[test]
fn list_prints_points_without_running_them() {
    // A one-value key is a constant override: in every point, but not in the labels.
    let (tmp, sweep) = setup(&format!("{LR_SWEEP}\"stages.base.steps\" = [20]\n"));
    let out = gptlab(&["sweep", sweep.to_str().unwrap(), "--list"], tmp.path());
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("3 points"), "{log}");
    for (i, lr) in ["0.001", "0.003", "0.01"].iter().enumerate() {
        let line = format!("{i}  pending     lr={lr}   [stages.base.lr={lr} stages.base.steps=20]");
        assert!(log.contains(&line), "{line:?} not in\n{log}");
    }
    assert!(
        !tmp.path().join("results/lr/runs").exists(),
        "--list ran something"
    );
}

#[test]
fn killed_sweep_resumes_without_rerunning_finished_points() {
    let (tmp, sweep) = setup(LR_SWEEP);
    let root = tmp.path().join("results/lr");
    // Its own process group, so the sweep and its child runs die together.
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new(env!("CARGO_BIN_EXE_gptlab"))
            .args(["sweep", sweep.to_str().unwrap()])
            .current_dir(tmp.path())
            .env("GPTLAB_RESULTS", tmp.path().join("results"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    // summary.csv is rewritten after the point's status file, so wait for it: a kill between
    // the two writes would leave a summary that still says pending.
    let first_done = || {
        csv::Reader::from_path(root.join("summary.csv"))
            .ok()
            .and_then(|mut r| {
                let status = r.headers().ok()?.iter().position(|h| h == "status")?;
                let first = r.records().next()?.ok()?;
                Some(first.get(status)? == "ok")
            })
            .unwrap_or(false)
    };
    while !first_done() {
        assert!(Instant::now() < deadline, "point 0 never finished");
        assert!(child.try_wait().unwrap().is_none(), "sweep ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    assert!(killed.success());
    child.wait().unwrap();

    let after_kill = states(&root);
    assert_eq!(after_kill[0], "ok");
    assert!(
        after_kill[1..].iter().any(|s| s != "ok"),
        "the kill came too late to test anything: {after_kill:?}"
    );
    let first_run = PathBuf::from(&summary(&root)[0]["run_dir"]);
    let finished = std::fs::read_to_string(first_run.join("meta.json")).unwrap();

    let out = gptlab(&["sweep", sweep.to_str().unwrap()], tmp.path());
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("[point 0/3] lr=0.001: already complete, skipping"),
        "{log}"
    );
    assert_eq!(states(&root), ["ok", "ok", "ok"], "{log}");
    assert_eq!(attempts(&root, 0), 1, "point 0 ran again");
    assert_eq!(
        std::fs::read_to_string(first_run.join("meta.json")).unwrap(),
        finished,
        "point 0's run was touched"
    );
    // Each row carries the final metrics and its run folder; the comparison covers all three.
    for row in summary(&root) {
        let loss: f64 = row["base/val/loss"].parse().unwrap();
        assert!(loss.is_finite() && loss > 0.0, "{row:?}");
        assert!(Path::new(&row["run_dir"]).join("meta.json").is_file());
    }
    let compare = root.join("compare/compare.html");
    assert!(compare.is_file(), "{log}");
    assert!(
        log.contains(&format!("comparison: {}", compare.display())),
        "{log}"
    );

    // Everything finished: running it again does nothing.
    let again = gptlab(&["sweep", sweep.to_str().unwrap()], tmp.path());
    assert!(again.status.success());
    assert_eq!(text(&again).matches("already complete").count(), 3);
}

#[test]
fn failed_points_carry_their_error_and_rerun_failed_runs_only_them() {
    // Point 1 reads a broken JSONL file (fails while running); points 2 and 3 have a bad
    // learning rate (fail before running). Point 0 is fine.
    let sweep = r#"
base = "tiny.toml"
name = "fails"
[grid]
"stages.base.lr" = [3e-3, -1.0]
"stages.base.data" = ["{demo}/corpus.txt", "broken.jsonl"]
"#;
    let (tmp, sweep) = setup(sweep);
    std::fs::write(
        tmp.path().join("broken.jsonl"),
        "{\"text\": \"天\"}\nnot json\n",
    )
    .unwrap();
    let root = tmp.path().join("results/fails");
    let run = |extra: &[&str]| {
        let mut args = vec!["sweep", sweep.to_str().unwrap(), "--jobs", "2"];
        args.extend_from_slice(extra);
        gptlab(&args, tmp.path())
    };

    let out = run(&[]);
    let log = text(&out);
    assert!(
        !out.status.success(),
        "failed points must fail the sweep\n{log}"
    );
    assert_eq!(states(&root), ["ok", "failed", "failed", "failed"], "{log}");
    let rows = summary(&root);
    assert!(rows[1]["error"].contains("broken.jsonl:2"), "{:?}", rows[1]);
    assert!(rows[2]["error"].contains("stages.base.lr"), "{:?}", rows[2]);
    assert!(rows[0]["base/val/loss"].parse::<f64>().is_ok());
    assert!(
        root.join("compare/compare.html").is_file(),
        "the comparison covers the points that finished\n{log}"
    );

    // Without --rerun-failed, a failed point stays failed and nothing runs.
    let out = run(&[]);
    assert!(
        text(&out).contains("failed before, skipping"),
        "{}",
        text(&out)
    );
    assert_eq!(attempts(&root, 1), 1);

    // Fix the data; --rerun-failed runs point 1 (and the still-invalid 2, 3 fail at once).
    std::fs::write(
        tmp.path().join("broken.jsonl"),
        "{\"text\": \"天地玄黄宇宙洪荒\"}\n".repeat(200),
    )
    .unwrap();
    let out = run(&["--rerun-failed"]);
    let log = text(&out);
    assert_eq!(states(&root), ["ok", "ok", "failed", "failed"], "{log}");
    assert_eq!(attempts(&root, 0), 1, "point 0 ran again\n{log}");
    assert_eq!(attempts(&root, 1), 2);
    assert_eq!(attempts(&root, 2), 0, "an invalid point never starts a run");
    assert!(
        log.contains("[point 0/4] lr=0.003 data=") && log.contains("already complete"),
        "{log}"
    );
}

#[test]
fn concurrent_point_processes_leave_a_well_formed_summary() {
    let (tmp, sweep) = setup(LR_SWEEP);
    let root = tmp.path().join("results/lr");
    let spawn = |i: usize| {
        let point = i.to_string();
        gptlab_command(
            &["sweep", sweep.to_str().unwrap(), "--point", &point],
            tmp.path(),
        )
    };
    let outputs: Vec<_> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..3)
            .map(|i| scope.spawn(move || output_within(&mut spawn(i), COMMAND_TIMEOUT)))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for out in outputs {
        assert!(out.status.success(), "{}", text(&out));
    }
    assert_eq!(states(&root), ["ok", "ok", "ok"]);
    let rows = summary(&root);
    assert_eq!(
        rows.iter().map(|r| r["point"].as_str()).collect::<Vec<_>>(),
        ["0", "1", "2"]
    );
    assert_eq!(rows[2]["stages.base.lr"], "0.01");
    // The last point to finish built the comparison.
    assert!(root.join("compare/compare.html").is_file());
    // No temporary files left behind by the concurrent writers.
    let leftovers: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn slurm_script_is_valid_bash_names_every_point_and_runs_one() {
    let (tmp, sweep) = setup(LR_SWEEP);
    let out = gptlab(
        &[
            "sweep",
            sweep.to_str().unwrap(),
            "--emit",
            "slurm",
            "--partition",
            "gpu",
            "--gpus-per-task",
            "1",
            "--time",
            "00:30:00",
        ],
        tmp.path(),
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    let script = tmp.path().join("results/lr/sweep.sbatch");
    assert!(
        log.contains(&format!("sbatch {}", script.display())),
        "{log}"
    );
    let text_of = std::fs::read_to_string(&script).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "bash -n: {}", text(&syntax));
    for line in [
        "#SBATCH --array=0-2",
        "#SBATCH --partition=gpu",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --time=00:30:00",
        "#   0: lr=0.001   [stages.base.lr=0.001]",
        "#   1: lr=0.003   [stages.base.lr=0.003]",
        "#   2: lr=0.01   [stages.base.lr=0.01]",
        "--point \"$SLURM_ARRAY_TASK_ID\"",
    ] {
        assert!(text_of.contains(line), "missing {line:?} in\n{text_of}");
    }
    // What an array task does: run point 1 only.
    let task = output_within(
        Command::new("bash")
            .arg(&script)
            .env("SLURM_ARRAY_TASK_ID", "1")
            .current_dir(tmp.path()),
        COMMAND_TIMEOUT,
    );
    assert!(task.status.success(), "{}", text(&task));
    assert_eq!(
        states(&tmp.path().join("results/lr")),
        ["pending", "ok", "pending"]
    );
}
