//! `gptlab serve RUN`: the run's stages over an OpenAI-compatible HTTP API, with a chat page
//! at `/` where answers are rated (👍/👎) and ranked into the run's feedback files, which a
//! reward or DPO stage of a later run reads as data.

pub mod catalog;
pub mod error;
pub mod explorer;
pub mod generation;
pub mod openai;
pub mod page;
pub mod respond;
pub mod routes;
pub mod worker;

use crate::data::ratings::RatingWriter;
use crate::results::{FEEDBACK_FILE, PREFERENCES_FILE};
use anyhow::{Context, Result};
use axum::serve::ListenerExt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

/// What `gptlab serve` serves, and how (its flags are parsed in src/cli/serve.rs).
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The run folder (results/NAME/RUN_ID).
    pub run: PathBuf,
    /// Stages to serve (empty: every finished stage but reward models).
    pub stages: Vec<String>,
    /// Address to listen on; anything but loopback is reachable from other machines.
    pub host: IpAddr,
    /// Port (0 picks a free one; the address is printed on the first line).
    pub port: u16,
    /// Require `Authorization: Bearer KEY` on every /v1 route.
    pub api_key: Option<String>,
    /// Worker threads per stage, each with its own copy of the model.
    pub workers: usize,
    /// Requests that may wait per stage; more get 503.
    pub queue: usize,
}

/// Serves the run's stages until the server stops, each worker's model on a device it opens
/// with `open`.
pub fn run<D: crate::model::Backend>(args: &ServeOptions, open: fn() -> Result<D>) -> Result<()> {
    let stages = catalog::load_catalog(&args.run, &args.stages)?;
    let tok_path = args.run.join(crate::results::TOKENIZER_FILE);
    let tok = Arc::new(crate::tokenizer::Tokenizer::load(&tok_path)?);
    let workers = worker::Workers::start(open, &stages, &tok, args.workers, args.queue)?;
    let names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
    let state = Arc::new(routes::AppState {
        stages,
        tok,
        workers,
        feedback: Arc::new(RatingWriter::new(
            &args.run.join(FEEDBACK_FILE),
            &args.run.join(PREFERENCES_FILE),
        )),
        api_key: args.api_key.clone().filter(|k| !k.is_empty()),
        requests: Default::default(),
    });
    if !args.host.is_loopback() && state.api_key.is_none() {
        eprintln!(
            "warning: listening on {} without --api-key: anyone who can reach this machine can use the models and write feedback",
            args.host
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let addr = SocketAddr::new(args.host, args.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let addr = listener.local_addr()?;
        // Streamed tokens are small writes: without TCP_NODELAY, Nagle's algorithm holds each
        // one until the client's (delayed, up to 40 ms) ACK of the previous one arrives, which
        // stalls every streamed answer on a kept-alive connection.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                eprintln!("serve: cannot set TCP_NODELAY: {e}");
            }
        });
        // The first line is the address, so scripts and tests can start on port 0.
        println!("http://{addr}/");
        eprintln!("serving {} from {}", names.join(", "), args.run.display());
        axum::serve(listener, routes::router(state))
            .await
            .context("the HTTP server stopped")
    })
}
