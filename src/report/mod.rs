//! Charts and reports, made only from the files of a results run folder, so a report can
//! always be rebuilt from the folder alone.
//!
//! - `font`, `chart`, `bars`: plotters charts to SVG and PNG, Chinese included; `font_embed`:
//!   the glyphs a page uses, embedded in it, so Chinese renders without a CJK font installed;
//!   `draw`: what all the charts' drawing code shares
//! - `run`: everything a run folder holds; `figures`: which charts a stage gets
//! - `widgets`: the pieces every page and section is built from (rendered charts, escaping,
//!   figures, stage chips, Markdown cells and tables), below all of them
//! - `html`, `markdown`: the per-run page and its Markdown twin
//! - `spec_keys`, `compare`: the cross-run comparison; `sweep_charts`: final metrics against
//!   the swept keys, at the top of a comparison
//! - `by_task`: exact match per task of every compared stage, as grouped bars
//! - `gold`: the judge's gold rate and win rate of every compared stage, beside KL and proxy

pub mod bars;
pub mod builtin_font;
pub mod by_task;
pub mod chart;
pub mod compare;
pub mod draw;
pub mod figures;
pub mod font;
pub mod font_embed;
pub mod format;
pub mod gold;
pub mod gold_shares;
pub mod html;
pub mod legend;
pub mod markdown;
pub mod mixture;
pub mod overoptimisation;
pub mod run;
pub mod spec_keys;
pub mod sweep_charts;
pub mod text_png;
pub mod ticks;
pub mod widgets;

#[cfg(test)]
pub(crate) mod fixture;

pub use chart::{render_png, render_svg, write_chart, ChartSpec, Series};
pub use compare::{write_comparison, write_comparison_with, CompareOptions};

use crate::results;
use anyhow::{Context, Result};
use html::RunFigures;
use run::RunData;
use std::path::{Path, PathBuf};
use widgets::render_chart;

/// Writes the charts of every stage (`<stage>/*.svg|png`), `report.html` and `report.md`
/// into `run_dir`, from the files found there. Returns the path of `report.html`.
pub fn write_run_report(run_dir: &Path) -> Result<PathBuf> {
    let run = RunData::load(run_dir)
        .with_context(|| format!("cannot read the run folder {}", run_dir.display()))?;
    let mut figures = RunFigures::default();
    for stage in &run.stages {
        let Some(table) = &stage.metrics else {
            continue;
        };
        let folder = figures::file_stem(&stage.name);
        let mut rendered = Vec::new();
        for planned in figures::stage_charts(&stage.name, table) {
            rendered.push(render_chart(
                &planned.spec,
                run_dir,
                &folder,
                &planned.stem,
            )?);
        }
        figures.stages.push((stage.name.clone(), rendered));
    }
    figures.probes = probe_charts(&run, run_dir)?;
    figures.by_task = by_task::write_by_task_chart(&run, run_dir)?;
    figures.gold = gold::write_gold_chart(&run, run_dir)?;

    let html_path = run_dir.join(results::REPORT_HTML);
    write_atomic(&html_path, html::run_page(&run, &figures).as_bytes())?;
    write_atomic(
        &run_dir.join(results::REPORT_MD),
        markdown::run_markdown(&run, &figures).as_bytes(),
    )?;
    Ok(html_path)
}

/// One bar chart per (probe prompt, stage): `<stage>/probe-<n>.svg|png`.
fn probe_charts(run: &RunData, run_dir: &Path) -> Result<Vec<html::ProbeCharts>> {
    let mut prompts: Vec<String> = Vec::new();
    for p in &run.probes {
        if !prompts.contains(&p.prompt) {
            prompts.push(p.prompt.clone());
        }
    }
    let mut out = Vec::new();
    for (n, prompt) in prompts.iter().enumerate() {
        let mut charts = Vec::new();
        for probe in run
            .probes
            .iter()
            .filter(|p| &p.prompt == prompt && !p.top.is_empty())
        {
            let labels: Vec<String> = probe.top.iter().map(|t| t.token.clone()).collect();
            let values: Vec<f64> = probe.top.iter().map(|t| t.prob).collect();
            let title = format!("{} · {prompt} → ?", probe.stage);
            let mut spec = bars::BarSpec::probabilities(&title, &labels, &values);
            spec.colour = run.stage_colour(&probe.stage);
            let folder = figures::file_stem(&probe.stage);
            charts.push((
                probe.stage.clone(),
                render_chart(&spec, run_dir, &folder, &format!("probe-{}", n + 1))?,
            ));
        }
        out.push((prompt.clone(), charts));
    }
    Ok(out)
}

