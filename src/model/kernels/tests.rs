//! Every CPU custom op against its dfdx composition, forward and backward, and the attention
//! op against finite differences.

use super::*;
use dfdx::tensor::Gradients;

fn close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "[{i}] {x} vs {y}");
    }
}

/// Runs `f` on traced copies of `inputs` and returns the output and the gradient of
/// Σ output·g for every input.
fn run<const M: usize, const O: usize>(
    inputs: &[Act<M, Cpu, NoneTape>],
    g: &Act<O, Cpu, NoneTape>,
    f: impl Fn(
        Act<M, Cpu, OwnedTape<f32, Cpu>>,
        &[Act<M, Cpu, NoneTape>],
    ) -> Act<O, Cpu, OwnedTape<f32, Cpu>>,
) -> (Vec<f32>, Vec<Vec<f32>>) {
    let first = inputs[0].clone().traced(Gradients::leaky());
    let y = f(first, &inputs[1..]);
    let (y, tape) = y.split_tape();
    let out = y.as_vec();
    let grads = (y.put_tape(tape) * g.clone()).sum().backward();
    (out, inputs.iter().map(|t| grads.get(t).as_vec()).collect())
}

#[test]
fn cpu_linear_matches_the_composed_op_forward_and_backward() {
    let dev = Cpu::seed_from_u64(5);
    let x: Act<6, Cpu, NoneTape> = dev.sample_normal_like(&(3, 7, Const));
    let w: Tensor<Rank2<5, 6>, f32, Cpu> = dev.sample_normal();
    let b: Tensor<Rank1<5>, f32, Cpu> = dev.sample_normal();
    let g: Act<5, Cpu, NoneTape> = dev.sample_normal_like(&(3, 7, Const));
    let skip: Act<5, Cpu, NoneTape> = dev.sample_normal_like(&(3, 7, Const));
    for (bias, onto) in [(true, false), (false, false), (true, true), (false, true)] {
        let bias = bias.then_some(&b);
        let each = |fast: bool| {
            let xt = x.clone().traced(Gradients::leaky());
            let s = onto.then(|| skip.clone());
            let y = if fast {
                Cpu::linear(xt, &w, bias, s)
            } else {
                linear_composed(xt, &w, bias, s)
            };
            let (y, tape) = y.split_tape();
            let out = y.as_vec();
            let grads = (y.put_tape(tape) * g.clone()).sum().backward();
            let db = bias.map(|b| grads.get(b).as_vec()).unwrap_or_default();
            let ds = if onto {
                grads.get(&skip).as_vec()
            } else {
                vec![]
            };
            (out, grads.get(&x).as_vec(), grads.get(&w).as_vec(), db, ds)
        };
        let (fast, slow) = (each(true), each(false));
        close(&fast.0, &slow.0, 1e-5);
        close(&fast.1, &slow.1, 1e-5);
        close(&fast.2, &slow.2, 1e-5);
        close(&fast.3, &slow.3, 1e-5);
        close(&fast.4, &slow.4, 1e-6);
    }
}

#[test]
fn cpu_gelu_linear_matches_the_composed_ops_forward_and_backward() {
    let dev = Cpu::seed_from_u64(7);
    let x: Act<6, Cpu, NoneTape> = dev.sample_normal_like(&(3, 7, Const)) * 2.0;
    let w: Tensor<Rank2<5, 6>, f32, Cpu> = dev.sample_normal();
    let b: Tensor<Rank1<5>, f32, Cpu> = dev.sample_normal();
    let skip: Act<5, Cpu, NoneTape> = dev.sample_normal_like(&(3, 7, Const));
    let g: Act<5, Cpu, NoneTape> = dev.sample_normal_like(&(3, 7, Const));
    let each = |fast: bool| {
        let (xt, s) = (x.clone().traced(Gradients::leaky()), Some(skip.clone()));
        let y = if fast {
            Cpu::gelu_linear(xt, &w, Some(&b), s)
        } else {
            linear_composed(gelu_composed(xt), &w, Some(&b), s)
        };
        let (y, tape) = y.split_tape();
        let out = y.as_vec();
        let grads = (y.put_tape(tape) * g.clone()).sum().backward();
        let got = [grads.get(&x).as_vec(), grads.get(&skip).as_vec()];
        (out, got, grads.get(&w).as_vec(), grads.get(&b).as_vec())
    };
    let (fast, slow) = (each(true), each(false));
    close(&fast.0, &slow.0, 1e-5);
    close(&fast.1[0], &slow.1[0], 1e-5);
    close(&fast.1[1], &slow.1[1], 1e-6);
    close(&fast.2, &slow.2, 1e-5);
    close(&fast.3, &slow.3, 1e-5);
}

