//! The LoRA layer against its definition: a fresh adapter is the base, merging changes
//! nothing, autograd matches finite differences, and the base gets no gradient.

use super::*;
use crate::model::kernels::portable::with_portable;
use dfdx::tensor::Gradients;
use rand::SeedableRng;

const I: usize = 6;
const O: usize = 5;

fn rng() -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(11)
}

fn random<S: Shape>(dev: &Cpu, shape: S, rng: &mut impl Rng) -> Tensor<S, f32, Cpu> {
    let n = shape.num_elements();
    dev.tensor_from_vec((0..n).map(|_| rng.gen_range(-1.0..1.0)).collect(), shape)
}

/// One adapted layer: a frozen base, A and B (their clones in `adapter` keep their ids, so
/// gradients are found by `a` and `b`).
#[derive(Clone)]
struct LoraLinear {
    base: Linear<I, O, Cpu>,
    a: Tensor<(usize, Const<I>), f32, Cpu>,
    b: Tensor<(usize, usize), f32, Cpu>,
    cfg: LoraSpec,
    /// Whether the layer multiplies gelu(x), as the MLP's second projection does.
    gelu: bool,
}

impl LoraLinear {
    fn adapter(&self) -> Adapter<I, Cpu> {
        Adapter {
            a: self.a.clone(),
            b: self.b.clone(),
        }
    }
    fn forward<T: Tape<f32, Cpu>>(&self, x: Act<I, Cpu, T>, training: bool) -> Act<O, Cpu, T> {
        let run = LoraRun::new(&self.cfg, training);
        if self.gelu {
            return Cpu::gelu_linear_lora(x, &self.base, &self.adapter(), run, None);
        }
        frozen_linear(&self.base, Some(&self.adapter()), run, x, None)
    }
    fn merged(&self) -> Linear<I, O, Cpu> {
        merge(&self.base, &self.adapter(), 0..O, self.cfg.scale())
    }
}

/// A layer with random base and A, and B random unless `fresh`.
fn layer(dev: &Cpu, fresh: bool) -> LoraLinear {
    let mut rng = rng();
    let base = Linear {
        weight: random(dev, Rank2::<O, I>::default(), &mut rng),
        bias: random(dev, Rank1::<O>::default(), &mut rng),
    };
    let cfg = LoraSpec {
        rank: 3,
        alpha: 6.0,
        dropout: 0.0,
        targets: vec!["mlp".into()],
    };
    let Adapter { a, mut b } = Adapter::new(dev, O, 3, &mut rng);
    if !fresh {
        b = random(dev, (O, 3), &mut rng);
    }
    LoraLinear {
        base,
        a,
        b,
        cfg,
        gelu: false,
    }
}

fn input(dev: &Cpu) -> Act<I, Cpu, NoneTape> {
    random(
        dev,
        (2, 4, Const::<I>),
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(5),
    )
}

/// Σ y·r for a fixed random `r`: a loss whose gradient reaches every output.
fn loss(lora: &LoraLinear, x: Act<I, Cpu, NoneTape>) -> f64 {
    let r = random(
        x.device(),
        (2, 4, Const::<O>),
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(9),
    );
    let y = lora.forward(x, false).as_vec();
    y.iter()
        .zip(r.as_vec())
        .map(|(y, r)| *y as f64 * r as f64)
        .sum()
}

#[test]
fn a_fresh_adapter_is_exactly_the_base_layer() {
    let dev = Cpu::default();
    let lora = layer(&dev, true);
    assert!(
        lora.a.as_vec().iter().any(|&a| a != 0.0),
        "A must be random"
    );
    let with = lora.forward(input(&dev), false).as_vec();
    let without = lora.base.forward(input(&dev)).as_vec();
    assert_eq!(with, without);
}

#[test]
fn the_merged_layer_equals_base_plus_adapter() {
    let dev = Cpu::default();
    let lora = layer(&dev, false);
    let unmerged = lora.forward(input(&dev), false).as_vec();
    let merged = lora.merged().forward(input(&dev)).as_vec();
    let plain = lora.base.forward(input(&dev)).as_vec();
    let worst = unmerged
        .iter()
        .zip(&merged)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-5, "merged differs by {worst}");
    let moved = unmerged
        .iter()
        .zip(&plain)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(
        moved > 1e-2,
        "a non-zero B must change the output ({moved})"
    );
}

/// Central differences of `loss` against one parameter's autograd gradient. The loss is
/// linear in each of A, B and x alone, so the difference is exact up to f32 rounding.
fn check_gradient(name: &str, autograd: &[f32], mut perturbed: impl FnMut(usize, f32) -> f64) {
    let eps = 1e-2;
    for (k, &g) in autograd.iter().enumerate() {
        let fd = (perturbed(k, eps) - perturbed(k, -eps)) / (2.0 * eps as f64);
        let err = (fd - g as f64).abs();
        assert!(
            err < 1e-3 * (1.0 + fd.abs()),
            "{name}[{k}]: autograd {g}, finite difference {fd}"
        );
    }
}

