//! The decoder-only GPT: token + learned position embeddings, pre-LayerNorm blocks, final
//! LayerNorm, LM head tied to the token embedding, and an optional scalar head (reward or
//! value) on the final hidden states. Parameter shapes are const generics:
//! `V` vocabulary, `C` maximum context, `M` width, `F = 4 * M` MLP width.
//!
//! With LoRA adapters (`lora`), every base weight is frozen: the tape enters after the
//! embedding, every linear layer (the tied LM head too) passes gradients to its input only,
//! and only the adapters and the scalar head are listed as parameters. LayerNorm's scale and
//! shift still receive their (tiny, 2·M per norm) gradients from the shared kernel, but are
//! never listed, so nothing updates them.

use super::adapters::Adapters;
use super::attention::CausalSelfAttention;
use super::batch_cache::{host, to_tensor};
use super::block::{Block, Mlp};
use super::config::ModelConfig;
use super::kv_cache::{KvCache, Store};
use super::layers::{LayerNorm, Linear};
use super::lora::LoraSpec;
use super::params::ParamFn;
use super::Backend;
use crate::util::{readback, upload};
use anyhow::{ensure, Result};
use dfdx::prelude::*;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// Generation reads the base weights in place: a model with adapters generates through its
/// merged clone (`Generator::new` makes it once).
const UNMERGED: &str = "generation needs the adapters merged: use merged() (Generator does)";

#[derive(Clone, Debug)]
pub struct Gpt<const V: usize, const C: usize, const M: usize, const F: usize, D: Device<f32>> {
    pub cfg: ModelConfig,
    pub wte: Tensor<Rank2<V, M>, f32, D>,
    pub wpe: Tensor<Rank2<C, M>, f32, D>,
    pub blocks: Vec<Block<M, F, D>>,
    pub ln_f: LayerNorm<M, D>,
    /// Scalar head for reward and value models: `[1, M]` weight and a bias.
    pub score: Option<Linear<M, 1, D>>,
    /// LoRA adapters; when present the base above is frozen.
    pub lora: Option<Adapters<M, F, D>>,
    /// The LM head's bias when the checkpoint's vocabulary is smaller than `V` (see
    /// `ModelConfig::real_vocab_size`): 0 on real ids, [`MASKED_LOGIT`] on padding. Not a
    /// parameter; `None` for models trained here, whose head has no bias.
    pub vocab_mask: Option<Tensor<Rank1<V>, f32, D>>,
    /// Whether a traced forward recomputes each block's activations in the backward
    /// instead of keeping them (see `checkpoint.rs`).
    pub checkpoint: bool,
}

/// The logit of a padding id. Finite, unlike -inf, so that `p · log p` and log-ratios stay
/// 0 rather than NaN; far enough below any real logit that its probability is exactly 0.
pub const MASKED_LOGIT: f32 = -1e9;

/// The mask for a checkpoint of `real` ids in a vocabulary of `V`, if there is padding.
fn vocab_mask<const V: usize, D: Device<f32>>(
    dev: &D,
    real: Option<usize>,
) -> Option<Tensor<Rank1<V>, f32, D>> {
    let real = real.filter(|&r| r < V)?;
    let bias = (0..V).map(|i| if i < real { 0.0 } else { MASKED_LOGIT });
    Some(upload::tensor(dev, bias.collect(), (Const::<V>,)))
}

/// Draws GPT-2's initialisation from a seeded host RNG, so CPU and CUDA start from the same
/// weights: N(0, 0.02) for matrices, with residual projections scaled by 1/sqrt(2 * n_layer).
struct Init<'a, D: Device<f32>> {
    dev: &'a D,
    rng: rand_chacha::ChaCha8Rng,
}

impl<'a, D: Device<f32>> Init<'a, D> {
    fn normal<S: ConstShape>(&mut self, std: f32) -> Tensor<S, f32, D> {
        let n = S::NUMEL;
        let dist = Normal::new(0.0, std).unwrap();
        let data: Vec<f32> = (0..n).map(|_| dist.sample(&mut self.rng)).collect();
        upload::tensor(self.dev, data, S::default())
    }
    fn zeros<S: ConstShape>(&mut self) -> Tensor<S, f32, D> {
        self.dev.zeros()
    }
    fn ones<S: ConstShape>(&mut self) -> Tensor<S, f32, D> {
        self.dev.ones()
    }
    fn linear<const I: usize, const O: usize>(&mut self, std: f32) -> Linear<I, O, D> {
        Linear {
            weight: self.normal(std),
            bias: self.zeros(),
        }
    }
    fn layer_norm<const N: usize>(&mut self) -> LayerNorm<N, D> {
        LayerNorm {
            weight: self.ones(),
            bias: self.zeros(),
        }
    }
}

