//! Each served stage gets its own worker threads, each owning a copy of the model (models are
//! not shared between threads) and a generator, fed from a bounded queue. A worker batches
//! generation continuously: a request joins the running batch at the next step, as soon as
//! the batch has a free row for each of its answers, and leaves when its answers end or its
//! client goes away. Requests to different stages run concurrently; a full queue is answered
//! at once with 503 instead of piling up.

use super::catalog::StageInfo;
use super::error::{ApiError, ApiResult};
use super::explorer::{Explore, Explored};
use super::generation::Generation;
use crate::model::generate::Generator;
use crate::model::{Backend, LanguageModel};
use crate::results::weights::load_model;
use crate::tokenizer::Tokenizer;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};

/// Rows of a worker's batch: answers generated together. The matrix products of a step
/// keep both cores busy from about eight rows; sixteen leaves room for two `n = 8` requests.
pub const BATCH_ROWS: usize = 16;

/// Work for a stage's model, run on one of its worker threads.
pub enum Job {
    /// A generation, which joins the worker's batch.
    Generate(Generation),
    /// Anything else (the explorer's probes), run between two steps of the batch.
    Run(Box<dyn FnOnce(&dyn Explore, &Tokenizer) + Send>),
}

pub struct Workers {
    queues: HashMap<String, SyncSender<Job>>,
}

