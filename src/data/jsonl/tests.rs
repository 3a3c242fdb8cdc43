//! Schema handling and error messages of the JSONL readers.

use super::*;
use std::path::PathBuf;

fn write(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gptlab-jsonl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn err_of<T: std::fmt::Debug>(result: anyhow::Result<T>) -> String {
    format!("{:#}", result.unwrap_err())
}

#[test]
fn sft_accepts_prompt_completion_messages_and_conversations() {
    let path = write(
        "sft.jsonl",
        concat!(
            r#"{"prompt": "中国的首都是哪里?", "completion": "北京。", "task": "capital", "source": "x"}"#,
            "\n",
            "\n",
            r#"{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}"#,
            "\n",
            r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}"#,
            "\n",
            r#"{"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "a"}]}"#,
            "\n",
        ),
    );
    let examples = read_sft(&path).unwrap();
    assert_eq!(examples.len(), 4);
    assert_eq!(
        examples[0].messages,
        vec![
            Message::user("中国的首都是哪里?"),
            Message::assistant("北京。")
        ]
    );
    assert_eq!(examples[0].task.as_deref(), Some("capital"));
    assert_eq!(examples[1].messages.len(), 3);
    assert_eq!(examples[1].messages[0], Message::system("s"));
    assert_eq!(examples[1].task, None);
    let qa = vec![Message::user("q"), Message::assistant("a")];
    assert_eq!(examples[2].messages, qa);
    assert_eq!(examples[3].messages, qa);
}

#[test]
fn sft_errors_name_file_line_and_what_was_expected() {
    let good = r#"{"prompt": "q", "completion": "a"}"#;
    let cases = [
        (
            "wrong schema",
            format!("{good}\n{{\"question\": \"q\", \"answer\": \"a\"}}\n"),
            r#"expected {"prompt","completion"} or {"messages":[...]}, found keys ["answer", "question"]"#,
        ),
        (
            "malformed",
            format!("{good}\n{{\"prompt\": \"q\",\n"),
            "malformed JSON",
        ),
        (
            "not an object",
            format!("{good}\n[1, 2]\n"),
            "expected a JSON object, found a list",
        ),
        (
            "wrong type",
            format!("{good}\n{{\"prompt\": 3, \"completion\": \"a\"}}\n"),
            "expected \"prompt\" to be a string or a list of messages, found a number (3)",
        ),
        (
            "bad role",
            format!("{good}\n{{\"messages\": [{{\"role\": \"tool\", \"content\": \"x\"}}]}}\n"),
            "messages[0]: unknown role \"tool\"",
        ),
        (
            "no answer",
            format!("{good}\n{{\"messages\": [{{\"role\": \"user\", \"content\": \"x\"}}]}}\n"),
            "at least one assistant message",
        ),
        (
            "bad task",
            format!("{good}\n{{\"prompt\": \"q\", \"completion\": \"a\", \"task\": 1}}\n"),
            "expected \"task\" to be a string",
        ),
    ];
    for (what, contents, expected) in cases {
        let path = write(&format!("bad-{}.jsonl", what.replace(' ', "-")), &contents);
        let err = err_of(read_sft(&path));
        assert!(
            err.contains(&format!("{}:2: ", path.display())),
            "{what}: {err}"
        );
        assert!(err.contains(expected), "{what}: {err}");
    }
}

#[test]
fn empty_files_are_errors() {
    for (name, contents) in [("empty.jsonl", ""), ("blank.jsonl", "\n  \n")] {
        let path = write(name, contents);
        assert!(err_of(read_sft(&path)).contains("no records"));
        assert!(err_of(read_preferences(&path)).contains("no records"));
        assert!(err_of(read_prompts(&path)).contains("no records"));
        assert!(err_of(sniff_jsonl_kind(&path)).contains("no records"));
    }
}

#[test]
fn preferences_mix_pairs_and_feedback() {
    let path = write(
        "pref.jsonl",
        concat!(
            r#"{"prompt": "q", "chosen": "good", "rejected": "bad", "task": "t"}"#,
            "\n",
            r#"{"prompt": "q", "completion": "meh", "label": false, "model": "m", "ts": 123}"#,
            "\n",
            r#"{"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "good"}], "rejected": [{"role": "assistant", "content": "bad"}]}"#,
            "\n",
            r#"{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}], "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "bad"}]}"#,
            "\n",
        ),
    );
    let records = read_preferences(&path).unwrap();
    let pair = PreferencePair {
        prompt: vec![Message::user("q")],
        chosen: vec![Message::assistant("good")],
        rejected: vec![Message::assistant("bad")],
        task: None,
    };
    assert_eq!(
        records[0],
        PreferenceRecord::Pair(PreferencePair {
            task: Some("t".into()),
            ..pair.clone()
        })
    );
    assert_eq!(
        records[1],
        PreferenceRecord::Feedback(Feedback {
            prompt: vec![Message::user("q")],
            completion: vec![Message::assistant("meh")],
            label: false
        })
    );
    assert_eq!(records[2], PreferenceRecord::Pair(pair.clone()));
    assert_eq!(
        records[3],
        PreferenceRecord::Pair(pair),
        "implicit prompt = shared prefix"
    );
}

