//! `gptlab eval RUN/STAGE --data FILE`: one evaluation entry point whose measure depends on the
//! data: exact match for questions with answers, preference accuracy for chosen/rejected pairs,
//! loss and bits per byte for plain text.

use super::answers::{exact_match, last_user_turn, score_answers, Judged, MatchScore};
use super::logprob::answer_logprobs;
use super::loss::stream_loss;
use super::preference::pair_accuracy;
use crate::data::batches::{token_stream, Example};
use crate::data::chat::{encode_chat, Message};
use crate::data::{self, HeldOut, JsonlKind, PreferenceRecord};
use crate::infer::{Ask, Prompt};
use crate::model::{Backend, LanguageModel};
use crate::tokenizer::{Special, Tokenizer};
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EvalReport {
    ExactMatch {
        exact_match: f64,
        correct: usize,
        count: usize,
        per_task: BTreeMap<String, TaskScore>,
        #[serde(skip)]
        judged: Vec<Judged>,
    },
    Preference {
        accuracy: f64,
        correct: usize,
        count: usize,
        measure: &'static str,
    },
    Text {
        loss: f64,
        bpb: f64,
        tokens: usize,
        bytes: usize,
    },
}

#[derive(Debug, Serialize)]
pub struct TaskScore {
    pub exact_match: f64,
    pub correct: usize,
    pub count: usize,
}

fn task_score(s: &MatchScore) -> TaskScore {
    TaskScore {
        exact_match: s.rate(),
        correct: s.correct,
        count: s.total,
    }
}

/// Only the validation records a stage that split this file that way held out of it.
fn held<T>(items: Vec<T>, split: Option<&HeldOut>, path: &Path) -> Result<Vec<T>> {
    Ok(match split {
        Some(split) => split.split(items, &[path.to_path_buf()])?.1,
        None => items,
    })
}

/// Evaluates `model` on the file; `chat` says whether questions go through the chat template
/// (a base model is asked with the raw question text).
pub fn evaluate_file<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    path: &Path,
    chat: bool,
    limit: Option<usize>,
    block_size: usize,
    held_out: Option<&HeldOut>,
) -> Result<EvalReport> {
    let kind = if data::open::data_extension(path) == Some("txt") {
        JsonlKind::Text
    } else {
        data::sniff_jsonl_kind(path)?
    };
    let take = |n: usize| limit.unwrap_or(n).min(n);
    match kind {
        JsonlKind::Sft | JsonlKind::Prompts => {
            let mut items: Vec<(Vec<Message>, String, Option<String>)> = match kind {
                JsonlKind::Sft => {
                    super::answers::questions(&held(data::read_sft(path)?, held_out, path)?)
                }
                _ => held(data::read_prompts(path)?, held_out, path)?
                    .into_iter()
                    .filter_map(|p| Some((p.prompt, p.reference?, p.task)))
                    .collect(),
            };
            items.truncate(take(items.len()));
            Ok(eval_questions(model, tok, &items, chat))
        }
        JsonlKind::Preference => {
            let mut records = held(data::read_preferences(path)?, held_out, path)?;
            records.truncate(take(records.len()));
            Ok(eval_preferences(model, tok, &records, block_size))
        }
        JsonlKind::Text => {
            let docs = data::read_text_corpus(&[path.to_path_buf()])?;
            Ok(eval_text(model, tok, &docs, block_size, take))
        }
    }
}

/// The conversations (each ending with a user turn) of a questions file, SFT pairs or
/// prompts, with or without references: what `held_out` keeps of it, at most `limit`.
pub fn read_conversations(
    path: &Path,
    limit: Option<usize>,
    held_out: Option<&HeldOut>,
) -> Result<Vec<Vec<Message>>> {
    let mut conversations: Vec<Vec<Message>> = match data::sniff_jsonl_kind(path)? {
        JsonlKind::Sft => super::answers::questions(&held(data::read_sft(path)?, held_out, path)?)
            .into_iter()
            .map(|(messages, _, _)| messages)
            .collect(),
        JsonlKind::Prompts => held(data::read_prompts(path)?, held_out, path)?
            .into_iter()
            .map(|p| p.prompt)
            .collect(),
        kind => anyhow::bail!(
            "{}: expected questions (SFT pairs or prompts), found {kind:?} records",
            path.display()
        ),
    };
    conversations.truncate(limit.unwrap_or(usize::MAX));
    Ok(conversations)
}

/// Exact match of greedy answers against the references.
fn eval_questions<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    items: &[(Vec<Message>, String, Option<String>)],
    chat: bool,
) -> EvalReport {
    let max_new = items
        .iter()
        .map(|(_, r, _)| tok.encode(r).len())
        .max()
        .unwrap_or(16)
        + 8;
    let (all, per_task, judged) = if chat {
        exact_match(model, tok, items, max_new)
    } else {
        raw_exact_match(model, tok, items, max_new)
    };
    EvalReport::ExactMatch {
        exact_match: all.rate(),
        correct: all.correct,
        count: all.total,
        per_task: per_task
            .iter()
            .map(|(k, v)| (k.clone(), task_score(v)))
            .collect(),
        judged,
    }
}

