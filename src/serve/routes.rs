//! The HTTP surface: the page at `/`, and under `/v1` the OpenAI routes (models, chat
//! completions, completions), feedback, and the explorer. Every `/v1` route needs the API key
//! when one is set. Bodies are read as bytes and parsed here, so that every bad body, too
//! large or malformed, is answered in OpenAI's error shape.

use super::catalog::StageInfo;
use super::error::{ApiError, ApiResult};
use super::explorer::Explore;
use super::generation::Generation;
use super::openai::{
    chat_prompt, fit_to_context, gen_params, to_messages, ApiMessage, ChatRequest,
    CompletionRequest, SamplingFields,
};
use super::page;
use super::respond::{collect, stream, Header, Shape};
use super::worker::{Job, Workers};
use crate::data::ratings::{Provenance, RatingWriter, SamplingNote};
use crate::infer::{Built, Prompt};
use crate::results::{FEEDBACK_FILE, PREFERENCES_FILE};
use crate::tokenizer::Tokenizer;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tower_http::set_header::SetResponseHeaderLayer;

/// Request bodies above this are refused with 413 (a long conversation is a few kB).
const BODY_LIMIT: usize = 256 * 1024;
/// Explorer limits: most top-k tokens and candidates one request may ask for.
const MAX_TOP_K: usize = 100;
const MAX_CANDIDATES: usize = 16;
/// The page loads only its own script and style, and never runs inline code: model output
/// that slipped into the page as HTML still could not execute.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

pub struct AppState {
    pub stages: Vec<StageInfo>,
    pub tok: Arc<Tokenizer>,
    pub workers: Workers,
    pub feedback: Arc<RatingWriter>,
    pub api_key: Option<String>,
    pub requests: AtomicU64,
}

type Shared = State<Arc<AppState>>;

impl AppState {
    fn stage(&self, name: &str) -> ApiResult<&StageInfo> {
        self.stages.iter().find(|s| s.name == name).ok_or_else(|| {
            let known: Vec<String> = self.stages.iter().map(|s| s.name.clone()).collect();
            ApiError::unknown_model(name, &known)
        })
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/models", get(models))
        .route("/chat/completions", post(chat_completions))
        .route("/completions", post(completions))
        .route("/feedback", post(feedback))
        .route("/explore/next_token", post(explore_next_token))
        .route("/explore/attention", post(explore_attention))
        .fallback(|| async {
            ApiError {
                status: StatusCode::NOT_FOUND,
                ..ApiError::bad_body("no such route")
            }
        })
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key));
    Router::new()
        .merge(page::routes())
        .nest("/v1", api)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(state)
}

/// `Authorization: Bearer KEY`, compared in constant time.
async fn require_key(State(s): Shared, req: Request, next: Next) -> Response {
    if let Some(key) = &s.api_key {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(key.as_bytes())) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(req).await
}

/// A JSON body whose every failure is an [`ApiError`].
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::too_large(format!(
                    "the request body is larger than {BODY_LIMIT} bytes"
                )),
                _ => ApiError::bad_body(e.body_text()),
            })?;
        serde_json::from_slice(&bytes).map(Body).map_err(|e| {
            ApiError::bad_body(format!(
                "the request body is not what this route takes: {e}"
            ))
        })
    }
}

