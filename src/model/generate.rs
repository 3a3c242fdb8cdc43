//! Generation over many different prompts at once. A [`Generator`] holds up to `slots`
//! sequences in one [`KvCache`] (allocated once, on the host or the device); each step feeds every live sequence's
//! newest token through the model together and samples one more token per sequence. A
//! sequence joins at any step (its prompt is prefilled, batched with the other newcomers) and
//! leaves when it stops, so a free slot is taken by the next prompt straight away.
//!
//! Every sequence has its own options and its own random stream, and nothing of another
//! sequence enters its arithmetic: its tokens are the same whatever else shares the batch.

use super::kernels::SPLIT_WORK;
use super::kv_cache::KvCache;
use super::lm::LanguageModel;
use super::sample::{sample_next, SampleOptions};
use super::Backend;
use crate::util::upload;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::VecDeque;

/// How many sequences generate together by default: enough rows that even the narrow
/// products of a decode step are large enough to split over both cores (on poetry's 1,741
/// held-out questions, small preset: 2.9 s at 32 rows, 2.5 s at 64), few enough that the
/// cache stays modest.
pub const DEFAULT_BATCH: usize = 64;

/// One sequence to generate: its prompt, options (`stop`, `max_new_tokens`, sampling) and
/// the seed of its own random stream.
#[derive(Clone, Debug)]
pub struct Request {
    pub prompt: Vec<u32>,
    pub opts: SampleOptions,
    pub seed: u64,
}

/// A token one step produced for the sequence in `slot`. `finished`: it was a stop id or the
/// last token allowed; the slot is free again.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    pub slot: usize,
    pub token: u32,
    pub finished: bool,
}

struct Sequence {
    ids: Vec<u32>,
    new: usize,
    opts: SampleOptions,
    rng: ChaCha8Rng,
    /// Its cache slot does not hold its window yet (new, or the window moved on).
    needs_prefill: bool,
}

pub struct Generator<'m, D: Backend> {
    model: &'m dyn LanguageModel<D>,
    /// The model with its LoRA adapters folded in, made once, when it has adapters.
    merged: Option<Box<dyn LanguageModel<D>>>,
    vocab_limit: usize,
    cache: KvCache<D>,
    slots: Vec<Option<Sequence>>,
}

impl<'m, D: Backend> Generator<'m, D> {
    /// Room for `slots` sequences of up to `capacity` positions each (prompt + answer; longer
    /// ones continue over a moving window, as far as the model context allows). Ids
    /// `>= vocab_limit` (a vocabulary bucket's padding) are never sampled.
    pub fn new(
        model: &'m dyn LanguageModel<D>,
        vocab_limit: usize,
        slots: usize,
        capacity: usize,
    ) -> Self {
        Self {
            model,
            merged: model.lora().map(|_| model.merged()),
            vocab_limit,
            cache: KvCache::new(model.config(), &model.device(), slots, capacity),
            slots: (0..slots).map(|_| None).collect(),
        }
    }

    pub fn free_slots(&self) -> usize {
        self.slots.iter().filter(|s| s.is_none()).count()
    }

    pub fn is_idle(&self) -> bool {
        self.slots.iter().all(|s| s.is_none())
    }

    /// Starts a sequence in a free slot (it generates from the next step on) and returns the
    /// slot; `None` when every slot is taken.
    pub fn add(&mut self, request: Request) -> Option<usize> {
        assert!(!request.prompt.is_empty(), "generation needs a prompt");
        let slot = self.slots.iter().position(|s| s.is_none())?;
        self.slots[slot] = Some(Sequence {
            ids: request.prompt,
            new: 0,
            rng: ChaCha8Rng::seed_from_u64(request.seed),
            opts: request.opts,
            needs_prefill: true,
        });
        Some(slot)
    }

    /// Ends a sequence early (its client went away).
    pub fn remove(&mut self, slot: usize) {
        self.slots[slot] = None;
    }

