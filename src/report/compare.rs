//! Several runs on one page: each (stage, metric) chart overlays every run, runs are named by
//! the spec keys that differ between them, final metrics are ranked, and the generations of
//! every run sit side by side.

use super::chart::{palette_hex, palette_name, wants_log_y, write_chart, ChartSpec, Series};
use super::figures::{axis_label, file_stem, metric_group};
use super::html;
use super::run::{final_metric, stage_names, RunData};
use super::spec_keys::{flatten_spec, label, varied_keys};
use super::sweep_charts;
use super::widgets::{cell, escape, figure, table, RenderedChart};
use super::{format, write_atomic};
use crate::results;
use anyhow::{bail, Context, Result};
use std::cmp::Ordering;
use std::path::{Path, PathBuf};

/// How deep below a given folder run folders are searched (`results/<experiment>/<run>`).
const SEARCH_DEPTH: usize = 3;

/// Writes `out/compare.html`, `out/compare.md` and the overlay charts (SVG + PNG) into `out`.
/// `runs` are run folders, or folders holding run folders (any subfolder with a meta.json).
/// `sort_by` is `stage/metric` or a metric of the last stage; a leading `-` sorts descending;
/// the default is the last stage's `val/loss`, ascending.
pub fn write_comparison(runs: &[PathBuf], out: &Path, sort_by: Option<&str>) -> Result<PathBuf> {
    let options = CompareOptions {
        sort_by,
        ..CompareOptions::default()
    };
    write_comparison_with(runs, out, &options)
}

/// What a comparison charts first: final metrics against the keys that vary.
#[derive(Debug, Clone, Default)]
pub struct CompareOptions<'a> {
    /// As for [`write_comparison`].
    pub sort_by: Option<&'a str>,
    /// The varied spec keys (a sweep's); `None`: the keys that differ between the runs.
    pub keys: Option<&'a [String]>,
    /// `stage/metric` to chart against the keys; empty: each stage's val/loss and evaluation.
    pub metrics: &'a [String],
}

/// [`write_comparison`] with the sweep's keys and metrics.
pub fn write_comparison_with(
    runs: &[PathBuf],
    out: &Path,
    options: &CompareOptions,
) -> Result<PathBuf> {
    let sort_by = options.sort_by;
    let dirs = expand_runs(runs)?;
    if dirs.is_empty() {
        bail!(
            "no run folders (folders with a {}) found under {}",
            results::META_FILE,
            list(runs)
        );
    }
    let mut loaded = Vec::new();
    for d in &dirs {
        loaded.push(
            RunData::load(d)
                .with_context(|| format!("cannot read the run folder {}", d.display()))?,
        );
    }
    let stages = stage_names(&loaded);
    let sort = match sort_by {
        Some(text) => SortKey::parse(Some(text), &stages),
        None => SortKey::default_for(&loaded, &stages),
    };
    if let Some(key) = &sort {
        loaded.sort_by(|a, b| key.compare(a, b));
    }
    let labels = run_labels(&loaded);

    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let key_charts = sweep_charts::write_key_charts(&loaded, options.keys, options.metrics, out)?;
    let mut charts: Vec<(String, Vec<RenderedChart>)> = Vec::new();
    for stage in &stages {
        let mut rendered = Vec::new();
        for spec in overlay_charts(stage, &loaded, &labels) {
            let stem = format!("{}-{}", file_stem(stage), file_stem(&spec.series_metric));
            let (svg_path, _) = write_chart(&spec.chart, out, &stem)?;
            let svg = std::fs::read_to_string(&svg_path)
                .with_context(|| format!("cannot read back {}", svg_path.display()))?;
            rendered.push(RenderedChart {
                title: spec.chart.title.clone(),
                svg,
                png: format!("{stem}.png"),
            });
        }
        if !rendered.is_empty() {
            charts.push((stage.clone(), rendered));
        }
    }

    let page = Comparison {
        runs: &loaded,
        labels: &labels,
        stages: &stages,
        sort: sort.as_ref(),
        charts: &charts,
        key_charts: &key_charts,
    };
    let html_path = out.join(results::COMPARE_HTML);
    write_atomic(&html_path, page.html().as_bytes())?;
    write_atomic(&out.join(results::COMPARE_MD), page.markdown().as_bytes())?;
    Ok(html_path)
}

