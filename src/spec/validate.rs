//! Checks that serde cannot express: which inputs each stage's method needs (while
//! converting to typed stages), value ranges, and how stages refer to each other. Each
//! problem names a canonical key path (`stages[1].lr`) that `errors.rs` locates in the file;
//! the first problem found is reported.

use regex::Regex;

use super::flat::FlatStage;
use super::kinds::StageKind;
use super::paths::{rating_path, RATING_FILES};
use super::problem::require;
use super::problem::{Checked, Problem};
use super::schema::{Experiment, JudgeSpec, ReportEval};
use super::stage::{Method, Stage};
use super::stage_keys::{check_declared, check_ranges};
use super::suggest;

/// The typed experiment: every stage converted to its method, or the first stage's problem.
pub fn typed(flat: Experiment<FlatStage>) -> Result<Experiment, Problem> {
    flat.try_map_stages(|index, stage| {
        stage.into_stage().map_err(|problem| Problem {
            path: format!("stages[{index}].{}", problem.key),
            message: problem.message,
        })
    })
}

pub fn check(spec: &Experiment) -> Checked {
    check_name("name", &spec.name, "an experiment", true)?;
    super::pretrained::check_spec(spec)?;
    check_model(spec)?;
    require(!spec.stages.is_empty(), "stages", || {
        "an experiment needs at least one [[stages]] table".into()
    })?;
    for (index, stage) in spec.stages.iter().enumerate() {
        check_stage(spec, index, stage)?;
    }
    check_report(spec)?;
    for (name, judge) in &spec.judges {
        check_judge(name, judge)?;
    }
    Ok(())
}

/// Names end up in folder names and `--set` paths: keep them to safe characters.
fn check_name(path: &str, name: &str, what: &str, allow_dot: bool) -> Checked {
    let valid =
        |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || (allow_dot && c == '.');
    let allowed = if allow_dot {
        "letters, digits, `-`, `_` and `.`"
    } else {
        "letters, digits, `-` and `_`"
    };
    require(!name.is_empty() && name.chars().all(valid), path, || {
        format!("{what} name may only use {allowed}, found {name:?}")
    })
}

/// The block size fits the preset and the vocabulary its tokenizer kind. A pretrained run's
/// preset and tokenizer are the checkpoint's: checked when its folder is read.
fn check_model(spec: &Experiment) -> Checked {
    let block_size = spec.model.block_size;
    if let Some(preset) = spec.model.preset {
        let max = preset.max_context();
        require((1..=max).contains(&block_size), "model.block_size", || {
            format!(
                "expected 1..={max} (the context of preset `{}`), found {block_size}",
                preset.as_str()
            )
        })?;
    }
    let Some(tokenizer) = &spec.tokenizer else {
        return Ok(());
    };
    let range = tokenizer.kind.vocab_range();
    let vocab_size = tokenizer.vocab_size;
    require(range.contains(&vocab_size), "tokenizer.vocab_size", || {
        format!(
            "expected {}..={} for a {} tokenizer, found {vocab_size}",
            range.start(),
            range.end(),
            tokenizer.kind.as_str()
        )
    })
}

fn check_stage(spec: &Experiment, index: usize, stage: &Stage) -> Checked {
    let at = |key: &str| format!("stages[{index}].{key}");
    check_name(&at("name"), &stage.name, "a stage", false)?;
    if let Some(first) = spec.stages[..index]
        .iter()
        .position(|s| s.name == stage.name)
    {
        return Err(Problem {
            path: at("name"),
            message: format!(
                "duplicate stage name `{}` (stage {} has it too); stage names must be unique",
                stage.name,
                first + 1
            ),
        });
    }
    check_numbers(stage, &at)?;
    check_from(spec, index, stage, &at)?;
    check_reward_model(spec, index, stage, &at)?;
    check_feedback(spec, stage, &at)?;
    check_rating_paths(spec, index, stage, &at)
}

