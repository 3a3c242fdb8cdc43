//! LoRA in the whole GPT: a fresh adapter changes nothing, merging changes nothing,
//! autograd through the model matches finite differences, training only the adapters leaves
//! the base bit-identical with no gradient for it, and the base-only view is no copy.

use crate::model::generate::generate_all;
use crate::model::generate::Request;
use crate::model::gpt::Gpt;
use crate::model::kernels::portable::with_portable;
use crate::model::presets::model_config;
use crate::model::raw::RawStorage;
use crate::model::sample::SampleOptions;
use crate::model::{LanguageModel, LoraSpec, Tokens};
use crate::train::loss::{mask_weights, masked_cross_entropy};
use crate::train::optim::{AdamW, AdamWConfig};
use dfdx::prelude::*;
use dfdx::tensor::Gradients;
use rand::{Rng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The nano preset at its smallest vocabulary bucket.
type Nano = Gpt<128, 128, 64, 256, Cpu>;
const RANK: usize = 4;
const M: usize = 64;

fn nano(dev: &Cpu) -> Nano {
    Gpt::new(model_config("nano", 100).unwrap(), dev, 7)
}

fn spec(dropout: f32) -> LoraSpec {
    LoraSpec {
        rank: RANK,
        alpha: 8.0,
        dropout,
        targets: vec!["attn".into(), "mlp".into()],
    }
}

/// Every B drawn at random, so that every adapter moves the output and A gets gradients.
fn randomise_b(model: &mut Nano) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
    model
        .visit_params(&mut |name, p, _| {
            if name.ends_with("lora_B.weight") {
                let v: Vec<f32> = (0..p.numel()).map(|_| rng.gen_range(-0.5..0.5)).collect();
                p.copy_from_host(&v);
            }
            Ok(())
        })
        .unwrap();
}

fn adapted(dev: &Cpu, dropout: f32) -> Nano {
    let mut model = nano(dev);
    model.add_adapters(&spec(dropout), 3).unwrap();
    randomise_b(&mut model);
    model
}

fn batch(dev: &Cpu) -> (Tokens<Cpu>, Tokens<Cpu>, Tensor<(usize, usize), f32, Cpu>) {
    let x = [3, 17, 42, 9, 11, 5, 8, 8, 1, 2, 99, 4];
    let y = [17, 42, 9, 11, 5, 6, 8, 1, 2, 99, 4, 7];
    let (w, _) = mask_weights(dev, &[true; 12], (2, 6));
    let tokens = |t: &[usize]| dev.tensor_from_vec(t.to_vec(), (2, 6));
    (tokens(&x), tokens(&y), w)
}

fn loss_of(model: &dyn LanguageModel<Cpu>, dev: &Cpu) -> f64 {
    let (x, y, w) = batch(dev);
    masked_cross_entropy(model.logits(x), y, w).array() as f64
}

fn grads_of(model: &dyn LanguageModel<Cpu>, dev: &Cpu) -> Gradients<f32, Cpu> {
    let (x, y, w) = batch(dev);
    masked_cross_entropy(model.logits_traced(x, Gradients::leaky()), y, w).backward()
}