/// Run folders named directly, or found below the given folders, each once, in path order
/// within each given folder.
pub fn expand_runs(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for p in paths {
        if !p.is_dir() {
            bail!("{} is not a folder", p.display());
        }
        let mut here = Vec::new();
        collect_runs(p, SEARCH_DEPTH, &mut here)?;
        here.sort();
        for d in here {
            if !found.contains(&d) {
                found.push(d);
            }
        }
    }
    Ok(found)
}

fn collect_runs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    if dir.join(results::META_FILE).is_file() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    if depth == 0 {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_runs(&path, depth - 1, out)?;
        }
    }
    Ok(())
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each run's legend name: the spec keys that differ between the runs, or the run id when
/// nothing differs (or the same label would name two runs).
pub fn run_labels(runs: &[RunData]) -> Vec<String> {
    let flats: Vec<_> = runs
        .iter()
        .map(|r| r.spec.as_ref().map(flatten_spec).unwrap_or_default())
        .collect();
    let keys = varied_keys(&flats);
    let mut labels: Vec<String> = flats
        .iter()
        .zip(runs)
        .map(|(f, r)| {
            if keys.is_empty() {
                r.run_id()
            } else {
                label(f, &keys)
            }
        })
        .collect();
    for i in 0..labels.len() {
        if labels.iter().filter(|l| **l == labels[i]).count() > 1 {
            labels[i] = format!("{} ({})", labels[i], runs[i].run_id());
        }
    }
    labels
}

struct Overlay {
    series_metric: String,
    chart: ChartSpec,
}

/// One chart per metric of `stage`, with one series per run (empty where the run lacks it, so
/// a run keeps its colour in every chart).
fn overlay_charts(stage: &str, runs: &[RunData], labels: &[String]) -> Vec<Overlay> {
    let tables: Vec<_> = runs
        .iter()
        .map(|r| {
            r.stages
                .iter()
                .find(|s| s.name == stage)
                .and_then(|s| s.metrics.as_ref())
        })
        .collect();
    let mut metrics: Vec<String> = Vec::new();
    for t in tables.iter().flatten() {
        for m in t.metric_names() {
            if !metrics.iter().any(|x| x == m) {
                metrics.push(m.to_string());
            }
        }
    }
    metrics
        .into_iter()
        .map(|metric| {
            let series: Vec<Series> = tables
                .iter()
                .zip(labels)
                .map(|(t, name)| Series {
                    name: name.clone(),
                    points: t.map(|t| t.series("step", &metric)).unwrap_or_default(),
                })
                .collect();
            let group = metric_group(&metric);
            let log_y = group == "loss" && wants_log_y(&series);
            let y_label = if metric.contains('/') && group != "loss" {
                metric.clone()
            } else {
                axis_label(&group)
            };
            Overlay {
                chart: ChartSpec {
                    title: format!("{stage} · {metric}"),
                    x_label: "step".into(),
                    y_label,
                    series,
                    log_y,
                    smooth: if metric == "lr" { None } else { Some(0.8) },
                    // The page's legend of runs, at the top, names every colour once; one in
                    // each chart would cover curves and repeat it a dozen times.
                    legend: false,
                },
                series_metric: metric,
            }
        })
        .collect()
}

/// Which final metric ranks the runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub stage: String,
    pub metric: String,
    pub descending: bool,
}

