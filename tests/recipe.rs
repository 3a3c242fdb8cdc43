//! End to end: a tiny experiment through every stage (pretrain, SFT, reward, PPO, DPO, GRPO,
//! KTO), checking the files a user relies on and that each stage learns.

mod common;
use common::*;

fn spec() -> String {
    base_spec("tiny")
        .top("seed = 7")
        .block_size(48)
        .base(
            r#"
steps = 120
batch_size = 16
lr = 3e-3
warmup_steps = 10
eval_every = 60
"#,
        )
        .then(
            r#"
[[stages]]
name = "assistant"
kind = "sft"
from = "base"
data = "{demo}/sft.jsonl"
val_data = "{demo}/sft_val.jsonl"
steps = 80
batch_size = 16
eval_every = 40
eval_batches = 2
[[stages]]
name = "rm"
kind = "reward"
from = "assistant"
data = ["{demo}/prefs.jsonl", "{demo}/feedback.jsonl"]
val_data = "{demo}/prefs_val.jsonl"
steps = 40
eval_every = 20
[[stages]]
name = "ppo"
kind = "rlhf"
algorithm = "ppo"
from = "assistant"
reward_model = "rm"
prompts = "{demo}/prompts.jsonl"
steps = 4
rollout_batch = 8
batch_size = 4
ppo_epochs = 2
max_new_tokens = 8
lr = 1e-4
eval_every = 2
[[stages]]
name = "dpo"
kind = "rlhf"
algorithm = "dpo"
from = "assistant"
data = "{demo}/prefs.jsonl"
val_data = "{demo}/prefs_val.jsonl"
rpo_alpha = 0.5
steps = 10
batch_size = 8
lr = 1e-4
eval_every = 5
[[stages]]
name = "grpo"
kind = "rlhf"
algorithm = "grpo"
from = "assistant"
prompts = "{demo}/prompts.jsonl"
checker = "char_f1"
group_size = 4
rollout_batch = 8
steps = 3
max_new_tokens = 8
lr = 1e-4
eval_every = 3
eval_batches = 1
[[stages]]
name = "kto"
kind = "rlhf"
algorithm = "kto"
from = "assistant"
data = "{tmp}/feedback.jsonl"
undesirable_weight = 1.5
steps = 20
batch_size = 8
lr = 3e-4
eval_every = 10
[report]
prompts = ["中国的首都是哪里?", "香蕉是"]
probes = [{ prompt = "我今天想去游乐园玩", candidates = ["过山车", "大风车"] }]
compare = ["base", "assistant", "ppo"]
sampling = { temperature = 0.0, max_new_tokens = 12 }
"#,
        )
        .text()
}

/// 👍/👎 lines in the format `gptlab serve` appends to feedback.jsonl (prompt and completion
/// as message lists): each of the first demo preference pairs as one 👍 and one 👎 answer.
fn write_feedback(dir: &std::path::Path) {
    let prefs = std::fs::read_to_string(repo().join("datasets/demo/prefs.jsonl")).unwrap();
    let turn = |role: &str, content: &serde_json::Value| serde_json::json!([{ "role": role, "content": content }]);
    let mut lines = String::new();
    for line in prefs.lines().take(60) {
        let pair: serde_json::Value = serde_json::from_str(line).unwrap();
        for (answer, label) in [("chosen", true), ("rejected", false)] {
            let record = serde_json::json!({
                "prompt": turn("user", &pair["prompt"]),
                "completion": turn("assistant", &pair[answer]),
                "label": label,
                "model": "tiny/assistant",
            });
            lines += &format!("{record}\n");
        }
    }
    std::fs::write(dir.join("feedback.jsonl"), lines).unwrap();
}

#[test]
fn every_stage_runs_end_to_end_and_leaves_a_complete_run() {
    let tmp = tempdir();
    write_feedback(tmp.path());
    let spec = spec().replace("{tmp}", tmp.path().to_str().unwrap());
    let spec = write_spec(tmp.path(), "tiny.toml", &spec);
    let out = gptlab(&["run", spec.to_str().unwrap()], tmp.path());
    let run = run_dir(&out);

    for f in [
        "spec.toml",
        "meta.json",
        "summary.json",
        "tokenizer.json",
        "samples.jsonl",
        "probes.jsonl",
        "report.html",
        "report.md",
    ] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["complete"], true);
    assert_eq!(meta["stages"].as_array().unwrap().len(), 7);
    for stage in ["base", "assistant", "rm", "ppo", "dpo", "grpo", "kto"] {
        for f in ["model.safetensors", "config.json", "metrics.csv"] {
            assert!(run.join(stage).join(f).is_file(), "{stage}/{f} missing");
        }
        assert!(
            !run.join(stage).join("resume.safetensors").exists(),
            "finished stage keeps resume state"
        );
    }

    // Pretraining and SFT learn.
    let loss = read_metric(&run.join("base/metrics.csv"), "loss");
    assert!(
        loss.last().unwrap() < &(loss[0] * 0.6),
        "pretrain loss {} -> {}",
        loss[0],
        loss.last().unwrap()
    );
    let sft = read_metric(&run.join("assistant/metrics.csv"), "loss");
    assert!(sft.last().unwrap() < &sft[0], "sft loss did not fall");
    let rm_acc = read_metric(&run.join("rm/metrics.csv"), "val/accuracy");
    assert!(
        *rm_acc.last().unwrap() > 0.6,
        "reward model accuracy {rm_acc:?}"
    );
    for (stage, metric) in [
        ("ppo", "objective/kl"),
        ("ppo", "policy/clipfrac_avg"),
        ("dpo", "rewards/margins"),
        ("dpo", "nll"),
        ("grpo", "reward"),
        ("kto", "kl"),
        ("kto", "val/loss"),
        ("kto", "val/kl"),
        ("kto", "val/rewards/chosen"),
        ("kto", "val/rewards/rejected"),
    ] {
        assert!(
            !read_metric(&run.join(stage).join("metrics.csv"), metric).is_empty(),
            "{stage} lacks {metric}"
        );
    }

    // KTO raises the 👍 answers and lowers the 👎 ones against the reference.
    let kto = |metric| read_metric(&run.join("kto/metrics.csv"), metric);
    let (chosen, rejected) = (kto("rewards/chosen"), kto("rewards/rejected"));
    assert!(
        chosen.last().unwrap() > rejected.last().unwrap(),
        "kto rewards/chosen {chosen:?} rewards/rejected {rejected:?}"
    );

    // One sample per (compared stage, prompt), probes for each compared stage.
    let samples = std::fs::read_to_string(run.join("samples.jsonl")).unwrap();
    assert_eq!(samples.lines().count(), 6);
    assert_eq!(
        std::fs::read_to_string(run.join("probes.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );

    // Running the same spec again finds the run complete and does no work.
    let again = gptlab(&["run", spec.to_str().unwrap()], tmp.path());
    assert_eq!(run_dir(&again), run);
    assert!(
        text(&again).contains("already complete"),
        "{}",
        text(&again)
    );
}
