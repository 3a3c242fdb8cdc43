//! Turning a generation's events into OpenAI responses: one JSON body, or server-sent events
//! (`chat.completion.chunk` / `text_completion` chunks, optional usage, then `data: [DONE]`).

use super::error::{ApiError, ApiResult};
use super::generation::{GenEvent, GenParams};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

/// Which OpenAI endpoint is answering.
#[derive(Clone, Copy)]
pub enum Shape {
    Chat,
    Completion,
}

/// What every response and chunk carries.
pub struct Header {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub shape: Shape,
    pub prompt_tokens: usize,
}

impl Header {
    fn object(&self, streaming: bool) -> &'static str {
        match (self.shape, streaming) {
            (Shape::Chat, false) => "chat.completion",
            (Shape::Chat, true) => "chat.completion.chunk",
            (Shape::Completion, _) => "text_completion",
        }
    }

    fn body(&self, streaming: bool, choices: Vec<Value>) -> Value {
        json!({
            "id": self.id,
            "object": self.object(streaming),
            "created": self.created,
            "model": self.model,
            "choices": choices,
        })
    }

    fn usage(&self, completion: usize) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        })
    }

    /// One choice of a streamed chunk: new text, or the finish reason.
    fn chunk_choice(&self, index: usize, text: Option<&str>, finish: Option<&str>) -> Value {
        match self.shape {
            Shape::Chat => {
                let delta = match text {
                    Some(t) => json!({"role": "assistant", "content": t}),
                    None => json!({}),
                };
                json!({"index": index, "delta": delta, "finish_reason": finish})
            }
            Shape::Completion => {
                json!({"index": index, "text": text.unwrap_or(""), "finish_reason": finish, "logprobs": null})
            }
        }
    }
}

/// Waits for the whole answer(s) and returns one JSON body.
pub async fn collect(
    header: Header,
    p: &GenParams,
    mut events: UnboundedReceiver<GenEvent>,
) -> ApiResult<Response> {
    let mut texts = vec![String::new(); p.n];
    let mut finish: Vec<Option<&str>> = vec![None; p.n];
    let mut completion_tokens = 0;
    while let Some(e) = events.recv().await {
        match e {
            GenEvent::Text { index, text } => texts[index].push_str(&text),
            GenEvent::Finish {
                index,
                reason,
                tokens,
            } => {
                finish[index] = Some(reason);
                completion_tokens += tokens;
            }
        }
    }
    if finish.iter().any(|f| f.is_none()) {
        return Err(ApiError::internal(
            "generation failed; see the server's log",
        ));
    }
    let choices = texts
        .into_iter()
        .zip(finish)
        .enumerate()
        .map(|(index, (text, reason))| match header.shape {
            Shape::Chat => json!({"index": index, "message": {"role": "assistant", "content": text}, "finish_reason": reason}),
            Shape::Completion => json!({"index": index, "text": text, "finish_reason": reason, "logprobs": null}),
        })
        .collect();
    let mut body = header.body(false, choices);
    body["usage"] = header.usage(completion_tokens);
    Ok(Json(body).into_response())
}

/// Streams chunks as the worker produces them, straight from the worker's channel: each
/// token wakes only the connection's task. When the client disconnects, the server drops
/// this stream and with it the channel, so the worker's next send fails and it stops.
pub fn stream(
    header: Header,
    include_usage: bool,
    events: UnboundedReceiver<GenEvent>,
) -> Response {
    let state = Relay {
        header,
        events,
        include_usage,
        completion_tokens: 0,
        phase: Phase::Events,
    };
    let chunks = futures_util::stream::unfold(state, |mut r| async move {
        let data = r.next().await?;
        Some((
            Ok::<_, std::convert::Infallible>(Event::default().data(data)),
            r,
        ))
    });
    Sse::new(chunks).into_response()
}

enum Phase {
    Events,
    Usage,
    Done,
    Over,
}

/// Where a stream is: relaying events, then the usage chunk (when asked), then `[DONE]`.
struct Relay {
    header: Header,
    events: UnboundedReceiver<GenEvent>,
    include_usage: bool,
    completion_tokens: usize,
    phase: Phase,
}

impl Relay {
    /// The next event's data, `None` after `[DONE]`.
    async fn next(&mut self) -> Option<String> {
        loop {
            match self.phase {
                Phase::Events => match self.events.recv().await {
                    Some(e) => return Some(self.chunk(&e)),
                    None => self.phase = Phase::Usage,
                },
                Phase::Usage => {
                    self.phase = Phase::Done;
                    if self.include_usage {
                        let mut last = self.header.body(true, vec![]);
                        last["usage"] = self.header.usage(self.completion_tokens);
                        return Some(last.to_string());
                    }
                }
                Phase::Done => {
                    self.phase = Phase::Over;
                    return Some("[DONE]".to_string());
                }
                Phase::Over => return None,
            }
        }
    }

    fn chunk(&mut self, e: &GenEvent) -> String {
        let choice = match e {
            GenEvent::Text { index, text } => self.header.chunk_choice(*index, Some(text), None),
            GenEvent::Finish {
                index,
                reason,
                tokens,
            } => {
                self.completion_tokens += tokens;
                self.header.chunk_choice(*index, None, Some(reason))
            }
        };
        self.header.body(true, vec![choice]).to_string()
    }
}