async fn models(State(s): Shared) -> Json<serde_json::Value> {
    let data: Vec<_> = s
        .stages
        .iter()
        .map(|st| json!({"id": st.name, "object": "model", "created": 0, "owned_by": "gptlab",
                         "kind": st.kind, "preset": st.preset, "context": st.context, "chat": st.is_chat()}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

async fn chat_completions(State(s): Shared, Body(req): Body<ChatRequest>) -> ApiResult<Response> {
    req.unknown.refuse()?;
    let stage = s.stage(&req.model)?;
    let mut messages = to_messages(&req.messages)?;
    let dropped = match req.fit_context {
        true => fit_to_context(stage, &s.tok, &mut messages, &req.sampling),
        false => 0,
    };
    let prompt = chat_prompt(stage, &s.tok, &messages);
    let mut response = answer(&s, stage, &req.sampling, prompt, Shape::Chat).await?;
    response
        .headers_mut()
        .insert(DROPPED_HEADER, HeaderValue::from(dropped));
    Ok(response)
}

/// How many of a request's oldest messages `fit_context` dropped.
const DROPPED_HEADER: &str = "x-gptlab-dropped-messages";

async fn completions(State(s): Shared, Body(req): Body<CompletionRequest>) -> ApiResult<Response> {
    req.unknown.refuse()?;
    let stage = s.stage(&req.model)?;
    let prompt = Prompt::Text(req.prompt.clone()).build(&s.tok);
    answer(&s, stage, &req.sampling, prompt, Shape::Completion).await
}

/// Checks the sampling fields, queues the generation on the stage's workers and answers as
/// the request asks: whole or streamed.
async fn answer(
    s: &AppState,
    stage: &StageInfo,
    fields: &SamplingFields,
    prompt: Built,
    shape: Shape,
) -> ApiResult<Response> {
    let params = gen_params(fields, stage, prompt.ids, prompt.stop)?;
    let header = Header {
        id: format!("gptlab-{}", s.requests.fetch_add(1, Ordering::Relaxed)),
        created: chrono::Utc::now().timestamp() as u64,
        model: stage.name.clone(),
        shape,
        prompt_tokens: params.prompt.len(),
    };
    // Unbounded: a slow reader must not hold up the other requests of the batch (an
    // answer is at most a context of events).
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let emit = Box::new(move |e| tx.send(e).is_ok());
    s.workers.submit(
        &stage.name,
        Job::Generate(Generation::new(params.clone(), emit)),
    )?;
    if fields.stream {
        let include_usage = fields
            .stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage);
        Ok(stream(header, include_usage, rx))
    } else {
        collect(header, &params, rx).await
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackRequest {
    model: String,
    /// The conversation the answer(s) replied to.
    messages: Vec<ApiMessage>,
    /// A 👍 (`label: true`) or 👎 on `completion`...
    completion: Option<String>,
    label: Option<bool>,
    /// ...or answers ranked best first.
    ranking: Option<Vec<String>>,
    #[serde(default)]
    sampling: SamplingNote,
}

async fn feedback(
    State(s): Shared,
    Body(req): Body<FeedbackRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let stage = s.stage(&req.model)?;
    let prompt = to_messages(&req.messages)?;
    let about = Provenance {
        stage: stage.name.clone(),
        ts: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        rater: None,
        sampling: req.sampling,
    };
    let writer = s.feedback.clone();
    let (file, write): (&str, Box<dyn FnOnce() -> anyhow::Result<usize> + Send>) =
        match (req.completion, req.label, req.ranking) {
            (Some(answer), Some(label), None) => {
                (FEEDBACK_FILE, Box::new(move || writer.rate(&prompt, &answer, label, &about)))
            }
            (None, None, Some(ranking)) if (2..=8).contains(&ranking.len()) => {
                (PREFERENCES_FILE, Box::new(move || writer.rank(&prompt, &ranking, &about)))
            }
            (None, None, Some(_)) => return Err(ApiError::bad_param("ranking", "rank between 2 and 8 answers")),
            _ => {
                return Err(ApiError::bad_param(
                    "label",
                    "send either `completion` with `label` (true for 👍) or `ranking` (answers, best first)",
                ))
            }
        };
    let written = tokio::task::spawn_blocking(write)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("{e:#}")))?;
    Ok(Json(json!({"written": written, "file": file})))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExploreRequest {
    model: String,
    prompt: String,
    /// Ask through the chat template (default: for every stage but pretrain).
    chat: Option<bool>,
    top_k: Option<usize>,
    #[serde(default)]
    candidates: Vec<String>,
}

impl ExploreRequest {
    /// The stage and the prompt's ids, checked to fit its context with `extra` more tokens.
    fn prompt<'a>(&self, s: &'a AppState, extra: usize) -> ApiResult<(&'a StageInfo, Vec<u32>)> {
        let stage = s.stage(&self.model)?;
        let chat = self.chat.unwrap_or(stage.is_chat());
        let ids = Prompt::user(&self.prompt, chat).build(&s.tok).ids;
        if ids.is_empty() {
            return Err(ApiError::bad_param("prompt", "the prompt is empty"));
        }
        if ids.len() + extra > stage.context {
            return Err(ApiError::context_exceeded(ids.len() + extra, stage.context));
        }
        Ok((stage, ids))
    }
}

/// Runs `job` on `stage`'s worker and waits for its result.
async fn on_worker<T: Send + 'static>(
    s: &AppState,
    stage: &str,
    job: impl FnOnce(&dyn Explore, &Tokenizer) -> T + Send + 'static,
) -> ApiResult<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    s.workers.submit(
        stage,
        Job::Run(Box::new(move |m, t| drop(tx.send(job(m, t))))),
    )?;
    rx.await
        .map_err(|_| ApiError::internal("the request failed on its worker; see the server's log"))
}

async fn explore_next_token(
    State(s): Shared,
    Body(req): Body<ExploreRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let top_k = req.top_k.unwrap_or(10);
    if !(1..=MAX_TOP_K).contains(&top_k) {
        return Err(ApiError::bad_param(
            "top_k",
            format!("top_k must be between 1 and {MAX_TOP_K}"),
        ));
    }
    if req.candidates.len() > MAX_CANDIDATES || req.candidates.iter().any(|c| c.is_empty()) {
        return Err(ApiError::bad_param(
            "candidates",
            format!("at most {MAX_CANDIDATES} non-empty candidates"),
        ));
    }
    let longest = req
        .candidates
        .iter()
        .map(|c| s.tok.encode(c).len())
        .max()
        .unwrap_or(0);
    let (stage, ids) = req.prompt(&s, longest)?;
    let cands = req.candidates;
    let out = on_worker(&s, &stage.name, move |m, t| {
        m.next_token(t, &ids, top_k, &cands)
    })
    .await?;
    Ok(Json(
        json!({"model": stage.name, "tokens": out.tokens, "candidates": out.candidates}),
    ))
}

async fn explore_attention(
    State(s): Shared,
    Body(req): Body<ExploreRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let (stage, ids) = req.prompt(&s, 0)?;
    let out = on_worker(&s, &stage.name, move |m, t| m.attention(t, &ids)).await?;
    Ok(Json(json!({"model": stage.name, "attention": out})))
}