impl SortKey {
    /// `stage/metric`, or a metric of the last stage; `-` in front for descending;
    /// no text: the last stage's `val/loss`.
    pub fn parse(text: Option<&str>, stages: &[String]) -> Option<SortKey> {
        let last = stages.last()?;
        let Some(text) = text else {
            return Some(SortKey {
                stage: last.clone(),
                metric: "val/loss".into(),
                descending: false,
            });
        };
        let (descending, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (stage, metric) = match text.split_once('/') {
            Some((s, m)) if stages.iter().any(|x| x == s) => (s.to_string(), m.to_string()),
            _ => (last.clone(), text.to_string()),
        };
        Some(SortKey {
            stage,
            metric,
            descending,
        })
    }

    /// The last stage's `val/loss`; when no run has one there, the last stage that has it,
    /// else the last stage's `loss`.
    pub fn default_for(runs: &[RunData], stages: &[String]) -> Option<SortKey> {
        let has = |stage: &str, metric: &str| {
            runs.iter()
                .any(|r| final_metric(r, stage, metric).is_some())
        };
        let stage = stages
            .iter()
            .rev()
            .find(|s| has(s, "val/loss"))
            .map(|s| (s.clone(), "val/loss"))
            .or_else(|| stages.last().map(|s| (s.clone(), "loss")))?;
        Some(SortKey {
            stage: stage.0,
            metric: stage.1.to_string(),
            descending: false,
        })
    }

    pub fn value(&self, run: &RunData) -> Option<f64> {
        final_metric(run, &self.stage, &self.metric).filter(|v| v.is_finite())
    }

    /// Runs without the value go last, whatever the direction.
    fn compare(&self, a: &RunData, b: &RunData) -> Ordering {
        match (self.value(a), self.value(b)) {
            (Some(x), Some(y)) => {
                let o = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
                if self.descending {
                    o.reverse()
                } else {
                    o
                }
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }

    pub fn column(&self) -> String {
        format!("{}/{}", self.stage, self.metric)
    }
}

struct Comparison<'a> {
    runs: &'a [RunData],
    labels: &'a [String],
    stages: &'a [String],
    sort: Option<&'a SortKey>,
    charts: &'a [(String, Vec<RenderedChart>)],
    key_charts: &'a [RenderedChart],
}

impl Comparison<'_> {
    /// `(stage, metric)` of every final metric any run has, stage by stage.
    fn final_columns(&self) -> Vec<(String, String)> {
        let mut cols = Vec::new();
        for stage in self.stages {
            let mut metrics: Vec<&String> = self
                .runs
                .iter()
                .filter_map(|r| r.summary.get(stage))
                .flat_map(|m| m.keys())
                .collect();
            metrics.sort();
            metrics.dedup();
            // Throughput and the schedule say nothing about which run learned more.
            metrics.retain(|m| !matches!(m.as_str(), "lr" | "grad_norm" | "tok_per_sec" | "mfu"));
            cols.extend(metrics.into_iter().map(|m| (stage.clone(), m.clone())));
        }
        cols
    }

    fn prompts_and_stages(&self) -> (Vec<String>, Vec<String>) {
        let mut prompts: Vec<String> = Vec::new();
        let mut stages: Vec<String> = Vec::new();
        for r in self.runs {
            for p in r.prompts() {
                if !prompts.contains(&p) {
                    prompts.push(p);
                }
            }
            for s in r.compared_stages() {
                if !stages.contains(&s) {
                    stages.push(s);
                }
            }
        }
        (prompts, stages)
    }

    fn sort_note(&self) -> String {
        match self.sort {
            Some(k) => format!(
                "sorted by {} ({})",
                k.column(),
                if k.descending {
                    "highest first"
                } else {
                    "lowest first"
                }
            ),
            None => String::new(),
        }
    }

    fn html(&self) -> String {
        let mut b = self.html_header();
        // The answer first: final metrics against the swept keys, then the curves, the table,
        // and the long generations last.
        b.push_str(&sweep_charts::section_html(self.key_charts));
        b.push_str(&self.overlays_html());
        b.push_str(&self.html_finals());
        b.push_str(&self.html_answers());
        html::page(&format!("Comparison of {} runs", self.runs.len()), &b)
    }

    /// The title and the runs' colour legend.
    fn html_header(&self) -> String {
        let mut b = String::new();
        b.push_str(&format!(
            "<header class=\"card\">\n<h1>Comparison of {} runs</h1>\n",
            self.runs.len()
        ));
        b.push_str("<div class=\"sub\">Runs are named by the spec keys that differ between them, and coloured as here in the per-step charts.</div>\n<div class=\"legend\">");
        for (i, l) in self.labels.iter().enumerate() {
            b.push_str(&format!(
                "<span class=\"chip\" style=\"--c:{}\"><span class=\"dot\"></span>{}</span>",
                palette_hex(i),
                escape(l)
            ));
        }
        b.push_str("</div>\n</header>\n");
        b
    }

    /// One row per run: status, cost and the final metrics (the sort column in bold).
    fn html_finals(&self) -> String {
        let mut b = String::new();
        let cols = self.final_columns();
        b.push_str(&format!("<section id=\"finals\">\n<h2>Final metrics <small>{}</small></h2>\n<div class=\"scroll\"><table>\n<thead><tr><th>run</th><th>run id</th><th>status</th><th class=\"num\">tokens</th><th class=\"num\">wall time</th>", escape(&self.sort_note())));
        for (s, m) in &cols {
            b.push_str(&format!(
                "<th class=\"num\">{}<br>{}</th>",
                escape(s),
                escape(m)
            ));
        }
        b.push_str("</tr></thead>\n<tbody>\n");
        for (i, r) in self.runs.iter().enumerate() {
            let cost = html::RunCost::of(r);
            let status = match &r.meta {
                Some(m) if m.complete => "complete",
                _ => "incomplete",
            };
            b.push_str(&format!(
                "<tr><td><span class=\"chip\" style=\"--c:{}\"><span class=\"dot\"></span>{}</span></td><td><code>{}</code></td><td>{status}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
                palette_hex(i),
                escape(&self.labels[i]),
                escape(&r.run_id()),
                cost.tokens.map(format::count).unwrap_or_else(|| "—".into()),
                cost.wall_s.map(format::duration).unwrap_or_else(|| "—".into()),
            ));
            for (s, m) in &cols {
                let v = r
                    .summary
                    .get(s)
                    .and_then(|x| x.get(m))
                    .map(|v| format::number(*v))
                    .unwrap_or_else(|| "—".into());
                let strong = self.sort.is_some_and(|k| &k.stage == s && &k.metric == m);
                if strong {
                    b.push_str(&format!("<td class=\"num\"><b>{v}</b></td>"));
                } else {
                    b.push_str(&format!("<td class=\"num\">{v}</td>"));
                }
            }
            b.push_str("</tr>\n");
        }
        b.push_str("</tbody></table></div>\n</section>\n");
        b
    }

    /// Each prompt's answers, a row per run and a column per stage.
    fn html_answers(&self) -> String {
        let mut b = String::new();
        let (prompts, stages) = self.prompts_and_stages();
        if !prompts.is_empty() {
            // Long, so last and collapsed.
            b.push_str("<section id=\"answers\">\n<details>\n<summary><h2>Generations side by side</h2></summary>\n");
            for p in &prompts {
                // Any run that sampled it knows a conversation's turns.
                let turns = self
                    .runs
                    .iter()
                    .map(|r| r.turns(p))
                    .max_by_key(Vec::len)
                    .unwrap_or_default();
                let asked = turns.last().cloned().unwrap_or_else(|| p.clone());
                b.push_str(&format!("<h3>{}</h3>\n<div class=\"scroll\"><table class=\"answers\"><thead><tr><th>run</th>", html::prompt_html(&turns)));
                for s in &stages {
                    // Colours name runs on this page, so stage columns stay neutral.
                    b.push_str(&format!(
                        "<th class=\"stage\" style=\"--c:#d0d7de\">{}</th>",
                        escape(s)
                    ));
                }
                b.push_str("</tr></thead><tbody>\n");
                for (i, r) in self.runs.iter().enumerate() {
                    b.push_str(&format!("<tr><th class=\"prompt\"><span class=\"chip\" style=\"--c:{}\"><span class=\"dot\"></span>{}</span></th>", palette_hex(i), escape(&self.labels[i])));
                    for s in &stages {
                        match r.completion(s, p) {
                            Some(c) => b.push_str(&format!(
                                "<td><span class=\"p\">{}</span>{}</td>",
                                escape(&asked),
                                escape(c)
                            )),
                            None => b.push_str("<td class=\"none\">—</td>"),
                        }
                    }
                    b.push_str("</tr>\n");
                }
                b.push_str("</tbody></table></div>\n");
            }
            b.push_str("</details>\n</section>\n");
        }
        b
    }

    /// Each stage's per-step overlays.
    fn overlays_html(&self) -> String {
        let mut b = String::new();
        for (stage, charts) in self.charts {
            b.push_str(&format!(
                "<section class=\"stage\"><h2>{}</h2>\n<div class=\"grid\">\n",
                escape(stage)
            ));
            for c in charts {
                b.push_str(&figure(c));
            }
            b.push_str("</div>\n</section>\n");
        }
        b
    }

    fn markdown(&self) -> String {
        let mut md = format!("# Comparison of {} runs\n\nRuns are named by the spec keys that differ between them, and coloured so in the per-step charts:\n\n", self.runs.len());
        for (i, l) in self.labels.iter().enumerate() {
            md.push_str(&format!("- {}: {}\n", palette_name(i), cell(l)));
        }
        md.push('\n');
        md.push_str(&sweep_charts::section_markdown(self.key_charts));
        let cols = self.final_columns();
        md.push_str(&format!("## Final metrics\n\n{}\n\n", self.sort_note()));
        let mut header: Vec<String> = vec!["run".into(), "run id".into()];
        header.extend(cols.iter().map(|(s, m)| cell(&format!("{s}/{m}"))));
        let rows: Vec<Vec<String>> = self
            .runs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut row = vec![cell(&self.labels[i]), format!("`{}`", r.run_id())];
                row.extend(cols.iter().map(|(s, m)| {
                    r.summary
                        .get(s)
                        .and_then(|x| x.get(m))
                        .map(|v| format::number(*v))
                        .unwrap_or_else(|| "—".into())
                }));
                row
            })
            .collect();
        md.push_str(&table(&header, &rows));

