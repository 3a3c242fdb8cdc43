//! Checks of the model against its definition: causality, autograd vs finite differences,
//! every parameter learns, the KV cache matches the full forward.

use super::presets::model_config;
use super::raw::RawStorage;
use super::sample::{generate, SampleOptions};
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
fn kv_cache_logits_match_the_full_forward() {
    let dev = Cpu::default();
    let model = nano(&dev);
    let seq = [5usize, 9, 2, 44, 17, 3, 8, 8];
    let full = model.logits(tokens(&dev, &[&seq])).as_vec();
    let mut cache = Vec::new();
    let mut cached = model
        .logits_cached(tokens(&dev, &[&seq[..5]]), &mut cache)
        .as_vec();
    for &t in &seq[5..] {
        cached.extend(
            model
                .logits_cached(tokens(&dev, &[&[t]]), &mut cache)
                .as_vec(),
        );
    }
    assert_eq!(full.len(), cached.len());
    for (a, b) in full.iter().zip(&cached) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
}

#[test]
fn cached_and_uncached_greedy_generation_agree() {
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
