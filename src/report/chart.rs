//! Line charts (metric curves) drawn with plotters, to SVG text or a PNG file. Bar charts live
//! in `bars.rs`; both implement [`Chart`], so the render functions take either.

use super::draw::plot_error;
use super::font::{chart_font, FONT_FAMILY};
use super::format;
use super::legend::{strip_height, under, LegendEntry, Swatch};
use super::text_png::GlyphText;
use anyhow::{Context, Result};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// One named curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A line chart: one or more series over a shared x axis.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Logarithmic y axis (ignored when a value is not positive). See [`wants_log_y`].
    pub log_y: bool,
    /// EMA factor in [0, 1): the smoothed curve is drawn bold with the raw one faint behind.
    pub smooth: Option<f64>,
    /// Whether the chart names its series, in a strip under the plot (with two or more);
    /// false where the page around it does (a comparison's runs, by colour).
    pub legend: bool,
}

/// Something that can draw itself on a plotters drawing area.
pub trait Chart {
    fn title(&self) -> &str;
    /// Pixel size of the picture (the SVG's view box).
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Ten colours that stay apart from each other (matplotlib's tab10); also used by the HTML
/// pages so a stage or run has the same colour in charts and tables.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub fn palette(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// What [`palette`]`(i)` is called, for pages that cannot show colour (Markdown).
pub fn palette_name(i: usize) -> &'static str {
    const NAMES: [&str; 10] = [
        "blue", "orange", "green", "red", "purple", "brown", "pink", "grey", "olive", "cyan",
    ];
    NAMES[i % NAMES.len()]
}

/// `#rrggbb` of [`palette`]`(i)`, for CSS.
pub fn palette_hex(i: usize) -> String {
    let RGBColor(r, g, b) = palette(i);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Series with fewer points than this are drawn as they are (with markers): smoothing a
/// handful of evaluation points would only shift them.
const SMOOTH_MIN_POINTS: usize = 16;
const WIDTH: u32 = 640;
const HEIGHT: u32 = 380;

/// True when the positive values span more than about a decade, where a linear axis would
/// flatten everything after the first steps of a loss curve.
pub fn wants_log_y(series: &[Series]) -> bool {
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for y in ys {
        if !(y.is_finite() && y > 0.0) {
            return false;
        }
        lo = lo.min(y);
        hi = hi.max(y);
    }
    lo.is_finite() && hi / lo > 10.0
}

/// Bias-corrected exponential moving average (as TensorBoard draws it), so the start of
/// the curve is not pulled towards zero.
pub fn ema(points: &[(f64, f64)], factor: f64) -> Vec<(f64, f64)> {
    let factor = factor.clamp(0.0, 0.999);
    let mut avg = 0.0;
    let mut weight = 0.0;
    points
        .iter()
        .map(|&(x, y)| {
            avg = factor * avg + (1.0 - factor) * y;
            weight = factor * weight + (1.0 - factor);
            (x, avg / weight)
        })
        .collect()
}

/// The chart as an SVG document.
pub fn render_svg<C: Chart + ?Sized>(chart: &C) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, chart.size()).into_drawing_area();
        chart.draw(&root)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// The chart as a PNG file, written atomically.
pub fn render_png<C: Chart + ?Sized>(chart: &C, path: &Path) -> Result<()> {
    // The bitmap backend picks the encoder from the extension, so the temp name keeps `.png`.
    let tmp = path.with_extension("tmp.png");
    {
        let root = GlyphText(BitMapBackend::new(&tmp, chart.size())).into_drawing_area();
        chart.draw(&root)?;
        root.present()
            .map_err(plot_error)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

/// Writes `dir/stem.svg` and `dir/stem.png`; returns their paths (svg, png).
pub fn write_chart<C: Chart + ?Sized>(
    chart: &C,
    dir: &Path,
    stem: &str,
) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let svg_path = dir.join(format!("{stem}.svg"));
    let png_path = dir.join(format!("{stem}.png"));
    super::write_atomic(&svg_path, render_svg(chart)?.as_bytes())?;
    render_png(chart, &png_path)?;
    Ok((svg_path, png_path))
}

/// The frame the line, key and by-task charts share: margins, label areas (none when no font
/// can draw their text) and the title in `title_size` points.
pub(crate) fn framed<'a, 'b, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    title_size: u32,
    y_label_area: u32,
) -> ChartBuilder<'a, 'b, DB> {
    let text = can_draw_text();
    let mut builder = ChartBuilder::on(root);
    builder
        .margin(14)
        .margin_right(26)
        .x_label_area_size(if text { 50 } else { 6 })
        .y_label_area_size(if text { y_label_area } else { 6 });
    if text {
        builder.caption(
            title,
            (FONT_FAMILY, title_size)
                .into_font()
                .color(&RGBColor(34, 34, 34)),
        );
    }
    builder
}

/// Whether chart text can be drawn at all (a font was found).
pub(crate) fn can_draw_text() -> bool {
    chart_font().is_some()
}

impl Chart for ChartSpec {
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

impl ChartSpec {
    /// The chart itself, on the picture less the legend's strip.
    fn plot<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let series: Vec<Series> = self
            .series
            .iter()
            .map(|s| Series {
                name: s.name.clone(),
                points: s
                    .points
                    .iter()
                    .copied()
                    .filter(|p| p.0.is_finite() && p.1.is_finite())
                    .collect(),
            })
            .collect();
        let log = self.log_y && series.iter().all(|s| s.points.iter().all(|p| p.1 > 0.0));
        let (x_range, (y_lo, y_hi)) = bounds(&series, log);
        let text = can_draw_text();
        let mut builder = framed(root, &self.title, 25, 74);
        if log {
            let ticks = log_ticks(y_lo, y_hi);
            let y_axis = (y_lo..y_hi).log_scale().with_key_points(ticks);
            let chart = builder
                .build_cartesian_2d(x_range, y_axis)
                .map_err(plot_error)?;
            draw_lines(self, &series, chart, text)
        } else {
            let chart = builder
                .build_cartesian_2d(x_range, y_lo..y_hi)
                .map_err(plot_error)?;
            draw_lines(self, &series, chart, text)
        }
    }
}

impl ChartSpec {
    /// The series with points, in their colours, when the chart names them itself.
    fn legend_entries(&self) -> Vec<LegendEntry> {
        let named: Vec<LegendEntry> = self
            .series
            .iter()
            .enumerate()
            .filter(|(_, s)| s.points.iter().any(|p| p.0.is_finite() && p.1.is_finite()))
            .map(|(i, s)| LegendEntry {
                label: s.name.clone(),
                colour: palette(i),
            })
            .collect();
        // One curve is named by the title.
        if self.legend && named.len() > 1 {
            named
        } else {
            Vec::new()
        }
    }
}

/// Tick values for a log axis: 1-2-5 per decade, or finer steps when the range is short,
/// since plotters' own log ticks are only the powers of ten.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let in_range = |mantissas: &[f64]| -> Vec<f64> {
        let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        (first..=last)
            .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|v| *v >= lo && *v <= hi)
            .collect()
    };
    for mantissas in [
        &[1.0][..],
        &[1.0, 2.0, 5.0],
        &[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0],
    ] {
        let ticks = in_range(mantissas);
        if ticks.len() >= 4 {
            return ticks;
        }
    }
    in_range(&[
        1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0,
    ])
}

