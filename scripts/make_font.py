#!/usr/bin/env python3
"""Makes assets/fonts/NotoSansSC-gptlab.ttf, the CJK font built into gptlab (issue #26).

A subset of Noto Sans CJK SC Regular (SIL Open Font License 1.1) from Debian's
`fonts-noto-cjk` package, cut down to the characters gptlab's pages and charts show:

  - every character of the shipped data sets (datasets/**, gzipped files included),
  - the 3,755 level-1 characters of GB2312 (the common simplified ones),
  - printable ASCII, CJK symbols and punctuation, full-width forms.

CFF outlines are converted to TrueType (glyf) ones, since plotters' rasteriser and the
`allsorts` subsetter gptlab cuts page fonts with both read glyf; hinting is dropped (it is
a large part of a CJK font and screen renderers ignore it at these sizes).

    pip install fonttools
    python3 scripts/make_font.py                 # downloads fonts-noto-cjk with apt-get
    python3 scripts/make_font.py --ttc /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

Writes, beside the font: chars.txt (the character list, 64 a line) and OFL.txt (the licence,
with the font's own copyright line). Run it again after adding a data set with new characters.
"""

import argparse
import glob
import gzip
import os
import subprocess
import sys
import tempfile

from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont, newTable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO, "assets", "fonts")
FONT_NAME = "NotoSansSC-gptlab.ttf"
# The face of NotoSansCJK-Regular.ttc that holds the simplified Chinese glyph forms
# (0 JP, 1 KR, 2 SC, 3 TC, 4 HK).
SC_FACE = 2
TTC_IN_DEB = "usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
# The family the subset is renamed to: a Modified Version is better not mistaken for the
# whole font (the OFL's Reserved Font Name of Noto CJK is "Source", which this avoids too).
FAMILY = "Noto Sans SC gptlab"
# Upstream's licence header (github.com/notofonts/noto-cjk, Sans/LICENSE).
COPYRIGHT = "Copyright 2014-2021 Adobe (http://www.adobe.com/), with Reserved Font Name 'Source'."


