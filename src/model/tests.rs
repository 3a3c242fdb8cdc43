//! Checks of the model against its definition: causality, autograd vs finite differences,
//! every parameter learns, the KV cache matches the full forward, batched generation
//! matches one prompt at a time. Generation is checked on both of the CPU's paths: the fused
//! kernels with the host cache, and the portable path (composed ops, device cache) CUDA runs.

use super::generate::generate;
use super::generate::{generate_all, Generator, Request};
use super::kernels::portable::with_portable;
use super::kv_cache::KvCache;
use super::presets::model_config;
use super::raw::RawStorage;
use super::sample::SampleOptions;
use super::*;
use crate::train::loss::{mask_weights, masked_cross_entropy};
use dfdx::prelude::*;
use dfdx::tensor::Gradients;

fn nano(dev: &Cpu) -> Box<dyn LanguageModel<Cpu>> {
    build_model(&model_config("nano", 100).unwrap(), dev, 7).unwrap()
}

fn tokens(dev: &Cpu, rows: &[&[usize]]) -> Tokens<Cpu> {
    let s = rows[0].len();
    dev.tensor_from_vec(
        rows.iter().flat_map(|r| r.iter().copied()).collect(),
        (rows.len(), s),
    )
}

/// Runs `check` on the fused path, then on the portable one.
fn on_both_paths(check: impl Fn()) {
    for portable in [false, true] {
        with_portable(portable, &check);
    }
}

fn loss_of(model: &dyn LanguageModel<Cpu>, dev: &Cpu) -> f64 {
    let x = tokens(dev, &[&[3, 17, 42, 9, 11, 5], &[8, 8, 1, 2, 99, 4]]);
    let y = tokens(dev, &[&[17, 42, 9, 11, 5, 6], &[8, 1, 2, 99, 4, 7]]);
    let (w, _) = mask_weights(dev, &[true; 12], (2, 6));
    masked_cross_entropy(model.logits(x), y, w).array() as f64
}

#[test]
fn changing_a_later_token_leaves_earlier_logits_unchanged() {
    let dev = Cpu::default();
    let model = nano(&dev);
    let a = model.logits(tokens(&dev, &[&[1, 2, 3, 4, 5, 6]])).as_vec();
    let b = model.logits(tokens(&dev, &[&[1, 2, 3, 77, 5, 6]])).as_vec();
    let v = model.config().vocab_size;
    assert_eq!(
        &a[..3 * v],
        &b[..3 * v],
        "positions before the change must not move"
    );
    assert_ne!(
        &a[3 * v..4 * v],
        &b[3 * v..4 * v],
        "the changed position must move"
    );
}

#[test]
fn gradients_match_finite_differences_for_every_kind_of_parameter() {
    let dev = Cpu::default();
    let mut model = nano(&dev);
    let x = tokens(&dev, &[&[3, 17, 42, 9, 11, 5], &[8, 8, 1, 2, 99, 4]]);
    let y = tokens(&dev, &[&[17, 42, 9, 11, 5, 6], &[8, 1, 2, 99, 4, 7]]);
    let (w, _) = mask_weights(&dev, &[true; 12], (2, 6));
    let mut grads =
        masked_cross_entropy(model.logits_traced(x, Gradients::leaky()), y, w).backward();

    // (parameter, element) pairs covering embeddings, attention, MLP and LayerNorm.
    let probes = [
        ("transformer.wte.weight", 3 * 64 + 5),
        ("transformer.wpe.weight", 2 * 64 + 1),
        ("transformer.h.0.attn.q.weight", 100),
        ("transformer.h.0.attn.k.weight", 7),
        ("transformer.h.1.attn.v.bias", 3),
        ("transformer.h.0.attn.c_proj.weight", 300),
        ("transformer.h.1.mlp.c_fc.weight", 1000),
        ("transformer.h.0.mlp.c_proj.bias", 10),
        ("transformer.h.0.ln_1.weight", 4),
        ("transformer.h.1.ln_2.bias", 9),
        ("transformer.ln_f.weight", 2),
    ];
    let mut analytic = std::collections::HashMap::new();
    model
        .visit_params(&mut |name, p, _| {
            if let Some(&(_, i)) = probes.iter().find(|(n, _)| *n == name) {
                analytic.insert(
                    name.to_string(),
                    dev.raw_to_host(p.grad_mut(&mut grads)?)[i] as f64,
                );
            }
            Ok(())
        })
        .unwrap();
    let eps = 1e-2f32;
    for (name, i) in probes {
        let nudge = |model: &mut Box<dyn LanguageModel<Cpu>>, delta: f32| {
            model
                .visit_params(&mut |n, p, _| {
                    if n == name {
                        let mut v = p.to_host();
                        v[i] += delta;
                        p.copy_from_host(&v);
                    }
                    Ok(())
                })
                .unwrap()
        };
        nudge(&mut model, eps);
        let up = loss_of(model.as_ref(), &dev);
        nudge(&mut model, -2.0 * eps);
        let down = loss_of(model.as_ref(), &dev);
        nudge(&mut model, eps);
        let numeric = (up - down) / (2.0 * eps as f64);
        let a = analytic[name];
        let tol = 2e-3 + 0.05 * a.abs().max(numeric.abs());
        assert!(
            (a - numeric).abs() < tol,
            "{name}[{i}]: autograd {a:.6} vs finite difference {numeric:.6}"
        );
    }
}

