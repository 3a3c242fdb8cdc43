//! A run whose base is a `pretrained` stage: the rules of such a spec, what its folder must
//! hold before anything runs, and the folder's content hash, which stands for the folder in
//! the run id and the stage's identity, so that moving the folder keeps them and changing a
//! byte changes them.
//!
//! What needs the model or the tokenizer to check (a compiled shape, the vocabulary sizes) is
//! checked where those are read, before any stage trains (`runner::pretrained`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::problem::{require, Checked, Problem};
use super::schema::Experiment;
use super::stage::{Method, Stage};

/// The files of an HF folder that the import reads; the tokenizer files are those present.
pub const CONFIG: &str = "config.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const TOKENIZER_FILES: [&str; 4] = ["tokenizer.json", "vocab.json", "merges.txt", "vocab.txt"];

/// The first stage's folder when it is a pretrained stage.
pub fn pretrained_base(spec: &Experiment) -> Option<&Path> {
    spec.stages.first()?.pretrained_path()
}

/// The rules between a pretrained stage and the rest of the spec: it is the first stage and
/// the only base (every other stage starts `from` one), and the run's tokenizer and preset are
/// the checkpoint's, so `[tokenizer]` is left out and `preset` may be.
pub fn check_spec(spec: &Experiment) -> Checked {
    for (index, stage) in spec.stages.iter().enumerate() {
        check_stage(spec, index, stage)?;
    }
    let pretrained = pretrained_base(spec).is_some();
    require(!pretrained || spec.tokenizer.is_none(), "tokenizer", || {
        "a run whose base is a pretrained stage uses the checkpoint's own tokenizer: remove the [tokenizer] table".into()
    })?;
    require(pretrained || spec.tokenizer.is_some(), "tokenizer", || {
        "an experiment needs a [tokenizer] table (kind = \"char\" or \"bpe\", vocab_size), unless its first stage is a pretrained one".into()
    })?;
    require(
        pretrained || spec.model.preset.is_some(),
        "model.preset",
        || {
            "[model] needs `preset`: one of the compiled sizes (a run whose first stage is a pretrained one may leave it out: it is the checkpoint's)".into()
        },
    )
}

fn check_stage(spec: &Experiment, index: usize, stage: &Stage) -> Checked {
    let at = |key: &str| format!("stages[{index}].{key}");
    let is_pretrained = matches!(stage.method, Method::Pretrained);
    require(!is_pretrained || index == 0, at("kind"), || {
        "a pretrained stage reads the run's base model: it must be the first stage, and the only base".into()
    })?;
    require(!is_pretrained || stage.from.is_none(), at("from"), || {
        "a pretrained stage starts from its folder (`path`), not from another stage: remove `from`"
            .into()
    })?;
    let base = pretrained_base(spec).filter(|_| index > 0 && stage.from.is_none());
    require(base.is_none(), at("from"), || {
        format!(
            "this run's base is the pretrained stage `{}`: every other stage starts `from` an earlier stage",
            spec.stages[0].name
        )
    })
}

/// What the folder of each pretrained stage must hold to be read and hashed: called once its
/// path is absolute.
pub fn check_folders(spec: &Experiment) -> Checked {
    let Some(dir) = pretrained_base(spec) else {
        return Ok(());
    };
    check_folder(dir).map_err(|message| Problem {
        path: "stages[0].path".into(),
        message,
    })
}

fn check_folder(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    if !dir.is_dir() {
        return Err(format!("{shown} is not a folder: `path` names a Hugging Face GPT-2 folder (config.json, model.safetensors and its tokenizer), e.g. one `huggingface-cli download gpt2 --local-dir {shown}` writes"));
    }
    if !dir.join(CONFIG).is_file() {
        return Err(format!("{shown} has no {CONFIG}: the model's shape is read from it; download it with the weights (`huggingface-cli download <model> --local-dir {shown}`)"));
    }
    if dir.join(WEIGHTS).is_file() {
        return Ok(());
    }
    match pickle_weights(dir) {
        Some(file) => Err(format!("{shown} holds its weights as {file} (a PyTorch pickle, which runs code when read): gptlab reads safetensors only. Convert them once in Python: `from transformers import GPT2LMHeadModel; GPT2LMHeadModel.from_pretrained(\"{shown}\").save_pretrained(\"{shown}\", safe_serialization=True)` writes {WEIGHTS} beside it")),
        None => Err(format!("{shown} has no {WEIGHTS}: download the model's safetensors weights into the folder (`huggingface-cli download <model> --local-dir {shown}`)")),
    }
}

/// A PyTorch pickle weights file in `dir`, if any (`pytorch_model.bin`, `*.bin`, `*.pt`,
/// `*.pth`, `*.ckpt`).
fn pickle_weights(dir: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            [".bin", ".pt", ".pth", ".ckpt"]
                .iter()
                .any(|x| n.ends_with(x))
        })
        .collect();
    names.sort();
    names.into_iter().next()
}

/// The files of `dir` that make the checkpoint: config, weights and every tokenizer file
/// present, in a fixed order.
pub fn checkpoint_files(dir: &Path) -> Vec<PathBuf> {
    [CONFIG, WEIGHTS]
        .into_iter()
        .chain(TOKENIZER_FILES)
        .map(|name| dir.join(name))
        .filter(|p| p.is_file())
        .collect()
}

/// `sha256:<hex>` over each checkpoint file's name and content: what the run id and the
/// stage's identity hash instead of the folder's path.
pub fn content_hash(dir: &Path) -> std::io::Result<String> {
    let mut all = Sha256::new();
    for file in checkpoint_files(dir) {
        let mut one = Sha256::new();
        std::io::copy(&mut std::fs::File::open(&file)?, &mut one)?;
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        all.update(name.as_bytes());
        all.update(one.finalize());
    }
    let hex: String = all.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}

/// `spec` with each pretrained stage's `path` replaced by its folder's content hash: what
/// the run id is made from. `None` when the spec has no pretrained stage.
pub fn with_content_hashes(spec: &Experiment) -> std::io::Result<Option<Experiment>> {
    if pretrained_base(spec).is_none() {
        return Ok(None);
    }
    let mut spec = spec.clone();
    for stage in &mut spec.stages {
        if let Some(path) = stage.pretrained_path() {
            let hash = PathBuf::from(content_hash(path)?);
            stage
                .edit(|keys| keys.path = Some(hash))
                .expect("a pretrained stage keeps its path");
        }
    }
    Ok(Some(spec))
}
