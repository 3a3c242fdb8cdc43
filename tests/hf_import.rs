//! Importing a Hugging Face GPT-2 folder that gptlab did not write: a stand-in written here in
//! HF's own layout (GPT-2's tensor names, Conv1D `[in, out]` matrices, fused `c_attn`, random
//! weights) at the nano shape with a 300-token vocabulary, which the 512 bucket pads. Its
//! logits must equal the independent NumPy GPT-2 (`scripts/hf_reference.py`) on the real
//! ids, with and without the `transformer.` prefix; an export must give back exactly the
//! checkpoint's vocabulary; and folders gptlab cannot read get one-paragraph errors.
//!
//! The import speed of a 124M folder is measured by hand, not timed here:
//! `cargo test --test hf_import -- --ignored --nocapture` (the test profile is optimised).

mod common;
use ::safetensors::tensor::{Dtype, TensorView};
use common::*;
use dfdx::prelude::*;
use gptlab::export::hf_gpt2::export_hf_gpt2;
use gptlab::hf::import_hf_model;
use gptlab::model::gpt::MASKED_LOGIT;
use gptlab::results::weights::{encode_tensors, read_tensors, save_model};
use gptlab::tokenizer::{Tokenizer, TokenizerKind};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// The shape of a stand-in checkpoint, in GPT-2's `config.json` terms.
#[derive(Clone, Copy)]
struct Shape {
    n_layer: usize,
    n_head: usize,
    n_embd: usize,
    n_positions: usize,
    vocab_size: usize,
}

const NANO_300: Shape = Shape {
    n_layer: 2,
    n_head: 2,
    n_embd: 64,
    n_positions: 128,
    vocab_size: 300,
};

type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

/// GPT-2's tensors as `GPT2LMHeadModel` saves them (`transformer.` prefix and a tied
/// `lm_head.weight`) or as `GPT2Model` does (no prefix, no head), with random values: matrices N(0, 0.2), biases N(0, 0.1), LayerNorm weights 1 + N(0, 0.1).
fn standin_tensors(s: Shape, lm_head_model: bool, seed: u64) -> Tensors {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut draw = |shape: &[usize], mean: f32, std: f32| -> Vec<f32> {
        let d = Normal::new(mean, std).unwrap();
        (0..shape.iter().product())
            .map(|_| d.sample(&mut rng))
            .collect()
    };
    let (m, p) = (s.n_embd, if lm_head_model { "transformer." } else { "" });
    let mut out: Tensors = Vec::new();
    let mut add = |name: String, shape: &[usize], values: Vec<f32>| {
        out.push((name, shape.to_vec(), values));
    };
    let wte = draw(&[s.vocab_size, m], 0.0, 0.2);
    add(format!("{p}wte.weight"), &[s.vocab_size, m], wte.clone());
    add(
        format!("{p}wpe.weight"),
        &[s.n_positions, m],
        draw(&[s.n_positions, m], 0.0, 0.2),
    );
    for i in 0..s.n_layer {
        let h = format!("{p}h.{i}.");
        for ln in ["ln_1", "ln_2"] {
            add(format!("{h}{ln}.weight"), &[m], draw(&[m], 1.0, 0.1));
            add(format!("{h}{ln}.bias"), &[m], draw(&[m], 0.0, 0.1));
        }
        for (name, fan_in, fan_out) in [
            ("attn.c_attn", m, 3 * m),
            ("attn.c_proj", m, m),
            ("mlp.c_fc", m, 4 * m),
            ("mlp.c_proj", 4 * m, m),
        ] {
            // Conv1D: x @ W + b with W stored [in, out].
            let w = draw(&[fan_in, fan_out], 0.0, 0.2);
            add(format!("{h}{name}.weight"), &[fan_in, fan_out], w);
            add(
                format!("{h}{name}.bias"),
                &[fan_out],
                draw(&[fan_out], 0.0, 0.1),
            );
        }
    }
    add(format!("{p}ln_f.weight"), &[m], draw(&[m], 1.0, 0.1));
    add(format!("{p}ln_f.bias"), &[m], draw(&[m], 0.0, 0.1));
    if lm_head_model {
        add("lm_head.weight".into(), &[s.vocab_size, m], wte);
    }
    out
}

fn config_json(s: Shape) -> Value {
    json!({
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "activation_function": "gelu_new",
        "n_layer": s.n_layer,
        "n_head": s.n_head,
        "n_embd": s.n_embd,
        "n_positions": s.n_positions,
        "n_ctx": s.n_positions,
        "vocab_size": s.vocab_size,
        "layer_norm_epsilon": 1e-5,
        "bos_token_id": 0,
        "eos_token_id": 0,
    })
}

