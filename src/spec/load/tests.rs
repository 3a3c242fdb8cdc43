//! `load_spec`'s tests: every rule a spec file is held to, each through a real file.

use super::*;
use crate::spec::kinds::{Algorithm, Checker};
use crate::spec::schema::Preset;
use crate::spec::stage::Method;
use crate::spec::RlhfKeys;

const QUICKSTART: &str = r#"name = "quickstart"
seed = 1
device = "cpu"

[model]
preset = "nano"
block_size = 64

[tokenizer]
kind = "char"
vocab_size = 512

[[stages]]
name = "base"
kind = "pretrain"
data = "corpus.txt"
steps = 100
lr = 1e-3
warmup_steps = 10

[[stages]]
name = "assistant"
kind = "sft"
from = "base"
data = "$DATA/demo/sft.jsonl"

[[stages]]
name = "rm"
kind = "reward"
from = "assistant"
data = ["prefs.jsonl"]

[[stages]]
name = "rlhf"
kind = "rlhf"
algorithm = "ppo"
from = "assistant"
reward_model = "rm"
prompts = "prompts.jsonl"

[report]
prompts = ["香蕉是"]
probes = [{ prompt = "我今天想去游乐园玩", candidates = ["过山车", "大风车"] }]
compare = ["base", "assistant", "rlhf"]
sampling = { temperature = 0.8, top_k = 20 }
"#;

/// A temporary project: `experiments/quickstart.toml` and a data root with `demo/`.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("experiments")).unwrap();
        std::fs::create_dir_all(dir.path().join("data/demo")).unwrap();
        Project { dir }
    }

    fn spec_dir(&self) -> PathBuf {
        self.dir.path().join("experiments")
    }

    fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn write(&self, text: &str) -> PathBuf {
        let path = self.spec_dir().join("quickstart.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn load(&self, text: &str, sets: &[&str]) -> anyhow::Result<LoadedSpec> {
        let path = self.write(text);
        let opts = LoadOptions {
            data_root: self.data_root(),
            sets: sets.iter().map(|s| s.to_string()).collect(),
        };
        load_spec(&path, &opts)
    }
}

fn load(text: &str, sets: &[&str]) -> anyhow::Result<LoadedSpec> {
    Project::new().load(text, sets)
}

fn error_of(text: &str, sets: &[&str]) -> String {
    match load(text, sets) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(error) => format!("{error:#}"),
    }
}

/// 1-based line of the first line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|line| line.contains(needle))
        .expect("needle in text")
        + 1
}

/// The error for `text` is one paragraph naming the file, the line of `line_needle`, the
/// key and `what`.
fn assert_error(text: &str, line_needle: &str, key: &str, what: &str) {
    let error = error_of(text, &[]);
    let line = line_of(text, line_needle);
    assert!(
        error.contains(&format!("quickstart.toml:{line}:")),
        "expected line {line}: {error}"
    );
    assert!(
        error.contains(&format!("`{key}`")),
        "expected key `{key}`: {error}"
    );
    assert!(error.contains(what), "expected `{what}`: {error}");
    assert!(!error.contains('\n'), "not one paragraph: {error}");
}

fn edit(from: &str, to: &str) -> String {
    assert!(QUICKSTART.contains(from), "fixture lacks {from:?}");
    QUICKSTART.replacen(from, to, 1)
}

#[test]
fn loads_the_quickstart() {
    let loaded = load(QUICKSTART, &[]).unwrap();
    assert_eq!(loaded.spec.stages.len(), 4);
    assert_eq!(loaded.spec.model.preset, Some(Preset::Nano));
    assert_eq!(
        loaded.spec.stages[3].method.algorithm(),
        Some(Algorithm::Ppo)
    );
    assert_eq!(
        loaded.summary(),
        "4 stages (pretrain, sft, reward, rlhf/ppo)"
    );
    assert!(loaded.path.is_absolute());
}

#[test]
fn malformed_toml() {
    let text = edit("steps = 100", "steps = = 100");
    let error = error_of(&text, &[]);
    assert!(
        error.contains(&format!(
            "quickstart.toml:{}:",
            line_of(&text, "steps = = 100")
        )),
        "{error}"
    );
    assert!(error.contains("malformed TOML"), "{error}");
}

#[test]
fn unknown_key_suggests_the_nearest() {
    assert_error(
        &edit("lr = 1e-3", "lrr = 1e-3"),
        "lrr = 1e-3",
        "stages.base.lrr",
        "did you mean `lr`?",
    );
    assert_error(
        &edit("block_size = 64", "blocksize = 64"),
        "blocksize",
        "model.blocksize",
        "did you mean `block_size`?",
    );
    assert_error(
        &edit("seed = 1", "sed = 1"),
        "sed = 1",
        "sed",
        "did you mean `seed`?",
    );
    assert_error(
        &edit("top_k = 20", "topk = 20"),
        "topk",
        "report.sampling.topk",
        "did you mean `top_k`?",
    );
}

