//! The JSON Schema (schema/*.schema.json) checked with a real client, taplo's CLI, as an
//! editor uses it: every shipped experiment and sweep passes `taplo lint`, and each bad case
//! that `gptlab validate` refuses is flagged by taplo too, so the editor and the CLI agree.
//! Skipped with a note when taplo is missing outside CI (.ci/run installs it).

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn taplo() -> Option<PathBuf> {
    let path = std::env::var_os("TAPLO")
        .map(PathBuf::from)
        .unwrap_or("taplo".into());
    // `taplo --version` exits 1 in @taplo/cli 0.7; a started process that names itself will do.
    let found = Command::new(&path).arg("--version").output();
    found
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).starts_with("taplo"))
        .then_some(path)
}

fn lint(taplo: &Path, files: &[PathBuf]) -> Output {
    let mut command = Command::new(taplo);
    // No network: the schema is the local file the `#:schema` line names.
    command
        .args(["lint", "--no-auto-config", "--colors", "never"])
        .args(files);
    output_within(&mut command, Duration::from_secs(60))
}

fn shipped() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for folder in ["experiments", "experiments/sweeps"] {
        for entry in std::fs::read_dir(repo().join(folder)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_shipped_file_names_the_schema_and_passes_taplo() {
    let files = shipped();
    assert!(files.len() >= 10, "{files:?}");
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let sweep = file.parent().unwrap().ends_with("sweeps");
        let directive = match sweep {
            true => "#:schema ../../schema/sweep.schema.json\n",
            false => "#:schema ../schema/experiment.schema.json\n",
        };
        assert!(
            text.starts_with(directive),
            "{} must start with {directive}",
            file.display()
        );
    }
    let Some(taplo) = taplo() else {
        return skip(
            "every_shipped_file_names_the_schema_and_passes_taplo",
            "taplo",
        );
    };
    let out = lint(&taplo, &files);
    assert!(out.status.success(), "taplo lint failed:\n{}", text(&out));
}

/// Each case: (what it is, edit of quickstart.toml, what taplo says). `gptlab validate`
/// refuses every one of them as well.
const BAD: &[(&str, &str, &str, &str)] = &[
    (
        "an unknown key",
        "warmup_steps = 50",
        "warmup_stepz = 50",
        "'warmup_stepz' was unexpected",
    ),
    (
        "another method's key",
        "algorithm = \"ppo\"",
        "algorithm = \"ppo\"\nbeta = 0.2",
        "'beta' was unexpected",
    ),
    (
        "an out-of-range value",
        "kl_coef = 0.05",
        "kl_coef = -1.0",
        "less than the minimum",
    ),
    (
        "a wrong type",
        "steps = 40",
        "steps = \"forty\"",
        "is not of type \"integer\"",
    ),
    (
        "a missing required key",
        "reward_model = \"rm\"",
        "",
        "\"reward_model\" is a required property",
    ),
    (
        "an unknown algorithm",
        "algorithm = \"ppo\"",
        "algorithm = \"pop\"",
        "is not one of",
    ),
    (
        "an unknown report key",
        "[report]",
        "[report]\ncompre = []",
        "'compre' was unexpected",
    ),
];

#[test]
fn taplo_flags_what_validate_refuses() {
    let taplo = taplo();
    if taplo.is_none() {
        skip("taplo_flags_what_validate_refuses", "taplo");
    }
    let quickstart = std::fs::read_to_string(repo().join("experiments/quickstart.toml")).unwrap();
    // The files name the schema and the data by absolute paths, so they may sit anywhere.
    let folder = tempdir();
    let schema = repo().join("schema/experiment.schema.json");
    // The spec written elsewhere: its schema and data paths made absolute.
    let relocated = |text: &str| {
        text.replacen(
            "../schema/",
            &format!("{}/", schema.parent().unwrap().display()),
            1,
        )
        .replace(
            "\"../datasets/",
            &format!("\"{}/datasets/", repo().display()),
        )
    };
    for (what, old, new, says) in BAD {
        assert!(
            quickstart.contains(old),
            "{what}: quickstart.toml has no `{old}`"
        );
        let spec_text = relocated(&quickstart.replacen(old, new, 1));
        let file = folder.path().join("bad.toml");
        std::fs::write(&file, &spec_text).unwrap();
        let validated = gptlab(&["validate", file.to_str().unwrap()], folder.path());
        assert!(
            !validated.status.success(),
            "{what}: gptlab validate accepts it"
        );
        let Some(taplo) = &taplo else { continue };
        let out = lint(taplo, &[file.clone()]);
        let said = text(&out);
        assert!(!out.status.success(), "{what}: taplo accepts it");
        assert!(said.contains(says), "{what}: taplo says\n{said}");
    }
    // The unedited file passes both.
    let spec_text = relocated(&quickstart);
    let file = folder.path().join("good.toml");
    std::fs::write(&file, &spec_text).unwrap();
    let validated = gptlab(&["validate", file.to_str().unwrap()], folder.path());
    assert!(validated.status.success(), "{}", common::text(&validated));
    if let Some(taplo) = &taplo {
        let out = lint(taplo, &[file]);
        assert!(out.status.success(), "{}", common::text(&out));
    }
}
