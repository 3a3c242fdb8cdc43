//! The OpenAI request bodies gptlab accepts, checked into [`GenParams`]. Chat stages answer
//! through the chat template; a pretrain stage has no template, so it continues the
//! conversation's text (the messages' contents, one per line) as a completer would.

use super::catalog::StageInfo;
use super::error::{ApiError, ApiResult};
use super::generation::GenParams;
use crate::data::chat::{fit_history, Message, Role};
use crate::infer::{Built, Prompt};
use crate::model::sample::SampleOptions;
use crate::spec::SampleSettings;
use crate::tokenizer::Tokenizer;
use serde::Deserialize;

/// Most answers one request may ask for (`n`), and most stop strings (OpenAI's limit).
const MAX_N: usize = 8;
const MAX_STOPS: usize = 4;
/// Answer length when the request does not say.
const DEFAULT_MAX_TOKENS: usize = 64;

#[derive(Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

/// Sampling fields shared by chat and completions requests.
#[derive(Deserialize, Default)]
pub struct SamplingFields {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    /// gptlab's extra: keep only the k most likely tokens.
    pub top_k: Option<usize>,
    pub max_tokens: Option<usize>,
    /// Newer clients' name for `max_tokens`.
    pub max_completion_tokens: Option<usize>,
    pub seed: Option<u64>,
    pub n: Option<usize>,
    pub stop: Option<Stop>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
}

#[derive(Deserialize, Default)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Deserialize)]
pub struct ApiMessage {
    pub role: String,
    pub content: String,
}