#[test]
fn preference_errors_are_specific() {
    let cases = [
        (
            r#"{"prompt": "q", "chosen": "a"}"#,
            r#"expected both "chosen" and "rejected""#,
        ),
        (
            r#"{"prompt": "q", "completion": "a", "label": "yes"}"#,
            r#"expected "label" to be true or false, found a string ("yes")"#,
        ),
        (
            r#"{"prompt": "q", "completion": "a"}"#,
            r#"expected {"prompt","chosen","rejected"} or {"prompt","completion","label"}, found keys ["completion", "prompt"]"#,
        ),
        (
            r#"{"chosen": "a", "rejected": "b"}"#,
            "must be message lists",
        ),
    ];
    for (i, (line, expected)) in cases.iter().enumerate() {
        let path = write(&format!("badpref{i}.jsonl"), &format!("{line}\n"));
        let err = err_of(read_preferences(&path));
        assert!(err.contains(":1: ") && err.contains(expected), "{err}");
    }
}

#[test]
fn prompts_accept_prompt_files_and_sft_files() {
    let path = write(
        "prompts.jsonl",
        concat!(
            r#"{"prompt": "2+2?", "answer": "4", "task": "math"}"#,
            "\n",
            r#"{"prompt": "hi"}"#,
            "\n",
            r#"{"prompt": "q", "completion": "a"}"#,
            "\n",
            r#"{"prompt": "q", "reference": "r"}"#,
            "\n",
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}"#,
            "\n",
            r#"{"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "a"}]}"#,
            "\n",
        ),
    );
    let prompts = read_prompts(&path).unwrap();
    let summary: Vec<(Vec<Message>, Option<&str>)> = prompts
        .iter()
        .map(|p| (p.prompt.clone(), p.reference.as_deref()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (vec![Message::user("2+2?")], Some("4")),
            (vec![Message::user("hi")], None),
            (vec![Message::user("q")], Some("a")),
            (vec![Message::user("q")], Some("r")),
            (vec![Message::user("q")], Some("a")),
            (vec![Message::user("q")], Some("a")),
        ]
    );
    assert_eq!(prompts[0].task.as_deref(), Some("math"));
    let bad = write("badprompt.jsonl", "{\"text\": \"x\"}\n");
    assert!(err_of(read_prompts(&bad))
        .contains(r#"expected {"prompt"} or {"messages":[...]}, found keys ["text"]"#));
}

#[test]
fn sniffing_classifies_by_first_record() {
    let cases = [
        ("\n{\"text\": \"x\", \"title\": \"t\"}\n", JsonlKind::Text),
        (
            "{\"prompt\": \"q\", \"completion\": \"a\"}\n",
            JsonlKind::Sft,
        ),
        ("{\"messages\": []}\n", JsonlKind::Sft),
        (
            "{\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \"b\"}\n",
            JsonlKind::Preference,
        ),
        (
            "{\"prompt\": \"q\", \"completion\": \"a\", \"label\": true}\n",
            JsonlKind::Preference,
        ),
        ("{\"prompt\": \"q\"}\n", JsonlKind::Prompts),
    ];
    for (i, (contents, kind)) in cases.iter().enumerate() {
        let path = write(&format!("sniff{i}.jsonl"), contents);
        assert_eq!(sniff_jsonl_kind(&path).unwrap(), *kind, "{contents}");
    }
    let odd = write("sniff-odd.jsonl", "{\"foo\": 1}\n");
    let err = err_of(sniff_jsonl_kind(&odd));
    assert!(
        err.contains("sniff-odd.jsonl:1:") && err.contains("[\"foo\"]"),
        "{err}"
    );
}

#[test]
fn labelled_answers_take_feedback_and_pairs_but_refuse_unlabelled_answers() {
    let path = write(
        "labelled.jsonl",
        "{\"prompt\": \"q\", \"completion\": \"a\", \"label\": false}\n\
         {\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \"b\"}\n",
    );
    assert_eq!(read_labelled(&path).unwrap().len(), 2);
    let path = write(
        "unlabelled.jsonl",
        "{\"prompt\": \"q\", \"completion\": \"a\", \"label\": true}\n\
         {\"prompt\": \"q\", \"completion\": \"a\"}\n",
    );
    let err = err_of(read_labelled(&path));
    assert!(
        err.contains("unlabelled.jsonl:2: ") && err.contains("KTO needs both 👍 and 👎"),
        "{err}"
    );
}
