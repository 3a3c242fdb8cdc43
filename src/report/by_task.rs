//! Exact match by task for every compared stage: the numbers the runner's `[report] eval` step
//! stored in summary.json (`eval/<task>/exact_match` under each stage), drawn as grouped bars
//! (a group per task, a bar per stage in stage colours) with the table beside them.

use super::chart::{palette, Chart};
use super::draw::plot_error;
use super::font::FONT_FAMILY;
use super::format;
use super::legend::{strip_height, under, LegendEntry, Swatch};
use super::run::RunData;
use super::ticks::TickedAxis;
use super::widgets::{cell, escape, figure, render_chart, stage_chip, table, RenderedChart};
use anyhow::Result;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

use crate::results::{task_exact_match_key as task_key, EVAL_EXACT_MATCH as OVERALL};

/// Tasks (groups) × stages (bars): `values[t][s]`, `None` where a stage lacks the task.
#[derive(Debug, Clone, PartialEq)]
pub struct ByTask {
    pub tasks: Vec<String>,
    /// Stage name and its colour index in the run.
    pub stages: Vec<(String, usize)>,
    pub values: Vec<Vec<Option<f64>>>,
    /// Each stage's exact match over all tasks.
    pub overall: Vec<Option<f64>>,
    /// The chart's title and what its y axis measures (the same bars draw the gold chart).
    pub title: &'static str,
    pub measure: &'static str,
}

impl ByTask {
    /// The evaluated stages of a run, in run order; `None` when nothing was evaluated.
    pub fn of(run: &RunData) -> Option<ByTask> {
        let mut stages = Vec::new();
        let mut tasks: Vec<String> = Vec::new();
        for s in &run.stages {
            let Some(m) = run.summary.get(&s.name).filter(|m| m.contains_key(OVERALL)) else {
                continue;
            };
            stages.push((s.name.clone(), run.stage_colour(&s.name)));
            for key in m.keys() {
                let task = key
                    .strip_prefix("eval/")
                    .and_then(|k| k.strip_suffix("/exact_match"));
                if let Some(t) = task.filter(|t| !tasks.iter().any(|x| x == t)) {
                    tasks.push(t.to_string());
                }
            }
        }
        if stages.is_empty() {
            return None;
        }
        let get = |stage: &str, key: &str| run.summary.get(stage).and_then(|m| m.get(key)).copied();
        let values: Vec<Vec<Option<f64>>> = tasks
            .iter()
            .map(|t| stages.iter().map(|(s, _)| get(s, &task_key(t))).collect())
            .collect();
        let overall: Vec<Option<f64>> = stages.iter().map(|(s, _)| get(s, OVERALL)).collect();
        // Questions without tasks: one group, all of them.
        let (tasks, values) = if tasks.is_empty() {
            (vec!["all".to_string()], vec![overall.clone()])
        } else {
            (tasks, values)
        };
        Some(ByTask {
            tasks,
            stages,
            values,
            overall,
            title: "exact match by task",
            measure: "exact match",
        })
    }
}

/// Writes `by-task.svg|png` into the run folder when the run was evaluated.
pub fn write_by_task_chart(run: &RunData, run_dir: &Path) -> Result<Option<RenderedChart>> {
    let Some(data) = ByTask::of(run) else {
        return Ok(None);
    };
    render_chart(&data, run_dir, "", "by-task").map(Some)
}

/// The section of report.html: the chart with the table beside it.
pub fn section_html(run: &RunData, chart: Option<&RenderedChart>) -> String {
    let (Some(data), Some(chart)) = (ByTask::of(run), chart) else {
        return String::new();
    };
    let mut t = String::from("<table><thead><tr><th>task</th>");
    for (s, colour) in &data.stages {
        t.push_str(&format!(
            "<th class=\"num\">{}</th>",
            stage_chip(s, "", *colour)
        ));
    }
    t.push_str("</tr></thead><tbody>\n");
    let rows = data
        .values
        .iter()
        .zip(&data.tasks)
        .map(|(v, t)| (t.as_str(), v));
    for (task, values) in rows.chain(std::iter::once(("all", &data.overall))) {
        t.push_str(&format!("<tr><td>{}</td>", escape(task)));
        for v in values {
            t.push_str(&format!("<td class=\"num\">{}</td>", percent(*v)));
        }
        t.push_str("</tr>\n");
    }
    t.push_str("</tbody></table>");
    format!(
        "<section id=\"by-task\">\n<h2>Exact match by task</h2>\n<div class=\"beside\">{}<div class=\"scroll\">{t}</div></div>\n</section>\n",
        figure(chart)
    )
}

/// The same for report.md.
pub fn section_markdown(run: &RunData, chart: Option<&RenderedChart>) -> String {
    let (Some(data), Some(chart)) = (ByTask::of(run), chart) else {
        return String::new();
    };
    let mut header = vec!["task".to_string()];
    header.extend(data.stages.iter().map(|(s, _)| cell(s)));
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (task, values) in data.tasks.iter().zip(&data.values) {
        let mut row = vec![cell(task)];
        row.extend(values.iter().map(|v| percent(*v)));
        rows.push(row);
    }
    let mut all = vec!["all".to_string()];
    all.extend(data.overall.iter().map(|v| percent(*v)));
    rows.push(all);
    format!(
        "## Exact match by task\n\n![{}]({})\n\n{}\n",
        cell(&chart.title),
        chart.png,
        table(&header, &rows)
    )
}