def gb2312_level1():
    """The 3,755 level-1 hanzi: GB2312 rows 16-55 (bytes 0xB0A1-0xD7FE)."""
    chars = set()
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            try:
                chars.add(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                pass  # row 55 ends at 0xD7F9
    assert len(chars) == 3755, len(chars)
    return chars


def data_set_chars(roots):
    """Every character in the text files under `roots` (.txt, .jsonl, .json, .md, .py, and
    those gzipped)."""
    chars = set()
    kinds = (".txt", ".jsonl", ".json", ".md", ".py")
    for root in roots:
        for path in sorted(glob.glob(os.path.join(root, "**", "*"), recursive=True)):
            if not os.path.isfile(path):
                continue
            if path.endswith(kinds):
                with open(path, encoding="utf-8") as f:
                    chars |= set(f.read())
            elif path.endswith(tuple(k + ".gz" for k in kinds)):
                with gzip.open(path, "rt", encoding="utf-8") as f:
                    chars |= set(f.read())
    return chars


def wanted_chars(roots):
    chars = data_set_chars(roots) | gb2312_level1()
    chars |= {chr(c) for c in range(0x20, 0x7F)}  # printable ASCII
    chars |= {chr(c) for c in range(0x3000, 0x3040)}  # CJK symbols and punctuation
    chars |= {chr(c) for c in range(0xFF01, 0xFF5F)}  # full-width ASCII forms
    chars |= set("·—‘’“”…")
    # Controls and separators draw nothing; a font need not map them.
    return sorted(c for c in chars if c.isprintable() or c == " ")


def fetch_ttc(workdir):
    """Downloads fonts-noto-cjk with apt-get and unpacks it; returns the .ttc's path."""
    subprocess.run(["apt-get", "download", "fonts-noto-cjk"], cwd=workdir, check=True)
    deb = glob.glob(os.path.join(workdir, "fonts-noto-cjk_*.deb"))[0]
    print(f"source package: {os.path.basename(deb)}")
    subprocess.run(["dpkg-deb", "-x", deb, os.path.join(workdir, "x")], check=True)
    return os.path.join(workdir, "x", TTC_IN_DEB)


def subset_face(ttc, chars):
    font = TTFont(ttc, fontNumber=SC_FACE, lazy=False)
    options = subset.Options()
    options.hinting = False
    options.desubroutinize = True
    options.layout_features = ["kern"]  # horizontal text only: no vertical forms
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.glyph_names = False
    subsetter = subset.Subsetter(options=options)
    subsetter.populate(unicodes=[ord(c) for c in chars])
    subsetter.subset(font)
    return font


def cff_to_glyf(font):
    """Replaces the CFF outlines with quadratic TrueType ones (fontTools' otf2ttf recipe)."""
    glyph_order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyphs = {}
    for name in glyph_order:
        pen = TTGlyphPen(glyph_set)
        # 2 units of error in a 1000-unit em are invisible (0.05 px at 24 px); TrueType
        # contours run the other way round.
        glyph_set[name].draw(Cu2QuPen(pen, max_err=2.0, reverse_direction=True))
        glyphs[name] = pen.glyph()
    font["loca"] = newTable("loca")
    glyf = font["glyf"] = newTable("glyf")
    glyf.glyphOrder = glyph_order
    glyf.glyphs = glyphs
    del font["CFF "]
    if "VORG" in font:
        del font["VORG"]
    font["head"].glyphDataFormat = 0
    font["maxp"] = maxp = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for field in ("maxZones", "maxTwilightPoints", "maxStorage", "maxFunctionDefs",
                  "maxInstructionDefs", "maxStackElements", "maxSizeOfInstructions"):
        setattr(maxp, field, 0)
    maxp.maxZones = 1
    font["post"].formatType = 3.0  # no glyph names
    font.sfntVersion = "\x00\x01\x00\x00"
    font.recalcBBoxes = True


def rename(font):
    name = font["name"]
    for record in list(name.names):
        if record.nameID in (1, 4, 16):
            name.setName(FAMILY, record.nameID, record.platformID, record.platEncID, record.langID)
        elif record.nameID == 3:
            name.setName(f"{FAMILY}; subset by gptlab scripts/make_font.py", 3,
                         record.platformID, record.platEncID, record.langID)
        elif record.nameID == 6:
            name.setName("NotoSansSC-gptlab", 6, record.platformID, record.platEncID, record.langID)


def write_licence(debian_copyright):
    """OFL.txt: the copyright line and the licence text Debian ships with the font."""
    text = open(debian_copyright, encoding="utf-8").read()
    body = text[text.index("License: SIL-1.1\n -"):].split("\n", 1)[1]
    lines = []
    for line in body.splitlines():
        if not line.startswith(" "):
            break
        lines.append("" if line == " ." else line[1:])
    with open(os.path.join(OUT_DIR, "OFL.txt"), "w", encoding="utf-8") as f:
        f.write(COPYRIGHT + "\n\n" + "\n".join(lines).strip() + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ttc", help="NotoSansCJK-Regular.ttc (default: apt-get download it)")
    parser.add_argument("--copyright", help="the package's copyright file (default: beside --ttc's package)")
    args = parser.parse_args()
    os.makedirs(OUT_DIR, exist_ok=True)

    roots = [os.path.join(REPO, "datasets")]
    missing = [r for r in roots if not os.path.isdir(r)]
    if missing:
        sys.exit(f"data set folder(s) missing: {missing}")
    chars = wanted_chars(roots)
    with open(os.path.join(OUT_DIR, "chars.txt"), "w", encoding="utf-8") as f:
        for i in range(0, len(chars), 64):
            f.write("".join(chars[i:i + 64]) + "\n")

    with tempfile.TemporaryDirectory() as work:
        ttc = args.ttc or fetch_ttc(work)
        copyright_file = args.copyright or os.path.join(
            work, "x", "usr/share/doc/fonts-noto-cjk/copyright")
        if not os.path.isfile(copyright_file):
            copyright_file = "/usr/share/doc/fonts-noto-cjk/copyright"
        write_licence(copyright_file)
        font = subset_face(ttc, chars)
    cff_to_glyf(font)
    rename(font)
    out = os.path.join(OUT_DIR, FONT_NAME)
    tmp = out + ".tmp"
    font.save(tmp)
    os.replace(tmp, out)  # atomic: a half-written font is never left under the real name

    cmap = TTFont(out)["cmap"].getBestCmap()
    lacking = [c for c in chars if ord(c) not in cmap]
    print(f"{out}: {os.path.getsize(out):,} bytes, {len(chars)} characters asked, "
          f"{len(chars) - len(lacking)} mapped")
    if lacking:
        print(f"not in Noto Sans CJK SC ({len(lacking)}): {''.join(lacking)[:200]}")


if __name__ == "__main__":
    main()