#[test]
fn wrong_types() {
    assert_error(
        &edit("steps = 100", "steps = \"many\""),
        "steps = \"many\"",
        "stages.base.steps",
        "invalid type",
    );
    assert_error(
        &edit("lr = 1e-3", "lr = \"fast\""),
        "lr = \"fast\"",
        "stages.base.lr",
        "expected a number",
    );
    assert_error(
        &edit("steps = 100", "steps = -5"),
        "steps = -5",
        "stages.base.steps",
        "-5",
    );
    assert_error(
        &edit("data = \"corpus.txt\"", "data = 3"),
        "data = 3",
        "stages.base.data",
        "a path, a { path, weight } table, or a list of them",
    );
}

#[test]
fn out_of_range_values() {
    assert_error(
        &edit("lr = 1e-3", "lr = -1e-3"),
        "lr = -1e-3",
        "stages.base.lr",
        "expected a number > 0",
    );
    assert_error(
        &edit("lr = 1e-3", "lr = 0.0"),
        "lr = 0.0",
        "stages.base.lr",
        "> 0",
    );
    assert_error(
        &edit("steps = 100", "steps = 0"),
        "steps = 0",
        "stages.base.steps",
        "> 0",
    );
    let text = edit("steps = 100", "steps = 100\nbatch_size = 0");
    assert_error(&text, "batch_size = 0", "stages.base.batch_size", "> 0");
    assert_error(
        &edit("block_size = 64", "block_size = 500"),
        "block_size",
        "model.block_size",
        "1..=128",
    );
    assert_error(
        &edit("block_size = 64", "block_size = 0"),
        "block_size",
        "model.block_size",
        "found 0",
    );
    assert_error(
        &edit("vocab_size = 512", "vocab_size = 10"),
        "vocab_size",
        "tokenizer.vocab_size",
        "16..=8192",
    );
    assert_error(
        &edit("warmup_steps = 10", "warmup_steps = 100"),
        "warmup_steps",
        "stages.base.warmup_steps",
        "fewer warmup steps",
    );
    let text = edit("warmup_steps = 10", "warmup_steps = 10\nval_fraction = 0.7");
    assert_error(
        &text,
        "val_fraction",
        "stages.base.val_fraction",
        "[0, 0.5]",
    );
    let text = edit("warmup_steps = 10", "warmup_steps = 10\nbetas = [0.9, 1.0]");
    assert_error(&text, "betas", "stages.base.betas[1]", "[0, 1)");
    let text = edit("kind = \"rlhf\"", "kind = \"rlhf\"\ngamma = 1.5");
    assert_error(&text, "gamma", "stages.rlhf.gamma", "[0, 1]");
    assert_error(
        &edit("top_k = 20", "top_k = 20, top_p = 0.0"),
        "top_p",
        "report.sampling.top_p",
        "(0, 1]",
    );
}

#[test]
fn unknown_enum_values_list_the_valid_ones() {
    assert_error(
        &edit("preset = \"nano\"", "preset = \"nanoo\""),
        "nanoo",
        "model.preset",
        "`small`",
    );
    assert_error(
        &edit("preset = \"nano\"", "preset = \"nanoo\""),
        "nanoo",
        "model.preset",
        "did you mean `nano`?",
    );
    assert_error(
        &edit("device = \"cpu\"", "device = \"gpu\""),
        "gpu",
        "device",
        "`cuda`",
    );
    assert_error(
        &edit("kind = \"pretrain\"", "kind = \"pretrian\""),
        "pretrian",
        "stages.base.kind",
        "did you mean `pretrain`?",
    );
    assert_error(
        &edit("algorithm = \"ppo\"", "algorithm = \"ppp\""),
        "ppp",
        "stages.rlhf.algorithm",
        "`grpo`",
    );
    let text = edit(
        "algorithm = \"ppo\"",
        "algorithm = \"grpo\"\nchecker = \"exakt\"",
    );
    assert_error(
        &text,
        "exakt",
        "stages.rlhf.checker",
        "did you mean `exact`?",
    );
}

#[test]
fn grpo_takes_the_char_f1_checker_and_other_methods_refuse_it() {
    let text = edit(
        "algorithm = \"ppo\"",
        "algorithm = \"grpo\"\nchecker = \"char_f1\"",
    );
    let loaded = load(&text, &[]).unwrap();
    match &loaded.spec.stages[3].method {
        Method::Rlhf(RlhfKeys::Grpo(keys)) => assert_eq!(keys.checker, Checker::CharF1),
        other => panic!("expected a grpo stage, got {other:?}"),
    }
    let text = edit(
        "algorithm = \"ppo\"",
        "algorithm = \"ppo\"\nchecker = \"char_f1\"",
    );
    assert_error(
        &text,
        "char_f1",
        "stages.rlhf.checker",
        "only used by rlhf stages with algorithm `grpo`",
    );
}

