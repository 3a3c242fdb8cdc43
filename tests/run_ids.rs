//! The shipped experiments keep their run ids: a run id is how re-running a spec finds its
//! finished run, so a change to how specs resolve must not move them. Run ids hash the
//! resolved spec, whose data paths are absolute; the pinned values are of the resolved text
//! with this checkout's folder written as `<repo>` and the data root as `<data>`, so they hold
//! in any checkout. The data root is an empty folder with the folders the specs' `$DATA/...` paths
//! name (only a path's folder must exist for a spec to load).

mod common;
use gptlab::spec::{load_spec, run_id_of, LoadOptions};

/// Measured on main before stage reuse (commit 7c2104f).
const PINNED: &[(&str, &str)] = &[
    ("amusement-park.toml", "b512e723aa7e"),
    ("feedback-kl.toml", "299ff57c86b3"),
    ("feedback.toml", "97988b060f51"),
    // Added with #35; its base's id is its checkpoint's content hash, so it holds anywhere.
    ("finetune-gpt2.toml", "b66624ff5444"),
    ("poetry.toml", "290576dd949b"),
    ("quickstart.toml", "4f372708ceee"),
    ("shakespeare-char.toml", "670edbc7da40"),
];

#[test]
fn the_shipped_experiments_keep_their_run_ids() {
    let repo = common::repo();
    let data = common::tempdir();
    let opts = LoadOptions {
        data_root: data.path().to_path_buf(),
        sets: vec![],
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(repo.join("experiments")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            for (_, rest) in text
                .match_indices("$DATA/")
                .map(|(i, _)| text.split_at(i + 6))
            {
                let folder = rest.split('/').next().unwrap();
                std::fs::create_dir_all(data.path().join(folder)).unwrap();
            }
            let loaded = load_spec(&path, &opts).unwrap();
            let text = (loaded.resolved_toml)
                .replace(data.path().to_str().unwrap(), "<data>")
                .replace(repo.to_str().unwrap(), "<repo>");
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            found.push((name, run_id_of(&text)));
        }
    }
    found.sort();
    let pinned: Vec<(String, String)> = PINNED
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(found, pinned, "a shipped experiment's run id changed");
}