/// A feedback stage rates the answers of a chat model with a declared judge.
fn check_feedback(spec: &Experiment, stage: &Stage, at: &dyn Fn(&str) -> String) -> Checked {
    let Method::Feedback(keys) = &stage.method else {
        return Ok(());
    };
    let names: Vec<&str> = spec.judges.keys().map(|k| k.as_str()).collect();
    let judge = keys.judge_name();
    require(
        spec.judges.contains_key(judge),
        at("judge"),
        || match names.is_empty() {
            true => format!("no judge `{judge}`: declare it as a [judges.{judge}] table"),
            false => format!("no judge `{judge}`; the judges are {}", names.join(", ")),
        },
    )?;
    let from = stage.from.as_deref().unwrap_or_default();
    let source = spec.stages.iter().find(|s| s.name == from);
    require(
        source.is_some_and(|s| matches!(s.method.kind(), StageKind::Sft | StageKind::Rlhf)),
        at("from"),
        || {
            let kind = source
                .map(|s| s.method.kind().to_string())
                .unwrap_or_default();
            format!("`{from}` is a {kind} stage; a feedback stage rates the answers of a chat model: an sft or rlhf stage")
        },
    )
}

/// `@NAME/FILE` in `data` names the ratings an earlier feedback stage wrote.
fn check_rating_paths(
    spec: &Experiment,
    index: usize,
    stage: &Stage,
    at: &dyn Fn(&str) -> String,
) -> Checked {
    for path in stage.data_paths().iter().chain(&stage.val_data) {
        let Some((name, file)) = rating_path(path) else {
            continue;
        };
        let feedback: Vec<Stage> = spec.stages[..index]
            .iter()
            .filter(|s| s.method.kind() == StageKind::Feedback)
            .cloned()
            .collect();
        require(feedback.iter().any(|s| s.name == name), at("data"), || {
            format!(
                "{}: {}",
                path.display(),
                no_such_stage(name, &feedback, "earlier feedback stages")
            )
        })?;
        require(RATING_FILES.contains(&file), at("data"), || {
            format!(
                "{}: a feedback stage writes {}",
                path.display(),
                RATING_FILES.join(" and ")
            )
        })?;
    }
    Ok(())
}

/// Each key's declared range (`flat.rs`), then the rules between keys.
fn check_numbers(stage: &Stage, at: &dyn Fn(&str) -> String) -> Checked {
    check_ranges(stage, at)?;
    if let Some(lora) = &stage.lora {
        check_declared(lora, &|key| at(&format!("lora.{key}")))?;
    }
    require(stage.min_lr() <= stage.lr, at("min_lr"), || {
        format!(
            "expected at most lr ({}), found {}",
            stage.lr,
            stage.min_lr()
        )
    })?;
    require(stage.warmup_steps < stage.steps, at("warmup_steps"), || {
        format!(
            "expected fewer warmup steps than steps ({}), found {}",
            stage.steps, stage.warmup_steps
        )
    })?;
    match &stage.method {
        Method::Pretrain | Method::Sft | Method::Reward | Method::Feedback(_) => Ok(()),
        Method::Pretrained => Ok(()),
        // A rollout's sampling keys are stage keys: their declared ranges are checked above.
        Method::Rlhf(keys) => keys.spec().check(at),
    }
}

/// `from` must name an earlier stage: the runner trains stages in order and hands each one
/// the finished checkpoint of its `from`.
fn check_from(
    spec: &Experiment,
    index: usize,
    stage: &Stage,
    at: &dyn Fn(&str) -> String,
) -> Checked {
    let kind = stage.method.kind();
    let Some(from) = &stage.from else {
        return require(
            !matches!(
                kind,
                StageKind::Reward | StageKind::Rlhf | StageKind::Feedback
            ),
            at("from"),
            || {
                format!(
                    "a {kind} stage starts from a trained model: set `from` to an earlier stage"
                )
            },
        );
    };
    require(from != &stage.name, at("from"), || {
        format!("stage `{from}` cannot start from itself")
    })?;
    match spec.stages.iter().position(|s| &s.name == from) {
        Some(source) if spec.stages[source].method.kind() == StageKind::Feedback => Err(Problem {
            path: at("from"),
            message: format!("`{from}` is a feedback stage: it writes ratings, not a model; start from the stage it rated, and name its ratings in `data` as \"@{from}/preferences.jsonl\" or \"@{from}/feedback.jsonl\""),
        }),
        Some(source) => require(source < index, at("from"), || {
            format!("`{from}` comes later in the file; `from` must name an earlier stage so that it is trained first")
        }),
        None => Err(Problem {
            path: at("from"),
            message: no_such_stage(from, &spec.stages[..index], "earlier stages"),
        }),
    }
}