#[test]
fn ptx_data_is_a_key_of_rlhf_stages_only_and_its_coef_needs_it() {
    let text = edit(
        "algorithm = \"ppo\"",
        "algorithm = \"ppo\"\nptx_data = \"$DATA/demo/sft.jsonl\"\nptx_coef = 0.5",
    );
    let loaded = load(&text, &[]).unwrap();
    let stage = &loaded.spec.stages[3];
    let data = stage.ptx_data.as_ref().expect("a ptx anchor");
    assert!(data.ends_with("demo/sft.jsonl"), "{data:?}");
    assert_eq!(stage.ptx_coef, 0.5);
    assert!(loaded.resolved_toml.contains("ptx_coef = 0.5"));
    let text = edit("algorithm = \"ppo\"", "algorithm = \"ppo\"\nptx_coef = 2.0");
    assert_error(&text, "ptx_coef", "stages.rlhf.ptx_coef", "add ptx_data");
    let text = edit(
        "algorithm = \"ppo\"",
        "algorithm = \"ppo\"\nptx_data = \"$DATA/demo/sft.jsonl\"\nptx_coef = -1.0",
    );
    assert_error(
        &text,
        "ptx_coef",
        "stages.rlhf.ptx_coef",
        "expected a number > 0",
    );
    let text = edit(
        "kind = \"sft\"",
        "kind = \"sft\"\nptx_data = \"corpus.txt\"",
    );
    assert_error(
        &text,
        "ptx_data",
        "stages.assistant.ptx_data",
        "only used by rlhf stages",
    );
    // Without it, nothing is written: the run ids of earlier specs stay as they were.
    assert!(!load(QUICKSTART, &[]).unwrap().resolved_toml.contains("ptx"));
}

#[test]
fn val_group_is_a_key_of_the_methods_that_read_records() {
    // Every method reads records or prompts it can hold groups of out.
    let text = edit(
        "algorithm = \"ppo\"",
        "algorithm = \"ppo\"\nval_group = \"group\"",
    );
    let loaded = load(&text, &[]).unwrap();
    assert_eq!(loaded.spec.stages[3].val_group.as_deref(), Some("group"));
    assert!(loaded.resolved_toml.contains("val_group = \"group\""));
    // With a held-out file named, a split of `data` would go unused.
    let text = edit(
        "kind = \"sft\"",
        "kind = \"sft\"\nval_group = \"group\"\nval_data = \"corpus.txt\"",
    );
    assert_error(
        &text,
        "val_group",
        "stages.assistant.val_group",
        "already names the held-out file",
    );
    let text = edit("kind = \"sft\"", "kind = \"sft\"\nval_grup = \"group\"");
    assert_error(
        &text,
        "val_grup",
        "stages.assistant.val_grup",
        "did you mean `val_group`?",
    );
    // Without it, nothing is written: the run ids of earlier specs stay as they were.
    assert!(!load(QUICKSTART, &[])
        .unwrap()
        .resolved_toml
        .contains("val_group"));
}

#[test]
fn missing_keys_point_at_their_table() {
    let text = edit("block_size = 64\n", "");
    assert_error(&text, "[model]", "model", "missing key `block_size`");
    let text = edit("name = \"rm\"\n", "");
    let error = error_of(&text, &[]);
    assert!(
        error.contains(&format!(
            ":{}:1: `stages[2]`: missing key `name`",
            line_of(&text, "kind = \"reward\"") - 1
        )),
        "{error}"
    );
    let error = error_of(&edit("name = \"quickstart\"\n", ""), &[]);
    assert!(
        error.ends_with("quickstart.toml:1:1: missing key `name`"),
        "{error}"
    );
}

#[test]
fn duplicate_stage_names() {
    let text = edit("name = \"assistant\"", "name = \"base\"");
    let error = error_of(&text, &[]);
    let line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("name = \"base\""))
        .nth(1)
        .unwrap()
        .0
        + 1;
    assert!(
        error.contains(&format!("quickstart.toml:{line}:")),
        "{error}"
    );
    assert!(error.contains("duplicate stage name `base`"), "{error}");
}

#[test]
fn from_must_name_an_earlier_stage() {
    assert_error(
        &edit("from = \"base\"", "from = \"bse\""),
        "bse",
        "stages.assistant.from",
        "did you mean `base`?",
    );
    let text = edit(
        "kind = \"pretrain\"",
        "kind = \"pretrain\"\nfrom = \"assistant\"",
    );
    assert_error(
        &text,
        "from = \"assistant\"",
        "stages.base.from",
        "comes later",
    );
    assert_error(
        &edit("from = \"base\"", "from = \"assistant\""),
        "from = \"assistant\"",
        "stages.assistant.from",
        "itself",
    );
    // reward and rlhf stages must start from something: pointed at their header.
    let text = QUICKSTART.replacen(
        "from = \"assistant\"\ndata = [\"prefs.jsonl\"]",
        "data = [\"prefs.jsonl\"]",
        1,
    );
    let error = error_of(&text, &[]);
    assert!(
        error.contains(&format!(":{}:", line_of(&text, "name = \"rm\"") - 1)),
        "{error}"
    );
    assert!(error.contains("`stages.rm.from`"), "{error}");
}

