//! The charts a sweep is run for: each chosen final metric against each varied spec key, one
//! line per combination of the other varied keys, the best point ringed. x is the key's values
//! (logarithmic when they span a decade or more, categories when they are not numbers).

use super::chart::{palette, Chart, Series};
use super::draw::plot_error;
use super::figures::file_stem;
use super::font::FONT_FAMILY;
use super::format;
use super::legend::{strip_height, under, LegendEntry, Swatch};
use super::run::{stage_names, RunData};
use super::spec_keys::flatten_spec;
use super::ticks::TickedAxis;
use super::widgets::{cell, figure, render_chart, RenderedChart};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 380;

/// How the key's values are laid out along x. Points carry the position, not the value:
/// log10(value) on a log axis, the category's index on a categorical one.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyAxis {
    Linear,
    Log,
    Categories(Vec<String>),
}

/// A final metric against one varied key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyChart {
    pub title: String,
    pub key: String,
    pub metric: String,
    pub axis: KeyAxis,
    /// One per combination of the other keys, points sorted by x.
    pub lines: Vec<Series>,
    /// The best point over all lines (lowest for losses, highest otherwise).
    pub best: Option<(f64, f64)>,
}

/// What the sweep file's `metrics` lists when it says nothing: each stage's final `val/loss`,
/// then each stage's overall evaluation score, as `stage/metric`.
pub fn default_metrics(runs: &[RunData]) -> Vec<String> {
    let stages: Vec<String> = stage_names(runs);
    let mut out = Vec::new();
    for metric in ["val/loss", crate::results::EVAL_EXACT_MATCH] {
        for stage in &stages {
            let has = runs
                .iter()
                .any(|r| r.summary.get(stage).is_some_and(|m| m.contains_key(metric)));
            if has {
                out.push(format!("{stage}/{metric}"));
            }
        }
    }
    out
}

/// A run's final `stage/metric`: the stage is the part before the first `/`.
pub fn final_value(run: &RunData, stage_metric: &str) -> Option<f64> {
    let (stage, metric) = stage_metric.split_once('/')?;
    run.summary
        .get(stage)?
        .get(metric)
        .copied()
        .filter(|v| v.is_finite())
}

/// Losses, bits and divergences fall as a model gets better; accuracies and rewards rise.
pub fn lower_is_better(metric: &str) -> bool {
    ["loss", "bpb", "ppl", "perplexity", "kl"]
        .iter()
        .any(|m| metric.contains(m))
}

