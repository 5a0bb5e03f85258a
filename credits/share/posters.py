"""The share posters as PNG: a project's (for WeChat groups), a merchant's counter poster and a project's printable
A4 check-in sheet. Drawn with Pillow, QR codes by segno, Chinese text in a CJK font found on the machine.

Each poster is described by a `Poster` (what it shows, as plain strings); its PNG is cached on disk under the
hash of that description, so a changed project (title, time, places left …) gets a new file and an unchanged one
is drawn once, whichever worker is asked.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont

# Bumped when the drawing changes, so cached files of the old look are not served.
LAYOUT_VERSION = "1"

WIDTH = 1080
HEIGHT = 1620
A4 = (1240, 1754)  # 150 dpi: sharp enough for a printed QR, small enough to send
MARGIN = 80

RED = (185, 28, 28)
INK = (17, 24, 39)
MUTED = (75, 85, 99)
PAPER = (255, 251, 245)
WHITE = (255, 255, 255)

# Where Debian/Ubuntu (fonts-wqy-microhei, fonts-noto-cjk), Fedora and macOS keep a CJK font, tried after
# fontconfig: a container without fc-match still finds the file.
KNOWN_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
)


class FontMissing(RuntimeError):
    """No font with Chinese glyphs: install fonts-wqy-microhei (README, .ci/run) or set POSTER_FONT."""


@cache
def find_cjk_font(configured: str | None = None) -> str:
    """The path of a font with Chinese glyphs: POSTER_FONT if set, else what fontconfig offers for :lang=zh,
    else a known path."""
    if configured:
        if not Path(configured).is_file():
            raise FontMissing(f"POSTER_FONT {configured} is not a file")
        return configured
    if shutil.which("fc-match"):
        try:
            found = subprocess.run(["fc-match", "-f", "%{file}", ":lang=zh"], capture_output=True, text=True,
                                   timeout=5, check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            found = ""
        # fc-match always answers something: a Latin font when nothing covers Chinese. Keep it only if it does.
        if found and Path(found).is_file() and _covers_chinese(found):
            return found
    for path in KNOWN_FONTS:
        if Path(path).is_file():
            return path
    raise FontMissing("no CJK font found: apt-get install fonts-wqy-microhei, or set POSTER_FONT")


def _covers_chinese(path: str) -> bool:
    """Whether the font draws 公 as something other than the box it draws for a missing glyph."""
    font = ImageFont.truetype(path, 40)
    return font.getmask("公").getbbox() != font.getmask("\U000f0000").getbbox()


@cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def printable(text: str) -> str:
    """Text the font can draw: emoji, pictographs, private-use and control characters dropped (the CJK font has
    none of them and would draw empty boxes), runs of spaces and line breaks made one space."""
    kept = [ch for ch in unicodedata.normalize("NFC", text)
            if unicodedata.category(ch) not in ("So", "Sk", "Cs", "Co", "Cn", "Cf", "Cc", "Mn")
            or ch in "\n\t"]
    return " ".join("".join(kept).split())


# --- layout ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height


@dataclass(frozen=True)
class TextBlock:
    """Lines of text placed inside a box: each line's position and its measured ink box."""

    box: Box
    size: int
    lines: tuple[str, ...]
    positions: tuple[tuple[int, int], ...]
    extents: tuple[tuple[int, int, int, int], ...]  # (left, top, right, bottom) of each line as drawn

    @property
    def truncated(self) -> bool:
        return bool(self.lines) and self.lines[-1].endswith("…")


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy wrapping by character (Chinese has no spaces to break at); a Latin word is not split unless it alone
    is wider than the line."""
    lines: list[str] = []
    line = ""
    for token in _tokens(text):
        candidate = line + token
        if font.getlength(candidate) <= width or not line:
            line = candidate
        else:
            lines.append(line.rstrip())
            line = token.lstrip()
        while font.getlength(line) > width:  # one token wider than the line: split it by character
            cut = max(1, _fitting(line, font, width))
            lines.append(line[:cut])
            line = line[cut:]
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _tokens(text: str) -> list[str]:
    """Words of Latin letters and digits (with their following space) stay whole; every other character is one."""
    tokens: list[str] = []
    word = ""
    for ch in text:
        if ch.isascii() and ch.isalnum():
            word += ch
            continue
        if word:
            tokens.append(word)
            word = ""
        tokens.append(ch)
    if word:
        tokens.append(word)
    return tokens


def _fitting(text: str, font: ImageFont.FreeTypeFont, width: int) -> int:
    """How many leading characters of `text` fit in `width`."""
    n = 0
    while n < len(text) and font.getlength(text[:n + 1]) <= width:
        n += 1
    return n


def layout_text(text: str, font_path: str, box: Box, sizes: tuple[int, ...], max_lines: int,
                line_gap: float = 0.3) -> TextBlock:
    """Fit `text` into `box`: the largest of `sizes` at which it wraps into at most `max_lines` lines that fit the
    box's height; at the smallest size, the lines past `max_lines` are cut and the last ends with "…"."""
    text = printable(text)
    for size in sizes:
        font = _font(font_path, size)
        lines = _wrap(text, font, box.width)
        step = round(size * (1 + line_gap))
        if len(lines) <= max_lines and len(lines) * step <= box.height:
            return _place(lines, font, size, step, box)
    size = sizes[-1]
    font = _font(font_path, size)
    step = round(size * (1 + line_gap))
    room = max(1, min(max_lines, box.height // step))
    lines = _wrap(text, font, box.width)
    if len(lines) > room:
        last = lines[room - 1]
        while last and font.getlength(last + "…") > box.width:
            last = last[:-1]
        lines = [*lines[:room - 1], last + "…"]
    return _place(lines, font, size, step, box)


def _place(lines: list[str], font: ImageFont.FreeTypeFont, size: int, step: int, box: Box) -> TextBlock:
    positions, extents = [], []
    for i, line in enumerate(lines):
        x, y = box.x, box.y + i * step
        positions.append((x, y))
        extents.append(tuple(int(v) for v in font.getbbox(line, anchor="la")) if line else (0, 0, 0, 0))
        left, top, right, bottom = extents[-1]
        extents[-1] = (x + left, y + top, x + right, y + bottom)
    return TextBlock(box, size, tuple(lines), tuple(positions), tuple(extents))


def _draw_block(draw: ImageDraw.ImageDraw, block: TextBlock, font_path: str, fill) -> int:
    """Draw the block and return the y below its last line."""
    font = _font(font_path, block.size)
    for line, position in zip(block.lines, block.positions, strict=True):
        draw.text(position, line, font=font, fill=fill, anchor="la")
    return block.extents[-1][3] if block.extents else block.box.y


def _qr(url: str, size: int) -> Image.Image:
    """The QR of `url`, `size` pixels square with its quiet zone, drawn crisp (whole pixels per module)."""
    qr = segno.make(url, error="m", micro=False)
    modules = qr.symbol_size(scale=1, border=4)[0]
    scale = max(1, size // modules)
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=scale, border=4)
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB")
    return image.resize((size, size), Image.Resampling.NEAREST) if image.width != size else image


# --- the posters -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Poster:
    """What a poster shows, as text already in the reader's language. `kind` is project, merchant or sheet."""

    kind: str
    heading: str  # the band at the top
    title: str
    rows: tuple[tuple[str, str], ...] = ()  # (label, value)
    url: str = ""  # what the QR opens
    qr_caption: str = ""
    stamp: str = ""  # a mark across the poster: 已取消
    lead: str = ""  # a line above the title (the merchant poster's 本店为…)
    items: tuple[tuple[str, str], ...] = ()  # the merchant's services and prices
    more: str = ""  # "… and N more" under the items
    footer: str = ""

    def digest(self, font_path: str) -> str:
        body = json.dumps([LAYOUT_VERSION, font_path, asdict(self)], ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:32]


@dataclass
class Drawn:
    image: Image.Image
    title: TextBlock
    text_boxes: list[Box]
    qr: Box


def draw(poster: Poster, font_path: str) -> Drawn:
    if poster.kind == "sheet":
        return _draw_sheet(poster, font_path)
    return _draw_share(poster, font_path)


def _draw_band(draw_: ImageDraw.ImageDraw, text: str, font_path: str, width: int) -> int:
    draw_.rectangle((0, 0, width, 150), fill=RED)
    block = layout_text(text, font_path, Box(MARGIN, 48, width - 2 * MARGIN, 70), (44, 36, 30), 1)
    _draw_block(draw_, block, font_path, WHITE)
    return 150


def _draw_share(poster: Poster, font_path: str) -> Drawn:
    image = Image.new("RGB", (WIDTH, HEIGHT), PAPER)
    pen = ImageDraw.Draw(image)
    y = _draw_band(pen, poster.heading, font_path, WIDTH) + 60
    inner = WIDTH - 2 * MARGIN
    boxes: list[Box] = []
    if poster.lead:
        lead = layout_text(poster.lead, font_path, Box(MARGIN, y, inner, 70), (48, 40, 34), 1)
        y = _draw_block(pen, lead, font_path, RED) + 30
    # A merchant's name is short; a project's title may be long and takes up to three lines.
    title_box = Box(MARGIN, y, inner, 150 if poster.lead else 290)
    title = layout_text(poster.title, font_path, title_box, (76, 68, 60, 52, 46), 2 if poster.lead else 3,
                        line_gap=0.25)
    _draw_block(pen, title, font_path, INK)
    boxes.append(title_box)
    y = title_box.bottom + 20
    pen.line((MARGIN, y, WIDTH - MARGIN, y), fill=(229, 231, 235), width=3)
    y += 36
    label_width = 190
    for label, value in poster.rows:
        _draw_block(pen, layout_text(label, font_path, Box(MARGIN, y, label_width - 20, 50), (36, 30), 1),
                    font_path, MUTED)
        box = Box(MARGIN + label_width, y, inner - label_width, 100)
        block = layout_text(value, font_path, box, (38, 32), 2)
        y = max(y + 56, _draw_block(pen, block, font_path, INK) + 22)
        boxes.append(box)
    for name, price in poster.items:
        box = Box(MARGIN, y, inner - 260, 50)
        _draw_block(pen, layout_text(name, font_path, box, (38, 32), 1), font_path, INK)
        price_block = layout_text(price, font_path, Box(WIDTH - MARGIN - 240, y, 240, 50), (38, 32), 1)
        width = price_block.extents[0][2] - price_block.positions[0][0] if price_block.lines else 0
        shifted = Box(WIDTH - MARGIN - width, y, 240, 50)
        _draw_block(pen, layout_text(price, font_path, shifted, (price_block.size,), 1), font_path, RED)
        boxes.append(box)
        y += 62
    if poster.more:
        box = Box(MARGIN, y, inner, 46)
        _draw_block(pen, layout_text(poster.more, font_path, box, (32,), 1), font_path, MUTED)
        boxes.append(box)
    qr_size = 400
    qr = Box((WIDTH - qr_size) // 2, HEIGHT - qr_size - 170, qr_size, qr_size)
    image.paste(_qr(poster.url, qr_size), (qr.x, qr.y))
    qr_top = qr.y
    caption = layout_text(poster.qr_caption, font_path, Box(MARGIN, qr_top + qr_size + 20, inner, 50), (36, 30), 1)
    _center(pen, caption, font_path, WIDTH, INK)
    footer = layout_text(poster.footer, font_path, Box(MARGIN, HEIGHT - 80, inner, 40), (26, 22), 1)
    _center(pen, footer, font_path, WIDTH, MUTED)
    if poster.stamp:
        _stamp(image, poster.stamp, font_path)
    return Drawn(image, title, boxes, qr)


def _center(pen: ImageDraw.ImageDraw, block: TextBlock, font_path: str, width: int, fill) -> None:
    font = _font(font_path, block.size)
    for line, (_, y) in zip(block.lines, block.positions, strict=True):
        pen.text((width // 2, y), line, font=font, fill=fill, anchor="ma")


def _stamp(image: Image.Image, text: str, font_path: str) -> None:
    """A red stamp across the middle: a cancelled project's poster still shared somewhere says so."""
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    font = _font(font_path, 150)
    width = int(font.getlength(text)) + 120
    stamp = Image.new("RGBA", (width, 240), (0, 0, 0, 0))
    ImageDraw.Draw(stamp).rounded_rectangle((6, 6, width - 6, 234), radius=24, outline=RED + (230,), width=12)
    ImageDraw.Draw(stamp).text((width // 2, 120), text, font=font, fill=RED + (230,), anchor="mm")
    stamp = stamp.rotate(18, expand=True, resample=Image.Resampling.BICUBIC)
    layer.paste(stamp, ((image.width - stamp.width) // 2, image.height // 2 - stamp.height // 2 - 200), stamp)
    image.paste(Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB"))


def _draw_sheet(poster: Poster, font_path: str) -> Drawn:
    width, height = A4
    image = Image.new("RGB", A4, WHITE)
    pen = ImageDraw.Draw(image)
    y = _draw_band(pen, poster.heading, font_path, width) + 60
    inner = width - 2 * MARGIN
    title_box = Box(MARGIN, y, inner, 220)
    title = layout_text(poster.title, font_path, title_box, (72, 64, 56, 48), 2, line_gap=0.25)
    _draw_block(pen, title, font_path, INK)
    y = title_box.bottom + 20
    boxes = [title_box]
    for label, value in poster.rows:
        box = Box(MARGIN, y, inner, 60)
        _draw_block(pen, layout_text(f"{label}：{value}", font_path, box, (38, 32), 1), font_path, INK)
        boxes.append(box)
        y += 64
    qr_size = 760
    qr_top = y + 30
    qr = Box((width - qr_size) // 2, qr_top, qr_size, qr_size)
    image.paste(_qr(poster.url, qr_size), (qr.x, qr.y))
    y = qr_top + qr_size + 20
    caption = layout_text(poster.qr_caption, font_path, Box(MARGIN, y, inner, 150), (40, 34), 3)
    _center(pen, caption, font_path, width, INK)
    footer = layout_text(poster.footer, font_path, Box(MARGIN, height - 70, inner, 40), (26, 22), 1)
    _center(pen, footer, font_path, width, MUTED)
    if poster.stamp:
        _stamp(image, poster.stamp, font_path)
    return Drawn(image, title, boxes, qr)


def png(poster: Poster, font_path: str, cache_dir: Path) -> tuple[bytes, str]:
    """The poster as PNG bytes and its content hash, from the cache when drawn before."""
    digest = poster.digest(font_path)
    path = cache_dir / f"{digest}.png"
    try:
        return path.read_bytes(), digest
    except FileNotFoundError:
        pass
    buffer = io.BytesIO()
    draw(poster, font_path).image.save(buffer, format="PNG", optimize=True)
    data = buffer.getvalue()
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: a worker reading the same poster meanwhile sees the whole file or none.
    with tempfile.NamedTemporaryFile(dir=cache_dir, suffix=".tmp", delete=False) as handle:
        handle.write(data)
    os.replace(handle.name, path)
    return data, digest
