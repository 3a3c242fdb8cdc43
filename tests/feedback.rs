//! The third act end to end: an assistant answers questions about its day with many people's
//! habits; simulated raters (a feedback stage with a judge that likes two of them) rate its
//! answers; DPO, KTO and a reward model train on those ratings; and on question groups no
//! rater saw, the judge finds the tuned assistants' answers closer to its taste than SFT's.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;

const HABITS: [&str; 10] = [
    "跑步",
    "看书",
    "画画",
    "游泳",
    "做饭",
    "唱歌",
    "钓鱼",
    "下棋",
    "啃骨头",
    "吃虫子",
];
const TIMES: [&str; 10] = [
    "周末",
    "早上",
    "晚上",
    "下班后",
    "放假时",
    "下雨天",
    "周日",
    "休息时",
    "假期里",
    "空闲时",
];
const TEMPLATES: [&str; 6] = [
    "你{t}喜欢做什么?",
    "{t}你一般做什么?",
    "你{t}常做什么?",
    "{t}你爱做什么?",
    "说说你{t}做什么?",
    "{t}你会做什么?",
];

/// Questions grouped by when they ask about (the group held out whole), and SFT answers with
/// every habit equally often: the judge's two habits are 2 answers in 10.
fn write_data(dir: &Path) {
    let (mut sft, mut prompts) = (String::new(), String::new());
    let mut k = 0;
    for t in TIMES {
        for template in TEMPLATES {
            let q = template.replace("{t}", t);
            prompts += &format!("{{\"prompt\": \"{q}\", \"group\": \"{t}\"}}\n");
            for _ in 0..5 {
                let habit = HABITS[k % HABITS.len()];
                k += 3;
                sft += &format!(
                    "{{\"prompt\": \"{q}\", \"completion\": \"我喜欢{habit}。\", \"group\": \"{t}\"}}\n"
                );
            }
        }
    }
    std::fs::write(dir.join("habits_sft.jsonl"), sft).unwrap();
    std::fs::write(dir.join("habits_prompts.jsonl"), prompts).unwrap();
}

fn spec(seed: u64) -> String {
    base_spec("habits")
        .top(&format!("seed = {seed}"))
        .data(r#""{demo}/corpus.txt""#)
        .base("steps = 60\nbatch_size = 16\nlr = 3e-3\neval_every = 30\neval_batches = 1")
        .then(
            r#"
[[stages]]
name = "assistant"
kind = "sft"
from = "base"
data = "habits_sft.jsonl"
val_group = "group"
val_fraction = 0.3
steps = 150
batch_size = 16
lr = 3e-3
eval_every = 50
eval_batches = 1

[[stages]]
name = "rate"
kind = "feedback"
from = "assistant"
prompts = "habits_prompts.jsonl"
val_group = "group"
val_fraction = 0.3
judge = "mine"
samples = 4
noise = 0.1
max_new_tokens = 12

[[stages]]
name = "rm"
kind = "reward"
from = "assistant"
data = "@rate/preferences.jsonl"
steps = 30
batch_size = 16
eval_every = 15

[[stages]]
name = "dpo"
kind = "rlhf"
algorithm = "dpo"
from = "assistant"
data = "@rate/preferences.jsonl"
rpo_alpha = 1.0
steps = 40
batch_size = 16
lr = 1e-3
eval_every = 20

[[stages]]
name = "kto"
kind = "rlhf"
algorithm = "kto"
from = "assistant"
data = "@rate/feedback.jsonl"
steps = 40
batch_size = 16
lr = 2e-4
eval_every = 20

[judges.mine]
prefer = ["跑步", "看书"]

[report]
compare = ["assistant", "dpo", "kto"]
eval = { held_out = "assistant", judge = "mine", samples = 4 }
sampling = { temperature = 0.0, max_new_tokens = 12 }
"#,
        )
        .text()
}

fn run(dir: &Path, seed: u64) -> std::path::PathBuf {
    write_data(dir);
    let spec = write_spec(dir, "habits.toml", &spec(seed));
    run_dir(&gptlab(&["run", spec.to_str().unwrap()], dir))
}

fn summary(run: &Path) -> BTreeMap<String, BTreeMap<String, f64>> {
    serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn ratings_from_simulated_raters_move_held_out_answers_toward_the_judge() {
    let tmp = tempdir();
    let run = run(tmp.path(), 11);
    let s = summary(&run);
    for stage in ["assistant", "dpo", "kto"] {
        let m = &s[stage];
        let get = |k: &str| m.get(k).copied().unwrap_or(f64::NAN);
        println!(
            "{stage}: gold {:.3}, win {:.3} [{:.3}, {:.3}], kl {:.3}, proxy {:.3}",
            get("gold/rate"),
            get("gold/win_vs/assistant"),
            get("gold/win_vs/assistant/low"),
            get("gold/win_vs/assistant/high"),
            get("kl_vs/assistant"),
            get("eval/reward")
        );
    }
    let sft = s["assistant"]["gold/rate"];
    for stage in ["dpo", "kto"] {
        let gold = s[stage]["gold/rate"];
        assert!(
            gold > sft + 0.15,
            "{stage}: gold rate {gold} vs SFT {sft} on held-out groups: {:?}",
            s[stage]
        );
        assert!(
            s[stage]["gold/win_vs/assistant/low"] > 0.5,
            "{stage}: {:?}",
            s[stage]
        );
    }
    // The raters only saw training groups: no held-out question is in the ratings.
    let ratings = std::fs::read_to_string(run.join("rate/preferences.jsonl")).unwrap();
    let feedback = std::fs::read_to_string(run.join("rate/feedback.jsonl")).unwrap();
    assert!(
        !ratings.is_empty() && feedback.lines().count() >= 4 * 30,
        "{feedback}"
    );
    let rated: std::collections::BTreeSet<&str> = TIMES
        .iter()
        .copied()
        .filter(|t| feedback.contains(t))
        .collect();
    assert!(
        (5..TIMES.len()).contains(&rated.len()),
        "groups rated: {rated:?}"
    );
    let rm = &s["rm"];
    assert!(
        rm["accuracy"] > 0.6,
        "the reward model learned the raters' pairs: {rm:?}"
    );
    // Held out, it orders pairs as the clean judge does more often than the noisy labels.
    assert!(
        rm["val/judge_accuracy"] > 0.8 && rm["val/judge_accuracy"] >= rm["val/accuracy"],
        "held-out accuracy against the judge and the labels: {rm:?}"
    );
}

#[test]
fn the_same_seed_rates_the_same_answers_the_same_way() {
    let (a, b) = (tempdir(), tempdir());
    let (first, second) = (run(a.path(), 5), run(b.path(), 5));
    for file in [
        "rate/feedback.jsonl",
        "rate/preferences.jsonl",
        "rate/metrics.csv",
    ] {
        let read = |run: &Path| std::fs::read_to_string(run.join(file)).unwrap();
        assert_eq!(
            read(&first),
            read(&second),
            "{file} differs between two runs of one seed"
        );
    }
}