fn logits(model: &dyn LanguageModel<Cpu>, dev: &Cpu) -> Vec<f32> {
    model.logits(batch(dev).0).as_vec()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn on_both_paths(check: impl Fn()) {
    for portable in [false, true] {
        with_portable(portable, &check);
    }
}

#[test]
fn fresh_adapters_leave_the_logits_bit_identical() {
    on_both_paths(|| {
        let dev = Cpu::default();
        let mut model = nano(&dev);
        let before = logits(&model, &dev);
        model.add_adapters(&spec(0.0), 3).unwrap();
        assert_eq!(before, logits(&model, &dev));
        assert!(model.add_adapters(&spec(0.0), 4).is_err(), "adapters twice");
    });
}

#[test]
fn merged_equals_unmerged_and_the_adapters_move_the_output() {
    on_both_paths(|| {
        let dev = Cpu::default();
        let model = adapted(&dev, 0.0);
        let unmerged = logits(&model, &dev);
        let merged = LanguageModel::merged(&model);
        assert!(merged.lora().is_none());
        let worst = max_diff(&unmerged, &logits(merged.as_ref(), &dev));
        assert!(worst < 1e-5, "merged differs by {worst}");
        let moved = max_diff(&unmerged, &logits(&model.base_only(), &dev));
        assert!(
            moved > 1e-2,
            "the adapters must change the logits ({moved})"
        );
    });
}

#[test]
fn only_the_adapters_and_the_score_head_are_listed_with_peft_names() {
    let dev = Cpu::default();
    let mut model = adapted(&dev, 0.0);
    model.add_score_head(5);
    let mut seen = Vec::new();
    (model.visit_params(&mut |name, p, _| {
        seen.push((name.to_string(), p.shape()));
        Ok(())
    }))
    .unwrap();
    let p = "transformer.h.1";
    let expect = [
        (format!("{p}.attn.c_attn.lora_A.weight"), vec![RANK, M]),
        (format!("{p}.attn.c_attn.lora_B.weight"), vec![3 * M, RANK]),
        (format!("{p}.attn.c_proj.lora_A.weight"), vec![RANK, M]),
        (format!("{p}.attn.c_proj.lora_B.weight"), vec![M, RANK]),
        (format!("{p}.mlp.c_fc.lora_A.weight"), vec![RANK, M]),
        (format!("{p}.mlp.c_fc.lora_B.weight"), vec![4 * M, RANK]),
        (format!("{p}.mlp.c_proj.lora_A.weight"), vec![RANK, 4 * M]),
        (format!("{p}.mlp.c_proj.lora_B.weight"), vec![M, RANK]),
        ("score.weight".to_string(), vec![1, M]),
        ("score.bias".to_string(), vec![1]),
    ];
    assert_eq!(seen.len(), 2 * 8 + 2, "{seen:?}");
    assert_eq!(&seen[8..], &expect, "block 1, then the head");
}

/// Every kind of adapter tensor, and each of c_attn's B row blocks (q, k, v), as flat ranges.
const PROBES: [(&str, usize, usize); 10] = [
    ("transformer.h.0.attn.c_attn.lora_A.weight", 0, RANK * M),
    ("transformer.h.1.attn.c_attn.lora_B.weight", 0, M * RANK),
    (
        "transformer.h.1.attn.c_attn.lora_B.weight",
        M * RANK,
        2 * M * RANK,
    ),
    (
        "transformer.h.0.attn.c_attn.lora_B.weight",
        2 * M * RANK,
        3 * M * RANK,
    ),
    ("transformer.h.0.attn.c_proj.lora_A.weight", 0, RANK * M),
    ("transformer.h.1.attn.c_proj.lora_B.weight", 0, M * RANK),
    ("transformer.h.0.mlp.c_fc.lora_A.weight", 0, RANK * M),
    ("transformer.h.0.mlp.c_fc.lora_B.weight", 0, 4 * M * RANK),
    ("transformer.h.1.mlp.c_proj.lora_A.weight", 0, RANK * 4 * M),
    ("transformer.h.0.mlp.c_proj.lora_B.weight", 0, M * RANK),
];

/// In each probe's range, the entry with the largest gradient: one whose finite difference
/// stands clear of f32 rounding (a tiny one would pass any check).
fn largest_gradients(model: &mut Nano, grads: &mut Gradients<f32, Cpu>) -> Vec<(usize, f64)> {
    let dev = Cpu::default();
    let mut picked = Vec::new();
    for (name, from, to) in PROBES {
        (model.visit_params(&mut |n, p, _| {
            if n == name {
                let g = dev.raw_to_host(p.grad_mut(grads)?);
                let i = (from..to)
                    .max_by(|&a, &b| g[a].abs().total_cmp(&g[b].abs()))
                    .unwrap();
                picked.push((i, g[i] as f64));
            }
            Ok(())
        }))
        .unwrap();
    }
    picked
}

#[test]
fn adapter_gradients_through_the_whole_gpt_match_finite_differences() {
    on_both_paths(|| {
        let dev = Cpu::default();
        let mut model = adapted(&dev, 0.0);
        let mut grads = grads_of(&model, &dev);
        let picked = largest_gradients(&mut model, &mut grads);
        let eps = 1e-2f32;
        for ((name, ..), (i, a)) in PROBES.into_iter().zip(picked) {
            let nudge = |model: &mut Nano, delta: f32| {
                (model.visit_params(&mut |n, p, _| {
                    if n == name {
                        let mut v = p.to_host();
                        v[i] += delta;
                        p.copy_from_host(&v);
                    }
                    Ok(())
                }))
                .unwrap()
            };
            nudge(&mut model, eps);
            let up = loss_of(&model, &dev);
            nudge(&mut model, -2.0 * eps);
            let down = loss_of(&model, &dev);
            nudge(&mut model, eps);
            let numeric = (up - down) / (2.0 * eps as f64);
            let tol = 1e-4 + 0.03 * a.abs().max(numeric.abs());
            assert!(
                (a - numeric).abs() < tol && a.abs() > 1e-3,
                "{name}[{i}]: autograd {a}, finite difference {numeric}"
            );
        }
    });
}

/// Whether the gradient table has an entry for `t` (dfdx's `get` panics without one).
fn has_grad<S: Shape>(grads: &Gradients<f32, Cpu>, t: &Tensor<S, f32, Cpu>) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| grads.get(t))).is_ok()
}

