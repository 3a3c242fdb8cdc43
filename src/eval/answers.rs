//! Asking a model questions: greedy (or sampled) answers through the chat template, and
//! exact match against reference answers, overall and per task.

use crate::data::chat::{encode_prompt, Message, Role};
use crate::data::SftExample;
use crate::model::sample::{generate, SampleOptions};
use crate::model::{Backend, LanguageModel};
use crate::tokenizer::{Special, Tokenizer};
use std::collections::BTreeMap;

/// The assistant's answer to a conversation (which ends with a user turn). The prompt is cut
/// from the left to leave room for the answer within the context.
pub fn answer<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    messages: &[Message],
    opts: &SampleOptions,
    rng: &mut impl rand::Rng,
) -> String {
    answers(model, tok, messages, 1, opts, rng).remove(0)
}

/// `n` answers to one conversation, sampled together as one batch.
pub fn answers<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    messages: &[Message],
    n: usize,
    opts: &SampleOptions,
    rng: &mut impl rand::Rng,
) -> Vec<String> {
    let mut prompt = encode_prompt(tok, messages);
    keep_room_for_answer(&mut prompt, model.config().n_ctx, opts.max_new_tokens);
    let mut opts = opts.clone();
    opts.stop = vec![
        tok.special(Special::EndOfTurn),
        tok.special(Special::EndOfText),
    ];
    let outs = generate(model, &prompt, n, tok.vocab_size(), &opts, rng);
    outs.iter().map(|out| tok.decode(out)).collect()
}

/// A plain completion of raw text (how a base model is asked).
pub fn complete<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    text: &str,
    opts: &SampleOptions,
    rng: &mut impl rand::Rng,
) -> String {
    tok.decode(&complete_ids(model, tok, tok.encode(text), opts, rng))
}

/// `n` completions of raw text, sampled together as one batch.
pub fn completions<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    text: &str,
    n: usize,
    opts: &SampleOptions,
    rng: &mut impl rand::Rng,
) -> Vec<String> {
    let mut prompt = tok.encode(text);
    keep_room_for_answer(&mut prompt, model.config().n_ctx, opts.max_new_tokens);
    let mut opts = opts.clone();
    opts.stop = vec![tok.special(Special::EndOfText)];
    let outs = generate(model, &prompt, n, tok.vocab_size(), &opts, rng);
    outs.iter().map(|out| tok.decode(out)).collect()
}

/// The ids [`complete`] decodes: a continuation of `prompt` (cut from the left to leave room
/// within the context) that stops after `<|endoftext|>`. `gptlab logits --generate` prints
/// them, so other implementations can be checked against `gptlab generate` id for id.
pub fn complete_ids<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    mut prompt: Vec<u32>,
    opts: &SampleOptions,
    rng: &mut impl rand::Rng,
) -> Vec<u32> {
    keep_room_for_answer(&mut prompt, model.config().n_ctx, opts.max_new_tokens);
    let mut opts = opts.clone();
    opts.stop = vec![tok.special(Special::EndOfText)];
    generate(model, &prompt, 1, tok.vocab_size(), &opts, rng).remove(0)
}

/// Cuts a prompt from the left so that it and `max_new_tokens` fit in the context.
fn keep_room_for_answer(prompt: &mut Vec<u32>, n_ctx: usize, max_new_tokens: usize) {
    let room = n_ctx.saturating_sub(max_new_tokens).max(1);
    if prompt.len() > room {
        prompt.drain(..prompt.len() - room);
    }
}

pub fn greedy(max_new_tokens: usize) -> SampleOptions {
    SampleOptions {
        max_new_tokens,
        temperature: 0.0,
        ..Default::default()
    }
}

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

/// Greedy answers to `(conversation, reference, task)` items; overall and per-task scores.
pub fn exact_match<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    items: &[(Vec<Message>, String, Option<String>)],
    max_new_tokens: usize,
) -> (MatchScore, BTreeMap<String, MatchScore>, Vec<Judged>) {
    let mut rng = rand::rngs::mock::StepRng::new(0, 1);
    let opts = greedy(max_new_tokens);
    score_answers(items, |messages| {
        answer(model, tok, messages, &opts, &mut rng)
    })
}

/// Scores `ask`'s answer to each item against its reference, overall and per task, and
/// keeps every judged answer (the question shown is the conversation's last user turn).
pub fn score_answers(
    items: &[(Vec<Message>, String, Option<String>)],
    mut ask: impl FnMut(&[Message]) -> String,
) -> (MatchScore, BTreeMap<String, MatchScore>, Vec<Judged>) {
    let (mut all, mut per_task, mut judged) = (MatchScore::default(), BTreeMap::new(), Vec::new());
    for (messages, reference, task) in items {
        let ans = ask(messages);
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