#[test]
fn cpu_attention_matches_the_composed_op_forward_and_backward() {
    let dev = Cpu::seed_from_u64(6);
    // Training (s_q = s_k) and generation-style blocks of queries after cached keys; the
    // long ones span several query blocks.
    for (s_q, s_k) in [(5, 5), (1, 6), (3, 7), (150, 150), (70, 75)] {
        let q: Act<8, Cpu, NoneTape> = dev.sample_normal_like(&(2, s_q, Const));
        let k: Act<8, Cpu, NoneTape> = dev.sample_normal_like(&(2, s_k, Const));
        let v: Act<8, Cpu, NoneTape> = dev.sample_normal_like(&(2, s_k, Const));
        let g: Act<8, Cpu, NoneTape> = dev.sample_normal_like(&(2, s_q, Const));
        // q first; k and v follow without a tape but are asked for their gradients too.
        let inputs = [q, k, v];
        let fast = run(&inputs, &g, |q, kv| {
            Cpu::causal_attention(q, kv[0].clone(), kv[1].clone(), 2)
        });
        let slow = run(&inputs, &g, |q, kv| {
            causal_attention_composed(q, kv[0].clone(), kv[1].clone(), 2)
        });
        close(&fast.0, &slow.0, 1e-5);
        for (f, s) in fast.1.iter().zip(&slow.1) {
            close(f, s, 1e-4);
        }
    }
}

#[test]
fn attention_gradient_matches_finite_differences() {
    use causal_attention::{backward, forward, Dims};
    let d = Dims {
        batch: 2,
        s_q: 3,
        s_k: 4,
        heads: 2,
        head_dim: 3,
    };
    let val = |n: usize, s: f32| {
        (0..n)
            .map(|j| (j as f32 * 0.61 + s).sin())
            .collect::<Vec<f32>>()
    };
    let (nq, nk) = (2 * 3 * 6, 2 * 4 * 6);
    let (q, k, v, g) = (val(nq, 0.2), val(nk, 1.1), val(nk, 2.3), val(nq, 0.9));
    let objective = |p: &[Vec<f32>; 3]| -> f64 {
        let y = forward(&p[0], &p[1], &p[2], d);
        y.iter().zip(&g).map(|(y, g)| *y as f64 * *g as f64).sum()
    };
    let (mut dq, mut dk, mut dv) = (vec![0.0; nq], vec![0.0; nk], vec![0.0; nk]);
    backward(&q, &k, &v, &g, &mut dq, &mut dk, &mut dv, d);
    let h = 1e-2;
    for (which, analytic) in [dq, dk, dv].iter().enumerate() {
        for (j, &a) in analytic.iter().enumerate() {
            let mut p = [q.clone(), k.clone(), v.clone()];
            p[which][j] += h;
            let up = objective(&p);
            p[which][j] -= 2.0 * h;
            let numeric = (up - objective(&p)) / (2.0 * h as f64);
            assert!(
                (a as f64 - numeric).abs() < 2e-3,
                "input {which}[{j}]: {a} vs {numeric}"
            );
        }
    }
}

#[test]
fn cpu_gelu_matches_the_composed_op_forward_and_backward() {
    let dev = Cpu::seed_from_u64(1);
    let x: Act<8, Cpu, NoneTape> = dev.sample_normal_like(&(3, 5, Const)) * 3.0;
    let g: Act<8, Cpu, NoneTape> = dev.sample_normal_like(&(3, 5, Const));
    let fast = run(&[x.clone()], &g, |x, _| Cpu::gelu(x));
    let slow = run(&[x], &g, |x, _| gelu_composed(x));
    close(&fast.0, &slow.0, 1e-5);
    close(&fast.1[0], &slow.1[0], 1e-4);
}