    /// One token for every live sequence (none when idle).
    pub fn step(&mut self) -> Vec<Step> {
        let logits = self.forward();
        if logits.is_empty() {
            return Vec::new();
        }
        let vocab = logits.iter().map(|(_, l)| l.len()).next().unwrap_or(0);
        let limit = self.vocab_limit.min(vocab);
        let mut live: Vec<(usize, &mut Sequence)> = self
            .slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| Some((i, s.as_mut()?)))
            .collect();
        // Each sequence samples from its own stream, so the order of work does not matter.
        // Ranking a row's vocabulary is roughly 16 operations per id (see SPLIT_WORK).
        let steps: Vec<Step> = live
            .par_iter_mut()
            .with_min_len((SPLIT_WORK / (16 * limit).max(1)).max(1))
            .zip(&logits)
            .map(|((slot, seq), (_, row))| {
                let token = sample_next(&row[..limit], &seq.opts, &mut seq.rng);
                seq.ids.push(token);
                seq.new += 1;
                let finished = seq.opts.stop.contains(&token) || seq.new >= seq.opts.max_new_tokens;
                Step {
                    slot: *slot,
                    token,
                    finished,
                }
            })
            .collect();
        for s in steps.iter().filter(|s| s.finished) {
            self.slots[s.slot] = None;
        }
        steps
    }

    /// Next-token logits of every live sequence, in slot order: prompts (and windows that
    /// moved) are prefilled together, the others decode their newest token together.
    fn forward(&mut self) -> Vec<(usize, Vec<f32>)> {
        let capacity = self.cache.capacity();
        let (mut prefill, mut decode) = (Vec::new(), Vec::new());
        for (slot, seq) in self.slots.iter_mut().enumerate() {
            let Some(seq) = seq else { continue };
            // A full slot cannot take the next token: the window moves on, recomputed.
            let full = self.cache.lens()[slot] >= capacity;
            if seq.needs_prefill || !seq.opts.use_cache || full {
                seq.needs_prefill = false;
                let start = seq.ids.len().saturating_sub(capacity);
                prefill.push((slot, &seq.ids[start..]));
            } else {
                decode.push((slot, *seq.ids.last().expect("a sequence has a prompt")));
            }
        }
        let mut rows = Vec::with_capacity(prefill.len() + decode.len());
        if !prefill.is_empty() {
            let slots: Vec<usize> = prefill.iter().map(|p| p.0).collect();
            let lens: Vec<usize> = prefill.iter().map(|p| p.1.len()).collect();
            let width = *lens.iter().max().unwrap();
            let padded: Vec<usize> = prefill
                .iter()
                .flat_map(|(_, ids)| {
                    let pad = std::iter::repeat(0).take(width - ids.len());
                    ids.iter().map(|&t| t as usize).chain(pad)
                })
                .collect();
            let tokens = upload::tensor(&self.model.device(), padded, (slots.len(), width));
            let model = self.merged.as_deref().unwrap_or(self.model);
            let logits = model.prefill(tokens, &lens, &slots, &mut self.cache);
            rows.extend(split_rows(&slots, logits));
        }
        if !decode.is_empty() {
            let (slots, tokens): (Vec<usize>, Vec<u32>) = decode.into_iter().unzip();
            let model = self.merged.as_deref().unwrap_or(self.model);
            let logits = model.decode(&tokens, &slots, &mut self.cache);
            rows.extend(split_rows(&slots, logits));
        }
        rows.sort_by_key(|r| r.0);
        rows
    }
}

fn split_rows(slots: &[usize], logits: Vec<f32>) -> Vec<(usize, Vec<f32>)> {
    let vocab = logits.len() / slots.len().max(1);
    slots
        .iter()
        .zip(logits.chunks(vocab))
        .map(|(&s, l)| (s, l.to_vec()))
        .collect()
}

/// Generates every request, up to `batch` at a time (a finished sequence's slot goes to the
/// next waiting request at once). Returns each request's new ids, in order, a stop id kept.
pub fn generate_all<D: Backend>(
    model: &dyn LanguageModel<D>,
    vocab_limit: usize,
    requests: Vec<Request>,
    batch: usize,
) -> Vec<Vec<u32>> {
    let ctx = model.config().n_ctx;
    let longest = requests
        .iter()
        .map(|r| r.prompt.len() + r.opts.max_new_tokens)
        .max()
        .unwrap_or(1);
    let slots = batch.clamp(1, requests.len().max(1));
    let mut gen = Generator::new(model, vocab_limit, slots, longest.min(ctx));
    let mut out = vec![Vec::new(); requests.len()];
    let mut waiting: VecDeque<(usize, Request)> = requests.into_iter().enumerate().collect();
    let mut owner = vec![usize::MAX; slots];
    loop {
        while gen.free_slots() > 0 {
            let Some((index, request)) = waiting.pop_front() else {
                break;
            };
            if request.opts.max_new_tokens == 0 {
                continue;
            }
            owner[gen.add(request).expect("a free slot")] = index;
        }
        if gen.is_idle() {
            return out;
        }
        for step in gen.step() {
            out[owner[step.slot]].push(step.token);
        }
    }
}

/// `n` continuations of one prompt (GRPO/PPO groups, best-of-n), each with its own stream
/// seeded from `rng`.
pub fn generate<D: Backend>(
    model: &dyn LanguageModel<D>,
    prompt: &[u32],
    n: usize,
    vocab_limit: usize,
    opts: &SampleOptions,
    rng: &mut impl rand::Rng,
) -> Vec<Vec<u32>> {
    let requests = (0..n)
        .map(|_| Request {
            prompt: prompt.to_vec(),
            opts: opts.clone(),
            seed: rng.gen(),
        })
        .collect();
    generate_all(model, vocab_limit, requests, DEFAULT_BATCH)
}