/// Reports use the crate's one atomic writer (temp file, fsync, rename).
pub(crate) use crate::util::write_atomic;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::MetricsWriter;

    /// External references a self-contained page must not have.
    fn assert_self_contained(html: &str) {
        for bad in ["src=\"http", "href=\"http", "<script", "<link", "@import"] {
            assert!(
                !html.contains(bad),
                "page is not self-contained: found `{bad}`"
            );
        }
        // The one url( allowed is the embedded font's data: URL (font_embed.rs).
        for (at, _) in html.match_indices("url(") {
            assert!(
                html[at..].starts_with("url(data:"),
                "page is not self-contained: found `url(` to something other than data:"
            );
        }
    }

    #[test]
    fn run_report_is_self_contained_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("quickstart/r1");
        fixture::write_run(&run, "r1", 1e-3, "nano");
        let html_path = write_run_report(&run).unwrap();
        assert_eq!(html_path, run.join("report.html"));
        let html = std::fs::read_to_string(&html_path).unwrap();
        assert_self_contained(&html);

        // The centrepiece: every prompt, and every compared stage's answer (escaped).
        for p in fixture::PROMPTS {
            assert!(html.contains(&widgets::escape(p)), "missing prompt {p}");
        }
        for answer in [
            "一种黄色的水果,香蕉是一种",
            "中国的首都是北京。",
            "北京。",
            "我是一个小助手 &lt;3 &amp; 很高兴认识你。",
        ] {
            assert!(html.contains(answer), "missing answer {answer}");
        }
        assert!(!html.contains("<3 &"), "answers must be escaped");
        let answers_at = html.find("id=\"answers\"").unwrap();
        let first_stage_at = html.find("class=\"stage\" id=\"stage-").unwrap();
        assert!(
            answers_at < first_stage_at,
            "answers come before the stage charts"
        );

        // One inline <svg> per chart file written.
        let mut chart_files = 0;
        for stage in ["base", "assistant", "rm", "rlhf"] {
            for entry in std::fs::read_dir(run.join(stage)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "svg") {
                    chart_files += 1;
                    assert!(
                        path.with_extension("png").is_file(),
                        "{} has no PNG twin",
                        path.display()
                    );
                }
            }
        }
        assert!(
            run.join("base/loss.svg").is_file()
                && run.join("base/lr.svg").is_file()
                && run.join("rlhf/objective.svg").is_file()
        );
        assert!(run.join("base/probe-1.png").is_file(), "probe bar chart");
        assert_eq!(html.matches("<svg").count(), chart_files);
        assert!(html.contains("Resolved spec") && html.contains("reward_model = &quot;rm&quot;"));
        assert!(
            html.contains("812.54k") || html.contains("813k") || html.contains("812.5k"),
            "parameter count shown"
        );

        let md = std::fs::read_to_string(run.join("report.md")).unwrap();
        assert!(
            md.contains("![base · loss](base/loss.png)"),
            "markdown links PNGs"
        );
        assert!(md.contains("| **香蕉是** |"));
        assert!(!dir.path().join("quickstart/r1/report.html.tmp").exists());
    }

    #[test]
    fn report_of_a_folder_with_only_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = MetricsWriter::create(&dir.path().join("base/metrics.csv"), &["loss"]).unwrap();
        for s in 1..=30 {
            w.log(s, s * 10, &[("loss", 3.0 / s as f64)]).unwrap();
        }
        w.flush().unwrap();
        let html = std::fs::read_to_string(write_run_report(dir.path()).unwrap()).unwrap();
        assert_self_contained(&html);
        assert!(html.contains("<svg") && !html.contains("id=\"answers\""));
        assert!(html.contains("no meta.json"));
    }
}