#[test]
fn reward_model_must_be_an_earlier_reward_stage() {
    let text = edit("reward_model = \"rm\"", "reward_model = \"assistant\"");
    assert_error(
        &text,
        "reward_model",
        "stages.rlhf.reward_model",
        "kind `reward`",
    );
    assert_error(
        &edit("reward_model = \"rm\"", "reward_model = \"rmm\""),
        "rmm",
        "stages.rlhf.reward_model",
        "did you mean `rm`?",
    );
    let text = edit("from = \"base\"", "from = \"base\"\nreward_model = \"rm\"");
    assert_error(
        &text,
        "reward_model = \"rm\"",
        "stages.assistant.reward_model",
        "only used by rlhf",
    );
}

#[test]
fn algorithm_rules() {
    let text = edit("algorithm = \"ppo\"\n", "");
    let error = error_of(&text, &[]);
    assert!(
        error.contains("`stages.rlhf.algorithm`") && error.contains("`ppo`, `dpo`, `grpo`"),
        "{error}"
    );
    assert!(
        error.contains(&format!(":{}:", line_of(&text, "name = \"rlhf\"") - 1)),
        "{error}"
    );
    let text = edit("from = \"base\"", "from = \"base\"\nalgorithm = \"dpo\"");
    assert_error(
        &text,
        "algorithm = \"dpo\"",
        "stages.assistant.algorithm",
        "only for rlhf",
    );
    let error = error_of(&edit("reward_model = \"rm\"\n", ""), &[]);
    assert!(
        error.contains("`stages.rlhf.reward_model`") && error.contains("ppo needs `reward_model`"),
        "{error}"
    );
    let error = error_of(&edit("prompts = \"prompts.jsonl\"\n", ""), &[]);
    assert!(
        error.contains("`stages.rlhf.prompts`") && error.contains("ppo needs `prompts`"),
        "{error}"
    );
    let text = edit("algorithm = \"ppo\"", "algorithm = \"grpo\"")
        .replace("prompts = \"prompts.jsonl\"\n", "");
    assert!(error_of(&text, &[]).contains("grpo needs `prompts`"));
    let text = edit("algorithm = \"ppo\"", "algorithm = \"dpo\"")
        .replace("reward_model = \"rm\"\n", "")
        .replace("prompts = \"prompts.jsonl\"\n", "");
    assert!(error_of(&text, &[]).contains("dpo needs `data`"));
    let with_data = text.replace(
        "algorithm = \"dpo\"",
        "algorithm = \"dpo\"\ndata = \"prefs.jsonl\"",
    );
    assert!(load(&with_data, &[]).is_ok());
}

#[test]
fn stage_keys_follow_the_method() {
    // Another method's key says which method takes it.
    let text = edit("algorithm = \"ppo\"", "algorithm = \"ppo\"\nbeta = 0.2");
    assert_error(
        &text,
        "beta = 0.2",
        "stages.rlhf.beta",
        "only used by rlhf stages with algorithm `dpo` or `kto`, not by a ppo stage",
    );
    let text = edit("kind = \"pretrain\"", "kind = \"pretrain\"\nkl_coef = 0.1");
    assert_error(&text, "kl_coef", "stages.base.kl_coef", "`ppo` or `grpo`");
    // A misspelt key is matched against the keys of the stage's own method.
    let text = edit("algorithm = \"ppo\"", "algorithm = \"ppo\"\ngama = 0.9");
    assert_error(&text, "gama", "stages.rlhf.gama", "did you mean `gamma`?");
    let text = edit("from = \"base\"", "from = \"base\"\ngama = 0.9");
    let error = error_of(&text, &[]);
    assert!(
        error.contains("unknown key `gama` in [[stages]] (sft)") && !error.contains("gamma"),
        "{error}"
    );
    // Spelt right, so no suggestion: `beta` is DPO's, not a misspelt `betas`.
    let text = edit("algorithm = \"ppo\"", "algorithm = \"ppo\"\nbeta = 0.2");
    assert!(!error_of(&text, &[]).contains("betas"));
    // Methods are named by what selects them: an algorithm, or a stage kind.
    let text = edit(
        "kind = \"pretrain\"",
        "kind = \"pretrain\"\ntemperature = 0.5",
    );
    let error = error_of(&text, &[]);
    assert!(
        error.contains(
            "`temperature` is only used by rlhf stages with algorithm `ppo` or `grpo`, \
             and feedback stages, not by a pretrain stage"
        ),
        "{error}"
    );
    // Another method's key is an error at its default value too.
    let text = edit("kind = \"pretrain\"", "kind = \"pretrain\"\nppo_epochs = 4");
    assert_error(
        &text,
        "ppo_epochs",
        "stages.base.ppo_epochs",
        "`ppo` or `grpo`",
    );
    // The same holds for `--set`, which names its argument.
    let error = error_of(QUICKSTART, &["stages.rlhf.beta=0.2"]);
    assert!(
        error.contains("(--set `stages.rlhf.beta=0.2`)") && error.contains("algorithm `dpo`"),
        "{error}"
    );
}