impl Workers {
    /// Loads `threads` copies of each stage's model, one per worker thread, each on a device
    /// that thread opens (`open`: a GPU's handle cannot move between threads), and starts them.
    pub fn start<D: Backend>(
        open: fn() -> Result<D>,
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
                let name = format!("serve-{}-{i}", stage.name);
                // The worker runs inside its own rayon pool, so a step's many small parallel
                // operations start on a pool thread: from outside a pool, each one would be
                // handed to the pool and waited for, a round trip between threads per
                // operation that costs more than the operation at small batches.
                let pool = rayon::ThreadPoolBuilder::new()
                    .thread_name(move |t| format!("{name}-{t}"))
                    .build()
                    .context("starting a worker's thread pool")?;
                std::thread::Builder::new()
                    .name(format!("serve-{}-{i}", stage.name))
                    .spawn(move || {
                        pool.install(|| match open().and_then(|dev| load_model(&dir, &dev)) {
                            Ok(model) => {
                                let _ = loaded_tx.send(Ok(()));
                                work(model.as_ref(), &rx, &tok)
                            }
                            Err(e) => {
                                let _ = loaded_tx.send(Err(e));
                            }
                        })
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

/// A worker's running batch: the generator and which request each row belongs to.
struct Batch<'m, D: Backend> {
    generator: Generator<'m, D>,
    /// Row (slot) → (request id, answer index).
    rows: HashMap<usize, (u64, usize)>,
    requests: HashMap<u64, Generation>,
    next_id: u64,
}

impl<'m, D: Backend> Batch<'m, D> {
    fn new(model: &'m dyn LanguageModel<D>, tok: &Tokenizer) -> Self {
        Batch {
            generator: Generator::new(model, tok.vocab_size(), BATCH_ROWS, model.config().n_ctx),
            rows: HashMap::new(),
            requests: HashMap::new(),
            next_id: 0,
        }
    }

    /// Starts `g`'s answers; false (and nothing started) when the batch lacks the rows.
    fn join(&mut self, g: Generation) -> Result<(), Generation> {
        if self.generator.free_slots() < g.n() {
            return Err(g);
        }
        let id = self.next_id;
        self.next_id += 1;
        for (index, request) in g.requests().into_iter().enumerate() {
            let slot = self.generator.add(request).expect("a free row");
            self.rows.insert(slot, (id, index));
        }
        self.requests.insert(id, g);
        Ok(())
    }

    /// One step of every row; answers that ended and requests nobody listens to leave.
    fn step(&mut self, tok: &Tokenizer) {
        for step in self.generator.step() {
            let Some(&(id, index)) = self.rows.get(&step.slot) else {
                continue;
            };
            let g = self.requests.get_mut(&id).expect("a row's request");
            let ended = g.on_token(index, step.token, step.finished, tok);
            if ended || step.finished {
                self.rows.remove(&step.slot);
                if !step.finished {
                    self.generator.remove(step.slot);
                }
            }
        }
        let over: Vec<u64> = self
            .requests
            .iter()
            .filter(|(_, g)| g.is_over())
            .map(|(&id, _)| id)
            .collect();
        for id in over {
            self.requests.remove(&id);
            let gone: Vec<usize> = self
                .rows
                .iter()
                .filter(|(_, (r, _))| *r == id)
                .map(|(&slot, _)| slot)
                .collect();
            for slot in gone {
                self.rows.remove(&slot);
                self.generator.remove(slot);
            }
        }
    }
}

fn work<D: Backend>(model: &dyn LanguageModel<D>, rx: &Mutex<Receiver<Job>>, tok: &Tokenizer) {
    let mut batch = Batch::new(model, tok);
    // A request that waits for rows, holding back the queue behind it (first come, first
    // served).
    let mut waiting: Option<Generation> = None;
    loop {
        if let Some(g) = waiting.take() {
            waiting = batch.join(g).err();
        }
        while waiting.is_none() {
            let idle = batch.generator.is_idle();
            let Some(job) = next_job(rx, idle) else {
                if idle {
                    return; // the server is shutting down
                }
                break;
            };
            match job {
                Job::Generate(g) => waiting = batch.join(g).err(),
                Job::Run(f) => {
                    run_guarded(|| f(&Explored(model), tok));
                }
            }
        }
        if !run_guarded(|| batch.step(tok)) {
            // Whatever the step left half done is dropped with its requests.
            batch = Batch::new(model, tok);
        }
    }
}

/// The next queued job: waiting for one when the batch is idle, else only one already there
/// (a sibling worker holding the queue while it waits counts as none).
fn next_job(rx: &Mutex<Receiver<Job>>, idle: bool) -> Option<Job> {
    if idle {
        // Hold the lock only while taking one job, so sibling workers take the next ones.
        return rx.lock().unwrap_or_else(|e| e.into_inner()).recv().ok();
    }
    let queue = rx.try_lock().ok()?;
    match queue.try_recv() {
        Ok(job) => Some(job),
        Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
    }
}

/// Runs `f`; a panic (a bug) is logged and the worker carries on (false tells it). A request
/// whose job panicked drops its reply channel, which its client sees as an error.
fn run_guarded(f: impl FnOnce()) -> bool {
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok();
    if !ok {
        eprintln!("serve: a request to a worker failed (see the panic above)");
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::presets::{build_model, model_config};
    use crate::model::sample::SampleOptions;
    use crate::serve::generation::{GenEvent, GenParams};
    use crate::tokenizer::TokenizerKind;
    use dfdx::tensor::Cpu;

    /// Runs requests through one batch, `late` joining after `after` steps of the others;
    /// returns each request's text.
    fn run(
        model: &dyn LanguageModel<Cpu>,
        tok: &Tokenizer,
        early: &[GenParams],
        late: Option<(&GenParams, usize)>,
    ) -> Vec<String> {
        let mut batch = Batch::new(model, tok);
        let texts: Vec<Arc<Mutex<String>>> = (0..early.len() + late.is_some() as usize)
            .map(|_| Arc::default())
            .collect();
        let generation = |p: &GenParams, text: &Arc<Mutex<String>>| {
            let text = text.clone();
            Generation::new(
                p.clone(),
                Box::new(move |e| {
                    if let GenEvent::Text { text: t, .. } = e {
                        text.lock().unwrap().push_str(&t);
                    }
                    true
                }),
            )
        };
        for (p, text) in early.iter().zip(&texts) {
            assert!(batch.join(generation(p, text)).is_ok());
        }
        let mut steps = 0;
        while !batch.generator.is_idle() || late.is_some_and(|(_, after)| steps <= after) {
            if let Some((p, after)) = late {
                if steps == after {
                    assert!(!batch.generator.is_idle(), "the batch is running");
                    assert!(batch.join(generation(p, texts.last().unwrap())).is_ok());
                }
            }
            batch.step(tok);
            steps += 1;
        }
        texts.iter().map(|t| t.lock().unwrap().clone()).collect()
    }

    #[test]
    fn a_request_joining_a_running_batch_gets_the_greedy_answer_it_gets_alone() {
        let tok = Tokenizer::train(
            TokenizerKind::Char,
            &["床前明月光,疑是地上霜。举头望明月"],
            64,
        )
        .unwrap();
        let model = build_model(&model_config("nano", 128).unwrap(), &Cpu::default(), 3).unwrap();
        let params = |prompt: &str, max_new_tokens: usize, temperature: f32| GenParams {
            prompt: tok.encode(prompt),
            n: 1,
            sampling: SampleOptions {
                max_new_tokens,
                temperature,
                ..Default::default()
            },
            stop_strings: vec![],
            seed: 7,
        };
        let long = [params("床前明月光", 60, 1.0), params("举头", 40, 0.0)];
        let joining = params("疑是地上霜。", 20, 0.0);
        let alone = run(model.as_ref(), &tok, &[joining.clone()], None);
        let joined = run(model.as_ref(), &tok, &long, Some((&joining, 10)));
        assert!(!alone[0].is_empty());
        assert_eq!(joined[2], alone[0]);
        // The requests already running are not disturbed by the newcomer either.
        assert_eq!(joined[..2], run(model.as_ref(), &tok, &long, None)[..]);
    }

    #[test]
    fn a_request_nobody_listens_to_leaves_the_batch_at_once() {
        let tok = Tokenizer::train(TokenizerKind::Char, &["床前明月光,疑是地上霜。"], 64).unwrap();
        let model = build_model(&model_config("nano", 128).unwrap(), &Cpu::default(), 3).unwrap();
        let params = GenParams {
            prompt: tok.encode("床前"),
            n: 2,
            sampling: SampleOptions {
                max_new_tokens: 100,
                ..Default::default()
            },
            stop_strings: vec![],
            seed: 1,
        };
        let mut batch = Batch::new(model.as_ref(), &tok);
        // The client's connection is gone: every send fails, as when the server drops the
        // response stream and with it the channel's receiver.
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<GenEvent>();
        drop(rx);
        let emit = Box::new(move |e| tx.send(e).is_ok());
        assert!(batch.join(Generation::new(params, emit)).is_ok());
        let mut steps = 0;
        while !batch.generator.is_idle() {
            batch.step(&tok);
            steps += 1;
            assert!(steps < 100, "the rows stayed for all their tokens");
        }
        assert!(batch.requests.is_empty() && batch.rows.is_empty());
        assert!(steps < 10, "{steps} steps");
    }
}