/// A `reward_model` must name an earlier stage of kind `reward`.
fn check_reward_model(
    spec: &Experiment,
    index: usize,
    stage: &Stage,
    at: &dyn Fn(&str) -> String,
) -> Checked {
    let Some(name) = stage.method.reward_model() else {
        return Ok(());
    };
    let is_reward = |s: &&Stage| s.method == Method::Reward;
    let earlier = &spec.stages[..index];
    match earlier.iter().find(|s| s.name == name) {
        Some(found) => require(is_reward(&found), at("reward_model"), || {
            format!("`{name}` is a {} stage; `reward_model` must name a stage of kind `reward`", found.method.kind())
        }),
        None if spec.stages[index..].iter().any(|s| s.name == name) => Err(Problem {
            path: at("reward_model"),
            message: format!("`{name}` comes later in the file; `reward_model` must name an earlier stage of kind `reward`"),
        }),
        None => {
            let rewards: Vec<Stage> = earlier.iter().filter(is_reward).cloned().collect();
            Err(Problem { path: at("reward_model"), message: no_such_stage(name, &rewards, "earlier reward stages") })
        }
    }
}

fn check_report(spec: &Experiment) -> Checked {
    let report = &spec.report;
    for (k, name) in report.compare.iter().enumerate() {
        require(
            spec.stages.iter().any(|s| &s.name == name),
            format!("report.compare[{k}]"),
            || no_such_stage(name, &spec.stages, "the stages"),
        )?;
    }
    for (k, prompt) in report.prompts.iter().enumerate() {
        if let Some(message) = prompt.problem() {
            return Err(Problem {
                path: format!("report.prompts[{k}]"),
                message,
            });
        }
    }
    for (k, probe) in report.probes.iter().enumerate() {
        require(
            !probe.candidates.is_empty(),
            format!("report.probes[{k}].candidates"),
            || "a probe needs at least one candidate continuation".into(),
        )?;
    }
    if let Some(eval) = &report.eval {
        check_report_eval(spec, eval)?;
    }
    check_declared(&report.sampling, &|key| format!("report.sampling.{key}"))
}

/// One source of questions; a held-out split of one SFT stage's data.
fn check_report_eval(spec: &Experiment, eval: &ReportEval) -> Checked {
    let one_source = eval.data.is_some() != eval.held_out.is_some();
    require(one_source, "report.eval", || {
        "expected one of `data = \"questions.jsonl\"` or `held_out = \"<sft stage>\"`".into()
    })?;
    check_declared(eval, &|key| format!("report.eval.{key}"))?;
    check_gold(spec, eval)?;
    let Some(name) = &eval.held_out else {
        return Ok(());
    };
    let sft: Vec<Stage> = spec
        .stages
        .iter()
        .filter(|s| s.method.kind() == StageKind::Sft)
        .cloned()
        .collect();
    let Some(stage) = sft.iter().find(|s| &s.name == name) else {
        return Err(Problem {
            path: "report.eval.held_out".into(),
            message: no_such_stage(name, &sft, "the sft stages"),
        });
    };
    require(
        stage.val_data.is_some() || stage.data.len() == 1,
        "report.eval.held_out",
        || {
            format!(
                "`{name}` has several data files and no val_data: name a file with `data` instead"
            )
        },
    )
}

