//! A stand-in for a Hugging Face GPT-2 checkpoint, written by the tests in HF's layout: a
//! `config.json` of the nano preset's shape, `model.safetensors` with random weights under
//! GPT-2's tensor names (Conv1D `[in, out]` matrices, one fused `c_attn`), and a real
//! `tokenizer.json`: a byte-level BPE trained by the `tokenizers` crate on the demo data,
//! with GPT-2's `<|endoftext|>`, smaller than the model's vocabulary as GPT-2's 50,257 is
//! smaller than a padded 50,304.

use std::collections::HashMap;
use std::path::Path;

use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

/// The nano preset's shape.
pub const STAND_IN_LAYERS: usize = 2;
pub const STAND_IN_WIDTH: usize = 64;
pub const STAND_IN_CONTEXT: usize = 128;
/// The model's vocabulary (a compiled nano bucket) and the tokenizer's, smaller.
pub const STAND_IN_VOCAB: usize = 512;
pub const STAND_IN_TOKENIZER_VOCAB: usize = 400;

/// Writes the stand-in checkpoint into `dir` (created if needed).
pub fn write_hf_stand_in(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), stand_in_config()).unwrap();
    let tensors = stand_in_tensors();
    let bytes = gptlab::results::weights::encode_tensors(&tensors, HashMap::new()).unwrap();
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
    stand_in_tokenizer()
        .save(dir.join("tokenizer.json"), true)
        .unwrap();
}

/// GPT-2's `config.json` keys at the nano preset's shape.
pub fn stand_in_config() -> String {
    serde_json::json!({
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": STAND_IN_VOCAB,
        "n_positions": STAND_IN_CONTEXT,
        "n_embd": STAND_IN_WIDTH,
        "n_layer": STAND_IN_LAYERS,
        "n_head": 2,
        "n_inner": null,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
        "bos_token_id": 0,
        "eos_token_id": 0,
    })
    .to_string()
}

/// `GPT2LMHeadModel`'s tensors, in its names and layouts, with random values (a small LCG).
fn stand_in_tensors() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut state = 1u64;
    let mut random = |shape: &[usize]| -> Vec<f32> {
        let n: usize = shape.iter().product();
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
            })
            .collect()
    };
    let p = "transformer.";
    let (w, v, c) = (STAND_IN_WIDTH, STAND_IN_VOCAB, STAND_IN_CONTEXT);
    let mut out = vec![
        (format!("{p}wte.weight"), vec![v, w]),
        (format!("{p}wpe.weight"), vec![c, w]),
    ];
    for i in 0..STAND_IN_LAYERS {
        let h = format!("{p}h.{i}");
        for (name, shape) in [
            ("ln_1.weight", vec![w]),
            ("ln_1.bias", vec![w]),
            ("attn.c_attn.weight", vec![w, 3 * w]),
            ("attn.c_attn.bias", vec![3 * w]),
            ("attn.c_proj.weight", vec![w, w]),
            ("attn.c_proj.bias", vec![w]),
            ("ln_2.weight", vec![w]),
            ("ln_2.bias", vec![w]),
            ("mlp.c_fc.weight", vec![w, 4 * w]),
            ("mlp.c_fc.bias", vec![4 * w]),
            ("mlp.c_proj.weight", vec![4 * w, w]),
            ("mlp.c_proj.bias", vec![w]),
        ] {
            out.push((format!("{h}.{name}"), shape));
        }
    }
    out.push((format!("{p}ln_f.weight"), vec![w]));
    out.push((format!("{p}ln_f.bias"), vec![w]));
    out.into_iter()
        .map(|(name, shape)| {
            let mut values = random(&shape);
            if name.contains("ln_") && name.ends_with(".weight") {
                values.iter_mut().for_each(|x| *x += 1.0);
            }
            (name, shape, values)
        })
        .collect()
}

/// A byte-level BPE of [`STAND_IN_TOKENIZER_VOCAB`] ids trained on the demo corpus and Q&A,
/// set up as GPT-2's (no prefix space, ByteLevel decoder, `<|endoftext|>`).
pub fn stand_in_tokenizer() -> Tokenizer {
    let demo = super::repo().join("datasets/demo");
    let texts: Vec<String> = ["corpus.txt", "sft.jsonl", "amusement_park.txt"]
        .iter()
        .map(|f| std::fs::read_to_string(demo.join(f)).unwrap())
        .collect();
    let mut tokenizer = Tokenizer::new(BPE::default());
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_decoder(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_post_processor(Some(ByteLevel::new(false, true, true)));
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(STAND_IN_TOKENIZER_VOCAB)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from("<|endoftext|>", true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    tokenizer.train(&mut trainer, texts.iter()).unwrap();
    tokenizer
}
