//! Answers to many prompts at once: each prompt is built (template, stop ids, cut to leave
//! room for the answer), then all of them generate together through the model's batched
//! generator, each with its own random stream, so a prompt's answer does not depend on what
//! else is asked with it.

use super::prompt::Prompt;
use crate::model::generate::{generate_all, Request, DEFAULT_BATCH};
use crate::model::sample::SampleOptions;
use crate::model::{Backend, LanguageModel};
use crate::spec::SampleSettings;
use crate::tokenizer::Tokenizer;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A model with its tokenizer, ready to be asked.
pub struct Ask<'a, D: Backend> {
    pub model: &'a dyn LanguageModel<D>,
    pub tok: &'a Tokenizer,
}

impl<'a, D: Backend> Ask<'a, D> {
    pub fn new(model: &'a dyn LanguageModel<D>, tok: &'a Tokenizer) -> Self {
        Self { model, tok }
    }

    /// One generation request per prompt: its ids, `opts` with the prompt's stop ids, and
    /// its seed.
    pub fn requests(
        &self,
        prompts: &[Prompt],
        opts: &SampleOptions,
        seeds: &[u64],
    ) -> Vec<Request> {
        assert_eq!(prompts.len(), seeds.len(), "a seed per prompt");
        let n_ctx = self.model.config().n_ctx;
        prompts
            .iter()
            .zip(seeds)
            .map(|(p, &seed)| {
                let built = p.build_within(self.tok, n_ctx, opts.max_new_tokens);
                Request {
                    prompt: built.ids,
                    opts: opts.clone().stopping_at(built.stop),
                    seed,
                }
            })
            .collect()
    }

    /// Each prompt's answer ids (its stop id kept), generated together.
    pub fn ids(&self, prompts: &[Prompt], opts: &SampleOptions, seeds: &[u64]) -> Vec<Vec<u32>> {
        self.run(self.requests(prompts, opts, seeds))
    }

    /// Generates built requests together: each one's new ids, its stop id kept.
    pub fn run(&self, requests: Vec<Request>) -> Vec<Vec<u32>> {
        generate_all(self.model, self.tok.vocab_size(), requests, DEFAULT_BATCH)
    }

    /// Each prompt's answer as text.
    pub fn texts(&self, prompts: &[Prompt], opts: &SampleOptions, seeds: &[u64]) -> Vec<String> {
        self.ids(prompts, opts, seeds)
            .iter()
            .map(|ids| self.tok.decode(ids))
            .collect()
    }

    /// Greedy answers (no randomness: the seeds do not matter).
    pub fn greedy(&self, prompts: &[Prompt], max_new_tokens: usize) -> Vec<String> {
        let opts = SampleSettings::greedy(max_new_tokens).into();
        self.texts(prompts, &opts, &vec![0; prompts.len()])
    }

    /// One answer, its stream seeded from `rng`.
    pub fn one(&self, prompt: &Prompt, opts: &SampleOptions, rng: &mut impl Rng) -> String {
        let seed = rng.gen();
        self.texts(std::slice::from_ref(prompt), opts, &[seed])
            .remove(0)
    }

    /// `n` sampled answers to each prompt, all generated together. Prompt `i`'s answers come
    /// from stream `i` of `seed`, so the same prompt list is answered under the same seeds by
    /// every model.
    pub fn samples(
        &self,
        prompts: &[Prompt],
        n: usize,
        opts: &SampleOptions,
        seed: u64,
    ) -> Vec<Vec<String>> {
        let (repeated, seeds): (Vec<Prompt>, Vec<u64>) = prompts
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(i as u64);
                (0..n).map(move |_| (p.clone(), rng.gen::<u64>()))
            })
            .unzip();
        let texts = self.texts(&repeated, opts, &seeds);
        texts.chunks(n.max(1)).map(|c| c.to_vec()).collect()
    }
}