#[test]
fn a_runs_resolved_spec_loads_again_with_the_same_run_id() {
    // The resolved spec writes other methods' keys at their defaults (`beta` in the PPO
    // stage); those change nothing, so the saved file is a valid experiment again.
    let project = Project::new();
    let first = project.load(QUICKSTART, &[]).unwrap();
    assert!(first.resolved_toml.contains("beta = 0.1"));
    let again = project.load(&first.resolved_toml, &[]).unwrap();
    assert_eq!(again.run_id, first.run_id);
    // A setting that differs from the default is still another method's key.
    let changed = first.resolved_toml.replacen("beta = 0.1", "beta = 0.3", 1);
    assert!(error_of(&changed, &[]).contains("only used by rlhf stages with algorithm `dpo`"));
}

#[test]
fn training_stages_need_data() {
    let text = edit("data = \"corpus.txt\"\n", "");
    let error = error_of(&text, &[]);
    assert!(
        error.contains("`stages.base.data`") && error.contains("a pretrain stage needs `data`"),
        "{error}"
    );
    assert!(
        error.contains(&format!(":{}:", line_of(&text, "name = \"base\"") - 1)),
        "{error}"
    );
}

#[test]
fn report_compare_names_existing_stages() {
    let text = edit("\"assistant\", \"rlhf\"]", "\"assistant\", \"rlfh\"]");
    assert_error(
        &text,
        "compare",
        "report.compare[2]",
        "did you mean `rlhf`?",
    );
    let text = edit("candidates = [\"过山车\", \"大风车\"]", "candidates = []");
    assert_error(
        &text,
        "candidates",
        "report.probes[0].candidates",
        "at least one candidate",
    );
}

#[test]
fn report_is_optional() {
    let text = &QUICKSTART[..QUICKSTART.find("[report]").unwrap()];
    let loaded = load(text, &[]).unwrap();
    assert_eq!(
        loaded.spec.report,
        crate::spec::schema::ReportSpec::default()
    );
}

#[test]
fn sets_override_by_stage_name() {
    let sets = [
        "stages.assistant.lr=3e-4",
        "model.preset=small",
        "report.sampling.temperature=0.5",
        "seed=7",
    ];
    let loaded = load(QUICKSTART, &sets).unwrap();
    assert_eq!(loaded.spec.stages[1].lr, 3e-4);
    assert_eq!(loaded.spec.stages[0].lr, 1e-3);
    assert_eq!(loaded.spec.model.preset, Some(Preset::Small));
    assert_eq!(loaded.spec.report.sampling.temperature, 0.5);
    assert_eq!(loaded.spec.report.sampling.top_k, 20);
    assert_eq!(loaded.spec.seed, 7);
    assert_eq!(loaded.sets, sets.to_vec());
}

#[test]
fn bad_set_values_name_the_argument() {
    let error = error_of(QUICKSTART, &["stages.base.lr=-1"]);
    assert!(
        error.contains("quickstart.toml (--set `stages.base.lr=-1`)"),
        "{error}"
    );
    assert!(
        error.contains("`stages.base.lr`: expected a number > 0"),
        "{error}"
    );
    let error = error_of(QUICKSTART, &["stages.base.steps=many"]);
    assert!(
        error.contains("--set `stages.base.steps=many`") && error.contains("invalid type"),
        "{error}"
    );
    let error = error_of(QUICKSTART, &["stages.base.lrr=1"]);
    assert!(error.contains("did you mean `lr`?"), "{error}");
    let error = error_of(QUICKSTART, &["stages.sft.lr=1"]);
    assert!(
        error.contains("no stage named `sft`") && error.contains("`assistant`"),
        "{error}"
    );
    // Keys the set did not touch keep their line numbers.
    let text = edit("lr = 1e-3", "lr = -1.0");
    let error = error_of(&text, &["seed=3", "stages.rm.steps=5"]);
    assert!(
        error.contains(&format!("quickstart.toml:{}:", line_of(&text, "lr = -1.0"))),
        "{error}"
    );
}

#[test]
fn paths_resolve_against_the_spec_folder_and_data_root() {
    let project = Project::new();
    let loaded = project.load(QUICKSTART, &[]).unwrap();
    let stages = &loaded.spec.stages;
    assert_eq!(
        stages[0].data_paths(),
        vec![project.spec_dir().join("corpus.txt")]
    );
    assert_eq!(
        stages[1].data_paths(),
        vec![project.data_root().join("demo/sft.jsonl")]
    );
    assert_eq!(
        stages[3].prompts.as_deref(),
        Some(project.spec_dir().join("prompts.jsonl").as_path())
    );

    let text = edit("$DATA/demo/sft.jsonl", "$DATA/missing/*.jsonl");
    let error = format!("{:#}", project.load(&text, &[]).unwrap_err());
    assert!(
        error.contains(&format!("quickstart.toml:{}:", line_of(&text, "missing"))),
        "{error}"
    );
    assert!(
        error.contains("`stages.assistant.data") && error.contains("does not exist"),
        "{error}"
    );
}

