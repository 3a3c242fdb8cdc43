//! Exact match: greedy answers (asked all at once through `infer`) against reference
//! answers, overall and per task.

use crate::data::chat::{Message, Role};
use crate::data::SftExample;
use crate::infer::{Ask, Prompt};
use crate::model::{Backend, LanguageModel};
use crate::tokenizer::Tokenizer;
use std::collections::BTreeMap;

/// Exact match after trimming whitespace.
pub fn is_exact_match(answer: &str, reference: &str) -> bool {
    answer.trim() == reference.trim()
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct MatchScore {
    pub correct: usize,
    pub total: usize,
}

impl MatchScore {
    pub fn rate(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

/// One evaluated question.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Judged {
    pub prompt: String,
    pub reference: String,
    pub answer: String,
    pub task: Option<String>,
    pub correct: bool,
}

/// The last assistant answer of each conversation as a reference, with what came before it.
pub fn questions(examples: &[SftExample]) -> Vec<(Vec<Message>, String, Option<String>)> {
    examples
        .iter()
        .filter_map(|e| {
            let last = e.messages.iter().rposition(|m| m.role == Role::Assistant)?;
            Some((
                e.messages[..last].to_vec(),
                e.messages[last].content.clone(),
                e.task.clone(),
            ))
        })
        .collect()
}

/// Greedy answers through the chat template to `(conversation, reference, task)` items;
/// overall and per-task scores.
pub fn exact_match<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    items: &[(Vec<Message>, String, Option<String>)],
    max_new_tokens: usize,
) -> (MatchScore, BTreeMap<String, MatchScore>, Vec<Judged>) {
    let prompts: Vec<Prompt> = items
        .iter()
        .map(|(m, _, _)| Prompt::Chat(m.clone()))
        .collect();
    let answers = Ask::new(model, tok).greedy(&prompts, max_new_tokens);
    score_answers(items, answers)
}

/// Scores each item's answer against its reference, overall and per task, and keeps every
/// judged answer (the question shown is the conversation's last user turn).
pub fn score_answers(
    items: &[(Vec<Message>, String, Option<String>)],
    answers: Vec<String>,
) -> (MatchScore, BTreeMap<String, MatchScore>, Vec<Judged>) {
    let (mut all, mut per_task, mut judged) = (MatchScore::default(), BTreeMap::new(), Vec::new());
    for ((messages, reference, task), ans) in items.iter().zip(answers) {
        let ok = is_exact_match(&ans, reference);
        all.total += 1;
        all.correct += ok as usize;
        if let Some(t) = task {
            let s: &mut MatchScore = per_task.entry(t.clone()).or_default();
            s.total += 1;
            s.correct += ok as usize;
        }
        judged.push(Judged {
            prompt: last_user_turn(messages).to_string(),
            reference: reference.clone(),
            answer: ans,
            task: task.clone(),
            correct: ok,
        });
    }
    (all, per_task, judged)
}

/// The last thing the user said (empty when nothing).
pub fn last_user_turn(messages: &[Message]) -> &str {
    messages
        .iter()
        .filter(|m| m.role == Role::User)
        .map(|m| m.content.as_str())
        .last()
        .unwrap_or("")
}