/// One chart per (metric, key), metrics outer. Keys with a single value among `runs` are
/// skipped (they say nothing), as are metrics no run has.
pub fn key_charts(runs: &[RunData], keys: &[String], metrics: &[String]) -> Vec<KeyChart> {
    let flats: Vec<BTreeMap<String, String>> = runs
        .iter()
        .map(|r| r.spec.as_ref().map(flatten_spec).unwrap_or_default())
        .collect();
    let value = |i: usize, key: &str| flats[i].get(key).cloned().unwrap_or_else(|| "—".into());
    let keys: Vec<&String> = keys
        .iter()
        .filter(|k| (1..runs.len()).any(|i| value(i, k) != value(0, k)))
        .collect();
    let mut charts = Vec::new();
    for metric in metrics {
        for key in &keys {
            let values: Vec<String> = (0..runs.len()).map(|i| value(i, key)).collect();
            let others: Vec<String> = (0..runs.len())
                .map(|i| {
                    keys.iter()
                        .filter(|k| **k != *key)
                        .map(|k| format!("{k}={}", value(i, k)))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            let finals: Vec<Option<f64>> = runs.iter().map(|r| final_value(r, metric)).collect();
            if finals.iter().all(Option::is_none) {
                continue;
            }
            charts.push(one_chart(key, metric, &values, &others, &finals));
        }
    }
    charts
}

/// Runs `i` have `values[i]` for the key, `others[i]` names their line, `finals[i]` is y.
fn one_chart(
    key: &str,
    metric: &str,
    values: &[String],
    others: &[String],
    finals: &[Option<f64>],
) -> KeyChart {
    let axis = axis_for(values);
    let x_of = |v: &str| -> f64 {
        match &axis {
            KeyAxis::Linear => v.parse().unwrap_or(f64::NAN),
            KeyAxis::Log => v.parse::<f64>().map(f64::log10).unwrap_or(f64::NAN),
            KeyAxis::Categories(c) => c.iter().position(|x| x == v).unwrap_or(0) as f64,
        }
    };
    let mut lines: Vec<Series> = Vec::new();
    for (i, y) in finals.iter().enumerate() {
        let Some(y) = y else { continue };
        let name = if others[i].is_empty() {
            metric.to_string()
        } else {
            others[i].clone()
        };
        let point = (x_of(&values[i]), *y);
        match lines.iter_mut().find(|s| s.name == name) {
            Some(s) => s.points.push(point),
            None => lines.push(Series {
                name,
                points: vec![point],
            }),
        }
    }
    lines.sort_by(|a, b| a.name.cmp(&b.name));
    for s in &mut lines {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let all = lines.iter().flat_map(|s| s.points.iter().copied());
    let best = if lower_is_better(metric) {
        all.min_by(|a, b| a.1.total_cmp(&b.1))
    } else {
        all.max_by(|a, b| a.1.total_cmp(&b.1))
    };
    KeyChart {
        title: format!("{metric} vs {key}"),
        key: key.to_string(),
        metric: metric.to_string(),
        axis,
        lines,
        best,
    }
}

/// Numbers spanning a decade or more (all positive) get a log axis; anything that is not a
/// number makes the key categorical, in sorted order.
fn axis_for(values: &[String]) -> KeyAxis {
    let numbers: Option<Vec<f64>> = values.iter().map(|v| v.parse::<f64>().ok()).collect();
    match numbers {
        Some(n) if n.iter().all(|v| v.is_finite()) => {
            let lo = n.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = n.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if lo > 0.0 && hi / lo >= 10.0 {
                KeyAxis::Log
            } else {
                KeyAxis::Linear
            }
        }
        _ => {
            let mut c: Vec<String> = values.to_vec();
            c.sort();
            c.dedup();
            KeyAxis::Categories(c)
        }
    }
}

impl KeyChart {
    /// Tick positions (one per distinct value) and the x range with some margin.
    fn ticks(&self) -> (Vec<f64>, std::ops::Range<f64>) {
        let mut xs: Vec<f64> = match &self.axis {
            KeyAxis::Categories(c) => (0..c.len()).map(|i| i as f64).collect(),
            _ => self
                .lines
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.0))
                .collect(),
        };
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let (lo, hi) = (xs.first().copied(), xs.last().copied());
        let (lo, hi) = (lo.unwrap_or(0.0), hi.unwrap_or(1.0));
        let pad = if hi > lo { (hi - lo) * 0.08 } else { 0.5 };
        let pad = match self.axis {
            KeyAxis::Categories(_) => 0.4,
            _ => pad,
        };
        (xs, lo - pad..hi + pad)
    }

    /// The text under a tick at position `x`.
    fn tick_label(&self, x: f64) -> String {
        match &self.axis {
            KeyAxis::Linear => format::number(x),
            // 10^-3 comes back as 0.0010000000000000002: round before formatting.
            KeyAxis::Log => format::number(
                format!("{:.11e}", 10f64.powf(x))
                    .parse()
                    .unwrap_or(f64::NAN),
            ),
            KeyAxis::Categories(c) => c.get(x.round() as usize).cloned().unwrap_or_default(),
        }
    }

    fn y_range(&self) -> std::ops::Range<f64> {
        let ys: Vec<f64> = self
            .lines
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .collect();
        let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            return 0.0..1.0;
        }
        let pad = if hi > lo {
            (hi - lo) * 0.12
        } else {
            lo.abs().max(1.0) * 0.1
        };
        lo - pad..hi + pad
    }
}

impl Chart for KeyChart {
    fn title(&self) -> &str {
        &self.title
    }

    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT + strip_height(&self.legend_entries(), WIDTH))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_error)?;
        under(root, &self.legend_entries(), Swatch::Line, |area| {
            self.plot(area)
        })
    }
}

impl KeyChart {
    /// The chart itself, on the picture less the legend's strip.
    fn plot<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let text = super::chart::can_draw_text();
        let (ticks, x_range) = self.ticks();
        let mut builder = super::chart::framed(root, &self.title, 22, 74);
        let mut chart = builder
            .build_cartesian_2d(
                TickedAxis {
                    range: x_range,
                    ticks,
                },
                self.y_range(),
            )
            .map_err(plot_error)?;
        let axis_text = (FONT_FAMILY, 17).into_font().color(&RGBColor(68, 68, 68));
        let x_desc = match self.axis {
            KeyAxis::Log => format!("{} (log scale)", self.key),
            _ => self.key.clone(),
        };
        let x_label = |v: &f64| self.tick_label(*v);
        let y_label = |v: &f64| format::number(*v);
        let mut mesh = chart.configure_mesh();
        mesh.light_line_style(RGBColor(244, 244, 244))
            .bold_line_style(RGBColor(225, 225, 225))
            .axis_style(RGBColor(150, 150, 150))
            .y_labels(7)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label);
        if text {
            mesh.x_desc(x_desc)
                .y_desc(self.metric.as_str())
                .label_style(axis_text.clone())
                .axis_desc_style((FONT_FAMILY, 18).into_font().color(&RGBColor(51, 51, 51)));
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(plot_error)?;
        self.draw_lines(&mut chart)
    }
}

