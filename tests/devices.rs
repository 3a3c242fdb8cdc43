//! Every command that opens a stage takes `--device`, and defaults to the run's own device. In
//! a build without the `cuda` feature each one refuses `cuda` with the one-paragraph error
//! that says what is missing, before it opens anything.

mod common;
use common::*;

/// What the error must name, whichever command meets it.
fn assert_refused(what: &str, o: &std::process::Output) {
    let t = text(o);
    assert!(!o.status.success(), "{what}: succeeded on cuda:\n{t}");
    assert!(!t.contains("panicked"), "{what}: panicked:\n{t}");
    for needed in [
        "built without CUDA support",
        "--features cuda",
        "driver",
        "--device cpu",
    ] {
        assert!(t.contains(needed), "{what}: `{needed}` missing from:\n{t}");
    }
    assert_eq!(
        t.trim().lines().count(),
        1,
        "{what}: not one paragraph:\n{t}"
    );
}

#[cfg(not(feature = "cuda"))]
#[test]
fn every_command_refuses_cuda_in_a_build_without_it() {
    let tmp = tempdir();
    let run = tmp.path().join("run");
    let stage = run.join("base");
    std::fs::create_dir_all(&stage).unwrap();
    let s = stage.to_str().unwrap();
    let r = run.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["generate", s, "--prompt", "你好"],
        vec!["chat", s],
        vec!["eval", s, "--data", "x.jsonl"],
        vec!["probe", s, "--prompt", "你好"],
        vec!["logits", s, "--tokens", "1,2"],
        vec!["serve", r, "--port", "0"],
        vec!["export", s, "--out", "exported"],
        vec!["bench", "--presets", "nano"],
    ];
    for args in &commands {
        let mut with_flag = args.clone();
        with_flag.extend(["--device", "cuda"]);
        assert_refused(&args[0], &gptlab(&with_flag, tmp.path()));
    }
    // Without the flag, a stage runs where its run trained.
    std::fs::write(run.join("spec.toml"), "name = \"r\"\ndevice = \"cuda\"\n").unwrap();
    for args in commands.iter().filter(|a| a[0] != "bench") {
        assert_refused(
            &format!("{} (run's device)", args[0]),
            &gptlab(args, tmp.path()),
        );
    }
    let spec = repo().join("experiments/quickstart.toml");
    let o = gptlab(
        &["run", spec.to_str().unwrap(), "--set", "device=cuda"],
        tmp.path(),
    );
    assert_refused("run", &o);
}
