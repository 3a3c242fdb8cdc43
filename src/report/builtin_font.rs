//! The CJK font built into the binary, so that charts and pages show Chinese on a machine
//! with no CJK font installed: a subset of Noto Sans CJK SC Regular (SIL Open Font License
//! 1.1, `assets/fonts/OFL.txt`) holding the characters of the shipped data sets, the 3,755
//! common simplified characters of GB2312 level 1, ASCII and CJK punctuation
//! (`assets/fonts/chars.txt`), made by `scripts/make_font.py` from Debian's fonts-noto-cjk.

/// The font file: TrueType outlines, no hinting, about 2.9 MB. A `static`, not a `const`: a
/// const's bytes are copied into each place that uses it (the binary held the font twice).
pub static BUILTIN_FONT: &[u8] = include_bytes!("../../assets/fonts/NotoSansSC-gptlab.ttf");

/// Its family name (the name table's), as pages declare it.
pub const BUILTIN_FAMILY: &str = "Noto Sans SC gptlab";

/// How messages name it.
pub const BUILTIN_NAME: &str = "the built-in Noto Sans SC subset";

#[cfg(test)]
mod tests {
    use super::*;
    use ab_glyph::Font;

    #[test]
    fn draws_chinese_latin_and_punctuation() {
        let face = ab_glyph::FontRef::try_from_slice(BUILTIN_FONT).unwrap();
        // Common characters, the demo's, ASCII and full-width punctuation.
        for c in "损失训练的是我你好小明苹果香蕉过山车大风车Aa0,.?!,。?!「」".chars()
        {
            assert_ne!(face.glyph_id(c).0, 0, "{c} has no glyph");
        }
        assert!(face.outline(face.glyph_id('损')).is_some(), "no outline");
    }

    #[test]
    fn holds_every_character_of_its_list() {
        let list = include_str!("../../assets/fonts/chars.txt");
        let face = ab_glyph::FontRef::try_from_slice(BUILTIN_FONT).unwrap();
        let gb2312_first = '啊'; // GB2312 level 1 starts at 啊 (0xB0A1)
        assert_ne!(face.glyph_id(gb2312_first).0, 0);
        let lacking = list
            .chars()
            .filter(|c| *c != '\n' && face.glyph_id(*c).0 == 0)
            .count();
        // Noto Sans CJK lacks the rare characters of CJK extension B the poetry corpus has.
        assert!(
            lacking < 500,
            "{lacking} characters of chars.txt have no glyph"
        );
    }
}
