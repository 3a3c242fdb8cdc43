//! Export -> import round trips through real files, and the refusals in between.

use super::hf_gpt2::{export_hf_gpt2, SCORE_HEAD_FILE};
use super::import::import_hf_gpt2;
use crate::hf::layout::TensorMap;
use crate::model::presets::{build_model, model_config};
use crate::results::weights::{encode_tensors, load_model, read_tensors, save_model};
use crate::tokenizer::{Tokenizer, TokenizerKind};
use dfdx::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// A run folder with a randomly initialised nano stage `base` and a char tokenizer.
fn make_run(dir: &Path, score_head: bool) {
    let tok = Tokenizer::train(
        TokenizerKind::Char,
        &["hello world, the quick brown fox"],
        64,
    )
    .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    tok.save(&dir.join("tokenizer.json")).unwrap();
    let mut cfg = model_config("nano", tok.vocab_size()).unwrap();
    cfg.score_head = score_head;
    let mut model = build_model(&cfg, &Cpu::default(), 11).unwrap();
    save_model(model.as_mut(), &dir.join("base")).unwrap();
}

fn tokens(dev: &Cpu) -> Tensor<(usize, usize), usize, Cpu> {
    dev.tensor_from_vec(vec![2, 9, 10, 11, 127, 3, 40, 8], (2, 4))
}

#[test]
fn export_then_import_gives_bitwise_identical_logits_and_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    make_run(&run, true);
    let hf = tmp.path().join("hf");
    export_hf_gpt2(&Cpu::default(), &run.join("base"), &hf, false).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "generation_config.json",
        "README.md",
        SCORE_HEAD_FILE,
    ] {
        assert!(hf.join(f).is_file(), "{f} missing");
    }
    let (tensors, _) = read_tensors(&hf.join("model.safetensors")).unwrap();
    assert_eq!(tensors["transformer.h.1.attn.c_attn.weight"].0, [64, 192]);
    assert!(!tensors.contains_key("score.weight"));
    assert!(std::fs::read_to_string(hf.join("README.md"))
        .unwrap()
        .contains(SCORE_HEAD_FILE));

    let back = tmp.path().join("run2/base");
    import_hf_gpt2(&Cpu::default(), &hf, &back, false).unwrap();
    let dev = Cpu::default();
    let a = load_model(&run.join("base"), &dev).unwrap();
    let b = load_model(&back, &dev).unwrap();
    assert_eq!(a.config(), b.config());
    let (la, lb) = (
        a.logits(tokens(&dev)).as_vec(),
        b.logits(tokens(&dev)).as_vec(),
    );
    assert!(la.iter().zip(&lb).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert_eq!(
        a.scores(tokens(&dev)).as_vec(),
        b.scores(tokens(&dev)).as_vec()
    );
    assert_eq!(
        std::fs::read(run.join("tokenizer.json")).unwrap(),
        std::fs::read(tmp.path().join("run2/tokenizer.json")).unwrap()
    );
}

#[test]
fn export_refuses_a_non_empty_folder_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    make_run(&run, false);
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let err = export_hf_gpt2(&Cpu::default(), &run.join("base"), &out, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not empty") && err.contains("--force"),
        "{err}"
    );
    export_hf_gpt2(&Cpu::default(), &run.join("base"), &out, true).unwrap();
    assert!(!out.join(SCORE_HEAD_FILE).exists());
}

/// Rewrites the exported weights with `change` applied.
fn edit_weights(hf: &Path, change: impl FnOnce(&mut TensorMap)) {
    let path = hf.join("model.safetensors");
    let (mut t, _) = read_tensors(&path).unwrap();
    change(&mut t);
    let list: Vec<_> = t.into_iter().map(|(n, (s, v))| (n, s, v)).collect();
    std::fs::write(&path, encode_tensors(&list, HashMap::new()).unwrap()).unwrap();
}

#[test]
fn import_refuses_parts_it_cannot_represent() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    make_run(&run, false);
    let hf = tmp.path().join("hf");
    export_hf_gpt2(&Cpu::default(), &run.join("base"), &hf, false).unwrap();

    // An untied LM head computes different logits than gptlab's tied one.
    edit_weights(&hf, |t| {
        let mut wte = t["transformer.wte.weight"].clone();
        wte.1[0] += 1.0;
        t.insert("lm_head.weight".into(), wte);
    });
    let err = format!(
        "{:#}",
        import_hf_gpt2(&Cpu::default(), &hf, &tmp.path().join("a/base"), false).unwrap_err()
    );
    assert!(
        err.contains("lm_head.weight") && err.contains("tied"),
        "{err}"
    );

    // A tied head and the causal-mask buffer are fine.
    edit_weights(&hf, |t| {
        let wte = t["transformer.wte.weight"].clone();
        t.insert("lm_head.weight".into(), wte);
        t.insert("transformer.h.0.attn.bias".into(), (vec![1], vec![1.0]));
    });
    import_hf_gpt2(&Cpu::default(), &hf, &tmp.path().join("b/base"), false).unwrap();

    edit_weights(&hf, |t| {
        t.insert(
            "transformer.h.0.attn.extra.weight".into(),
            (vec![1], vec![0.0]),
        );
    });
    let err = format!(
        "{:#}",
        import_hf_gpt2(&Cpu::default(), &hf, &tmp.path().join("c/base"), false).unwrap_err()
    );
    assert!(err.contains("attn.extra.weight"), "{err}");

    // Another run's tokenizer beside the target stage is not overwritten.
    let other = tmp.path().join("d");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("tokenizer.json"), "{}").unwrap();
    edit_weights(&hf, |t| {
        t.remove("transformer.h.0.attn.extra.weight");
    });
    let err = format!(
        "{:#}",
        import_hf_gpt2(&Cpu::default(), &hf, &other.join("base"), false).unwrap_err()
    );
    assert!(err.contains("different tokenizer"), "{err}");
}