/// Writes an HF GPT-2 folder of shape `s` into `dir` and returns its tensors. A `GPT2Model`
/// folder also gets the boolean causal-mask buffers older `transformers` saved.
fn write_standin(dir: &Path, s: Shape, lm_head_model: bool, seed: u64) -> Tensors {
    std::fs::create_dir_all(dir).unwrap();
    let tensors = standin_tensors(s, lm_head_model, seed);
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let mut views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, shape, _), b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, shape.clone(), b).unwrap(),
            )
        })
        .collect();
    let c = s.n_positions;
    let causal: Vec<u8> = (0..c * c).map(|k| ((k % c) <= (k / c)) as u8).collect();
    if !lm_head_model {
        for i in 0..s.n_layer {
            let view = TensorView::new(Dtype::BOOL, vec![1, 1, c, c], &causal).unwrap();
            views.push((format!("h.{i}.attn.bias"), view));
        }
    }
    let meta = Some(HashMap::from([("format".to_string(), "pt".to_string())]));
    let bytes = ::safetensors::serialize(views, &meta).unwrap();
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
    std::fs::write(dir.join("config.json"), config_json(s).to_string()).unwrap();
    tensors
}

const IDS: [usize; 9] = [0, 17, 299, 42, 150, 3, 298, 77, 1];

/// gptlab's logits of `IDS` as rows of the compiled vocabulary.
fn gptlab_logits(dir: &Path) -> (Vec<Vec<f32>>, gptlab::model::ModelConfig) {
    let dev = Cpu::default();
    let (model, cfg) = import_hf_model(dir, &dev).unwrap();
    let x = dev.tensor_from_vec(IDS.to_vec(), (1, IDS.len()));
    let flat = model.logits(x).as_vec();
    (
        flat.chunks(cfg.vocab_size).map(<[f32]>::to_vec).collect(),
        cfg,
    )
}

