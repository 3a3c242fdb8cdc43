//! Turning a generation's events into OpenAI responses: one JSON body, or server-sent events
//! (`chat.completion.chunk` / `text_completion` chunks, optional usage, then `data: [DONE]`).

use super::error::{ApiError, ApiResult};
use super::generation::{GenEvent, GenParams};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_stream::wrappers::ReceiverStream;

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

/// Streams chunks as the worker produces them. A relay task owns the worker's channel: when
/// the client disconnects, the relay's sends fail, it drops the channel, and the worker stops.
pub fn stream(
    header: Header,
    include_usage: bool,
    mut events: UnboundedReceiver<GenEvent>,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Event, std::convert::Infallible>>(64);
    tokio::spawn(async move {
        let send = |v: Value| tx.send(Ok(Event::default().data(v.to_string())));
        let mut completion_tokens = 0;
        while let Some(e) = events.recv().await {
            let choice = match &e {
                GenEvent::Text { index, text } => header.chunk_choice(*index, Some(text), None),
                GenEvent::Finish {
                    index,
                    reason,
                    tokens,
                } => {
                    completion_tokens += tokens;
                    header.chunk_choice(*index, None, Some(reason))
                }
            };
            if send(header.body(true, vec![choice])).await.is_err() {
                return;
            }
        }
        if include_usage {
            let mut last = header.body(true, vec![]);
            last["usage"] = header.usage(completion_tokens);
            if send(last).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Ok(Event::default().data("[DONE]"))).await;
    });
    Sse::new(ReceiverStream::new(rx)).into_response()
}
