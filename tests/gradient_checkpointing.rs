//! `gradient_checkpointing = true` recomputes each block's activations in the backward
//! instead of keeping them: the same run with it on every trained stage (pretrain, SFT with
//! LoRA, a reward model, DPO with LoRA) writes bit-identical weights, and LoRA dropout is
//! refused beside it.

mod common;
use common::*;

fn spec() -> String {
    base_spec("ckpt")
        .base("steps = 12\nbatch_size = 8\nlr = 3e-3\neval_every = 6")
        .then(
            r#"
[[stages]]
name = "assistant"
kind = "sft"
from = "base"
data = "{demo}/sft.jsonl"
steps = 6
batch_size = 8
lr = 3e-3
eval_every = 3
lora = { rank = 4, alpha = 8 }
[[stages]]
name = "rm"
kind = "reward"
from = "assistant"
data = "{demo}/prefs.jsonl"
steps = 4
batch_size = 8
eval_every = 2
[[stages]]
name = "dpo"
kind = "rlhf"
algorithm = "dpo"
from = "assistant"
data = "{demo}/prefs.jsonl"
steps = 4
batch_size = 4
lr = 1e-3
eval_every = 2
lora = { rank = 4 }
"#,
        )
        .text()
}

const STAGES: [&str; 4] = ["base", "assistant", "rm", "dpo"];

#[test]
fn checkpointed_stages_write_the_same_weights() {
    let tmp = tempdir();
    let spec = write_spec(tmp.path(), "ckpt.toml", &spec());
    let spec = spec.to_str().unwrap();
    let out = gptlab(&["run", spec], tmp.path());
    assert!(!text(&out).contains("gradient checkpointing"));
    let plain = run_dir(&out);
    let sets: Vec<String> = STAGES
        .iter()
        .map(|s| format!("stages.{s}.gradient_checkpointing=true"))
        .collect();
    let mut args = vec!["run", spec];
    for set in &sets {
        args.extend(["--set", set.as_str()]);
    }
    let out = gptlab(&args, tmp.path());
    let log = text(&out);
    assert_eq!(log.matches(", gradient checkpointing").count(), 4, "{log}");
    let checkpointed = run_dir(&out);
    assert_ne!(plain, checkpointed, "the key is part of the run id");
    for stage in STAGES {
        let weights = |run: &std::path::Path| {
            std::fs::read(run.join(stage).join("model.safetensors")).unwrap()
        };
        assert!(
            weights(&plain) == weights(&checkpointed),
            "stage `{stage}`: checkpointing changed the trained weights"
        );
    }
}

#[test]
fn lora_dropout_is_refused_beside_checkpointing() {
    let tmp = tempdir();
    let toml = spec().replace(
        "lora = { rank = 4, alpha = 8 }",
        "lora = { rank = 4, alpha = 8, dropout = 0.1 }\ngradient_checkpointing = true",
    );
    let spec = write_spec(tmp.path(), "ckpt.toml", &toml);
    let out = gptlab(&["validate", spec.to_str().unwrap()], tmp.path());
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("`stages.assistant.gradient_checkpointing`") && log.contains("dropout"),
        "{log}"
    );
}