/// x range and y range with a little headroom; degenerate ranges are widened.
fn bounds(series: &[Series], log: bool) -> (std::ops::Range<f64>, (f64, f64)) {
    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        return (0.0..1.0, if log { (0.1, 1.0) } else { (0.0, 1.0) });
    }
    if x1 <= x0 {
        x0 -= 1.0;
        x1 += 1.0;
    }
    if log {
        return (x0..x1, (y0 / 1.15, y1 * 1.15));
    }
    let pad = if y1 > y0 {
        (y1 - y0) * 0.06
    } else if y0 != 0.0 {
        y0.abs() * 0.1
    } else {
        1.0
    };
    (x0..x1, (y0 - pad, y1 + pad))
}

fn draw_lines<'a, DB, Y>(
    spec: &ChartSpec,
    series: &[Series],
    mut chart: ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
    text: bool,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let grid = RGBColor(225, 225, 225);
    let axis_text = (FONT_FAMILY, 17).into_font().color(&RGBColor(68, 68, 68));
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(RGBColor(244, 244, 244))
        .bold_line_style(grid)
        .axis_style(RGBColor(150, 150, 150))
        .x_labels(6)
        .y_labels(7)
        .x_label_formatter(&|v| format::number(*v))
        .y_label_formatter(&|v| format::number(*v));
    if text {
        mesh.x_desc(spec.x_label.as_str())
            .y_desc(spec.y_label.as_str())
            .label_style(axis_text.clone())
            .axis_desc_style((FONT_FAMILY, 18).into_font().color(&RGBColor(51, 51, 51)));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(plot_error)?;

    for (i, s) in series.iter().enumerate() {
        if s.points.is_empty() {
            continue;
        }
        let colour = palette(i);
        let smoothed = spec.smooth.filter(|_| s.points.len() >= SMOOTH_MIN_POINTS);
        let (line, width) = match smoothed {
            Some(factor) => {
                chart
                    .draw_series(LineSeries::new(
                        s.points.iter().copied(),
                        colour.mix(0.25).stroke_width(1),
                    ))
                    .map_err(plot_error)?;
                (ema(&s.points, factor), 3)
            }
            None => {
                if s.points.len() < SMOOTH_MIN_POINTS {
                    chart
                        .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                        .map_err(plot_error)?;
                }
                (s.points.clone(), 2)
            }
        };
        chart
            .draw_series(LineSeries::new(line, colour.stroke_width(width)))
            .map_err(plot_error)?;
    }
    Ok(())
}

