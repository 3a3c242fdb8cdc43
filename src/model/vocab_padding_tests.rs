//! An imported checkpoint's vocabulary padding (`ModelConfig::real_vocab_size`): ids from the
//! checkpoint's own vocabulary up get exactly zero probability in every path that reads the
//! LM head (full forward, log-probs, gradients, the generation cache, sampling), and a model
//! without padding computes what it computed before the mask existed.

use super::generate::{generate_all, Request};
use super::gpt::MASKED_LOGIT;
use super::kernels::portable::with_portable;
use super::presets::model_config;
use super::raw::RawStorage;
use super::sample::SampleOptions;
use super::*;
use dfdx::prelude::*;
use dfdx::tensor::Gradients;

const REAL: usize = 100;

/// A nano model (bucket 128) whose real logits are all -3.2 and whose padding rows are zero,
/// as an import leaves them: unmasked, every padding id (logit 0) would beat every real one,
/// as GPT-2's strongly negative logits would.
fn padded_nano(dev: &Cpu, real: Option<usize>) -> Box<dyn LanguageModel<Cpu>> {
    let mut cfg = model_config("nano", REAL).unwrap();
    cfg.real_vocab_size = real;
    let mut model = build_model(&cfg, dev, 3).unwrap();
    let (v, m) = (cfg.vocab_size, cfg.n_embd);
    model
        .visit_params(&mut |name, p, _| {
            match name {
                "transformer.wte.weight" => {
                    let rows = (0..v).flat_map(|i| [if i < REAL { -0.1 } else { 0.0 }; 64]);
                    p.copy_from_host(&rows.collect::<Vec<f32>>());
                }
                // Final hidden state 0.5 everywhere, whatever the blocks computed.
                "transformer.ln_f.weight" => p.copy_from_host(&vec![0.0; m]),
                "transformer.ln_f.bias" => p.copy_from_host(&vec![0.5; m]),
                _ => {}
            }
            Ok(())
        })
        .unwrap();
    model
}

fn logits_of(model: &dyn LanguageModel<Cpu>, dev: &Cpu) -> Vec<f32> {
    model
        .logits(dev.tensor_from_vec(vec![3, 17, 42, 99], (1, 4)))
        .as_vec()
}

#[test]
fn padding_ids_get_the_masked_logit_and_real_ids_keep_theirs() {
    let dev = Cpu::default();
    let unmasked = logits_of(padded_nano(&dev, None).as_ref(), &dev);
    let masked = logits_of(padded_nano(&dev, Some(REAL)).as_ref(), &dev);
    for (row_u, row_m) in unmasked.chunks(128).zip(masked.chunks(128)) {
        // Without the mask a padding id wins: the check below can fail.
        assert!(sample::argmax(row_u) >= REAL);
        assert_eq!(&row_m[..REAL], &row_u[..REAL]);
        assert!((row_m[0] + 3.2).abs() < 1e-5, "{}", row_m[0]);
        assert!(row_m[REAL..].iter().all(|&x| x == MASKED_LOGIT));
    }
}

#[test]
fn log_probabilities_see_only_the_real_vocabulary() {
    let dev = Cpu::default();
    let model = padded_nano(&dev, Some(REAL));
    let x = dev.tensor_from_vec(vec![3, 17, 42, 99], (1, 4));
    // What the losses and the log-ratios of DPO, KTO and PPO read.
    let logp = model.logits(x).log_softmax::<Axis<2>>().as_vec();
    for row in logp.chunks(128) {
        // Every real id equally likely: ln 100, not ln(100 + 28 · e^3.2) of padding.
        assert!(row[..REAL]
            .iter()
            .all(|&l| (l + (REAL as f32).ln()).abs() < 1e-5));
        assert!(row[REAL..].iter().all(|&l| l.exp() == 0.0 && l.is_finite()));
    }
}

#[test]
fn padding_ids_are_never_generated_on_either_path() {
    for portable in [false, true] {
        with_portable(portable, || {
            let dev = Cpu::default();
            let model = padded_nano(&dev, Some(REAL));
            let requests = [0.0, 1.0, 5.0].iter().enumerate().map(|(i, &t)| Request {
                prompt: vec![3, 17, 42],
                opts: SampleOptions {
                    max_new_tokens: 40,
                    temperature: t,
                    top_k: 0,
                    top_p: 1.0,
                    stop: vec![],
                    use_cache: true,
                },
                seed: i as u64,
            });
            // A vocabulary limit of the whole bucket: only the mask keeps padding out.
            let out = generate_all(model.as_ref(), 128, requests.collect(), 4);
            let ids: Vec<u32> = out.into_iter().flatten().collect();
            assert_eq!(ids.len(), 120);
            assert!(ids.iter().all(|&t| (t as usize) < REAL), "{ids:?}");
        });
    }
}

#[test]
fn a_model_without_padding_is_unchanged_by_the_mask() {
    let dev = Cpu::default();
    let mut cfg = model_config("nano", 128).unwrap();
    let plain = logits_of(build_model(&cfg, &dev, 5).unwrap().as_ref(), &dev);
    cfg.real_vocab_size = Some(cfg.vocab_size);
    let full = build_model(&cfg, &dev, 5).unwrap();
    assert_eq!(logits_of(full.as_ref(), &dev), plain);
}

#[test]
fn training_leaves_the_padding_rows_untouched_on_either_path() {
    for portable in [false, true] {
        with_portable(portable, || {
            let dev = Cpu::default();
            let mut model = padded_nano(&dev, Some(REAL));
            let x = dev.tensor_from_vec(vec![3, 17, 42, 99], (1, 4));
            let y = dev.tensor_from_vec(vec![17, 42, 99, 5], (1, 4));
            let logp = model
                .logits_traced(x, Gradients::leaky())
                .log_softmax::<Axis<2>>();
            let mut grads = logp.select(y).sum().negate().backward();
            model
                .visit_params(&mut |name, p, _| {
                    if name == "transformer.wte.weight" {
                        let g = dev.raw_to_host(p.grad_mut(&mut grads)?);
                        assert!(g[..REAL * 64].iter().any(|&x| x != 0.0));
                        assert!(
                            g[REAL * 64..].iter().all(|&x| x == 0.0),
                            "portable {portable}"
                        );
                    }
                    Ok(())
                })
                .unwrap();
        });
    }
}
