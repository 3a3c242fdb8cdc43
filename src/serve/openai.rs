//! The OpenAI request bodies gptlab accepts, checked into [`GenParams`]. Chat stages answer
//! through the chat template; a pretrain stage has no template, so it continues the
//! conversation's text (the messages' contents, one per line) as a completer would.

use super::catalog::StageInfo;
use super::error::{ApiError, ApiResult};
use super::generation::GenParams;
use crate::data::chat::{encode_prompt, Message, Role};
use crate::model::sample::SampleOptions;
use crate::tokenizer::{Special, Tokenizer};
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
    #[serde(flatten)]
    pub sampling: SamplingFields,
}

#[derive(Deserialize)]
pub struct CompletionRequest {
    pub model: String,
    pub prompt: String,
    #[serde(flatten)]
    pub sampling: SamplingFields,
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

/// The ids a stage continues for a conversation, and the ids that end its answer.
pub fn chat_prompt(
    stage: &StageInfo,
    tok: &Tokenizer,
    messages: &[Message],
) -> (Vec<u32>, Vec<u32>) {
    if stage.is_chat() {
        let stop = vec![
            tok.special(Special::EndOfTurn),
            tok.special(Special::EndOfText),
        ];
        (encode_prompt(tok, messages), stop)
    } else {
        let text: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
        completion_prompt(tok, &text.join("\n"))
    }
}

/// Raw text to continue, stopping at the end of a document.
pub fn completion_prompt(tok: &Tokenizer, text: &str) -> (Vec<u32>, Vec<u32>) {
    (tok.encode(text), vec![tok.special(Special::EndOfText)])
}

/// Checks the sampling fields against the stage and builds what the worker runs.
pub fn gen_params(
    f: &SamplingFields,
    stage: &StageInfo,
    prompt: Vec<u32>,
    stop_ids: Vec<u32>,
) -> ApiResult<GenParams> {
    let temperature = f.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::bad_param(
            "temperature",
            format!("temperature must be between 0 and 2, got {temperature}"),
        ));
    }
    let top_p = f.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::bad_param(
            "top_p",
            format!("top_p must be in (0, 1], got {top_p}"),
        ));
    }
    let n = f.n.unwrap_or(1);
    if !(1..=MAX_N).contains(&n) {
        return Err(ApiError::bad_param(
            "n",
            format!("n must be between 1 and {MAX_N}, got {n}"),
        ));
    }
    let stop_strings = match &f.stop {
        None => vec![],
        Some(Stop::One(s)) => vec![s.clone()],
        Some(Stop::Many(v)) => v.clone(),
    };
    if stop_strings.len() > MAX_STOPS || stop_strings.iter().any(|s| s.is_empty()) {
        return Err(ApiError::bad_param(
            "stop",
            format!("stop takes at most {MAX_STOPS} non-empty strings"),
        ));
    }
    if prompt.is_empty() {
        return Err(ApiError::bad_param("prompt", "the prompt is empty"));
    }
    // The answer must fit in the context after the prompt: max_tokens is cut to the room left.
    let room = stage.context.saturating_sub(prompt.len());
    if room == 0 {
        return Err(ApiError::context_exceeded(prompt.len(), stage.context));
    }
    let max_tokens = f
        .max_completion_tokens
        .or(f.max_tokens)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    if max_tokens == 0 {
        return Err(ApiError::bad_param(
            "max_tokens",
            "max_tokens must be at least 1",
        ));
    }
    Ok(GenParams {
        prompt,
        n,
        sampling: SampleOptions {
            max_new_tokens: max_tokens.min(room),
            temperature,
            top_k: f.top_k.unwrap_or(0),
            top_p,
            stop: stop_ids,
            use_cache: true,
        },
        stop_strings,
        seed: f.seed.unwrap_or_else(rand::random),
    })
}
