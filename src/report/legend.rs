//! Legends outside the plot: a strip of (swatch, label) entries under the chart, wrapped into
//! rows, so no legend box ever sits on bars or curves. A chart that draws one grows by the
//! strip's height ([`strip_height`]) and draws through [`under`].

use super::draw::plot_error;
use super::font::{chart_font, FONT_FAMILY};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Label size in points, and the strip's geometry in pixels.
const LABEL_SIZE: u32 = 16;
const ROW_HEIGHT: u32 = 24;
const SWATCH_WIDTH: u32 = 22;
const GAP: u32 = 8;
const ENTRY_GAP: u32 = 22;
const SIDE_MARGIN: u32 = 20;

/// How an entry's colour is shown: a line (curves) or a square (bars).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Swatch {
    Line,
    Square,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    pub label: String,
    pub colour: RGBColor,
}

/// The label's width in pixels with the chart font (what plotters will draw it with).
fn label_width(label: &str) -> u32 {
    use ab_glyph::{Font, ScaleFont};
    let Some(font) = chart_font().and_then(|f| ab_glyph::FontRef::try_from_slice(f.bytes).ok())
    else {
        return 0;
    };
    let scaled = font.as_scaled(LABEL_SIZE as f32);
    label
        .chars()
        .map(|c| scaled.h_advance(font.glyph_id(c)))
        .sum::<f32>()
        .ceil() as u32
}

/// Each entry's (row, x) in a strip `width` pixels wide.
fn layout(entries: &[LegendEntry], width: u32) -> Vec<(u32, u32)> {
    let usable = width.saturating_sub(2 * SIDE_MARGIN);
    let (mut row, mut x) = (0, 0);
    entries
        .iter()
        .map(|e| {
            let w = SWATCH_WIDTH + GAP + label_width(&e.label);
            if x > 0 && x + w > usable {
                (row, x) = (row + 1, 0);
            }
            let at = (row, SIDE_MARGIN + x);
            x += w + ENTRY_GAP;
            at
        })
        .collect()
}

/// The strip's height for `entries` in a chart `width` pixels wide: 0 without entries or
/// without a font to write labels with (then there is no strip).
pub fn strip_height(entries: &[LegendEntry], width: u32) -> u32 {
    if entries.is_empty() || chart_font().is_none() {
        return 0;
    }
    let rows = layout(entries, width).last().map_or(0, |(r, _)| r + 1);
    rows * ROW_HEIGHT + 6
}