/// The chart as raw RGB pixels (what the PNG holds), for tests that look at the picture.
#[cfg(test)]
pub(crate) fn render_rgb<C: Chart + ?Sized>(chart: &C) -> Result<(Vec<u8>, u32, u32)> {
    let (w, h) = chart.size();
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = GlyphText(BitMapBackend::with_buffer(&mut buf, (w, h))).into_drawing_area();
        chart.draw(&root)?;
        root.present().map_err(plot_error)?;
    }
    Ok((buf, w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(name: &str, n: usize, f: impl Fn(f64) -> f64) -> Series {
        Series {
            name: name.into(),
            points: (0..n).map(|i| (i as f64, f(i as f64))).collect(),
        }
    }

    #[test]
    fn log_ticks_are_round_and_inside_the_range() {
        let wide = log_ticks(0.05, 20.0);
        assert!(
            wide.len() >= 4 && wide.len() <= 12 && wide.contains(&1.0) && wide.contains(&10.0),
            "{wide:?}"
        );
        let short = log_ticks(0.35, 5.6);
        assert!(
            short.len() >= 4
                && short.contains(&1.0)
                && short.contains(&2.0)
                && short.contains(&5.0),
            "{short:?}"
        );
        assert!(log_ticks(2.1, 2.9).iter().all(|t| (2.1..=2.9).contains(t)));
    }

    #[test]
    fn the_legend_lies_under_the_plot_and_one_curve_needs_none() {
        use crate::report::legend::svg_geometry::{data_box, legend_boxes, texts};
        let mut spec = titled("base · loss", "step", "loss");
        spec.series.push(curve("val/loss", 40, |x| 3.0 + x / 40.0));
        spec.legend = true;
        let svg = render_svg(&spec).unwrap();
        let plot = data_box(&svg).expect("curves");
        assert!(legend_boxes(&svg).is_empty(), "a legend box");
        let labels = texts(&svg, "val/loss");
        assert_eq!(labels.len(), 1, "named once: {labels:?}");
        assert!(
            labels[0].1 > plot.3,
            "the name is under the plot: {labels:?} {plot:?}"
        );
        assert!(spec.size().1 > HEIGHT);

        spec.legend = false;
        assert!(texts(&render_svg(&spec).unwrap(), "val/loss").is_empty());
        assert_eq!(spec.size(), (WIDTH, HEIGHT));
        spec.legend = true;
        spec.series.pop();
        assert_eq!(
            spec.size(),
            (WIDTH, HEIGHT),
            "one curve: the title names it"
        );
    }

    #[test]
    fn ema_is_bias_corrected_and_smooths() {
        let pts = vec![(0.0, 10.0), (1.0, 10.0), (2.0, 0.0)];
        let s = ema(&pts, 0.5);
        assert!(
            (s[0].1 - 10.0).abs() < 1e-12,
            "first point is the value itself"
        );
        assert!((s[1].1 - 10.0).abs() < 1e-12);
        assert!(s[2].1 > 0.0 && s[2].1 < 10.0);
    }

    #[test]
    fn log_scale_only_when_positive_range_spans_a_decade() {
        assert!(wants_log_y(&[curve("loss", 50, |x| 10.0 / (x + 1.0))]));
        assert!(!wants_log_y(&[curve("loss", 50, |x| 3.0 - x / 100.0)]));
        assert!(!wants_log_y(&[curve("margin", 50, |x| x - 10.0)]));
        assert!(!wants_log_y(&[]));
    }

    #[test]
    fn svg_has_title_labels_legend_and_one_path_per_curve() {
        let spec = ChartSpec {
            title: "base · loss".into(),
            x_label: "step".into(),
            y_label: "loss (nats/token)".into(),
            series: vec![
                curve("loss", 100, |x| 5.0 / (x + 1.0) + 0.1),
                curve("val/loss", 5, |x| 4.0 - x * 0.1),
            ],
            log_y: true,
            smooth: Some(0.9),
            legend: true,
        };
        let svg = render_svg(&spec).unwrap();
        assert!(svg.starts_with("<svg"));
        if can_draw_text() {
            for needle in [
                "base · loss",
                "step",
                "loss (nats/token)",
                "val/loss",
                "WenQuanYi Micro Hei",
            ] {
                assert!(svg.contains(needle), "missing {needle}");
            }
        }
        // raw + smoothed for the dense series, one line for the sparse one (+ legend samples).
        assert!(svg.matches("<polyline").count() >= 3);
        assert!(svg.contains("<circle"), "sparse series get markers");
    }

    #[test]
    fn empty_and_non_finite_series_still_render() {
        let spec = ChartSpec {
            title: "nothing".into(),
            x_label: "step".into(),
            y_label: "y".into(),
            series: vec![Series {
                name: "nan".into(),
                points: vec![(0.0, f64::NAN), (1.0, f64::INFINITY)],
            }],
            log_y: true,
            smooth: None,
            legend: true,
        };
        assert!(render_svg(&spec).unwrap().contains("</svg>"));
    }

    fn titled(title: &str, x_label: &str, y_label: &str) -> ChartSpec {
        ChartSpec {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: vec![curve("loss", 40, |x| 4.0 / (x + 1.0))],
            log_y: false,
            smooth: None,
            legend: false,
        }
    }

    /// Pixels whose colour differs between two renders of the same size.
    fn differing_pixels(a: &[u8], b: &[u8]) -> usize {
        a.chunks(3)
            .zip(b.chunks(3))
            .filter(|(p, q)| p.iter().zip(q.iter()).any(|(x, y)| x.abs_diff(*y) > 40))
            .count()
    }

    #[test]
    fn chinese_text_renders_as_real_glyphs_in_png() {
        // Without $GPTLAB_FONT there is always a CJK font: an installed one or the built-in.
        let font = chart_font().expect("a chart font");
        if font.from_env && !font.has_cjk {
            return; // the user chose a font without Chinese
        }
        let chinese = titled("损失 训练步数", "训练步数", "损失");
        // U+10FFFD is a private-use code point no font draws: what tofu would look like.
        let tofu = titled(
            "\u{10FFFD}\u{10FFFD} \u{10FFFD}\u{10FFFD}\u{10FFFD}\u{10FFFD}",
            "\u{10FFFD}\u{10FFFD}\u{10FFFD}\u{10FFFD}",
            "\u{10FFFD}\u{10FFFD}",
        );
        let (zh, w, _) = render_rgb(&chinese).unwrap();
        let (missing, _, _) = render_rgb(&tofu).unwrap();
        let changed = differing_pixels(&zh, &missing);
        assert!(
            changed > 300,
            "Chinese glyphs look like missing glyphs ({changed} pixels differ)"
        );

        // Different characters must draw differently (tofu boxes would all be the same).
        let (a, _, _) = render_rgb(&titled("损失损失", "x", "y")).unwrap();
        let (b, _, _) = render_rgb(&titled("训练训练", "x", "y")).unwrap();
        assert!(
            differing_pixels(&a, &b) > 100,
            "different characters render identically"
        );

        // The title band (top 40 rows, middle third) has ink in it.
        let w = w as usize;
        let dark = (0..40)
            .flat_map(|y| (w / 3..2 * w / 3).map(move |x| (y * w + x) * 3))
            .filter(|&i| (zh[i] as u32 + zh[i + 1] as u32 + zh[i + 2] as u32) < 3 * 128)
            .count();
        assert!(
            dark > 80,
            "the Chinese title region is blank ({dark} dark pixels)"
        );

        let dir = tempfile::tempdir().unwrap();
        let (svg, png) = write_chart(&chinese, dir.path(), "zh").unwrap();
        assert!(std::fs::read_to_string(svg)
            .unwrap()
            .contains("损失 训练步数"));
        assert!(std::fs::read(png).unwrap().starts_with(b"\x89PNG"));
    }
}
