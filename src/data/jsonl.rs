//! JSONL datasets in the TRL schemas: SFT conversations, preferences (pairs and unpaired
//! thumbs up/down feedback) and prompts.
//!
//! Every line is parsed on its own and errors name `file:line` and what was expected. Unknown
//! extra keys are allowed (datasets carry "task", "source", ...); missing required keys and
//! wrong types are errors. Blank lines are skipped; a file without records is an error.

use std::io::BufRead;
use std::path::Path;

use anyhow::{bail, Context};
use serde_json::Value;

use super::chat::{Message, Role};
use super::open::open_data;
use super::records::{for_each_record, keys_of, parse_object, type_name, Record};

/// One supervised fine-tuning conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftExample {
    pub messages: Vec<Message>,
    pub task: Option<String>,
}

/// A preferred and a dispreferred answer to the same prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreferencePair {
    pub prompt: Vec<Message>,
    pub chosen: Vec<Message>,
    pub rejected: Vec<Message>,
    pub task: Option<String>,
}

/// One answer with a thumbs up (`label == true`) or down: TRL's unpaired preference format,
/// also what `gptlab chat` appends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    pub prompt: Vec<Message>,
    pub completion: Vec<Message>,
    pub label: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreferenceRecord {
    Pair(PreferencePair),
    Feedback(Feedback),
}

/// A prompt to generate from, with the reference answer when the file has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptExample {
    pub prompt: Vec<Message>,
    pub reference: Option<String>,
    pub task: Option<String>,
}

/// What a JSONL file holds, judged from its first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonlKind {
    /// `{"text"}`: pretraining text.
    Text,
    /// `{"prompt","completion"}` or `{"messages"}`.
    Sft,
    /// `{"prompt","chosen","rejected"}` or `{"prompt","completion","label"}`.
    Preference,
    /// `{"prompt"}` alone (optionally with a reference answer).
    Prompts,
}

const SFT_SCHEMA: &str = r#"{"prompt","completion"} or {"messages":[...]}"#;
const PREFERENCE_SCHEMA: &str =
    r#"{"prompt","chosen","rejected"} or {"prompt","completion","label"}"#;
const PROMPT_SCHEMA: &str = r#"{"prompt"} or {"messages":[...]}"#;
/// Keys that may hold a prompt file's reference answer, in order of preference.
const REFERENCE_KEYS: [&str; 3] = ["completion", "answer", "reference"];

pub fn read_sft(path: &Path) -> anyhow::Result<Vec<SftExample>> {
    for_each_record(path, parse_sft)
}

/// Preference pairs and unpaired feedback; one file may mix both.
pub fn read_preferences(path: &Path) -> anyhow::Result<Vec<PreferenceRecord>> {
    for_each_record(path, parse_preference)
}

/// What KTO trains on: 👍/👎 feedback, and preference pairs (each one 👍 and one 👎 answer).
/// An answer without a label is refused here, with KTO's format, rather than as a generic
/// preference line: it is the likely mistake of pointing a KTO stage at an SFT file.
pub fn read_labelled(path: &Path) -> anyhow::Result<Vec<PreferenceRecord>> {
    for_each_record(path, |record| {
        let has = |key: &str| record.contains_key(key);
        if has("completion") && !has("label") && !has("chosen") {
            bail!(
                "expected \"label\": true (👍) or false (👎) beside \"prompt\" and \"completion\": KTO needs both 👍 and 👎 lines, found keys {}",
                keys_of(record)
            );
        }
        parse_preference(record)
    })
}

/// Prompt files; SFT files are valid prompt files (their answers become references).
pub fn read_prompts(path: &Path) -> anyhow::Result<Vec<PromptExample>> {
    for_each_record(path, parse_prompt)
}