        let (prompts, stages) = self.prompts_and_stages();
        if !prompts.is_empty() {
            md.push_str("## Generations side by side\n\n");
            for p in &prompts {
                md.push_str(&format!("### {}\n\n", cell(p)));
                let mut header = vec!["run".to_string()];
                header.extend(stages.iter().map(|s| cell(s)));
                let rows: Vec<Vec<String>> =
                    self.runs
                        .iter()
                        .enumerate()
                        .map(|(i, r)| {
                            let mut row = vec![cell(&self.labels[i])];
                            row.extend(stages.iter().map(|s| {
                                r.completion(s, p).map(cell).unwrap_or_else(|| "—".into())
                            }));
                            row
                        })
                        .collect();
                md.push_str(&table(&header, &rows));
            }
        }
        for (stage, charts) in self.charts {
            md.push_str(&format!("## {stage}\n\n"));
            for c in charts {
                md.push_str(&format!("![{}]({})\n\n", cell(&c.title), c.png));
            }
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn comparison_names_runs_by_differing_keys_only() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("results");
        fixture::write_run(&results.join("quickstart/aaa"), "aaa", 1e-3, "nano");
        fixture::write_run(&results.join("quickstart/bbb"), "bbb", 3e-3, "nano");
        fixture::write_run(&results.join("other/ccc"), "ccc", 1e-3, "small");
        let out = dir.path().join("cmp");
        let page = write_comparison(std::slice::from_ref(&results), &out, None).unwrap();
        let html = std::fs::read_to_string(&page).unwrap();
        assert!(
            !html.contains("src=\"http") && !html.contains("<script") && !html.contains("<link")
        );

        let svg = std::fs::read_to_string(out.join("base-loss.svg")).unwrap();
        assert!(
            html.contains("model.preset=small stages.base.lr=0.001"),
            "the legend names the differing keys"
        );
        assert!(html.contains("model.preset=nano stages.base.lr=0.003"));
        assert!(
            !html.contains("min_lr"),
            "min_lr follows lr: it names no run"
        );
        for same in ["seed=", "device=", "stages.assistant", "tokenizer."] {
            assert!(
                !html.contains(same) && !svg.contains(same),
                "legend holds a key that is the same in all runs: {same}"
            );
        }
        assert!(out.join("base-loss.png").is_file() && out.join("rlhf-objective-kl.svg").is_file());
        assert!(html.matches("<svg").count() >= 10);
        assert!(
            html.contains("中国的首都是北京。"),
            "generations side by side"
        );
        let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
        assert!(md.contains("![base · loss](base-loss.png)"));
    }