impl KeyChart {
    /// The lines (combinations of the other keys), named under the chart; one line needs
    /// no name.
    fn legend_entries(&self) -> Vec<LegendEntry> {
        if self.lines.len() < 2 {
            return Vec::new();
        }
        self.lines
            .iter()
            .enumerate()
            .map(|(i, s)| LegendEntry {
                label: s.name.clone(),
                colour: palette(i),
            })
            .collect()
    }

    fn draw_lines<'a, DB, X, Y>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    ) -> Result<()>
    where
        DB: DrawingBackend + 'a,
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        for (i, s) in self.lines.iter().enumerate() {
            let colour = palette(i);
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, colour.filled())))
                .map_err(plot_error)?;
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(plot_error)?;
        }
        if let Some(best) = self.best {
            let ring = RGBColor(34, 34, 34).stroke_width(2);
            chart
                .draw_series(std::iter::once(Circle::new(best, 9, ring)))
                .map_err(plot_error)?;
        }
        Ok(())
    }
}

/// Writes `vs-<metric>-<key>.svg|png` into `out` for every key chart and returns them for the
/// page. `keys: None` uses the spec keys that differ between the runs, unless there are too
/// many to be a sweep (runs of unrelated experiments); empty `metrics` uses [`default_metrics`].
pub fn write_key_charts(
    runs: &[RunData],
    keys: Option<&[String]>,
    metrics: &[String],
    out: &std::path::Path,
) -> Result<Vec<RenderedChart>> {
    let keys: Vec<String> = match keys {
        Some(k) => k.to_vec(),
        None => {
            let flats: Vec<_> = runs
                .iter()
                .map(|r| r.spec.as_ref().map(flatten_spec).unwrap_or_default())
                .collect();
            let differing = super::spec_keys::varied_keys(&flats);
            if differing.len() > MAX_KEYS {
                return Ok(Vec::new());
            }
            differing
        }
    };
    let metrics = if metrics.is_empty() {
        default_metrics(runs)
    } else {
        metrics.to_vec()
    };
    for missing in metrics
        .iter()
        .filter(|m| runs.iter().all(|r| final_value(r, m).is_none()))
    {
        eprintln!("warning: no run has a final `{missing}`: it is not charted");
    }
    let mut rendered = Vec::new();
    for chart in key_charts(runs, &keys, &metrics) {
        let stem = format!("vs-{}-{}", file_stem(&chart.metric), file_stem(&chart.key));
        rendered.push(render_chart(&chart, out, "", &stem)?);
    }
    for (stem, chart) in super::overoptimisation::charts(runs) {
        rendered.push(render_chart(&chart, out, "", &file_stem(&stem))?);
    }
    Ok(rendered)
}

/// More differing keys than this and the runs are not one sweep: no key charts.
const MAX_KEYS: usize = 4;

/// The section that opens a comparison page (empty without charts).
pub fn section_html(charts: &[RenderedChart]) -> String {
    if charts.is_empty() {
        return String::new();
    }
    let mut b = String::from(
        "<section id=\"by-key\">\n<h2>Final metrics by swept key</h2>\n\
         <p class=\"lede\">Each point is one run; a line joins runs that share the other keys; \
         the ringed point is the best.</p>\n<div class=\"grid\">\n",
    );
    for c in charts {
        b.push_str(&figure(c));
    }
    b.push_str("</div>\n</section>\n");
    b
}