#[test]
fn every_parameter_receives_a_gradient() {
    let dev = Cpu::default();
    let mut model = nano(&dev);
    model.add_score_head(1);
    let x = tokens(&dev, &[&[3, 17, 42, 9, 11, 5]]);
    let y = tokens(&dev, &[&[17, 42, 9, 11, 5, 6]]);
    let (w, _) = mask_weights(&dev, &[true; 6], (1, 6));
    let lm = masked_cross_entropy(model.logits_traced(x.clone(), Gradients::leaky()), y, w);
    let score = model.scores_traced(x, Gradients::leaky()).sum();
    let mut grads = (lm + score).backward();
    model
        .visit_params(&mut |name, p, _| {
            let g = dev.raw_to_host(p.grad_mut(&mut grads)?);
            assert!(g.iter().any(|&x| x != 0.0), "{name} got no gradient");
            Ok(())
        })
        .unwrap();
}

#[test]
fn prefill_then_decode_logits_match_the_full_forward() {
    on_both_paths(|| {
        let dev = Cpu::default();
        let model = nano(&dev);
        let vocab = model.config().vocab_size;
        let seq = [5usize, 9, 2, 44, 17, 3, 8, 8];
        let full = model.logits(tokens(&dev, &[&seq])).as_vec();
        let at = |pos: usize| &full[pos * vocab..(pos + 1) * vocab];
        // Slot 1 of a two-slot cache; the prompt row is padded to show padding is ignored.
        let mut cache = KvCache::new(model.config(), &dev, 2, 8);
        let padded = tokens(&dev, &[&[5, 9, 2, 44, 17, 0, 0]]);
        let mut got = vec![model.prefill(padded, &[5], &[1], &mut cache)];
        for &t in &seq[5..7] {
            got.push(model.decode(&[t as u32], &[1], &mut cache));
        }
        for (i, logits) in got.iter().enumerate() {
            for (a, b) in logits.iter().zip(at(4 + i)) {
                assert!((a - b).abs() < 1e-4, "position {}: {a} vs {b}", 4 + i);
            }
        }
        assert_eq!(cache.lens(), &[0, 7]);
        assert_eq!(cache.is_on_device(), kernels::portable::portable());
    });
}

/// 32 prompts of lengths 1..=32 (ids from a fixed pattern).
fn prompts() -> Vec<Vec<u32>> {
    (1..=32u32)
        .map(|len| (0..len).map(|i| (i * 7 + len * 3) % 97 + 1).collect())
        .collect()
}

fn requests(opts: &SampleOptions) -> Vec<Request> {
    prompts()
        .into_iter()
        .enumerate()
        .map(|(i, prompt)| Request {
            prompt,
            opts: opts.clone(),
            seed: 1000 + i as u64,
        })
        .collect()
}

#[test]
fn batched_greedy_generation_equals_one_prompt_at_a_time() {
    on_both_paths(|| {
        let dev = Cpu::default();
        let model = nano(&dev);
        let opts = SampleOptions {
            max_new_tokens: 24,
            temperature: 0.0,
            stop: vec![13],
            ..Default::default()
        };
        let batched = generate_all(model.as_ref(), 100, requests(&opts), 32);
        // Batches of 5 that refill as rows stop: rows join mid-generation.
        let refilled = generate_all(model.as_ref(), 100, requests(&opts), 5);
        let alone: Vec<Vec<u32>> = requests(&opts)
            .into_iter()
            .map(|r| generate_all(model.as_ref(), 100, vec![r], 1).remove(0))
            .collect();
        assert_eq!(batched, alone);
        assert_eq!(refilled, alone);
        assert!(alone.iter().any(|a| a.len() < 24), "some row stops early");
        assert!(alone.iter().any(|a| a.len() == 24));
    });
}

#[test]
fn batched_sampling_equals_one_prompt_at_a_time_given_each_rows_seed() {
    on_both_paths(|| {
        let dev = Cpu::default();
        let model = nano(&dev);
        let opts = SampleOptions {
            max_new_tokens: 16,
            temperature: 1.0,
            top_k: 20,
            top_p: 0.9,
            ..Default::default()
        };
        let batched = generate_all(model.as_ref(), 100, requests(&opts), 32);
        let alone: Vec<Vec<u32>> = requests(&opts)
            .into_iter()
            .map(|r| generate_all(model.as_ref(), 100, vec![r], 1).remove(0))
            .collect();
        assert_eq!(batched, alone);
        let mut reseeded = requests(&opts);
        reseeded[0].seed += 1;
        let other = generate_all(model.as_ref(), 100, reseeded, 32);
        assert_ne!(other[0], batched[0], "another seed, another sample");
        assert_eq!(other[1..], batched[1..], "the other rows keep theirs");
    });
}