impl<const V: usize, const C: usize, const M: usize, const F: usize, D: Backend>
    Gpt<V, C, M, F, D>
{
    pub fn new(cfg: ModelConfig, dev: &D, seed: u64) -> Self {
        assert_eq!(
            (cfg.vocab_size, cfg.n_ctx, cfg.n_embd),
            (V, C, M),
            "config/type mismatch"
        );
        assert_eq!(M % cfg.n_head, 0, "width must divide into heads");
        let mut init = Init {
            dev,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
        };
        let std = 0.02;
        let proj_std = std / (2.0 * cfg.n_layer as f32).sqrt();
        let blocks = (0..cfg.n_layer)
            .map(|_| Block {
                ln_1: init.layer_norm(),
                attn: CausalSelfAttention {
                    n_head: cfg.n_head,
                    q: init.linear(std),
                    k: init.linear(std),
                    v: init.linear(std),
                    proj: init.linear(proj_std),
                },
                ln_2: init.layer_norm(),
                mlp: Mlp {
                    fc: init.linear(std),
                    proj: init.linear(proj_std),
                },
            })
            .collect();
        Self {
            wte: init.normal(std),
            wpe: init.normal(std),
            blocks,
            ln_f: init.layer_norm(),
            score: None,
            lora: None,
            vocab_mask: vocab_mask(dev, cfg.real_vocab_size),
            checkpoint: false,
            cfg,
        }
    }

    /// Freezes the base and adds fresh adapters (B = 0, so the outputs are unchanged).
    pub fn add_adapters(&mut self, spec: &LoraSpec, seed: u64) -> Result<()> {
        ensure!(
            self.lora.is_none(),
            "the model already has LoRA adapters: merge them before adding new ones"
        );
        let dev = self.wte.device().clone();
        self.lora = Some(Adapters::new(spec, self.blocks.len(), &dev, seed)?);
        Ok(())
    }

    /// The model with its adapters folded into the weights and none left (a plain clone
    /// without adapters). Only the targeted layers get new tensors.
    pub fn merged(&self) -> Self {
        let mut model = self.base_only();
        if let Some(lora) = &self.lora {
            for (block, adapters) in model.blocks.iter_mut().zip(&lora.blocks) {
                block.merge(adapters, lora.spec.scale());
            }
        }
        model
    }

    /// The frozen base alone: the same model with the adapters switched off. dfdx tensors
    /// share their buffers on clone, and a LoRA model never writes its base, so this costs no
    /// copy of the weights (the frozen reference of DPO, KTO and PPO).
    pub fn base_only(&self) -> Self {
        Self {
            cfg: self.cfg.clone(),
            wte: self.wte.clone(),
            wpe: self.wpe.clone(),
            blocks: self.blocks.clone(),
            ln_f: self.ln_f.clone(),
            score: self.score.clone(),
            lora: None,
            vocab_mask: self.vocab_mask.clone(),
            checkpoint: self.checkpoint,
        }
    }

    /// Adds a freshly initialised scalar head (reward / value model).
    pub fn add_score_head(&mut self, seed: u64) {
        let dev = self.wte.device().clone();
        let mut init = Init {
            dev: &dev,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
        };
        self.score = Some(Linear {
            weight: init.normal(1.0 / (M as f32 + 1.0).sqrt()),
            bias: init.zeros(),
        });
    }

    fn embed<T: Tape<f32, D>>(
        &self,
        wte: Tensor<Rank2<V, M>, f32, D, T>,
        tokens: Tensor<(usize, usize), usize, D>,
        start: usize,
    ) -> Tensor<(usize, usize, Const<M>), f32, D, T> {
        let (b, s) = *tokens.shape();
        assert!(
            start + s <= C,
            "sequence of {} exceeds the model context {C}",
            start + s
        );
        let tok = wte.gather(tokens);
        let pos = self.wpe.retaped::<T>().slice((start..start + s, ..));
        tok + pos.broadcast_like::<_, Axis<0>>(&(b, s, Const::<M>))
    }

    /// Final hidden states `(batch, seq, M)` after `ln_f`. The tape enters through the token
    /// embedding; every other parameter is retaped, so all receive gradients. With adapters,
    /// the tape enters after the embedding (the tables get none), and adapter dropout acts
    /// when the forward is traced (training).
    pub fn hidden<T: Tape<f32, D> + Merge<NoneTape>>(
        &self,
        tokens: Tensor<(usize, usize), usize, D>,
        tape: T,
    ) -> Tensor<(usize, usize, Const<M>), f32, D, T> {
        let checkpoint = self.checkpoint && T::OWNS_TAPE;
        let forward = |block: &Block<M, F, D>, x, lora| match checkpoint {
            true => block.forward_checkpointed(x, lora),
            false => block.forward(x, lora),
        };
        let Some(lora) = &self.lora else {
            let mut x = self.embed(self.wte.clone().put_tape(tape), tokens, 0);
            for block in &self.blocks {
                x = forward(block, x, None);
            }
            return self.ln_f.forward(x);
        };
        let run = lora.run(T::OWNS_TAPE);
        let mut x = self.embed(self.wte.clone(), tokens, 0).put_tape(tape);
        for (block, adapters) in self.blocks.iter().zip(&lora.blocks) {
            x = forward(block, x, Some((adapters, run)));
        }
        self.ln_f.forward(x)
    }

    /// Next-token logits through the tied LM head (padding ids masked, if any).
    pub fn lm_head<T: Tape<f32, D>>(
        &self,
        h: Tensor<(usize, usize, Const<M>), f32, D, T>,
    ) -> Tensor<(usize, usize, Const<V>), f32, D, T> {
        // Frozen with adapters (a gradient to `h` only: wte is the largest matrix).
        let mask = self.vocab_mask.as_ref();
        match self.lora {
            None => D::linear(h, &self.wte, mask, None),
            Some(_) => D::linear_frozen_base(h, &self.wte, mask, None),
        }
    }

    /// Scalar head on every position: `(batch, seq)`.
    pub fn score_head<T: Tape<f32, D>>(
        &self,
        h: Tensor<(usize, usize, Const<M>), f32, D, T>,
    ) -> Tensor<(usize, usize), f32, D, T> {
        let head = self.score.as_ref().expect("model has no scalar head");
        let (b, s, _) = *h.shape();
        head.forward(h).reshape_like(&(b, s))
    }

    /// Attention weights of every layer, `(batch, head, query, key)` each, for the explorer.
    pub fn attention_weights(&self, tokens: Tensor<(usize, usize), usize, D>) -> Vec<Vec<f32>> {
        if self.lora.is_some() {
            return self.merged().attention_weights(tokens);
        }
        let mut x = self.embed(self.wte.clone(), tokens, 0);
        let mut maps = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            maps.push(block.attn.weights(block.ln_1.forward(x.clone())));
            x = block.forward(x, None);
        }
        maps
    }

    /// Prompts into the generation cache: `tokens` is `(rows, seq)`, row `i` holding
    /// `lens[i]` real tokens followed by padding (padding only ever comes after real tokens,
    /// so causal attention keeps it out of every real position). Writes each row's keys and
    /// values into its slot and returns the next-token logits at each row's last real token,
    /// `rows × V`: the call's one read from the device.
    pub fn prefill(
        &self,
        tokens: Tensor<(usize, usize), usize, D>,
        lens: &[usize],
        slots: &[usize],
        cache: &mut KvCache<D>,
    ) -> Vec<f32> {
        assert!(self.lora.is_none(), "{UNMERGED}");
        let (rows, seq) = *tokens.shape();
        let dev = self.wte.device().clone();
        let KvCache { weights, store } = cache;
        let device_writes = match store {
            Store::Device(c) => Some(c.prefill_writes(&dev, slots, lens, seq)),
            Store::Host(_) => None,
        };
        let flat = |t: Tensor<(usize, usize, usize), f32, D>| t.reshape_like(&(rows * seq, M));
        let mut x = self.embed(self.wte.clone(), tokens, 0);
        for (layer, block) in self.blocks.iter().enumerate() {
            let (y, (k, v)) = block.forward_prefill(x, weights);
            match (&mut *store, &device_writes) {
                (Store::Device(c), Some(writes)) => c.write(layer, flat(k), flat(v), writes),
                (Store::Host(c), _) => {
                    let (k, v) = (host(&k), host(&v));
                    for (i, (&slot, &len)) in slots.iter().zip(lens).enumerate() {
                        let row = i * seq * M..(i * seq + len) * M;
                        c.write(layer, slot, 0, &k[row.clone()], &v[row]);
                    }
                }
                (Store::Device(_), None) => unreachable!("device writes are made above"),
            }
            x = y;
        }
        match store {
            Store::Host(c) => {
                for (&slot, &len) in slots.iter().zip(lens) {
                    c.lens[slot] = len;
                }
            }
            Store::Device(c) => c.prefilled(&dev, slots, lens),
        }
        // Only the last real position of each row needs the (wide) LM head.
        let last: Vec<usize> = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| i * seq + len - 1)
            .collect();
        let last = upload::tensor(&dev, last, (rows,));
        let h = self.ln_f.forward(x).reshape_like(&(rows * seq, Const::<M>));
        let h = h.gather(last).reshape_like(&(rows, 1, Const::<M>));
        let mask = self.vocab_mask.as_ref();
        readback::to_host(&D::linear_frozen(h, &self.wte, mask, None, weights))
    }

    /// One new token per sequence of a generation batch: `tokens[i]` goes to `slots[i]` at
    /// that slot's next position. Returns the next-token logits, `slots.len() × V`: the
    /// step's one read from the device. On the device cache the new ids are the step's one
    /// upload (in steady state: see `DeviceCache::decode_step`).
    pub fn decode(&self, tokens: &[u32], slots: &[usize], cache: &mut KvCache<D>) -> Vec<f32> {
        assert!(self.lora.is_none(), "{UNMERGED}");
        let dev = self.wte.device().clone();
        let rows = tokens.len();
        assert!(
            slots.iter().all(|&s| cache.lens()[s] < C),
            "a sequence is past the model context {C}"
        );
        let ids = upload::tensor(&dev, tokens.iter().map(|&t| t as usize).collect(), (rows,));
        let tokens = self.wte.clone().gather(ids);
        let KvCache { weights, store } = cache;
        let mut x;
        match store {
            Store::Host(c) => {
                let positions = slots.iter().map(|&s| c.lens[s]).collect();
                let at = upload::tensor(&dev, positions, (rows,));
                x = (tokens + self.wpe.clone().gather(at)).reshape_like(&(rows, 1, Const::<M>));
                for (layer, block) in self.blocks.iter().enumerate() {
                    x = block.forward_decode(x, weights, |q, k, v| {
                        let heads = c.step(layer, slots, &host(&q), &host(&k), &host(&v));
                        to_tensor(&dev, heads, (rows, 1, Const::<M>))
                    });
                }
                slots.iter().for_each(|&s| c.lens[s] += 1);
            }
            Store::Device(c) => {
                let step = c.decode_step(&dev, slots);
                // The position embeddings by a one-hot product: the positions stay on the device.
                let table = self.wpe.clone().slice((..c.capacity(), ..));
                let at = step.position().clone().matmul(table);
                x = (tokens + at).reshape_like(&(rows, 1, Const::<M>));
                for (layer, block) in self.blocks.iter().enumerate() {
                    x = block.forward_decode(x, weights, |q, k, v| {
                        let flat = |t: Tensor<(usize, usize, Const<M>), f32, D>| {
                            t.reshape_like(&(rows, M))
                        };
                        c.write(layer, flat(k), flat(v), step.writes());
                        c.attend(layer, q, &step)
                    });
                }
                c.advance(slots);
            }
        }
        let h = self.ln_f.forward(x);
        let mask = self.vocab_mask.as_ref();
        readback::to_host(&D::linear_frozen(h, &self.wte, mask, None, weights))
    }

    /// Every parameter, in a fixed order, with Hugging Face GPT-2 names. With adapters, only
    /// what trains: the adapters (peft's names) and the scalar head.
    pub fn visit_params(&mut self, f: &mut ParamFn<'_, D>) -> Result<()> {
        if let Some(lora) = &mut self.lora {
            lora.visit(f)?;
            return self.visit_score(f);
        }
        f("transformer.wte.weight", &mut self.wte, true)?;
        f("transformer.wpe.weight", &mut self.wpe, true)?;
        for (i, b) in self.blocks.iter_mut().enumerate() {
            let p = format!("transformer.h.{i}");
            f(&format!("{p}.ln_1.weight"), &mut b.ln_1.weight, false)?;
            f(&format!("{p}.ln_1.bias"), &mut b.ln_1.bias, false)?;
            let attn = &mut b.attn;
            for (name, lin) in [
                ("q", &mut attn.q),
                ("k", &mut attn.k),
                ("v", &mut attn.v),
                ("c_proj", &mut attn.proj),
            ] {
                f(&format!("{p}.attn.{name}.weight"), &mut lin.weight, true)?;
                f(&format!("{p}.attn.{name}.bias"), &mut lin.bias, false)?;
            }
            f(&format!("{p}.ln_2.weight"), &mut b.ln_2.weight, false)?;
            f(&format!("{p}.ln_2.bias"), &mut b.ln_2.bias, false)?;
            f(&format!("{p}.mlp.c_fc.weight"), &mut b.mlp.fc.weight, true)?;
            f(&format!("{p}.mlp.c_fc.bias"), &mut b.mlp.fc.bias, false)?;
            f(
                &format!("{p}.mlp.c_proj.weight"),
                &mut b.mlp.proj.weight,
                true,
            )?;
            f(&format!("{p}.mlp.c_proj.bias"), &mut b.mlp.proj.bias, false)?;
        }
        f("transformer.ln_f.weight", &mut self.ln_f.weight, false)?;
        f("transformer.ln_f.bias", &mut self.ln_f.bias, false)?;
        self.visit_score(f)
    }

    fn visit_score(&mut self, f: &mut ParamFn<'_, D>) -> Result<()> {
        if let Some(head) = &mut self.score {
            f("score.weight", &mut head.weight, true)?;
            f("score.bias", &mut head.bias, false)?;
        }
        Ok(())
    }
}