/// Draws the chart with `plot` on `root` less a strip along its bottom, then the strip (so
/// an SVG holds the chart's shapes first). Without entries `plot` gets all of `root`.
pub fn under<DB, F>(
    root: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    swatch: Swatch,
    plot: F,
) -> Result<()>
where
    DB: DrawingBackend,
    F: FnOnce(&DrawingArea<DB, Shift>) -> Result<()>,
{
    let (width, full) = root.dim_in_pixel();
    let height = strip_height(entries, width);
    if height == 0 {
        return plot(root);
    }
    let (chart, strip) = root.split_vertically(full - height);
    plot(&chart)?;
    let font = (FONT_FAMILY, LABEL_SIZE)
        .into_font()
        .color(&RGBColor(51, 51, 51));
    for (entry, (row, x)) in entries.iter().zip(layout(entries, width)) {
        let mid = (row * ROW_HEIGHT + ROW_HEIGHT / 2) as i32;
        let (x, c) = (x as i32, entry.colour);
        match swatch {
            Swatch::Line => strip.draw(&PathElement::new(
                vec![(x, mid), (x + SWATCH_WIDTH as i32, mid)],
                c.stroke_width(3),
            )),
            Swatch::Square => strip.draw(&Rectangle::new(
                [(x + 4, mid - 7), (x + 18, mid + 7)],
                c.filled(),
            )),
        }
        .map_err(plot_error)?;
        let at = (
            x + (SWATCH_WIDTH + GAP) as i32,
            mid - LABEL_SIZE as i32 / 2 - 1,
        );
        strip
            .draw(&Text::new(entry.label.clone(), at, font.clone()))
            .map_err(plot_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(labels: &[&str]) -> Vec<LegendEntry> {
        labels
            .iter()
            .map(|l| LegendEntry {
                label: l.to_string(),
                colour: RGBColor(0, 0, 0),
            })
            .collect()
    }

    #[test]
    fn entries_wrap_into_rows_that_fit_the_width() {
        let few = entries(&["base", "assistant"]);
        assert_eq!(strip_height(&few, 640), ROW_HEIGHT + 6);
        let many = entries(&["stages.base.lr=0.003 model.preset=small"; 6]);
        let at = layout(&many, 640);
        assert!(at.last().unwrap().0 >= 2, "{at:?}");
        for (e, (_, x)) in many.iter().zip(&at) {
            assert!(
                x + SWATCH_WIDTH + GAP + label_width(&e.label) <= 640,
                "{at:?}"
            );
        }
        assert_eq!(strip_height(&[], 640), 0);
    }
}

/// Reading chart SVGs back, for tests that check where things were drawn.
#[cfg(test)]
pub(crate) mod svg_geometry {
    use crate::report::chart::palette_hex;

    fn attr(tag: &str, name: &str) -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        Some(tag[start..].split('"').next()?.to_string())
    }

    fn num(tag: &str, name: &str) -> f64 {
        attr(tag, name).and_then(|v| v.parse().ok()).unwrap_or(0.0)
    }

    /// (x0, y0, x1, y1) around every point of every curve: a polyline in a palette colour of
    /// more than two points (a legend's swatch is a two-point line).
    pub fn data_box(svg: &str) -> Option<(f64, f64, f64, f64)> {
        let colours: Vec<String> = (0..10).map(|i| palette_hex(i).to_lowercase()).collect();
        let mut points = Vec::new();
        for tag in svg.split("<polyline").skip(1) {
            let tag = tag.split('>').next().unwrap_or_default();
            let stroke = attr(tag, "stroke").unwrap_or_default().to_lowercase();
            if !colours.contains(&stroke) {
                continue;
            }
            let pairs = attr(tag, "points").unwrap_or_default();
            if pairs.split_whitespace().count() <= 2 {
                continue;
            }
            for pair in pairs.split_whitespace() {
                let mut xy = pair.split(',').map(|v| v.parse::<f64>().unwrap_or(0.0));
                points.push((xy.next().unwrap_or(0.0), xy.next().unwrap_or(0.0)));
            }
        }
        let first = *points.first()?;
        Some(
            points
                .iter()
                .fold((first.0, first.1, first.0, first.1), |b, p| {
                    (b.0.min(p.0), b.1.min(p.1), b.2.max(p.0), b.3.max(p.1))
                }),
        )
    }

    /// The boxes a legend inside the plot is drawn on: white, see-through rectangles (the
    /// picture's own background is opaque).
    pub fn legend_boxes(svg: &str) -> Vec<(f64, f64, f64, f64)> {
        svg.split("<rect")
            .skip(1)
            .filter_map(|tag| {
                let tag = tag.split('>').next()?;
                let see_through = num(tag, "opacity") < 1.0 && attr(tag, "opacity").is_some();
                let white = attr(tag, "fill")?.eq_ignore_ascii_case("#ffffff");
                let (x, y) = (num(tag, "x"), num(tag, "y"));
                (white && see_through)
                    .then(|| (x, y, x + num(tag, "width"), y + num(tag, "height")))
            })
            .collect()
    }

    /// Where each `<text>` reading exactly `label` is anchored.
    pub fn texts(svg: &str, label: &str) -> Vec<(f64, f64)> {
        let escaped = crate::report::widgets::escape(label);
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let (tag, rest) = t.split_once('>')?;
                let content = rest.split("</text>").next()?.trim();
                (content == label || content == escaped).then(|| (num(tag, "x"), num(tag, "y")))
            })
            .collect()
    }
}