/// Gold evaluation names a declared judge and a chat stage to compare with.
fn check_gold(spec: &Experiment, eval: &ReportEval) -> Checked {
    if let Some(judge) = &eval.judge {
        let names: Vec<&str> = spec.judges.keys().map(|k| k.as_str()).collect();
        require(
            spec.judges.contains_key(judge),
            "report.eval.judge",
            || match names.is_empty() {
                true => format!("no judge `{judge}`: declare it as a [judges.{judge}] table"),
                false => format!("no judge `{judge}`; the judges are {}", names.join(", ")),
            },
        )?;
    }
    require(
        eval.judge_prompts.is_none() || eval.judge.is_some(),
        "report.eval.judge_prompts",
        || "judge_prompts are asked only with a `judge`: add judge = \"NAME\"".into(),
    )?;
    let Some(name) = &eval.baseline else {
        return Ok(());
    };
    let chat: Vec<Stage> = spec
        .stages
        .iter()
        .filter(|s| {
            !matches!(
                s.method.kind(),
                StageKind::Pretrain | StageKind::Pretrained | StageKind::Reward
            )
        })
        .cloned()
        .collect();
    require(
        chat.iter().any(|s| &s.name == name),
        "report.eval.baseline",
        || no_such_stage(name, &chat, "the sft and rlhf stages"),
    )
}

/// A judge must say something (at least one rule), and say it in a way that can be applied:
/// patterns that compile, a threshold a score can reach, bounds that leave some length.
fn check_judge(name: &str, judge: &JudgeSpec) -> Checked {
    let at = |key: &str| format!("judges.{name}.{key}");
    // Judge names become `--set judges.NAME.key` paths and metric names.
    check_name(&format!("judges.{name}"), name, "a judge", false)?;
    require(judge.has_rule(), format!("judges.{name}"), || {
        format!("judge `{name}` has no rule: set at least one of `prefer`, `avoid`, `regex`, `min_chars`, `max_chars` or `ends_with`")
    })?;
    for (key, pattern) in [("regex", &judge.regex), ("applies_to", &judge.applies_to)] {
        if let Some(pattern) = pattern {
            compile_pattern(pattern).map_err(|message| Problem {
                path: at(key),
                message: format!("invalid regular expression {pattern:?}: {message}"),
            })?;
        }
    }
    for (key, phrases) in [
        ("prefer", &judge.prefer),
        ("avoid", &judge.avoid),
        ("ends_with", &judge.ends_with),
    ] {
        // An empty phrase is in every answer, which would make the rule a constant.
        if let Some(k) = phrases.iter().position(|p| p.is_empty()) {
            return Err(Problem {
                path: at(&format!("{key}[{k}]")),
                message: "an empty string matches every answer; remove it".into(),
            });
        }
    }
    check_declared(judge, &at)?;
    if let (Some(min), Some(max)) = (judge.min_chars, judge.max_chars) {
        require(min <= max, at("min_chars"), || {
            format!("expected at most max_chars ({max}), found {min}")
        })?;
    }
    Ok(())
}

/// A judge's pattern, compiled; on error regex's own message on one line. Its full message
/// draws a caret under the pattern over several lines, which would break the one-paragraph
/// errors, so only the `error: ...` line is kept when there is one.
pub fn compile_pattern(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|error| {
        let text = error.to_string();
        match text.lines().find_map(|line| line.strip_prefix("error: ")) {
            Some(reason) => reason.trim().to_string(),
            None => text.split_whitespace().collect::<Vec<_>>().join(" "),
        }
    })
}

/// "no stage named `x`; earlier stages are `a`, `b`; did you mean `a`?"
fn no_such_stage(name: &str, candidates: &[Stage], which: &str) -> String {
    let names: Vec<&str> = candidates.iter().map(|s| s.name.as_str()).collect();
    if names.is_empty() {
        return format!("no stage named `{name}`, and there are no {which}");
    }
    format!(
        "no stage named `{name}`; {which} are {}{}",
        suggest::list(names.clone()),
        suggest::did_you_mean(name, names)
    )
}