#[test]
fn run_id_is_stable_and_tracks_values() {
    let project = Project::new();
    let first = project.load(QUICKSTART, &[]).unwrap();
    let again = project.load(QUICKSTART, &[]).unwrap();
    assert_eq!(first.run_id, again.run_id);
    assert_eq!(first.run_id.len(), 12);
    assert!(first.run_id.chars().all(|c| c.is_ascii_hexdigit()));
    // The same value written differently, or set to what it already was: same run.
    let reformatted = project
        .load(
            &QUICKSTART.replace("lr = 1e-3", "lr   =   0.001 # peak"),
            &[],
        )
        .unwrap();
    assert_eq!(reformatted.run_id, first.run_id);
    let same = project.load(QUICKSTART, &["stages.base.lr=0.001"]).unwrap();
    assert_eq!(same.run_id, first.run_id);
    let changed = project.load(QUICKSTART, &["stages.base.lr=0.002"]).unwrap();
    assert_ne!(changed.run_id, first.run_id);
    // Writing a default out explicitly does not change the run either.
    let explicit = project
        .load(&edit("lr = 1e-3", "lr = 1e-3\nbatch_size = 16"), &[])
        .unwrap();
    assert_eq!(explicit.run_id, first.run_id);
}

#[test]
fn resolved_toml_has_every_default_and_reads_back() {
    let loaded = load(QUICKSTART, &[]).unwrap();
    let text = &loaded.resolved_toml;
    for key in [
        "min_lr = 0.0001",
        "batch_size = 16",
        "val_fraction = 0.1",
        "kl_coef = 0.05",
        "top_p = 1.0",
    ] {
        assert!(text.contains(key), "{key} missing from\n{text}");
    }
    let back: Experiment = toml::from_str(text).unwrap();
    assert_eq!(back, loaded.spec);
    assert_eq!(back.report.probes[0].candidates, vec!["过山车", "大风车"]);
}

#[test]
fn expands_files_folders_and_globs() {
    let project = Project::new();
    let dir = project.spec_dir();
    for name in ["b.toml", "a.toml", "notes.txt"] {
        std::fs::write(dir.join(name), "").unwrap();
    }
    let glob = dir.join("*.toml").to_string_lossy().into_owned();
    let files =
        expand_spec_args(&[glob, dir.join("b.toml").to_string_lossy().into_owned()]).unwrap();
    assert_eq!(files, vec![dir.join("a.toml"), dir.join("b.toml")]);
    let folder = expand_spec_args(&[dir.to_string_lossy().into_owned()]).unwrap();
    assert_eq!(folder, files);

    let empty = dir.join("poetry-*.toml").to_string_lossy().into_owned();
    let error = expand_spec_args(std::slice::from_ref(&empty))
        .unwrap_err()
        .to_string();
    assert!(error.contains(&empty), "{error}");
    let missing = dir.join("nope.toml").to_string_lossy().into_owned();
    assert!(expand_spec_args(std::slice::from_ref(&missing))
        .unwrap_err()
        .to_string()
        .contains(&missing));
}

/// The quickstart with one judge: prefers the windmill, dislikes the roller coaster, on
/// prompts about the amusement park.
fn with_judge(rules: &str) -> String {
    format!("{QUICKSTART}\n[judges.fun]\n{rules}\n")
}

const FUN: &str =
    "prefer = [\"大风车\"]\navoid = [\"过山车\"]\nends_with = \"。\"\napplies_to = \"游乐园\"";

#[test]
fn judges_load_and_leave_other_run_ids_alone() {
    let project = Project::new();
    let plain = project.load(QUICKSTART, &[]).unwrap();
    assert!(plain.spec.judges.is_empty());
    assert!(
        !plain.resolved_toml.contains("judges"),
        "{}",
        plain.resolved_toml
    );
    let judged = project.load(&with_judge(FUN), &[]).unwrap();
    let fun = &judged.spec.judges["fun"];
    assert_eq!(fun.prefer, vec!["大风车"]);
    assert_eq!(fun.ends_with, vec!["。"], "one string is a list of one");
    assert_eq!(fun.threshold, 0.5);
    assert_eq!(fun.regex, None);
    assert_ne!(judged.run_id, plain.run_id);
    // The resolved form writes the judge out and loads again as the same run.
    let text = &judged.resolved_toml;
    assert!(
        text.contains("[judges.fun]") && text.contains("threshold = 0.5"),
        "{text}"
    );
    assert!(
        !text.contains("regex") && !text.contains("min_chars"),
        "{text}"
    );
    let again = project.load(text, &[]).unwrap();
    assert_eq!(again.spec, judged.spec);
    assert_eq!(again.run_id, judged.run_id);
}

