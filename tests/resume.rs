//! Killed runs resume exactly: a run killed with SIGKILL between checkpoints (and one stopped
//! with SIGTERM), resumed by running the same command, ends with the same weights and the same
//! metrics as an uninterrupted run of the same spec.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every stage kind whose objective keeps state of its own is here: PPO trains a value model
/// with its own optimizer inside the objective. `adapted` lines join the stages after the
/// base (a `lora` table: then they train adapters on frozen weights).
fn spec(adapted: &str) -> String {
    base_spec("resume")
        .top("seed = 11")
        .base(
            r#"
steps = 40
batch_size = 8
lr = 3e-3
warmup_steps = 4
eval_every = 7
checkpoint_every = 3
"#,
        )
        .then(
            &r#"
[[stages]]
name = "assistant"
kind = "sft"
from = "base"
data = "{demo}/sft.jsonl"
steps = 6
batch_size = 8
eval_every = 3
{adapted}
[[stages]]
name = "rm"
kind = "reward"
from = "assistant"
data = "{demo}/prefs.jsonl"
steps = 6
batch_size = 8
eval_every = 3
{adapted}
[[stages]]
name = "ppo"
kind = "rlhf"
algorithm = "ppo"
from = "assistant"
reward_model = "rm"
prompts = "{demo}/prompts.jsonl"
steps = 8
rollout_batch = 4
batch_size = 2
ppo_epochs = 2
max_new_tokens = 6
lr = 1e-4
eval_every = 3
checkpoint_every = 2
{adapted}
[report]
prompts = ["香蕉是"]
compare = ["base"]
sampling = { temperature = 0.0, max_new_tokens = 4 }
"#
            .replace("{adapted}", adapted),
        )
        .text()
}

const STAGES: [&str; 4] = ["base", "assistant", "rm", "ppo"];
/// Columns that measure the machine, not the training.
const TIMING: [&str; 2] = ["tok_per_sec", "mfu"];