pub fn percent(v: Option<f64>) -> String {
    v.map(|v| format!("{}%", format::number(v * 100.0)))
        .unwrap_or_else(|| "—".into())
}

impl Chart for ByTask {
    fn title(&self) -> &str {
        self.title
    }

    fn size(&self) -> (u32, u32) {
        (640, 380 + strip_height(&self.legend_entries(), 640))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_error)?;
        // Under the chart: bars reach 100%, so no corner of the plot is free for a legend.
        under(root, &self.legend_entries(), Swatch::Square, |area| {
            self.plot(area)
        })
    }
}

impl ByTask {
    /// The chart itself, on the picture less the legend's strip.
    fn plot<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let text = super::chart::can_draw_text();
        let groups = self.tasks.len().max(1) as f64;
        let mut builder = super::chart::framed(root, self.title(), 22, 64);
        let centres: Vec<f64> = (0..self.tasks.len()).map(|i| i as f64 + 0.5).collect();
        let mut chart = builder
            .build_cartesian_2d(
                TickedAxis {
                    range: 0.0..groups,
                    ticks: centres,
                },
                0.0..1.0,
            )
            .map_err(plot_error)?;
        let x_label = |x: &f64| {
            self.tasks
                .get(x.floor() as usize)
                .cloned()
                .unwrap_or_default()
        };
        let y_label = |v: &f64| format!("{}%", format::number(*v * 100.0));
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh()
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(WHITE)
            .axis_style(RGBColor(150, 150, 150))
            .y_labels(6)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label);
        if text {
            mesh.y_desc(self.measure)
                .label_style((FONT_FAMILY, 16).into_font().color(&RGBColor(68, 68, 68)))
                .axis_desc_style((FONT_FAMILY, 18).into_font().color(&RGBColor(51, 51, 51)));
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(plot_error)?;
        self.draw_bars(&mut chart)
    }
}

impl ByTask {
    fn legend_entries(&self) -> Vec<LegendEntry> {
        self.stages
            .iter()
            .map(|(stage, colour)| LegendEntry {
                label: stage.clone(),
                colour: palette(*colour),
            })
            .collect()
    }

    /// One filled rectangle per (task, stage) that has a value, in that order.
    fn draw_bars<'a, DB, X>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<X, RangedCoordf64>>,
    ) -> Result<()>
    where
        DB: DrawingBackend + 'a,
        X: Ranged<ValueType = f64>,
    {
        let n = self.stages.len().max(1) as f64;
        let width = 0.8 / n;
        for (j, (_, colour)) in self.stages.iter().enumerate() {
            let c = palette(*colour);
            let bars = self.values.iter().enumerate().filter_map(|(t, row)| {
                let v = row[j]?.clamp(0.0, 1.0);
                let x0 = t as f64 + 0.1 + j as f64 * width;
                Some(Rectangle::new(
                    [(x0, 0.0), (x0 + width * 0.92, v)],
                    c.filled(),
                ))
            });
            chart.draw_series(bars).map_err(plot_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::chart::{palette_hex, render_svg};

    /// `(fill, height, bottom)` of every filled rectangle of the SVG with one of `fills`.
    fn bars(svg: &str, fills: &[String]) -> Vec<(String, f64, f64)> {
        let attr = |tag: &str, name: &str| -> Option<String> {
            let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
            Some(tag[start..].split('"').next()?.to_string())
        };
        svg.split("<rect")
            .skip(1)
            .filter_map(|tag| {
                let tag = tag.split('>').next()?;
                let fill = attr(tag, "fill")?.to_lowercase();
                let height: f64 = attr(tag, "height")?.parse().ok()?;
                let y: f64 = attr(tag, "y")?.parse().ok()?;
                fills.contains(&fill).then_some((fill, height, y + height))
            })
            .collect()
    }

    #[test]
    fn bar_heights_are_the_evaluation_numbers() {
        let data = ByTask {
            tasks: vec!["capital".into(), "arithmetic".into(), "国家".into()],
            stages: vec![("base".into(), 0), ("assistant".into(), 1)],
            values: vec![
                vec![Some(0.25), Some(0.75)],
                vec![Some(0.5), Some(1.0)],
                vec![Some(0.125), Some(0.625)],
            ],
            overall: vec![Some(0.3), Some(0.8)],
            title: "exact match by task",
            measure: "exact match",
        };
        let svg = render_svg(&data).unwrap();
        let fills = [palette_hex(0), palette_hex(1)];
        let found = bars(&svg, &fills);
        // The legend, under the chart and drawn after it, has one small square per stage.
        assert_eq!(found.len(), 6 + 2, "{found:?}");
        let (found, legend) = found.split_at(6);
        let plot_bottom = found.iter().map(|b| b.2).fold(0.0, f64::max);
        assert!(
            legend.iter().all(|l| l.2 - l.1 > plot_bottom),
            "the legend is not under the bars: {legend:?}"
        );
        let expected: Vec<(String, f64)> = (0..2)
            .flat_map(|s| (0..3).map(move |t| (s, t)))
            .map(|(s, t)| (fills[s].clone(), data.values[t][s].unwrap()))
            .collect();
        // Heights are value × the plot's height, the same scale for every bar.
        let scale = found[4].1 / 1.0;
        for ((fill, height, _), (want_fill, value)) in found.iter().zip(&expected) {
            assert_eq!(fill, want_fill);
            assert!(
                (height - value * scale).abs() <= 1.5,
                "bar {height}px for {value} at {scale}px per 100%"
            );
        }
    }
}
