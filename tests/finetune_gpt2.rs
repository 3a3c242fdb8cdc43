//! `experiments/finetune-gpt2.toml` as shipped, shortened: a pretrained GPT-2 folder as the
//! base, SFT, a reward model and DPO with LoRA, simulated raters and the gold judge, end to
//! end. Once on the folder it ships (`datasets/demo-gpt2`), once on the tests' own HF-layout
//! stand-in (random weights, a byte-level BPE `tokenizer.json` from the `tokenizers` crate),
//! as `--set stages.base.path=…` points it at any GPT-2 folder.

mod common;
use common::*;
use gptlab::results::adapters::read_adapter_record;
use std::path::Path;
use std::time::Duration;

const SHORT: [&str; 8] = [
    "--set",
    "stages.assistant.steps=40",
    "--set",
    "stages.rm.steps=10",
    "--set",
    "stages.dpo.steps=10",
    "--set",
    "report.eval.samples=1",
];

fn run_finetune(cwd: &Path, extra: &[&str]) -> std::path::PathBuf {
    let spec = repo().join("experiments/finetune-gpt2.toml");
    let args = [&["run", spec.to_str().unwrap()], &SHORT[..], extra].concat();
    let out = output_within(&mut gptlab_command(&args, cwd), Duration::from_secs(600));
    let run = run_dir(&out);
    for (stage, base) in [
        ("assistant", "base"),
        ("rm", "assistant"),
        ("dpo", "assistant"),
    ] {
        let record = read_adapter_record(&run.join(stage)).unwrap();
        assert_eq!(record.map(|r| r.base).as_deref(), Some(base), "{stage}");
    }
    assert!(run.join("report.html").exists(), "{}", text(&out));
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    assert!(
        summary.contains("dpo") && summary.contains("gold"),
        "{summary}"
    );
    run
}

#[test]
fn the_shipped_finetune_experiment_runs_on_its_demo_checkpoint_and_on_a_stand_in() {
    let tmp = tempdir();
    // So short an SFT answers too alike for the judge to rank: the reward model reads the
    // raters' 👍/👎 instead of their rankings.
    run_finetune(
        tmp.path(),
        &["--set", "stages.rm.data=@rate/feedback.jsonl"],
    );
    let stand_in = tmp.path().join("stand-in");
    write_hf_stand_in(&stand_in);
    // Random weights answer nothing the judge likes: the preference stages read the demo pairs.
    let path = format!("stages.base.path={}", stand_in.display());
    let prefs = repo().join("datasets/demo/prefs.jsonl");
    let rm = format!("stages.rm.data={}", prefs.display());
    let dpo = format!("stages.dpo.data={}", prefs.display());
    let run = run_finetune(tmp.path(), &["--set", &path, "--set", &rm, "--set", &dpo]);
    let tokenizer = std::fs::read_to_string(run.join("tokenizer.json")).unwrap();
    assert!(
        tokenizer.contains("\"BPE\""),
        "the run took the stand-in's tokenizer"
    );
}