#[test]
fn cpu_layer_norm_matches_the_composed_op_forward_and_backward() {
    let dev = Cpu::seed_from_u64(2);
    let x: Act<16, Cpu, NoneTape> = dev.sample_normal_like(&(2, 3, Const)) * 2.0 + 0.5;
    let w: Tensor<Rank1<16>, f32, Cpu> = dev.sample_normal();
    let b: Tensor<Rank1<16>, f32, Cpu> = dev.sample_normal();
    let g: Act<16, Cpu, NoneTape> = dev.sample_normal_like(&(2, 3, Const));
    let each = |fast: bool| {
        let xt = x.clone().traced(Gradients::leaky());
        let y = if fast {
            Cpu::layer_norm(xt, &w, &b, 1e-5)
        } else {
            layer_norm_composed(xt, &w, &b, 1e-5)
        };
        let (y, tape) = y.split_tape();
        let out = y.as_vec();
        let grads = (y.put_tape(tape) * g.clone()).sum().backward();
        (
            out,
            grads.get(&x).as_vec(),
            grads.get(&w).as_vec(),
            grads.get(&b).as_vec(),
        )
    };
    let (fast, slow) = (each(true), each(false));
    close(&fast.0, &slow.0, 1e-5);
    close(&fast.1, &slow.1, 1e-4);
    close(&fast.2, &slow.2, 1e-4);
    close(&fast.3, &slow.3, 1e-4);
}

#[test]
fn cpu_token_logprobs_match_the_composed_op_forward_and_backward() {
    let dev = Cpu::seed_from_u64(8);
    let logits: Tensor<(usize, usize, usize), f32, Cpu> = dev.sample_normal_like(&(2, 3, 11)) * 3.0;
    let targets = dev.tensor_from_vec(vec![0usize, 10, 4, 7, 7, 1], (2, 3));
    let g: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(2, 3));
    let each = |fast: bool| {
        let lt = logits.clone().traced(Gradients::leaky());
        let y = if fast {
            Cpu::token_logprobs(lt, targets.clone())
        } else {
            token_logprobs_composed(lt, targets.clone())
        };
        let (y, tape) = y.split_tape();
        let out = y.as_vec();
        let grads = (y.put_tape(tape) * g.clone()).sum().backward();
        (out, grads.get(&logits).as_vec())
    };
    let (fast, slow) = (each(true), each(false));
    close(&fast.0, &slow.0, 1e-5);
    close(&fast.1, &slow.1, 1e-5);
}

#[test]
fn cpu_linear_in_generation_matches_the_composed_op() {
    // `linear_frozen` reads its weight from the generation's copy (transposed once).
    let dev = Cpu::seed_from_u64(9);
    let x: Act<6, Cpu, NoneTape> = dev.sample_normal_like(&(3, 2, Const));
    let w: Tensor<Rank2<5, 6>, f32, Cpu> = dev.sample_normal();
    let b: Tensor<Rank1<5>, f32, Cpu> = dev.sample_normal();
    let skip: Act<5, Cpu, NoneTape> = dev.sample_normal_like(&(3, 2, Const));
    let mut frozen = FrozenWeights::default();
    for (bias, onto) in [(true, false), (false, false), (true, true), (false, true)] {
        let bias = bias.then_some(&b);
        let s = || onto.then(|| skip.clone());
        // Twice: the second call reads the copy made by the first.
        for _ in 0..2 {
            let fast = Cpu::linear_frozen(x.clone(), &w, bias, s(), &mut frozen);
            let slow = linear_composed(x.clone(), &w, bias, s());
            close(&fast.as_vec(), &slow.as_vec(), 1e-5);
        }
    }
}

#[test]
fn the_portable_switch_runs_the_composed_ops_on_the_cpu() {
    // The composed GELU is dfdx's `fast_gelu`; the fused one has its own exp and tanh, which
    // differ in the last bits on some inputs. On the portable path the CPU op is the composed
    // one, bit for bit.
    let dev = Cpu::seed_from_u64(3);
    let x: Act<8, Cpu, NoneTape> = dev.sample_normal_like(&(4, 16, Const)) * 3.0;
    let composed = gelu_composed(x.clone()).as_vec();
    let portable = portable::with_portable(true, || Cpu::gelu(x.clone()).as_vec());
    assert_eq!(portable, composed);
    let fused = portable::with_portable(false, || Cpu::gelu(x.clone()).as_vec());
    close(&fused, &composed, 1e-5);
}