/// The kind of a JSONL file, from its first non-blank line.
pub fn sniff_jsonl_kind(path: &Path) -> anyhow::Result<JsonlKind> {
    for (index, line) in open_data(path)?.lines().enumerate() {
        let at = format!("{}:{}", path.display(), index + 1);
        let line = line.with_context(|| format!("{at}: unreadable line (invalid UTF-8?)"))?;
        if line.trim().is_empty() {
            continue;
        }
        let record = parse_object(&line).with_context(|| at.clone())?;
        let has = |key: &str| record.contains_key(key);
        return if has("chosen") || has("rejected") || has("label") {
            Ok(JsonlKind::Preference)
        } else if has("messages") || has("conversations") || (has("prompt") && has("completion")) {
            Ok(JsonlKind::Sft)
        } else if has("prompt") {
            Ok(JsonlKind::Prompts)
        } else if has("text") {
            Ok(JsonlKind::Text)
        } else {
            bail!(
                "{at}: unrecognised record: expected {{\"text\"}}, {SFT_SCHEMA}, {PREFERENCE_SCHEMA} or {{\"prompt\"}}, found keys {}",
                keys_of(&record)
            )
        };
    }
    bail!(
        "{}: no records (the file is empty or has only blank lines)",
        path.display()
    )
}

fn parse_sft(record: &Record) -> anyhow::Result<SftExample> {
    let messages = if let Some((key, value)) = conversation_field(record) {
        message_list(value, key)?
    } else if let (Some(prompt), Some(completion)) =
        (record.get("prompt"), record.get("completion"))
    {
        let mut messages = turns(prompt, "prompt", Role::User)?;
        messages.extend(turns(completion, "completion", Role::Assistant)?);
        messages
    } else {
        bail!("expected {SFT_SCHEMA}, found keys {}", keys_of(record));
    };
    if !messages.iter().any(|m| m.role == Role::Assistant) {
        bail!("expected at least one assistant message to train on");
    }
    Ok(SftExample {
        messages,
        task: task(record)?,
    })
}

fn parse_preference(record: &Record) -> anyhow::Result<PreferenceRecord> {
    let has = |key: &str| record.contains_key(key);
    if has("chosen") || has("rejected") {
        let (Some(chosen), Some(rejected)) = (record.get("chosen"), record.get("rejected")) else {
            bail!(
                "expected both \"chosen\" and \"rejected\", found keys {}",
                keys_of(record)
            );
        };
        let chosen = turns(chosen, "chosen", Role::Assistant)?;
        let rejected = turns(rejected, "rejected", Role::Assistant)?;
        let (prompt, chosen, rejected) = match record.get("prompt") {
            Some(prompt) => (turns(prompt, "prompt", Role::User)?, chosen, rejected),
            None => split_implicit_prompt(chosen, rejected)?,
        };
        Ok(PreferenceRecord::Pair(PreferencePair {
            prompt,
            chosen,
            rejected,
            task: task(record)?,
        }))
    } else if has("label") {
        let (Some(prompt), Some(completion)) = (record.get("prompt"), record.get("completion"))
        else {
            bail!(
                "expected {{\"prompt\",\"completion\",\"label\"}}, found keys {}",
                keys_of(record)
            );
        };
        let label = match record.get("label") {
            Some(Value::Bool(label)) => *label,
            Some(other) => bail!(
                "expected \"label\" to be true or false, found {}",
                describe(other)
            ),
            None => unreachable!("checked above"),
        };
        Ok(PreferenceRecord::Feedback(Feedback {
            prompt: turns(prompt, "prompt", Role::User)?,
            completion: turns(completion, "completion", Role::Assistant)?,
            label,
        }))
    } else {
        bail!(
            "expected {PREFERENCE_SCHEMA}, found keys {}",
            keys_of(record)
        );
    }
}

/// TRL's implicit-prompt pairs (`{"chosen":[...],"rejected":[...]}`): the shared leading
/// messages are the prompt.
fn split_implicit_prompt(
    chosen: Vec<Message>,
    rejected: Vec<Message>,
) -> anyhow::Result<(Vec<Message>, Vec<Message>, Vec<Message>)> {
    let shared = chosen
        .iter()
        .zip(&rejected)
        .take_while(|(c, r)| c == r)
        .count();
    if shared == 0 || shared == chosen.len() || shared == rejected.len() {
        bail!("without \"prompt\", \"chosen\" and \"rejected\" must be message lists that share the prompt messages and then differ");
    }
    let prompt = chosen[..shared].to_vec();
    Ok((
        prompt,
        chosen[shared..].to_vec(),
        rejected[shared..].to_vec(),
    ))
}