/// Which of the base's tensors have a gradient, LayerNorms aside: those get their tiny
/// gradients from the shared kernel (never listed, so never updated).
fn base_with_grads(model: &Nano, grads: &Gradients<f32, Cpu>) -> Vec<String> {
    let mut found = Vec::new();
    let mut check = |name: String, has: bool| {
        if has {
            found.push(name)
        }
    };
    check("wte".into(), has_grad(grads, &model.wte));
    check("wpe".into(), has_grad(grads, &model.wpe));
    for (i, b) in model.blocks.iter().enumerate() {
        let (attn, mlp) = (&b.attn, &b.mlp);
        for (name, w, bias) in [
            ("q", &attn.q.weight, &attn.q.bias),
            ("k", &attn.k.weight, &attn.k.bias),
            ("v", &attn.v.weight, &attn.v.bias),
            ("attn.c_proj", &attn.proj.weight, &attn.proj.bias),
        ] {
            check(format!("{i}.{name}.weight"), has_grad(grads, w));
            check(format!("{i}.{name}.bias"), has_grad(grads, bias));
        }
        check(format!("{i}.c_fc.weight"), has_grad(grads, &mlp.fc.weight));
        check(format!("{i}.c_fc.bias"), has_grad(grads, &mlp.fc.bias));
        check(
            format!("{i}.mlp.c_proj.weight"),
            has_grad(grads, &mlp.proj.weight),
        );
        check(
            format!("{i}.mlp.c_proj.bias"),
            has_grad(grads, &mlp.proj.bias),
        );
    }
    found
}

#[test]
fn the_gradient_table_holds_nothing_for_the_base_and_the_score_head_trains() {
    on_both_paths(|| {
        let dev = Cpu::default();
        let mut model = adapted(&dev, 0.0);
        let grads = grads_of(&model, &dev);
        assert_eq!(base_with_grads(&model, &grads), Vec::<String>::new());
        let lora = model.lora.as_ref().unwrap();
        let c_attn = lora.blocks[0].attn.c_attn.as_ref().unwrap();
        assert!(has_grad(&grads, &c_attn.a) && has_grad(&grads, &c_attn.b));
        // The check can fail: the same model without adapters gives the base gradients.
        let full = grads_of(&model.base_only(), &dev);
        assert_eq!(base_with_grads(&model, &full).len(), 2 + 2 * 12);

        model.add_score_head(5);
        let scores = model.scores_traced(batch(&dev).0, Gradients::leaky());
        let grads = scores.sum().backward();
        assert_eq!(base_with_grads(&model, &grads), Vec::<String>::new());
        let head = model.score.as_ref().unwrap();
        assert!(has_grad(&grads, &head.weight) && has_grad(&grads, &head.bias));
    });
}