#[test]
fn generation_past_the_context_moves_its_window() {
    on_both_paths(|| {
        // nano's context is 128: 120 prompt tokens + 40 new ones slide past it, as the uncached
        // sampler (a window over the last 128 tokens) does.
        let dev = Cpu::default();
        let model = nano(&dev);
        let prompt: Vec<u32> = (0..120u32).map(|i| i % 90 + 1).collect();
        let mut opts = SampleOptions {
            max_new_tokens: 40,
            temperature: 0.0,
            ..Default::default()
        };
        let request = |opts: &SampleOptions| Request {
            prompt: prompt.clone(),
            opts: opts.clone(),
            seed: 0,
        };
        let cached = generate_all(model.as_ref(), 100, vec![request(&opts)], 1);
        opts.use_cache = false;
        let plain = generate_all(model.as_ref(), 100, vec![request(&opts)], 1);
        assert_eq!(cached, plain);
        assert_eq!(cached[0].len(), 40);
    });
}

#[test]
fn cached_and_uncached_greedy_generation_agree() {
    on_both_paths(|| {
        let dev = Cpu::default();
        let model = nano(&dev);
        let mut rng = rand::thread_rng();
        let mut opts = SampleOptions {
            max_new_tokens: 40,
            temperature: 0.0,
            ..Default::default()
        };
        let cached = generate(model.as_ref(), &[1, 2, 3], 2, 100, &opts, &mut rng);
        opts.use_cache = false;
        let plain = generate(model.as_ref(), &[1, 2, 3], 2, 100, &opts, &mut rng);
        assert_eq!(cached, plain);
        assert_eq!(cached[0].len(), 40);
    });
}

#[test]
fn attention_weights_are_causal_distributions_for_every_layer() {
    let dev = Cpu::default();
    let model = nano(&dev);
    let cfg = model.config().clone();
    let t = 5;
    let maps = model.attention_weights(tokens(&dev, &[&[3, 17, 42, 9, 11]]));
    assert_eq!(maps.len(), cfg.n_layer);
    for map in &maps {
        assert_eq!(map.len(), cfg.n_head * t * t);
        for row in map.chunks(t).enumerate() {
            let (i, row) = (row.0 % t, row.1);
            let total: f32 = row.iter().sum();
            assert!((total - 1.0).abs() < 1e-4, "row {i} sums to {total}");
            assert!(
                row[i + 1..].iter().all(|&w| w == 0.0),
                "row {i} sees the future"
            );
        }
    }
    // The first query can only attend to itself.
    assert!((maps[0][0] - 1.0).abs() < 1e-6);
}

#[test]
fn portable_greedy_generation_equals_fused() {
    let dev = Cpu::default();
    let model = nano(&dev);
    let opts = SampleOptions {
        max_new_tokens: 24,
        temperature: 0.0,
        ..Default::default()
    };
    let run = |portable| {
        with_portable(portable, || {
            generate_all(model.as_ref(), 100, requests(&opts), 32)
        })
    };
    assert_eq!(run(true), run(false));
}

/// In steady state (the same 32 sequences decoding step after step) a decode step on the
/// device cache uploads one tensor, its new ids, and reads one, its logits: the lengths stay
/// on the device and the maps of the decoding slots are uploaded only when they change. The
/// host cache (the CPU's fast path, no device there) uploads the positions too.
#[test]
fn a_steady_decode_step_uploads_only_its_ids_at_batch_32() {
    use crate::util::{readback, upload};
    let dev = Cpu::default();
    let model = nano(&dev);
    let opts = SampleOptions {
        max_new_tokens: 30,
        temperature: 0.8,
        ..Default::default()
    };
    for (portable, uploads_per_step) in [(true, 1), (false, 2)] {
        with_portable(portable, || {
            let mut gen = Generator::new(model.as_ref(), 100, 32, 64);
            for request in requests(&opts) {
                gen.add(request).expect("a free slot");
            }
            gen.step(); // the prefill
            let before = upload::count();
            gen.step(); // the first decode step of these slots: their maps too
            let first = upload::count() - before;
            let (uploads, reads) = (upload::count(), readback::count());
            for _ in 0..20 {
                assert!(gen.step().iter().all(|s| !s.finished));
            }
            let first_expected = if portable { 5 } else { 2 };
            assert_eq!(
                first, first_expected,
                "the first step (portable: {portable})"
            );
            assert_eq!(upload::count() - uploads, 20 * uploads_per_step);
            assert_eq!(readback::count() - reads, 20);
        });
    }
}

#[test]
fn a_decode_step_reads_from_the_device_once_at_batch_32() {
    let dev = Cpu::default();
    let model = nano(&dev);
    // No stop ids: all 32 rows prefill in the first step and decode together in the others.
    let opts = SampleOptions {
        max_new_tokens: 20,
        temperature: 0.8,
        ..Default::default()
    };
    on_both_paths(|| {
        let before = crate::util::readback::count();
        let out = generate_all(model.as_ref(), 100, requests(&opts), 32);
        let reads = crate::util::readback::count() - before;
        assert!(out.iter().all(|o| o.len() == 20));
        assert_eq!(reads, 20, "one read per step (the first is the prefill)");
    });
}