fn parse_prompt(record: &Record) -> anyhow::Result<PromptExample> {
    let (prompt, reference) = if let Some(prompt) = record.get("prompt") {
        let prompt = turns(prompt, "prompt", Role::User)?;
        let reference = match REFERENCE_KEYS
            .iter()
            .find_map(|k| record.get(*k).map(|v| (*k, v)))
        {
            None | Some((_, Value::Null)) => None,
            Some((key, value)) => Some(reference_text(turns(value, key, Role::Assistant)?)),
        };
        (prompt, reference)
    } else if let Some((key, value)) = conversation_field(record) {
        // A conversation: everything before the final answer is the prompt.
        let mut messages = message_list(value, key)?;
        let reference = match messages.last() {
            Some(last) if last.role == Role::Assistant && messages.len() > 1 => {
                messages.pop().map(|m| m.content)
            }
            _ => None,
        };
        (messages, reference)
    } else {
        bail!("expected {PROMPT_SCHEMA}, found keys {}", keys_of(record));
    };
    Ok(PromptExample {
        prompt,
        reference,
        task: task(record)?,
    })
}

/// The reference answer of a completion given as messages: its assistant text.
fn reference_text(messages: Vec<Message>) -> String {
    messages
        .into_iter()
        .filter(|m| m.role == Role::Assistant)
        .map(|m| m.content)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `"messages"` or its ShareGPT alias `"conversations"`.
fn conversation_field(record: &Record) -> Option<(&'static str, &Value)> {
    ["messages", "conversations"]
        .into_iter()
        .find_map(|k| record.get(k).map(|v| (k, v)))
}

/// A string (one message of `role`) or a list of messages.
fn turns(value: &Value, key: &str, role: Role) -> anyhow::Result<Vec<Message>> {
    match value {
        Value::String(content) => Ok(vec![Message::new(role, content.clone())]),
        Value::Array(_) => message_list(value, key),
        other => bail!(
            "expected \"{key}\" to be a string or a list of messages, found {}",
            describe(other)
        ),
    }
}

/// A non-empty list of `{"role","content"}` (or ShareGPT `{"from","value"}`) objects.
fn message_list(value: &Value, key: &str) -> anyhow::Result<Vec<Message>> {
    let Value::Array(items) = value else {
        bail!(
            "expected \"{key}\" to be a list of messages, found {}",
            describe(value)
        );
    };
    if items.is_empty() {
        bail!("expected \"{key}\" to hold at least one message, found an empty list");
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| message(item).with_context(|| format!("{key}[{i}]")))
        .collect()
}

fn message(value: &Value) -> anyhow::Result<Message> {
    let Value::Object(fields) = value else {
        bail!(
            "expected a message object {{\"role\",\"content\"}}, found {}",
            describe(value)
        );
    };
    let (role_key, content_key) = if fields.contains_key("from") {
        ("from", "value")
    } else {
        ("role", "content")
    };
    let role = match fields.get(role_key) {
        Some(Value::String(role)) => match role.as_str() {
            "system" => Role::System,
            "user" | "human" => Role::User,
            "assistant" | "gpt" => Role::Assistant,
            other => {
                bail!("unknown role {other:?}: expected \"system\", \"user\" or \"assistant\"")
            }
        },
        Some(other) => bail!(
            "expected \"{role_key}\" to be a string, found {}",
            describe(other)
        ),
        None => bail!(
            "expected {{\"role\",\"content\"}}, found keys {}",
            keys_of(fields)
        ),
    };
    match fields.get(content_key) {
        Some(Value::String(content)) => Ok(Message::new(role, content.clone())),
        Some(other) => bail!(
            "expected \"{content_key}\" to be a string, found {}",
            describe(other)
        ),
        None => bail!(
            "expected {{\"role\",\"content\"}}, found keys {}",
            keys_of(fields)
        ),
    }
}

/// The optional `"task"` label (used for per-task evaluation).
fn task(record: &Record) -> anyhow::Result<Option<String>> {
    match record.get("task") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(task)) => Ok(Some(task.clone())),
        Some(other) => bail!(
            "expected \"task\" to be a string, found {}",
            describe(other)
        ),
    }
}

/// The keys of a record, sorted, for error messages: `["answer", "question"]`.
/// A value's type and a short excerpt: `a number (3)`.
fn describe(value: &Value) -> String {
    let mut excerpt = value.to_string();
    if excerpt.chars().count() > 40 {
        excerpt = excerpt.chars().take(40).collect::<String>() + "...";
    }
    format!("{} ({excerpt})", type_name(value))
}

#[cfg(test)]
mod tests;