#[test]
fn a_judge_needs_a_rule() {
    let text = with_judge("threshold = 0.6\napplies_to = \"游乐园\"");
    assert_error(
        &text,
        "[judges.fun]",
        "judges.fun",
        "judge `fun` has no rule",
    );
    let text = format!("{QUICKSTART}\n[judges.\"a b\"]\nprefer = \"x\"\n");
    assert_error(&text, "[judges.", "judges.a b", "a judge name may only use");
}

#[test]
fn report_eval_names_a_declared_judge_and_a_chat_baseline() {
    let eval = |keys: &str| {
        let text = with_judge(FUN);
        let at = text.find("sampling = {").unwrap();
        let line = format!("eval = {{ held_out = \"assistant\", {keys} }}\n");
        format!("{}{line}{}", &text[..at], &text[at..])
    };
    assert_error(
        &eval("judge = \"fnu\""),
        "eval =",
        "report.eval.judge",
        "no judge `fnu`; the judges are fun",
    );
    assert_error(
        &eval("judge = \"fun\", samples = 0"),
        "eval =",
        "report.eval.samples",
        "a whole number > 0",
    );
    // Read from `ReportEval`'s declarations, as a stage key's range is from its field.
    assert_error(
        &eval("limit = 0"),
        "eval =",
        "report.eval.limit",
        "a whole number > 0",
    );
    assert_error(
        &eval("judge = \"fun\", baseline = \"rm\""),
        "eval =",
        "report.eval.baseline",
        "no stage named `rm`",
    );
    let text = eval("judge = \"fun\", samples = 2, baseline = \"rlhf\"");
    assert!(
        Project::new().load(&text, &[]).is_ok(),
        "{}",
        error_of(&text, &[])
    );
}

/// QUICKSTART with a feedback stage `rate` (its keys: `keys`) before the report, the
/// judge `fun`, and `tail` stage tables after it.
fn with_feedback(keys: &str, tail: &str) -> String {
    let at = QUICKSTART.find("[report]").unwrap();
    format!(
            "{}[[stages]]\nname = \"rate\"\nkind = \"feedback\"\nprompts = \"prompts.jsonl\"\n{keys}\n\n{tail}\n{}\n[judges.fun]\n{FUN}\n",
            &QUICKSTART[..at],
            &QUICKSTART[at..]
        )
}

#[test]
fn feedback_stages_are_checked_where_they_are_written() {
    let ok = with_feedback(
        "from = \"assistant\"\njudge = \"fun\"\nsamples = 4\nnoise = 0.25",
        "",
    );
    assert!(
        Project::new().load(&ok, &[]).is_ok(),
        "{}",
        error_of(&ok, &[])
    );
    let bad = |keys: &str| with_feedback(keys, "");
    assert_error(
        &bad("from = \"assistant\"\njudge = \"nope\""),
        "judge = \"nope\"",
        "stages.rate.judge",
        "no judge `nope`; the judges are fun",
    );
    assert_error(
        &bad("from = \"assistant\"\njudge = \"fun\"\nnoise = 0.7"),
        "noise = 0.7",
        "stages.rate.noise",
        "expected a number in [0, 0.5], found 0.7",
    );
    assert_error(
        &bad("from = \"assistant\"\njudge = \"fun\"\nsamples = 1"),
        "samples = 1",
        "stages.rate.samples",
        "expected a whole number >= 2, found 1",
    );
    assert_error(
        &bad("from = \"rm\"\njudge = \"fun\""),
        "from = \"rm\"",
        "stages.rate.from",
        "`rm` is a reward stage; a feedback stage rates the answers of a chat model",
    );
    // Without `from`, the error points at the stage's table.
    let e = error_of(&bad("judge = \"fun\""), &[]);
    assert!(
        e.contains("`stages.rate.from`") && e.contains("set `from` to an earlier stage"),
        "{e}"
    );
    let reads = |data: &str| {
        let tail = format!("[[stages]]\nname = \"kto\"\nkind = \"rlhf\"\nalgorithm = \"kto\"\nfrom = \"assistant\"\ndata = \"{data}\"\n");
        with_feedback("from = \"assistant\"\njudge = \"fun\"", &tail)
    };
    let text = reads("@rate/feedback.jsonl");
    assert!(
        Project::new().load(&text, &[]).is_ok(),
        "{}",
        error_of(&text, &[])
    );
    assert_error(
        &reads("@rm/feedback.jsonl"),
        "@rm/",
        "stages.kto.data",
        "no stage named `rm`",
    );
    assert_error(
        &reads("@rate/answers.jsonl"),
        "@rate/answers",
        "stages.kto.data",
        "a feedback stage writes feedback.jsonl and preferences.jsonl",
    );
    let from_ratings = with_feedback(
        "from = \"assistant\"\njudge = \"fun\"",
        "[[stages]]\nname = \"more\"\nkind = \"sft\"\nfrom = \"rate\"\ndata = \"x.jsonl\"\n",
    );
    assert_error(
        &from_ratings,
        "from = \"rate\"",
        "stages.more.from",
        "`rate` is a feedback stage: it writes ratings, not a model",
    );
}

