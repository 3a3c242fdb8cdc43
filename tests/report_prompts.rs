//! `[report] prompts` may hold conversations: every compared stage answers the last turn with
//! the earlier ones as context, and the side-by-side table shows every turn.

mod common;
use common::*;

const TURNS: [&str; 3] = ["我叫小明。", "你好，小明!", "我叫什么名字?"];

fn spec() -> String {
    base_spec("conversation")
        .base("steps = 10\nbatch_size = 8")
        .then(
            r#"
[[stages]]
name = "assistant"
kind = "sft"
from = "base"
data = ["{demo}/sft.jsonl", "{demo}/chat_sft.jsonl"]
steps = 10
batch_size = 8
[report]
prompts = ["香蕉是", ["我叫小明。", "你好，小明!", "我叫什么名字?"]]
compare = ["base", "assistant"]
sampling = { temperature = 0.0, max_new_tokens = 6 }
"#,
        )
        .text()
}

#[test]
fn a_conversation_prompt_is_answered_in_context_and_every_turn_renders() {
    let tmp = tempdir();
    let spec = write_spec(tmp.path(), "conversation.toml", &spec());
    let run = run_dir(&gptlab(&["run", spec.to_str().unwrap()], tmp.path()));

    let samples: Vec<serde_json::Value> = std::fs::read_to_string(run.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(samples.len(), 4, "two prompts, two stages: {samples:?}");
    let key = TURNS.join("\n");
    for stage in ["base", "assistant"] {
        let line = samples
            .iter()
            .find(|s| s["stage"] == stage && s["prompt"] == key.as_str())
            .unwrap_or_else(|| panic!("{stage} did not answer the conversation: {samples:?}"));
        assert_eq!(line["turns"], serde_json::json!(TURNS));
    }
    // A plain prompt stays a plain line.
    assert!(samples
        .iter()
        .any(|s| s["prompt"] == "香蕉是" && s.get("turns").is_none()));

    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    for (i, turn) in TURNS.iter().enumerate() {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        assert!(
            html.contains(&format!(
                "<div class=\"turn {role}\"><small>{role}</small> {turn}</div>"
            )),
            "turn {i} ({turn}) is not shown as the {role}'s"
        );
    }
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("**user: 我叫小明。<br>assistant: 你好，小明!<br>user: 我叫什么名字?**"),
        "{md}"
    );

    // An even number of turns does not end on a question: the spec is refused, saying where.
    let bad = spec_text_with_even_turns();
    let path = write_spec(tmp.path(), "even.toml", &bad);
    let out = gptlab(&["validate", path.to_str().unwrap()], tmp.path());
    assert!(!out.status.success());
    assert!(text(&out).contains("report.prompts[1]"), "{}", text(&out));
}

fn spec_text_with_even_turns() -> String {
    spec().replace("\"我叫什么名字?\"]]", "\"我叫什么名字?\", \"小明。\"]]")
}