fn spawn(spec: &Path, cwd: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gptlab"))
        .args(["run", spec.to_str().unwrap()])
        .current_dir(cwd)
        .env("GPTLAB_RESULTS", cwd.join("results"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gptlab starts")
}

/// Waits until `stage`'s resume state appears in the (single) run folder under `cwd`.
fn wait_for_checkpoint(child: &mut Child, cwd: &Path, stage: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let found = glob::glob(&format!(
            "{}/results/resume/*/{stage}/resume.safetensors",
            cwd.display()
        ))
        .unwrap()
        .any(|p| p.is_ok());
        if found {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output_ref();
            panic!("run ended ({status}) before {stage} checkpointed:\n{out}");
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of {stage} after 300 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

trait OutputText {
    fn wait_with_output_ref(&mut self) -> String;
}

impl OutputText for Child {
    fn wait_with_output_ref(&mut self) -> String {
        use std::io::Read;
        let mut s = String::new();
        if let Some(o) = self.stdout.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        if let Some(e) = self.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

/// metrics.csv as (header, rows) without the timing columns.
fn metrics_without_timing(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let keep: Vec<usize> = (0..headers.len())
        .filter(|&i| !TIMING.contains(&headers[i].as_str()))
        .collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            keep.iter().map(|&i| rec[i].to_string()).collect()
        })
        .collect();
    (keep.iter().map(|&i| headers[i].clone()).collect(), rows)
}

fn assert_same_run(resumed: &Path, straight: &Path) {
    for stage in STAGES {
        let a = std::fs::read(resumed.join(stage).join("model.safetensors")).unwrap();
        let b = std::fs::read(straight.join(stage).join("model.safetensors")).unwrap();
        assert!(a == b, "{stage}: final weights differ after resume");
        let (ha, ra) = metrics_without_timing(&resumed.join(stage).join("metrics.csv"));
        let (hb, rb) = metrics_without_timing(&straight.join(stage).join("metrics.csv"));
        assert_eq!(ha, hb, "{stage}: metric columns differ");
        assert_eq!(ra.len(), rb.len(), "{stage}: row count differs");
        for (i, (x, y)) in ra.iter().zip(&rb).enumerate() {
            assert_eq!(x, y, "{stage}: metrics row {i} differs");
        }
        assert!(!resumed.join(stage).join("resume.safetensors").exists());
    }
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(resumed.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["complete"], true);
}

#[test]
fn killed_and_terminated_runs_resume_to_the_same_weights_and_metrics() {
    resumes_exactly(&spec(""));
}

/// The same with LoRA on SFT, reward and PPO (dropout 0: its masks are not part of the
/// resume state).
#[test]
fn lora_stages_resume_to_the_same_adapters_and_metrics() {
    resumes_exactly(&spec("lora = { rank = 4 }"));
}

fn resumes_exactly(spec_text: &str) {
    let tmp = tempdir();
    let interrupted = tmp.path().join("interrupted");
    let straight = tmp.path().join("straight");
    std::fs::create_dir_all(&interrupted).unwrap();
    std::fs::create_dir_all(&straight).unwrap();
    let spec = write_spec(tmp.path(), "resume.toml", spec_text);

    // 1. SIGKILL mid-pretraining, right after a checkpoint.
    let mut child = spawn(&spec, &interrupted);
    wait_for_checkpoint(&mut child, &interrupted, "base");
    std::thread::sleep(Duration::from_millis(30));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let run: PathBuf = glob::glob(&format!("{}/results/resume/*", interrupted.display()))
        .unwrap()
        .next()
        .expect("a run folder")
        .unwrap();
    let meta = read_meta_json(&run);
    assert_ne!(
        meta["complete"], true,
        "a killed run must not look complete"
    );
    assert!(!run.join("base/done.json").exists());
    // A kill can land after `model.safetensors` is rewritten and before the resume state is:
    // resuming must take the weights from the resume state, not from the newer model file.
    scramble_weights(&run.join("base/model.safetensors"));

    // 2. Resume, and this time SIGTERM it inside PPO (the objective with its own state).
    let mut child = spawn(&spec, &interrupted);
    wait_for_checkpoint(&mut child, &interrupted, "ppo");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let log = text(&out);
    assert!(
        !out.status.success(),
        "a terminated run exits non-zero:\n{log}"
    );
    assert!(
        log.contains("resuming from step"),
        "base was not resumed:\n{log}"
    );
    assert!(
        log.contains("interrupted at step") && !log.contains("panicked"),
        "{log}"
    );
    assert!(run.join("ppo/resume.safetensors").exists());
    assert_ne!(read_meta_json(&run)["complete"], true);

    // 3. Resume to the end.
    let out = gptlab(&["run", spec.to_str().unwrap()], &interrupted);
    assert_eq!(run_dir(&out), run);
    assert!(
        text(&out).contains("[ppo] resuming from step"),
        "{}",
        text(&out)
    );

    // 4. The same spec uninterrupted, elsewhere.
    let out = gptlab(&["run", spec.to_str().unwrap()], &straight);
    let reference = run_dir(&out);
    assert_eq!(
        reference.file_name(),
        run.file_name(),
        "same spec, same run id"
    );
    assert_same_run(&run, &reference);
}

fn read_meta_json(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap()
}

/// Rewrites a model file with the same shapes and different values.
fn scramble_weights(path: &Path) {
    use gptlab::results::weights::{encode_tensors, read_tensors};
    let (tensors, meta) = read_tensors(path).unwrap();
    let scrambled: Vec<(String, Vec<usize>, Vec<f32>)> = tensors
        .into_iter()
        .map(|(name, (shape, values))| {
            (name, shape, values.iter().map(|v| v * 2.0 + 0.1).collect())
        })
        .collect();
    std::fs::write(path, encode_tensors(&scrambled, meta).unwrap()).unwrap();
}

/// A kill after a stage wrote done.json but before meta.json was updated: the re-run skips the
/// stage and still records it in meta.json.
#[test]
fn a_stage_finished_just_before_a_kill_is_recorded_on_the_rerun() {
    let tmp = tempdir();
    let spec = write_spec(
        tmp.path(),
        "one.toml",
        &base_spec("one")
            .block_size(16)
            .data(r#""{demo}/corpus.txt""#)
            .base(
                r#"
steps = 2
batch_size = 2
"#,
            )
            .text(),
    );
    let run = run_dir(&gptlab(&["run", spec.to_str().unwrap()], tmp.path()));
    let mut meta = read_meta_json(&run);
    meta["complete"] = false.into();
    meta["stages"] = serde_json::json!([]);
    std::fs::write(run.join("meta.json"), meta.to_string()).unwrap();

    let out = gptlab(&["run", spec.to_str().unwrap()], tmp.path());
    assert_eq!(run_dir(&out), run);
    assert!(text(&out).contains("already trained"), "{}", text(&out));
    let meta = read_meta_json(&run);
    assert_eq!(meta["complete"], true);
    assert_eq!(meta["stages"][0]["name"], "base", "{meta}");
}