#[test]
fn judge_patterns_must_compile() {
    let text = with_judge(&format!("{FUN}\nregex = \"(北京\""));
    assert_error(&text, "regex =", "judges.fun.regex", "unclosed group");
    assert_error(
        &text,
        "regex =",
        "judges.fun.regex",
        "invalid regular expression \"(北京\"",
    );
    let text = with_judge(&FUN.replace("游乐园", "游乐园["));
    assert_error(
        &text,
        "applies_to",
        "judges.fun.applies_to",
        "unclosed character class",
    );
}

#[test]
fn judge_numbers_and_phrases_are_checked() {
    let text = with_judge(&format!("{FUN}\nthreshold = 1.5"));
    assert_error(&text, "threshold", "judges.fun.threshold", "[0, 1]");
    let text = with_judge(&format!("{FUN}\nthreshold = -0.1"));
    assert_error(&text, "threshold", "judges.fun.threshold", "found -0.1");
    let text = with_judge("min_chars = 5\nmax_chars = 2");
    assert_error(
        &text,
        "min_chars",
        "judges.fun.min_chars",
        "at most max_chars (2), found 5",
    );
    assert!(load(&with_judge("min_chars = 2\nmax_chars = 2"), &[]).is_ok());
    let text = with_judge("avoid = [\"过山车\", \"\"]");
    assert_error(&text, "avoid", "judges.fun.avoid[1]", "empty string");
    let text = with_judge(&format!("{FUN}\nprefr = \"x\""));
    assert_error(&text, "prefr", "judges.fun.prefr", "did you mean `prefer`?");
    let text = with_judge("prefer = 3");
    assert_error(
        &text,
        "prefer",
        "judges.fun.prefer",
        "a string or a list of strings",
    );
}

#[test]
fn sets_reach_a_judge_by_name() {
    let text = with_judge(FUN);
    let loaded = load(
        &text,
        &["judges.fun.prefer=摩天轮", "judges.fun.max_chars=20"],
    )
    .unwrap();
    assert_eq!(loaded.spec.judges["fun"].prefer, vec!["摩天轮"]);
    assert_eq!(loaded.spec.judges["fun"].max_chars, Some(20));
    let loaded = load(&text, &["judges.fun.avoid=[\"a\", \"b\"]"]).unwrap();
    assert_eq!(loaded.spec.judges["fun"].avoid, vec!["a", "b"]);
    let error = error_of(&text, &["judges.fun.threshold=2"]);
    assert!(
        error.contains(
            "(--set `judges.fun.threshold=2`): `judges.fun.threshold`: expected a number in [0, 1]"
        ),
        "{error}"
    );
    let error = error_of(&text, &["judges.fnu.prefer=x"]);
    assert!(error.contains("did you mean `fun`?"), "{error}");
    let error = error_of(&text, &["judges.fun.prefr=x"]);
    assert!(error.contains("did you mean `prefer`?"), "{error}");
    let error = error_of(QUICKSTART, &["judges.fun.prefer=x"]);
    assert!(error.contains("no [judges.NAME] tables"), "{error}");
}

#[test]
fn data_root_comes_from_flag_env_or_default() {
    // The only test that touches GPTLAB_DATA.
    std::env::set_var("GPTLAB_DATA", "/from/env");
    assert_eq!(data_root_from(None), PathBuf::from("/from/env"));
    assert_eq!(
        data_root_from(Some(PathBuf::from("/flag"))),
        PathBuf::from("/flag")
    );
    std::env::remove_var("GPTLAB_DATA");
    assert_eq!(data_root_from(None), PathBuf::from("datasets"));
}

/// Temperature has one rule wherever answers are sampled: >= 0, 0 being greedy. GRPO adds
/// a rule of its own, since a group of greedy answers to one prompt is all the same.
#[test]
fn temperature_is_at_least_zero_everywhere_and_grpo_needs_more() {
    let greedy_ppo = edit(
        "algorithm = \"ppo\"",
        "algorithm = \"ppo\"\ntemperature = 0.0",
    );
    assert!(load(&greedy_ppo, &[]).is_ok());
    assert!(load(QUICKSTART, &["report.sampling.temperature=0.0"]).is_ok());
    assert_error(
        &edit(
            "algorithm = \"ppo\"",
            "algorithm = \"ppo\"\ntemperature = -1.0",
        ),
        "temperature = -1.0",
        "stages.rlhf.temperature",
        "expected a number >= 0, found -1",
    );
    assert_error(
        &edit("temperature = 0.8", "temperature = -0.5"),
        "temperature = -0.5",
        "report.sampling.temperature",
        "expected a number >= 0, found -0.5",
    );
    assert_error(
        &edit(
            "algorithm = \"ppo\"",
            "algorithm = \"grpo\"\ntemperature = 0.0",
        ),
        "temperature = 0.0",
        "stages.rlhf.temperature",
        "at temperature 0 (greedy) they are all the same",
    );
}