#[derive(Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ApiMessage>,
    /// gptlab's extra: drop the oldest turns that do not fit the context (as `gptlab chat`
    /// does) instead of refusing the request; the `x-gptlab-dropped-messages` header says
    /// how many were dropped.
    #[serde(default)]
    pub fit_context: bool,
    #[serde(flatten)]
    pub sampling: SamplingFields,
    /// Whatever fields are left (serde's flatten rules out `deny_unknown_fields`): refused.
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Deserialize)]
pub struct CompletionRequest {
    pub model: String,
    pub prompt: String,
    #[serde(flatten)]
    pub sampling: SamplingFields,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// A request's fields that no field above took. A flattened map after a flattened struct
/// gets only what the struct left, so this holds exactly the unknown fields.
#[derive(Deserialize, Default)]
pub struct Unknown(std::collections::BTreeMap<String, serde::de::IgnoredAny>);

impl Unknown {
    /// OpenAI's API refuses an argument it does not know (a misspelt `temprature` would
    /// otherwise change nothing, silently), with a 400 that names it: so does gptlab.
    pub fn refuse(&self) -> ApiResult<()> {
        match self.0.keys().next() {
            Some(name) => Err(ApiError::unknown_field(name)),
            None => Ok(()),
        }
    }
}

/// The conversation as gptlab messages; an unknown role is a bad parameter.
pub fn to_messages(messages: &[ApiMessage]) -> ApiResult<Vec<Message>> {
    if messages.is_empty() {
        return Err(ApiError::bad_param(
            "messages",
            "`messages` must not be empty",
        ));
    }
    messages
        .iter()
        .map(|m| {
            let role = match m.role.as_str() {
                "system" | "developer" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                other => {
                    return Err(ApiError::bad_param(
                        "messages",
                        format!("unknown role `{other}`: expected system, user or assistant"),
                    ))
                }
            };
            Ok(Message::new(role, m.content.clone()))
        })
        .collect()
}

/// Drops the oldest turns of `messages` that a stage could not see with room for a useful
/// answer: `max_tokens`, but at most a quarter of the context, so a long conversation
/// keeps most of its recent turns. Returns how many messages were dropped.
pub fn fit_to_context(
    stage: &StageInfo,
    tok: &Tokenizer,
    messages: &mut Vec<Message>,
    f: &SamplingFields,
) -> usize {
    let wanted = (f.max_completion_tokens.or(f.max_tokens)).unwrap_or(DEFAULT_MAX_TOKENS);
    let room = wanted.min(stage.context / 4).max(1);
    if stage.is_chat() {
        return fit_history(tok, messages, stage.context, room);
    }
    // A completer reads the messages' text, a line each: drop the oldest lines instead.
    let before = messages.len();
    while messages.len() > 1 && chat_prompt(stage, tok, messages).ids.len() + room > stage.context {
        messages.remove(0);
    }
    before - messages.len()
}

/// The ids a stage continues for a conversation, and the ids that end its answer.
pub fn chat_prompt(stage: &StageInfo, tok: &Tokenizer, messages: &[Message]) -> Built {
    Prompt::conversation(messages, stage.is_chat()).build(tok)
}

/// Checks the sampling fields against the stage and builds what the worker runs.
pub fn gen_params(
    f: &SamplingFields,
    stage: &StageInfo,
    prompt: Vec<u32>,
    stop_ids: Vec<u32>,
) -> ApiResult<GenParams> {
    let temperature = f.temperature.unwrap_or(1.0);
    check(
        "temperature",
        (0.0..=2.0).contains(&temperature),
        "between 0 and 2",
        temperature,
    )?;
    let top_p = f.top_p.unwrap_or(1.0);
    check("top_p", top_p > 0.0 && top_p <= 1.0, "in (0, 1]", top_p)?;
    let n = f.n.unwrap_or(1);
    check(
        "n",
        (1..=MAX_N).contains(&n),
        &format!("between 1 and {MAX_N}"),
        n,
    )?;
    let max_tokens = (f.max_completion_tokens.or(f.max_tokens)).unwrap_or(DEFAULT_MAX_TOKENS);
    check("max_tokens", max_tokens > 0, "at least 1", max_tokens)?;
    let stop_strings = stop_strings(f.stop.as_ref())?;
    if prompt.is_empty() {
        return Err(ApiError::bad_param("prompt", "the prompt is empty"));
    }
    // The answer must fit in the context after the prompt: max_tokens is cut to the room left.
    let room = stage.context.saturating_sub(prompt.len());
    if room == 0 {
        return Err(ApiError::context_exceeded(prompt.len(), stage.context));
    }
    let settings = SampleSettings {
        max_new_tokens: max_tokens.min(room),
        temperature: temperature.into(),
        top_k: f.top_k.unwrap_or(0),
        top_p: top_p.into(),
    };
    Ok(GenParams {
        prompt,
        n,
        sampling: SampleOptions::from(settings).stopping_at(stop_ids),
        stop_strings,
        seed: f.seed.unwrap_or_else(rand::random),
    })
}

fn check(param: &str, ok: bool, expected: &str, got: impl std::fmt::Display) -> ApiResult<()> {
    match ok {
        true => Ok(()),
        false => Err(ApiError::bad_param(
            param,
            format!("{param} must be {expected}, got {got}"),
        )),
    }
}

fn stop_strings(stop: Option<&Stop>) -> ApiResult<Vec<String>> {
    let stops = match stop {
        None => vec![],
        Some(Stop::One(s)) => vec![s.clone()],
        Some(Stop::Many(v)) => v.clone(),
    };
    if stops.len() > MAX_STOPS || stops.iter().any(|s| s.is_empty()) {
        return Err(ApiError::bad_param(
            "stop",
            format!("stop takes at most {MAX_STOPS} non-empty strings"),
        ));
    }
    Ok(stops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage() -> StageInfo {
        StageInfo {
            name: "sft".into(),
            kind: Some(crate::spec::StageKind::Sft),
            preset: "nano".into(),
            context: 10,
            dir: Default::default(),
        }
    }

    fn fields(json: &str) -> SamplingFields {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn max_tokens_is_cut_to_the_room_the_context_leaves() {
        let p = gen_params(
            &fields(r#"{"max_tokens": 50}"#),
            &stage(),
            vec![1; 7],
            vec![],
        )
        .unwrap();
        assert_eq!(p.sampling.max_new_tokens, 3);
        let full = gen_params(&fields("{}"), &stage(), vec![1; 10], vec![]).unwrap_err();
        assert_eq!(
            (full.status.as_u16(), full.code),
            (400, Some("context_length_exceeded"))
        );
    }

    #[test]
    fn out_of_range_values_name_their_parameter() {
        for (json, param) in [
            (r#"{"temperature": 2.5}"#, "temperature"),
            (r#"{"top_p": 0}"#, "top_p"),
            (r#"{"n": 9}"#, "n"),
            (r#"{"max_tokens": 0}"#, "max_tokens"),
            (r#"{"stop": ["a", "b", "c", "d", "e"]}"#, "stop"),
        ] {
            let e = gen_params(&fields(json), &stage(), vec![1], vec![]).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.param.as_deref()),
                (400, Some(param)),
                "{json}"
            );
        }
    }

    #[test]
    fn one_stop_string_or_a_list() {
        let one = gen_params(&fields(r#"{"stop": "。"}"#), &stage(), vec![1], vec![]).unwrap();
        assert_eq!(one.stop_strings, ["。"]);
        let many = gen_params(
            &fields(r#"{"stop": ["a", "b"]}"#),
            &stage(),
            vec![1],
            vec![],
        );
        assert_eq!(many.unwrap().stop_strings, ["a", "b"]);
    }
}