/// Preference accuracy: by the reward head when the model has one, else by the summed
/// log-probabilities of the two answers.
fn eval_preferences<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    records: &[PreferenceRecord],
    block_size: usize,
) -> EvalReport {
    if model.has_score_head() {
        let (correct, count) = pair_accuracy(model, tok, records, block_size);
        return EvalReport::Preference {
            accuracy: correct as f64 / count.max(1) as f64,
            correct,
            count,
            measure: "reward",
        };
    }
    let pad = tok.special(Special::Pad);
    let encode = |prompt: &[Message], answer: &[Message]| {
        let all: Vec<Message> = prompt.iter().chain(answer).cloned().collect();
        let e = encode_chat(tok, &all);
        let cut = e.ids.len().saturating_sub(block_size + 1);
        Example {
            ids: e.ids[cut..].to_vec(),
            loss_mask: e.loss_mask[cut..].to_vec(),
        }
    };
    let pairs: Vec<(Example, Example)> = records
        .iter()
        .filter_map(|r| match r {
            PreferenceRecord::Pair(p) => {
                Some((encode(&p.prompt, &p.chosen), encode(&p.prompt, &p.rejected)))
            }
            PreferenceRecord::Feedback(_) => None,
        })
        .collect();
    let chosen = answer_logprobs(model, &pairs.iter().map(|p| &p.0).collect::<Vec<_>>(), pad);
    let rejected = answer_logprobs(model, &pairs.iter().map(|p| &p.1).collect::<Vec<_>>(), pad);
    let correct = chosen.iter().zip(&rejected).filter(|(c, r)| c > r).count();
    EvalReport::Preference {
        accuracy: correct as f64 / pairs.len().max(1) as f64,
        correct,
        count: pairs.len(),
        measure: "sum of answer log-probabilities",
    }
}

/// Loss and bits per byte over non-overlapping windows of the whole text.
fn eval_text<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    docs: &[String],
    block_size: usize,
    take: impl Fn(usize) -> usize,
) -> EvalReport {
    let stream = token_stream(tok, docs);
    let seq = block_size.min(stream.len().saturating_sub(1)).max(1);
    let windows = take(((stream.len() - 1) / seq).max(1));
    let token_bytes: Vec<usize> = (0..tok.vocab_size() as u32)
        .map(|i| tok.token_bytes(i))
        .collect();
    let (nats, tokens, bytes) = stream_loss(
        model,
        &model.device(),
        &stream,
        seq,
        windows,
        16,
        &token_bytes,
    );
    EvalReport::Text {
        loss: nats / tokens.max(1) as f64,
        bpb: nats / bytes.max(1) as f64 / std::f64::consts::LN_2,
        tokens,
        bytes,
    }
}

/// A base model is asked with the raw question; its answer is the rest of that line.
fn raw_exact_match<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    items: &[(Vec<Message>, String, Option<String>)],
    max_new: usize,
) -> (MatchScore, BTreeMap<String, MatchScore>, Vec<Judged>) {
    let prompts: Vec<Prompt> = items
        .iter()
        .map(|(messages, _, _)| Prompt::Text(last_user_turn(messages).to_string()))
        .collect();
    let answers = Ask::new(model, tok)
        .greedy(&prompts, max_new)
        .iter()
        .map(|text| text.lines().next().unwrap_or("").to_string())
        .collect();
    score_answers(items, answers)
}

impl EvalReport {
    /// A short human-readable summary.
    pub fn describe(&self) -> String {
        match self {
            EvalReport::ExactMatch {
                exact_match,
                correct,
                count,
                per_task,
                ..
            } => {
                let mut s = format!(
                    "exact match {:.1}% ({correct}/{count})",
                    100.0 * exact_match
                );
                for (t, v) in per_task {
                    s += &format!(
                        "\n  {t:<12} {:>5.1}% ({}/{})",
                        100.0 * v.exact_match,
                        v.correct,
                        v.count
                    );
                }
                s
            }
            EvalReport::Preference {
                accuracy,
                correct,
                count,
                measure,
            } => {
                format!(
                    "prefers chosen in {:.1}% of pairs ({correct}/{count}), by {measure}",
                    100.0 * accuracy
                )
            }
            EvalReport::Text {
                loss,
                bpb,
                tokens,
                bytes,
            } => {
                format!("loss {loss:.4} nats/token, {bpb:.4} bits/byte over {tokens} tokens ({bytes} bytes)")
            }
        }
    }
}
