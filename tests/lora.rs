//! LoRA through the recipe: SFT, reward, DPO and PPO stages with a `lora` table train
//! adapters only. Their folders hold the adapters and name the stage they adapt, the frozen
//! weights come out bit-identical, the next stage and the report load the adapted model, and
//! DPO's reference is the same weights with the adapters off.

mod common;
use common::*;
use dfdx::prelude::*;
use gptlab::results::adapters::read_adapter_record;
use gptlab::results::weights::{load_model, load_unmerged, model_tensors, read_tensors};
use std::path::Path;

fn spec() -> String {
    base_spec("lora")
        .base("steps = 30\nbatch_size = 8\nlr = 3e-3\neval_every = 10")
        .then(
            r#"
[[stages]]
name = "assistant"
kind = "sft"
from = "base"
data = "{demo}/sft.jsonl"
steps = 8
batch_size = 8
lr = 3e-3
eval_every = 4
lora = { rank = 4, alpha = 8 }
[[stages]]
name = "rm"
kind = "reward"
from = "assistant"
data = "{demo}/prefs.jsonl"
steps = 6
batch_size = 8
eval_every = 3
lora = { rank = 4, targets = ["attn"] }
[[stages]]
name = "dpo"
kind = "rlhf"
algorithm = "dpo"
from = "assistant"
data = "{demo}/prefs.jsonl"
steps = 6
batch_size = 4
lr = 1e-3
eval_every = 3
lora = { rank = 4 }
[[stages]]
name = "ppo"
kind = "rlhf"
algorithm = "ppo"
from = "assistant"
reward_model = "rm"
prompts = "{demo}/prompts.jsonl"
steps = 4
rollout_batch = 4
batch_size = 2
ppo_epochs = 1
max_new_tokens = 6
lr = 1e-4
eval_every = 2
lora = { rank = 4, targets = ["c_attn", "mlp.c_proj"] }
[report]
prompts = ["香蕉是"]
compare = ["base", "assistant", "dpo", "ppo"]
sampling = { temperature = 0.0, max_new_tokens = 4 }
"#,
        )
        .text()
}

fn tensor_names(stage: &Path) -> Vec<String> {
    let (tensors, _) = read_tensors(&stage.join("model.safetensors")).unwrap();
    let mut names: Vec<String> = tensors.into_keys().collect();
    names.sort();
    names
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn lora_stages_train_adapters_only_on_frozen_weights() {
    let tmp = tempdir();
    let spec = write_spec(tmp.path(), "lora.toml", &spec());
    let out = gptlab(&["run", spec.to_str().unwrap()], tmp.path());
    let run = run_dir(&out);
    let log = text(&out);
    assert!(log.contains("(LoRA: "), "{log}");

    // Each LoRA stage names the stage it adapts; its weights file holds the adapters (and the
    // reward model's head) only, far smaller than the base's.
    for (stage, base) in [
        ("assistant", "base"),
        ("rm", "assistant"),
        ("dpo", "assistant"),
    ] {
        let record = read_adapter_record(&run.join(stage)).unwrap().expect(stage);
        assert_eq!(record.base, base, "{stage}");
        let names = tensor_names(&run.join(stage));
        assert!(
            names
                .iter()
                .all(|n| n.contains(".lora_") || n.starts_with("score.")),
            "{stage}: {names:?}"
        );
        let ratio = file_size(&run.join(stage).join("model.safetensors")) as f64
            / file_size(&run.join("base/model.safetensors")) as f64;
        assert!(ratio < 0.2, "{stage}: adapters are {ratio:.3} of the base");
    }
    assert!(tensor_names(&run.join("rm")).contains(&"score.weight".to_string()));
    let ppo = tensor_names(&run.join("ppo"));
    assert!(
        ppo.iter().any(|n| n.ends_with("attn.c_attn.lora_A.weight")),
        "{ppo:?}"
    );
    assert!(!ppo.iter().any(|n| n.contains("c_fc")), "{ppo:?}");

    // The weights under the adapters are the `from` stage's, bit for bit.
    let dev = Cpu::default();
    let mut base = load_model(&run.join("base"), &dev).unwrap();
    let (adapted, _) = load_unmerged(&run.join("assistant"), &dev)
        .unwrap()
        .unwrap();
    let mut frozen = adapted.base_only();
    assert_eq!(
        model_tensors(base.as_mut()).unwrap(),
        model_tensors(frozen.as_mut()).unwrap(),
        "SFT with LoRA changed a frozen weight"
    );
    // The adapters moved the model: the merged assistant is not the base.
    let tokens = dev.tensor_from_vec(vec![5usize, 9, 12, 3], (1, 4));
    let merged = load_model(&run.join("assistant"), &dev).unwrap();
    let (a, b) = (
        base.logits(tokens.clone()).as_vec(),
        merged.logits(tokens).as_vec(),
    );
    assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-4));

    // The run's report and samples cover the adapted stages; generate loads one.
    let samples = std::fs::read_to_string(run.join("samples.jsonl")).unwrap();
    assert!(
        samples.contains("\"dpo\"") && samples.contains("\"ppo\""),
        "{samples}"
    );
    let out = gptlab(
        &[
            "generate",
            run.join("dpo").to_str().unwrap(),
            "--prompt",
            "香蕉",
            "--max-new-tokens",
            "4",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out));

    check_peft_export(&run, tmp.path());
}

/// `--format peft` writes what peft reads (its documented `adapter_config.json` keys and
/// `base_model.model.<module>.lora_{A,B}.weight` tensors), and the adapted stage in `base/`.
fn check_peft_export(run: &Path, tmp: &Path) {
    let out = tmp.join("dpo-peft");
    let export = |stage: &str, out: &Path| {
        let stage = run.join(stage);
        let (stage, out) = (stage.to_str().unwrap(), out.to_str().unwrap());
        gptlab(&["export", stage, "--format", "peft", "--out", out], tmp)
    };
    let done = export("dpo", &out);
    assert!(done.status.success(), "{}", text(&done));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["task_type"], "CAUSAL_LM");
    assert_eq!(
        (config["r"].as_u64(), config["lora_alpha"].as_f64()),
        (Some(4), Some(16.0))
    );
    assert_eq!(config["fan_in_fan_out"], true);
    let targets = config["target_modules"].as_array().unwrap();
    assert_eq!(targets, &["c_attn", "attn.c_proj", "c_fc", "mlp.c_proj"]);
    let base = Path::new(config["base_model_name_or_path"].as_str().unwrap());
    assert!(base.join("config.json").exists() && base.join("model.safetensors").exists());
    let (tensors, _) = read_tensors(&out.join("adapter_model.safetensors")).unwrap();
    // nano: width 64, MLP 256; rank 4.
    for (name, shape) in [
        (
            "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight",
            vec![4, 64],
        ),
        (
            "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
            vec![192, 4],
        ),
        (
            "base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight",
            vec![4, 256],
        ),
        (
            "base_model.model.transformer.h.1.mlp.c_fc.lora_B.weight",
            vec![256, 4],
        ),
    ] {
        assert_eq!(tensors.get(name).map(|t| &t.0), Some(&shape), "{name}");
    }
    assert_eq!(tensors.len(), 2 * 2 * 4, "A and B of 4 modules in 2 blocks");

    let refused = export("base", &tmp.join("base-peft"));
    assert!(
        text(&refused).contains("--format hf-gpt2"),
        "{}",
        text(&refused)
    );
    let refused = export("rm", &tmp.join("rm-peft"));
    assert!(
        text(&refused).contains("reward model"),
        "{}",
        text(&refused)
    );
}
