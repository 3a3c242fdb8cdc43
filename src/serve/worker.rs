//! Each served stage gets its own worker threads, each owning a copy of the model (models are
//! not shared between threads), fed from a bounded queue. Requests to different stages run
//! concurrently; a full queue is answered at once with 503 instead of piling up.

use super::catalog::StageInfo;
use super::error::{ApiError, ApiResult};
use crate::model::LanguageModel;
use crate::tokenizer::Tokenizer;
use crate::train::checkpoint::load_model;
use anyhow::{Context, Result};
use dfdx::tensor::Cpu;
use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

/// Work for a stage's model, run on one of its worker threads.
pub type Job = Box<dyn FnOnce(&dyn LanguageModel<Cpu>, &Tokenizer) + Send>;

pub struct Workers {
    queues: HashMap<String, SyncSender<Job>>,
}

impl Workers {
    /// Loads `threads` copies of each stage's model, one per worker thread, and starts them.
    pub fn start(
        stages: &[StageInfo],
        tok: &Arc<Tokenizer>,
        threads: usize,
        queue: usize,
    ) -> Result<Workers> {
        let mut queues = HashMap::new();
        for stage in stages {
            let (tx, rx) = sync_channel::<Job>(queue);
            let rx = Arc::new(Mutex::new(rx));
            for i in 0..threads.max(1) {
                // Each thread loads its own copy (dyn models are not Send) and reports back.
                let (loaded_tx, loaded) = sync_channel::<Result<()>>(1);
                let (rx, tok, dir) = (rx.clone(), tok.clone(), stage.dir.clone());
                std::thread::Builder::new()
                    .name(format!("serve-{}-{i}", stage.name))
                    .spawn(move || match load_model(&dir, &Cpu::default()) {
                        Ok(model) => {
                            let _ = loaded_tx.send(Ok(()));
                            work(model.as_ref(), &rx, &tok)
                        }
                        Err(e) => {
                            let _ = loaded_tx.send(Err(e));
                        }
                    })
                    .context("starting a worker thread")?;
                loaded
                    .recv()
                    .context("a worker thread died while loading")?
                    .with_context(|| format!("loading stage {}", stage.dir.display()))?;
            }
            queues.insert(stage.name.clone(), tx);
        }
        Ok(Workers { queues })
    }

    /// Queues `job` for `stage`'s model; 503 when its queue is full.
    pub fn submit(&self, stage: &str, job: Job) -> ApiResult<()> {
        let queue = self
            .queues
            .get(stage)
            .ok_or_else(|| ApiError::internal(format!("no worker for {stage}")))?;
        match queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(ApiError::busy(stage)),
            Err(TrySendError::Disconnected(_)) => Err(ApiError::internal(format!(
                "the workers of {stage} stopped"
            ))),
        }
    }
}

fn work(model: &dyn LanguageModel<Cpu>, rx: &Mutex<Receiver<Job>>, tok: &Tokenizer) {
    loop {
        // Hold the lock only while taking one job, so sibling workers take the next ones.
        let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return, // the server is shutting down
        };
        // A job that panics (a bug) drops its reply channel, which the client sees as an
        // error; the worker itself carries on with the next job.
        let run = std::panic::AssertUnwindSafe(|| job(model, tok));
        if std::panic::catch_unwind(run).is_err() {
            eprintln!("serve: a request to a worker failed (see the panic above)");
        }
    }
}
