//! Text in PNG charts, drawn with each glyph where the font puts it. plotters 0.3.7's ab_glyph
//! text drawing places every glyph's ink box at the pen position, dropping the glyph's left
//! side bearing, so letters with wide bearings leave odd gaps ("gol d rate"). [`GlyphText`]
//! wraps a pixel backend and draws text itself, bearing kept; everything else is the wrapped
//! backend's. (SVG charts hold text as text: the browser lays it out.)

use super::font::chart_font;
use ab_glyph::{Font, FontRef, ScaleFont};
use plotters::prelude::*;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

/// A backend (the bitmap one) whose text is drawn glyph by glyph with ab_glyph.
pub struct GlyphText<DB>(pub DB);

/// The chart font, parsed once.
fn face() -> Option<&'static FontRef<'static>> {
    static FACE: std::sync::OnceLock<Option<FontRef<'static>>> = std::sync::OnceLock::new();
    FACE.get_or_init(|| FontRef::try_from_slice(chart_font()?.bytes).ok())
        .as_ref()
}

/// Calls `put(x, y, coverage)` for every pixel of `text` at `size` px, x from the pen's start,
/// y as plotters measures it (from half a size above the baseline), each glyph's ink where the
/// font's metrics put it: pen position plus left side bearing, and kerning.
pub fn draw_glyphs(face: &FontRef, size: f32, text: &str, mut put: impl FnMut(i32, i32, f32)) {
    let font = face.as_scaled(size);
    let (mut pen, mut prev) = (0.0f32, None);
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            pen += font.kern(p, id);
        }
        prev = Some(id);
        let glyph = id.with_scale_and_position(size, ab_glyph::point(pen, 0.0));
        if let Some(outline) = font.outline_glyph(glyph) {
            let bounds = outline.px_bounds();
            let (x0, y0) = (bounds.min.x as i32, (size / 2.0 + bounds.min.y) as i32);
            outline.draw(|x, y, coverage| put(x0 + x as i32, y0 + y as i32, coverage));
        }
        pen += font.h_advance(id);
    }
}

impl<DB: DrawingBackend> DrawingBackend for GlyphText<DB> {
    type ErrorType = DB::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.blit_bitmap(pos, size, src)
    }

    /// plotters' own text drawing (anchor, rotation, clipping), with [`draw_glyphs`] for the
    /// glyphs.
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        let Some(face) = face().filter(|_| color.alpha > 0.0) else {
            return self.0.draw_text(text, style, pos);
        };
        let layout = style
            .layout_box(text)
            .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let ((min_x, min_y), (max_x, max_y)) = layout;
        let (width, height) = (max_x - min_x, max_y - min_y);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let trans = style.transform();
        let (w, h) = self.get_size();
        let mut result = Ok(());
        draw_glyphs(face, style.size() as f32, text, |x, y, coverage| {
            let (x, y) = trans.transform(x + dx - min_x, y + dy - min_y);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if result.is_ok() && x >= 0 && x < w as i32 && y >= 0 && y < h as i32 {
                result = self.0.draw_pixel((x, y), color.mix(coverage as f64));
            }
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::font::FONT_FAMILY;

    /// `text` in black at 64 px, its anchor at (10, 10).
    fn draw_big<DB: DrawingBackend>(root: DrawingArea<DB, plotters::coord::Shift>, text: &str) {
        root.fill(&WHITE).unwrap();
        let style = (FONT_FAMILY, 64).into_font().color(&BLACK);
        root.draw(&Text::new(text.to_string(), (10, 10), style))
            .unwrap();
        root.present().unwrap();
    }

    /// The first column of each run of inked columns.
    fn runs(buf: &[u8], (w, h): (u32, u32)) -> Vec<i32> {
        let inked = |x: u32| (0..h).any(|y| buf[((y * w + x) * 3) as usize] < 128);
        let mut starts = Vec::new();
        let mut was = false;
        for x in 0..w {
            let now = inked(x);
            if now && !was {
                starts.push(x as i32);
            }
            was = now;
        }
        starts
    }

    #[test]
    fn each_letter_starts_where_the_font_puts_it() {
        let (w, h) = (420u32, 100u32);
        let mut buf = vec![0u8; (w * h * 3) as usize];
        let root = GlyphText(BitMapBackend::with_buffer(&mut buf, (w, h))).into_drawing_area();
        draw_big(root, "gold rate");
        let found = runs(&buf, (w, h));
        // Where each glyph's ink begins by the font's own metrics (pen + left side bearing).
        let face = face().expect("a chart font");
        let font = face.as_scaled(64.0);
        let (mut pen, mut expected, mut prev) = (0.0f32, Vec::new(), None);
        for c in "gold rate".chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                pen += font.kern(p, id);
            }
            prev = Some(id);
            let glyph = id.with_scale_and_position(64.0, ab_glyph::point(pen, 0.0));
            if let Some(o) = font.outline_glyph(glyph) {
                expected.push(10 + o.px_bounds().min.x as i32);
            }
            pen += font.h_advance(id);
        }
        assert_eq!(found.len(), expected.len(), "{found:?} vs {expected:?}");
        for (f, e) in found.iter().zip(&expected) {
            assert!(
                (f - e).abs() <= 1,
                "ink at {found:?}, the font says {expected:?}"
            );
        }
    }
}