    #[test]
    fn overlays_leave_naming_runs_to_the_page_and_no_legend_covers_the_plot() {
        use crate::report::legend::svg_geometry::{data_box, legend_boxes, texts};
        let dir = tempfile::tempdir().unwrap();
        for (id, lr, preset) in [
            ("aaa", 1e-3, "nano"),
            ("bbb", 3e-3, "nano"),
            ("ccc", 1e-3, "small"),
        ] {
            fixture::write_run(&dir.path().join(id), id, lr, preset);
        }
        let out = dir.path().join("cmp");
        write_comparison(&[dir.path().to_path_buf()], &out, None).unwrap();
        let runs: Vec<RunData> = ["aaa", "bbb", "ccc"]
            .iter()
            .map(|id| RunData::load(&dir.path().join(id)).unwrap())
            .collect();
        let labels = run_labels(&runs);
        let mut overlays = 0;
        for entry in std::fs::read_dir(&out).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".svg") || name.starts_with("vs-") {
                continue;
            }
            overlays += 1;
            let svg = std::fs::read_to_string(&path).unwrap();
            let (x0, y0, x1, y1) = data_box(&svg).unwrap_or_else(|| panic!("{name}: no curves"));
            for b in legend_boxes(&svg) {
                let overlaps = b.0 < x1 && b.2 > x0 && b.1 < y1 && b.3 > y0;
                assert!(
                    !overlaps,
                    "{name}: a legend box {b:?} over the plot {:?}",
                    (x0, y0, x1, y1)
                );
            }
            for l in &labels {
                assert!(texts(&svg, l).is_empty(), "{name} names run {l} itself");
            }
        }
        assert!(overlays >= 10, "{overlays} overlay charts");
    }

    #[test]
    fn runs_are_sorted_by_the_chosen_final_metric() {
        let dir = tempfile::tempdir().unwrap();
        let slow = dir.path().join("slow");
        let fast = dir.path().join("fast");
        fixture::write_run(&slow, "slow", 1e-4, "nano");
        fixture::write_run(&fast, "fast", 1e-2, "nano");
        let runs: Vec<RunData> = [&slow, &fast]
            .iter()
            .map(|d| RunData::load(d).unwrap())
            .collect();
        let stages = stage_names(&runs);
        let key = SortKey::parse(Some("base/val/loss"), &stages).unwrap();
        assert_eq!(
            (key.stage.as_str(), key.metric.as_str(), key.descending),
            ("base", "val/loss", false)
        );
        assert!(key.value(&runs[1]).unwrap() < key.value(&runs[0]).unwrap());
        let out = dir.path().join("cmp");
        write_comparison(&[slow.clone(), fast.clone()], &out, Some("base/val/loss")).unwrap();
        let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
        let first = md.find("stages.base.lr=0.01").unwrap();
        let second = md.find("stages.base.lr=0.0001").unwrap();
        assert!(first < second, "lower val/loss first");
        write_comparison(&[slow, fast], &out, Some("-base/val/loss")).unwrap();
        let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
        assert!(
            md.find("stages.base.lr=0.0001").unwrap() < md.find("stages.base.lr=0.01").unwrap(),
            "descending"
        );
        // rlhf and rm log no val/loss: the default falls back to the last stage that does.
        assert_eq!(
            SortKey::parse(None, &stages).unwrap().column(),
            "rlhf/val/loss"
        );
        assert_eq!(
            SortKey::default_for(&runs, &stages).unwrap().column(),
            "assistant/val/loss"
        );
    }

    #[test]
    fn no_runs_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err =
            write_comparison(&[dir.path().to_path_buf()], &dir.path().join("o"), None).unwrap_err();
        assert!(err.to_string().contains("no run folders"));
    }
}
