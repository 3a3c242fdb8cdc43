//! Every stage's weights are the same bit for bit whatever the number of compute threads.
//! The sweep's pilot (`sweep/pilot.rs`) relies on it: it trains the stages the points share
//! on every core, and the points then take them as if each had trained them on its one core.
//! The quickstart, all stages, with fewer steps, at 1 and at 2 threads.

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn quickstart(threads: &str, dir: &Path) -> PathBuf {
    short_quickstart(dir, "RAYON_NUM_THREADS", threads)
}

#[test]
fn weights_do_not_depend_on_the_thread_count() {
    let (one, two) = (tempdir(), tempdir());
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| quickstart("1", one.path()));
        let b = s.spawn(|| quickstart("2", two.path()));
        (a.join().unwrap(), b.join().unwrap())
    });
    let mut compared = 0;
    for entry in std::fs::read_dir(&a).unwrap() {
        let stage = entry.unwrap().path();
        let weights = stage.join("model.safetensors");
        if !weights.exists() {
            continue;
        }
        let name = stage.file_name().unwrap();
        let other = b.join(name).join("model.safetensors");
        assert!(
            std::fs::read(&weights).unwrap() == std::fs::read(&other).unwrap(),
            "{name:?}: the weights trained at 1 and at 2 threads differ"
        );
        compared += 1;
    }
    assert_eq!(
        compared, 4,
        "base, assistant, rm and rlhf each have weights"
    );
}