fn with_entry<S: Shape>(t: &Tensor<S, f32, Cpu>, k: usize, delta: f32) -> Tensor<S, f32, Cpu> {
    let mut v = t.as_vec();
    v[k] += delta;
    t.device().tensor_from_vec(v, *t.shape())
}

#[test]
fn gradients_of_a_b_and_the_input_match_finite_differences_and_the_base_gets_none() {
    for portable in [false, true] {
        for gelu in [false, true] {
            with_portable(portable, || gradients_match_and_the_base_gets_none(gelu));
        }
    }
}

fn gradients_match_and_the_base_gets_none(gelu: bool) {
    let dev = Cpu::default();
    let lora = LoraLinear {
        gelu,
        ..layer(&dev, false)
    };
    let x = input(&dev);
    let r = random(
        &dev,
        (2, 4, Const::<O>),
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(9),
    );
    let y = lora.forward(x.clone().traced(Gradients::leaky()), false);
    let grads = (y * r).sum().backward();
    check_gradient("A", &grads.get(&lora.a).as_vec(), |k, d| {
        let moved = LoraLinear {
            a: with_entry(&lora.a, k, d),
            ..lora.clone()
        };
        loss(&moved, input(&dev))
    });
    check_gradient("B", &grads.get(&lora.b).as_vec(), |k, d| {
        let moved = LoraLinear {
            b: with_entry(&lora.b, k, d),
            ..lora.clone()
        };
        loss(&moved, input(&dev))
    });
    // The input's gradient goes through the frozen base and the adapter both.
    check_gradient("x", &grads.get(&x).as_vec(), |k, d| {
        loss(&lora, with_entry(&x, k, d))
    });
    for (name, missing) in [
        (
            "weight",
            std::panic::catch_unwind(|| grads.get(&lora.base.weight)).is_err(),
        ),
        (
            "bias",
            std::panic::catch_unwind(|| grads.get(&lora.base.bias)).is_err(),
        ),
    ] {
        assert!(missing, "the frozen base {name} must get no gradient");
    }
}

#[test]
fn dropout_acts_in_training_only() {
    let dev = Cpu::default();
    let mut lora = layer(&dev, false);
    lora.cfg.dropout = 0.5;
    let eval = lora.forward(input(&dev), false).as_vec();
    let mut plain = lora.clone();
    plain.cfg.dropout = 0.0;
    assert_eq!(eval, plain.forward(input(&dev), false).as_vec());
    assert_ne!(eval, lora.forward(input(&dev), true).as_vec());
}

#[test]
fn only_the_adapters_are_listed_with_peft_names() {
    let dev = Cpu::default();
    let lora = layer(&dev, false);
    let mut seen = Vec::new();
    let mut adapter = lora.adapter();
    adapter
        .visit("transformer.h.0.mlp.c_fc", &mut |name, p, _| {
            seen.push((name.to_string(), p.shape()));
            Ok(())
        })
        .unwrap();
    assert_eq!(
        seen,
        [
            (
                "transformer.h.0.mlp.c_fc.lora_A.weight".to_string(),
                vec![3, I]
            ),
            (
                "transformer.h.0.mlp.c_fc.lora_B.weight".to_string(),
                vec![O, 3]
            ),
        ]
    );
}

#[test]
fn targets_resolve_as_peft_names_them_and_bad_ones_are_refused() {
    let names =
        |t: &[&str]| Targets::from_names(&t.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let all = names(&["attn", "mlp"]).unwrap();
    assert_eq!(
        all.modules(),
        ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]
    );
    assert_eq!(names(&["c_attn"]).unwrap().modules(), ["attn.c_attn"]);
    assert_eq!(
        names(&["c_proj"]).unwrap().modules(),
        ["attn.c_proj", "mlp.c_proj"]
    );
    assert_eq!(
        names(&["mlp.c_proj", "c_fc"]).unwrap().modules(),
        ["mlp.c_fc", "mlp.c_proj"]
    );
    let err = names(&["q_proj"]).unwrap_err().to_string();
    assert!(err.contains("q_proj") && err.contains("c_attn"), "{err}");
    assert!(names(&[]).is_err());
    let spec = |rank, alpha, dropout| LoraSpec {
        rank,
        alpha,
        dropout,
        targets: vec!["attn".into()],
    };
    assert!(spec(8, 16.0, 0.0).targets().is_ok());
    assert!(spec(0, 16.0, 0.0).targets().is_err());
    assert!(spec(8, 0.0, 0.0).targets().is_err());
    assert!(spec(8, 16.0, 1.0).targets().is_err());
}