/// The same section for compare.md.
pub fn section_markdown(charts: &[RenderedChart]) -> String {
    let mut md = String::new();
    if !charts.is_empty() {
        md.push_str("## Final metrics by swept key\n\n");
    }
    for c in charts {
        md.push_str(&format!("![{}]({})\n\n", cell(&c.title), c.png));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::chart::palette_hex;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// `fill` of every marker circle (radius 4) in the SVG, lower case.
    fn marker_fills(svg: &str) -> Vec<String> {
        svg.split("<circle")
            .skip(1)
            .filter_map(|tag| {
                let tag = tag.split('>').next()?;
                tag.contains(" r=\"4\"").then_some(())?;
                let fill = tag.split(" fill=\"").nth(1)?.split('"').next()?;
                Some(fill.to_lowercase())
            })
            .collect()
    }

    #[test]
    fn sweep_page_opens_with_metric_vs_key_charts_of_a_two_by_three_grid() {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = Vec::new();
        for preset in ["nano", "small"] {
            for lr in [1e-3, 3e-3, 1e-2] {
                let run = dir.path().join(format!("runs/{preset}-{lr}"));
                crate::report::fixture::write_run(&run, &format!("{preset}{lr}"), lr, preset);
                runs.push(run);
            }
        }
        let keys = ["model.preset".to_string(), "stages.base.lr".to_string()];
        let metrics = ["base/val/loss".to_string()];
        let out = dir.path().join("compare");
        let options = crate::report::CompareOptions {
            sort_by: None,
            keys: Some(&keys),
            metrics: &metrics,
        };
        let page = crate::report::write_comparison_with(&runs, &out, &options).unwrap();

        // x = lr (log: 1e-3..1e-2 is a decade): a line per preset, three runs on each.
        let by_lr =
            std::fs::read_to_string(out.join("vs-base-val-loss-stages-base-lr.svg")).unwrap();
        let fills = marker_fills(&by_lr);
        assert_eq!(fills.len(), 6, "{fills:?}");
        for line in 0..2 {
            let colour = palette_hex(line);
            assert_eq!(
                fills.iter().filter(|f| **f == colour).count(),
                3,
                "line {line}"
            );
        }
        // x = preset (categories): a line per lr, two runs on each.
        let by_preset =
            std::fs::read_to_string(out.join("vs-base-val-loss-model-preset.svg")).unwrap();
        let fills = marker_fills(&by_preset);
        assert_eq!(fills.len(), 6, "{fills:?}");
        for line in 0..3 {
            let colour = palette_hex(line);
            assert_eq!(
                fills.iter().filter(|f| **f == colour).count(),
                2,
                "line {line}"
            );
        }
        for svg in [&by_lr, &by_preset] {
            let rings = svg
                .split("<circle")
                .filter(|t| t.contains(" r=\"9\""))
                .count();
            assert_eq!(rings, 1, "one ring marks the best point");
        }
        if crate::report::chart::can_draw_text() {
            assert!(by_lr.contains("model.preset=nano") && by_lr.contains("model.preset=small"));
            // Ticks at the swept values, text on its own line in plotters' SVG.
            assert!(by_lr.contains("stages.base.lr (log scale)") && by_lr.contains("\n0.003\n"));
            assert!(by_preset.contains("stages.base.lr=0.01") && by_preset.contains("\nsmall\n"));
        }

        // The page leads with them: key charts, then curves, then the table, answers last.
        let html = std::fs::read_to_string(page).unwrap();
        let at = |needle: &str| {
            html.find(needle)
                .unwrap_or_else(|| panic!("{needle} missing"))
        };
        assert!(at("id=\"by-key\"") < at("class=\"stage\""));
        assert!(at("class=\"stage\"") < at("id=\"finals\""));
        assert!(at("id=\"finals\"") < at("<details>\n<summary><h2>Generations"));
    }

    #[test]
    fn axis_is_log_for_a_decade_and_categorical_for_words() {
        assert_eq!(
            axis_for(&strings(&["0.001", "0.003", "0.01"])),
            KeyAxis::Log
        );
        assert_eq!(axis_for(&strings(&["100", "200", "400"])), KeyAxis::Linear);
        assert_eq!(
            axis_for(&strings(&["small", "nano", "small"])),
            KeyAxis::Categories(strings(&["nano", "small"]))
        );
        assert_eq!(axis_for(&strings(&["-1", "10"])), KeyAxis::Linear);
    }

    #[test]
    fn lines_group_by_the_other_keys_and_the_best_is_the_lowest_loss() {
        let values = strings(&["0.001", "0.01", "0.001", "0.01"]);
        let others = strings(&["p=a", "p=a", "p=b", "p=b"]);
        let finals = [Some(3.0), Some(2.0), Some(2.5), None];
        let c = one_chart("lr", "base/val/loss", &values, &others, &finals);
        assert_eq!(c.lines.len(), 2);
        assert_eq!(c.lines[0].points, vec![(-3.0, 3.0), (-2.0, 2.0)]);
        assert_eq!(c.lines[1].points, vec![(-3.0, 2.5)]);
        assert_eq!(c.best, Some((-2.0, 2.0)));
        let acc = one_chart("lr", "rlhf/eval/exact_match", &values, &others, &finals);
        assert_eq!(acc.best, Some((-3.0, 3.0)), "accuracies: highest is best");
        assert_eq!(c.tick_label(-3.0), "0.001");
    }
}