/// The NumPy reference's logits of `IDS`, or None (said aloud) without NumPy.
fn reference_logits(dir: &Path) -> Option<Vec<Vec<f64>>> {
    let py = std::env::var("GPTLAB_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_numpy = Command::new(&py)
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_numpy {
        say("SKIPPED the NumPy reference check of import: needs python3 with numpy (pip install numpy)");
        return None;
    }
    let ids: Vec<String> = IDS.iter().map(usize::to_string).collect();
    let script = repo().join("scripts/hf_reference.py");
    let mut command = Command::new(&py);
    command.args([script.to_str().unwrap(), dir.to_str().unwrap()]);
    command.args(["--tokens", &ids.join(","), "--json"]);
    let out = output_within(&mut command, COMMAND_TIMEOUT);
    assert!(
        out.status.success(),
        "hf_reference.py failed:\n{}",
        text(&out)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["logits"].as_array().unwrap().iter();
    let row = |r: &Value| {
        r.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    Some(rows.map(row).collect())
}

#[test]
fn an_hf_folder_gives_the_numpy_reference_logits_with_or_without_the_prefix() {
    let tmp = tempdir();
    for (name, lm_head_model) in [("GPT2LMHeadModel", true), ("GPT2Model", false)] {
        let dir = tmp.path().join(name);
        write_standin(&dir, NANO_300, lm_head_model, 7);
        let (ours, cfg) = gptlab_logits(&dir);
        assert_eq!((cfg.preset.as_str(), cfg.vocab_size), ("nano", 512));
        assert_eq!(cfg.real_vocab_size, Some(300));
        // The padding the bucket added is masked: no probability reaches it.
        assert!(ours
            .iter()
            .all(|r| r[300..].iter().all(|&x| x == MASKED_LOGIT)));
        let Some(reference) = reference_logits(&dir) else {
            return;
        };
        assert_eq!((reference.len(), reference[0].len()), (IDS.len(), 300));
        let mut worst = 0.0f64;
        for (a, r) in ours.iter().zip(&reference) {
            for (x, y) in a[..300].iter().zip(r) {
                worst = worst.max((*x as f64 - y).abs());
            }
        }
        let largest = reference
            .iter()
            .flatten()
            .fold(0.0f64, |m, x| m.max(x.abs()));
        eprintln!("{name}: max |gptlab - numpy| {worst:.2e} (largest logit {largest:.2})");
        assert!(worst <= 1e-5, "{name}: logits differ by {worst}");
    }
}

#[test]
fn an_imported_model_exports_exactly_its_own_vocabulary() {
    let tmp = tempdir();
    let hf = tmp.path().join("hf");
    let written = write_standin(&hf, NANO_300, true, 11);
    let dev = Cpu::default();
    let (mut model, _) = import_hf_model(&hf, &dev).unwrap();
    let stage = tmp.path().join("run/base");
    save_model(model.as_mut(), &stage).unwrap();
    let tokenizer = Tokenizer::train(TokenizerKind::Char, &["abcdefg hij"], 64).unwrap();
    tokenizer
        .save(&tmp.path().join("run/tokenizer.json"))
        .unwrap();

    let out = tmp.path().join("export");
    export_hf_gpt2(&dev, &stage, &out, false).unwrap();
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["vocab_size"], 300);
    let (exported, _) = read_tensors(&out.join("model.safetensors")).unwrap();
    let (shape, wte) = &exported["transformer.wte.weight"];
    assert_eq!(shape, &[300, 64]);
    assert_eq!(
        wte, &written[0].2,
        "the embedding must come back bit for bit"
    );
    // And back in, the same model: the padding is restored and masked again.
    assert_eq!(gptlab_logits(&out).0, gptlab_logits(&hf).0);
}

/// The import error of `dir`, which must be one paragraph naming `file`.
fn refusal(dir: &Path, file: &str) -> String {
    let err = match import_hf_model(dir, &Cpu::default()) {
        Ok(_) => panic!("{} was imported", dir.display()),
        Err(e) => format!("{e:#}"),
    };
    assert!(!err.contains('\n'), "not one paragraph: {err}");
    let (d, f) = (dir.display().to_string(), file);
    assert!(
        err.contains(&d) && err.contains(f),
        "does not name {d}/{f}: {err}"
    );
    err
}

#[test]
fn folders_gptlab_cannot_read_are_refused_in_one_paragraph() {
    let tmp = tempdir();
    let pickle = tmp.path().join("pickle");
    write_standin(&pickle, NANO_300, true, 1);
    std::fs::rename(
        pickle.join("model.safetensors"),
        pickle.join("pytorch_model.bin"),
    )
    .unwrap();
    let err = refusal(&pickle, "pytorch_model.bin");
    assert!(
        err.contains("save_pretrained") && err.contains("safe_serialization=True"),
        "{err}"
    );

    let odd = tmp.path().join("three-layers");
    write_standin(
        &odd,
        Shape {
            n_layer: 3,
            ..NANO_300
        },
        true,
        1,
    );
    let err = refusal(&odd, "config.json");
    assert!(
        err.contains("no compiled gptlab preset has n_layer 3"),
        "{err}"
    );
    assert!(
        err.contains("distilgpt2 (n_layer 6, n_head 12, n_embd 768, n_positions 1024"),
        "{err}"
    );

    let wide = tmp.path().join("big-vocab");
    write_standin(
        &wide,
        Shape {
            vocab_size: 5000,
            ..NANO_300
        },
        true,
        1,
    );
    let err = refusal(&wide, "config.json");
    assert!(
        err.contains("vocab_size 5000 is larger than every vocabulary"),
        "{err}"
    );
    assert!(err.contains("[128, 512, 4096]"), "{err}");

    // An untied head would be silently dropped: refused.
    let untied = tmp.path().join("untied");
    let mut tensors = standin_tensors(NANO_300, true, 1);
    tensors.last_mut().unwrap().2[0] += 1.0;
    write_standin(&untied, NANO_300, true, 1);
    let bytes = encode_tensors(&tensors, HashMap::new()).unwrap();
    std::fs::write(untied.join("model.safetensors"), bytes).unwrap();
    let err = refusal(&untied, "model.safetensors");
    assert!(err.contains("`lm_head.weight` differs"), "{err}");
}

/// By hand: the time to import a GPT-2 124M folder (vocabulary 50,257, as `gpt2` ships), and
/// its export's vocabulary.
#[test]
#[ignore]
fn import_of_a_124m_folder_by_hand() {
    let tmp = tempdir();
    let gpt2 = Shape {
        n_layer: 12,
        n_head: 12,
        n_embd: 768,
        n_positions: 1024,
        vocab_size: 50257,
    };
    let hf = tmp.path().join("hf");
    write_standin(&hf, gpt2, true, 1);
    let dev = Cpu::default();
    for _ in 0..3 {
        let start = std::time::Instant::now();
        let (model, cfg) = import_hf_model(&hf, &dev).unwrap();
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "import of a 124M folder: {secs:.2} s ({} / {})",
            cfg.vocab_size, cfg.preset
        );
        drop(model);
    }
    let (mut model, _) = import_hf_model(&hf, &dev).unwrap();
    let stage = tmp.path().join("run/base");
    save_model(model.as_mut(), &stage).unwrap();
    let tokenizer = Tokenizer::train(TokenizerKind::Char, &["abcdefg hij"], 64).unwrap();
    tokenizer
        .save(&tmp.path().join("run/tokenizer.json"))
        .unwrap();
    let out = tmp.path().join("export");
    export_hf_gpt2(&dev, &stage, &out, false).unwrap();
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    let config: Value = serde_json::from_str(&config).unwrap();
    let (exported, _) = read_tensors(&out.join("model.safetensors")).unwrap();
    let shape = &exported["transformer.wte.weight"].0;
    eprintln!("export: vocab_size {}, wte {shape:?}", config["vocab_size"]);
    assert_eq!(
        (&config["vocab_size"], shape.as_slice()),
        (&json!(50257), &[50257, 768][..])
    );
}