/// The bits of every base tensor (the scalar head, which trains, aside).
fn base_values(model: &Nano) -> Vec<(String, Vec<u32>)> {
    let mut values = Vec::new();
    (model.base_only().visit_params(&mut |name, p, _| {
        if !name.starts_with("score.") {
            let bits = p.to_host().iter().map(|v| v.to_bits()).collect();
            values.push((name.to_string(), bits));
        }
        Ok(())
    }))
    .unwrap();
    values
}

#[test]
fn training_only_the_adapters_leaves_every_base_weight_bit_identical() {
    let dev = Cpu::default();
    let mut model = nano(&dev);
    model.add_score_head(5);
    model.add_adapters(&spec(0.1), 3).unwrap();
    let before = base_values(&model);
    let start = loss_of(&model, &dev);
    let mut optim = AdamW::new(AdamWConfig {
        betas: [0.9, 0.95],
        eps: 1e-8,
        weight_decay: 0.1,
        grad_clip: 1.0,
    });
    for _ in 0..5 {
        let mut grads = grads_of(&model, &dev);
        optim.step(&mut model, &mut grads, 1e-2).unwrap();
    }
    let after = base_values(&model);
    assert_eq!(before.len(), after.len());
    let moved: Vec<&String> = (before.iter().zip(&after))
        .filter(|(b, a)| b != a)
        .map(|(b, _)| &b.0)
        .collect();
    assert!(moved.is_empty(), "frozen weights moved: {moved:?}");
    assert_eq!(
        before.len(),
        2 + 2 * 16 + 2,
        "every base tensor is compared"
    );
    let end = loss_of(&model, &dev);
    assert!(
        end < start - 1e-3,
        "the adapters must learn: {start} -> {end}"
    );
}

#[test]
fn dropout_acts_on_the_traced_forward_only() {
    let dev = Cpu::default();
    let with = adapted(&dev, 0.5);
    let mut without = with.clone();
    without.lora.as_mut().unwrap().spec.dropout = 0.0;
    assert_eq!(logits(&with, &dev), logits(&without, &dev));
    let traced = with.logits_traced(batch(&dev).0, Gradients::leaky());
    assert_ne!(
        traced.retaped::<NoneTape>().as_vec(),
        logits(&without, &dev)
    );
}

#[test]
fn generation_runs_on_the_merged_model() {
    let dev = Cpu::default();
    let model = adapted(&dev, 0.0);
    let merged = LanguageModel::merged(&model);
    let opts = SampleOptions {
        max_new_tokens: 12,
        temperature: 0.0,
        ..Default::default()
    };
    let requests = || {
        (0..4)
            .map(|i| Request {
                prompt: vec![3 + i, 17, 42],
                opts: opts.clone(),
                seed: i as u64,
            })
            .collect::<Vec<_>>()
    };
    let adapted_out = generate_all(&model, 100, requests(), 4);
    assert_eq!(
        adapted_out,
        generate_all(merged.as_ref(), 100, requests(), 4)
    );
    assert_ne!(
        adapted_out,
        generate_all(&model.base_only(), 100, requests(), 4)
    );
}

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

/// Counts the bytes each thread allocates: the test binary's allocator (a thread-local add
/// before the system allocator), so a test can measure what one call allocates.
struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get() + layout.size()));
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get() + layout.size()));
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get() + new_size));
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocated_by<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCATED.with(Cell::get);
    let r = f();
    (r, ALLOCATED.with(Cell::get) - before)
}

#[test]
fn the_base_only_view_shares_the_weights() {
    let dev = Cpu::default();
    let model = adapted(&dev, 0.0);
    let mut weights = 0;
    (model.base_only().visit_params(&mut |_, p, _| {
        weights += 4 * p.numel();
        Ok(())
    }))
    .unwrap();
    let (base, bytes) = allocated_by(|| model.base_only());
    assert!(bytes < 4096, "the base-only view allocated {bytes} bytes");
    // The measurement can fail: merging writes new targeted matrices.
    let (_, merging) = allocated_by(|| model.merged());
    assert!(
        merging > weights / 2,
        "merging allocated only {merging} bytes of {weights}"
    );
    assert_eq!(logits(&base, &dev), logits(&nano(&dev), &dev));
}
