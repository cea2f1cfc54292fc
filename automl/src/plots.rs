//! Plots rendered to PNG for the AutoML run report.
//!
//! Every chart is drawn with `plotters` into an in-memory RGB buffer and encoded with the `png`
//! crate, so no image library and no system font lookup is involved. Label text uses a TrueType
//! font read once at run time: `$FERROFLOW_PLOT_FONT` if set, else a few well-known system
//! paths. Without any usable font the charts are still produced, only without text.

use std::path::PathBuf;
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontTransform, RGBAColor};

/// Width of every chart, in pixels.
pub const WIDTH: u32 = 800;
/// Height of every chart, in pixels.
pub const HEIGHT: u32 = 600;

/// Environment variable naming a TTF/OTF file to use for chart text.
pub const FONT_ENV: &str = "FERROFLOW_PLOT_FONT";

/// Font files tried, in order, when `FERROFLOW_PLOT_FONT` is unset or unusable.
const DEFAULT_FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Font family name the loaded font is registered under with plotters.
const FAMILY: &str = "sans-serif";

/// At most this many features are shown in the importance chart.
const MAX_FEATURES: usize = 20;

/// One ROC curve: `points` are `(false positive rate, true positive rate)`.
#[derive(Debug, Clone, PartialEq)]
pub struct RocCurve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub auc: f64,
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The registered label font.
struct Font {
    /// Horizontal metrics read from the font file; `None` if its tables could not be parsed, in
    /// which case whole strings are handed to plotters.
    metrics: Option<Metrics>,
}

/// Loads and registers the label font once; `None` when no text can be drawn.
fn loaded_font() -> Option<&'static Font> {
    static FONT: OnceLock<Option<Font>> = OnceLock::new();
    FONT.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(path) = std::env::var_os(FONT_ENV).filter(|p| !p.is_empty()) {
            candidates.push(PathBuf::from(path));
        }
        candidates.extend(DEFAULT_FONT_PATHS.iter().map(PathBuf::from));
        for path in candidates {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            if bytes.is_empty() {
                continue;
            }
            // plotters keeps a `'static` reference to the font data; this runs at most once per
            // readable candidate file, so the leak is bounded.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_ok() {
                tracing::debug!(font = %path.display(), "plot font registered");
                return Some(Font {
                    metrics: Metrics::parse(bytes),
                });
            }
            tracing::warn!(font = %path.display(), "plot font could not be parsed");
        }
        tracing::warn!("no plot font found (set {FONT_ENV}); charts are rendered without text");
        None
    })
    .as_ref()
}

/// Minimal TrueType/OpenType reader for what glyph placement needs: `cmap` (char → glyph),
/// `hmtx` (advance, left side bearing) and the cap height.
///
/// plotters' ab_glyph backend draws each glyph at the pen position without its left side
/// bearing and truncates the pen to whole pixels, which gives visibly uneven letter spacing
/// ("ver si color"). Labels are therefore drawn one glyph at a time at the right offset.
struct Metrics {
    data: &'static [u8],
    cmap: usize,
    cmap_format: u16,
    hmtx: usize,
    num_h_metrics: u16,
    /// Pixels per font unit for a plotters font size of 1.
    scale: f64,
    /// Cap height in font units.
    cap_height: f64,
}

fn be_u16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn be_i16(d: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_be_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn be_u32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

impl Metrics {
    fn parse(data: &'static [u8]) -> Option<Self> {
        let num_tables = be_u16(data, 4)? as usize;
        let table = |tag: &[u8; 4]| -> Option<usize> {
            (0..num_tables).find_map(|i| {
                let rec = 12 + 16 * i;
                (data.get(rec..rec + 4)? == tag).then_some(())?;
                let offset = be_u32(data, rec + 8)? as usize;
                (offset < data.len()).then_some(offset)
            })
        };
        let head = table(b"head")?;
        let hhea = table(b"hhea")?;
        let hmtx = table(b"hmtx")?;
        let cmap_table = table(b"cmap")?;
        let units_per_em = f64::from(be_u16(data, head + 18)?);
        let num_h_metrics = be_u16(data, hhea + 34)?;
        if num_h_metrics == 0 || units_per_em <= 0.0 {
            return None;
        }

        // Preferred Unicode subtables: full repertoire (format 12) first, then BMP (format 4).
        let records = be_u16(data, cmap_table + 2)? as usize;
        let mut best: Option<(u8, usize, u16)> = None;
        for i in 0..records {
            let rec = cmap_table + 4 + 8 * i;
            let (platform, encoding) = (be_u16(data, rec)?, be_u16(data, rec + 2)?);
            let sub = cmap_table + be_u32(data, rec + 4)? as usize;
            let format = be_u16(data, sub)?;
            let rank = match (platform, encoding, format) {
                (3, 10, 12) | (0, 4, 12) | (0, 6, 12) => 4,
                (3, 1, 4) | (0, 3, 4) => 3,
                (0, _, 4) => 2,
                (0, _, 12) => 1,
                _ => continue,
            };
            if best.is_none_or(|(r, _, _)| rank > r) {
                best = Some((rank, sub, format));
            }
        }
        let (_, cmap, cmap_format) = best?;

        // Cap height from OS/2 (version ≥ 2), else a typical 70% of the em.
        let cap_height = table(b"OS/2")
            .and_then(|os2| {
                (be_u16(data, os2)? >= 2).then_some(())?;
                let cap = be_i16(data, os2 + 88)?;
                (cap > 0).then_some(f64::from(cap))
            })
            .unwrap_or(0.7 * units_per_em);

        let mut metrics = Metrics {
            data,
            cmap,
            cmap_format,
            hmtx,
            num_h_metrics,
            scale: 0.0,
            cap_height,
        };
        // Calibrate units → pixels against plotters' own layout (which depends on the font's
        // ascender/descender choice) with a long run of one glyph at a large size.
        const RUN: usize = 20;
        const SIZE: f64 = 1000.0;
        let advance = f64::from(metrics.h_metrics(metrics.glyph('M'))?.0);
        let (width, _) = (FAMILY, SIZE).into_font().box_size(&"M".repeat(RUN)).ok()?;
        if advance <= 0.0 || width == 0 {
            return None;
        }
        metrics.scale = f64::from(width) / (RUN as f64 * advance * SIZE);
        Some(metrics)
    }

    /// Glyph id of `c` (0, the missing-glyph box, when unmapped).
    fn glyph(&self, c: char) -> u16 {
        self.lookup(u32::from(c)).unwrap_or(0)
    }

    fn lookup(&self, c: u32) -> Option<u16> {
        let (d, sub) = (self.data, self.cmap);
        if self.cmap_format == 12 {
            let groups = be_u32(d, sub + 12)? as usize;
            let (mut lo, mut hi) = (0usize, groups);
            while lo < hi {
                let mid = (lo + hi) / 2;
                let rec = sub + 16 + 12 * mid;
                let (start, end) = (be_u32(d, rec)?, be_u32(d, rec + 4)?);
                if c < start {
                    hi = mid;
                } else if c > end {
                    lo = mid + 1;
                } else {
                    return u16::try_from(be_u32(d, rec + 8)?.checked_add(c - start)?).ok();
                }
            }
            return None;
        }
        // Format 4.
        let c = u16::try_from(c).ok()?;
        let seg_count = be_u16(d, sub + 6)? as usize / 2;
        let ends = sub + 14;
        let starts = ends + 2 * seg_count + 2;
        let deltas = starts + 2 * seg_count;
        let range_offsets = deltas + 2 * seg_count;
        let i = (0..seg_count).find(|&i| be_u16(d, ends + 2 * i).is_some_and(|e| e >= c))?;
        let start = be_u16(d, starts + 2 * i)?;
        if c < start {
            return None;
        }
        let delta = be_u16(d, deltas + 2 * i)?;
        let range_offset = be_u16(d, range_offsets + 2 * i)?;
        if range_offset == 0 {
            return Some(c.wrapping_add(delta));
        }
        let at = range_offsets + 2 * i + range_offset as usize + 2 * (c - start) as usize;
        let g = be_u16(d, at)?;
        (g != 0).then(|| g.wrapping_add(delta))
    }

    /// (advance width, left side bearing) in font units.
    fn h_metrics(&self, glyph: u16) -> Option<(u16, i16)> {
        let (d, n) = (self.data, self.num_h_metrics);
        let long = glyph.min(n - 1) as usize;
        let advance = be_u16(d, self.hmtx + 4 * long)?;
        let lsb = if glyph < n {
            be_i16(d, self.hmtx + 4 * long + 2)?
        } else {
            be_i16(d, self.hmtx + 4 * n as usize + 2 * (glyph - n) as usize).unwrap_or(0)
        };
        Some((advance, lsb))
    }

    /// Pen offset, left side bearing and char of each glyph, plus the total advance, in pixels.
    fn layout(&self, s: &str, size: f64) -> (Vec<(f64, f64, char)>, f64) {
        let px = self.scale * size;
        let mut pen = 0.0;
        let mut glyphs = Vec::with_capacity(s.len());
        for c in s.chars() {
            let (advance, lsb) = self.h_metrics(self.glyph(c)).unwrap_or((0, 0));
            glyphs.push((pen, f64::from(lsb) * px, c));
            pen += f64::from(advance) * px;
        }
        (glyphs, pen)
    }
}

/// Text helper: without a font every text operation is a no-op.
#[derive(Clone, Copy)]
struct Text {
    font: Option<&'static Font>,
}

impl Text {
    fn on(self) -> bool {
        self.font.is_some()
    }

    /// Width of `s` in pixels at `size` (zero without a font).
    fn width(self, s: &str, size: f64) -> f64 {
        match self.font {
            None => 0.0,
            Some(Font {
                metrics: Some(m), ..
            }) => m.layout(s, size).1,
            Some(Font { metrics: None }) => (FAMILY, size)
                .into_font()
                .box_size(s)
                .map(|(w, _)| f64::from(w))
                .unwrap_or(0.0),
        }
    }

    /// Cap height in pixels at `size`.
    fn cap(self, size: f64) -> f64 {
        match self.font {
            Some(Font {
                metrics: Some(m), ..
            }) => m.cap_height * m.scale * size,
            _ => size * 0.62,
        }
    }

    /// `s` shortened with an ellipsis to at most `max_w` pixels.
    fn fit(self, s: &str, size: f64, max_w: f64) -> String {
        if self.width(s, size) <= max_w {
            return s.to_string();
        }
        // No label fits more than a few hundred characters; bound the search.
        let mut chars: Vec<char> = s.chars().take(300).collect();
        while !chars.is_empty() {
            chars.pop();
            let candidate: String = chars.iter().chain(['…'].iter()).collect();
            if self.width(&candidate, size) <= max_w {
                return candidate;
            }
        }
        String::new()
    }

    /// Draws `s` with its anchor `(h, v)` at `pos`. `VPos::Center` centres the cap height,
    /// `Top`/`Bottom` align the cap top / descender bottom. `rotated` turns the text 90°
    /// counter-clockwise (reading bottom to top).
    #[allow(clippy::too_many_arguments)]
    fn draw<C: Color>(
        self,
        area: &Area<'_>,
        s: &str,
        size: f64,
        color: &C,
        (h, v): (HPos, VPos),
        rotated: bool,
        pos: (i32, i32),
    ) -> Result<(), String> {
        let Some(font) = self.font else {
            return Ok(());
        };
        if s.is_empty() {
            return Ok(());
        }
        let transform = if rotated {
            FontTransform::Rotate270
        } else {
            FontTransform::None
        };
        let style = (FAMILY, size)
            .into_font()
            .transform(transform.clone())
            .color(color);
        let Some(m) = &font.metrics else {
            let style = style.pos(Pos::new(h, v));
            return area.draw_text(s, &style, pos).map_err(draw_err);
        };
        let (glyphs, width) = m.layout(s, size);
        let start = match h {
            HPos::Left => 0.0,
            HPos::Center => -width / 2.0,
            HPos::Right => -width,
        };
        // plotters puts the baseline `size / 2` below the top of a top-anchored glyph.
        let cap = self.cap(size);
        let descent = size * 0.2;
        let baseline = match v {
            VPos::Top => cap,
            VPos::Center => cap / 2.0,
            VPos::Bottom => -descent,
        };
        let down = baseline - size / 2.0;
        let style = style.pos(Pos::new(HPos::Left, VPos::Top));
        let mut buf = [0u8; 4];
        for (pen, lsb, c) in glyphs {
            if c.is_whitespace() {
                continue;
            }
            // ab_glyph rasterises at an integer origin with the ink box starting at
            // floor(lsb); plotters drops that offset, so it is added back here.
            let along = ((start + pen).round() + lsb.floor()) as i32;
            let (dx, dy) = transform.transform(along, down.round() as i32);
            area.draw_text(c.encode_utf8(&mut buf), &style, (pos.0 + dx, pos.1 + dy))
                .map_err(draw_err)?;
        }
        Ok(())
    }

    fn title(self, area: &Area<'_>, title: &str) -> Result<(), String> {
        let size = 26.0;
        let s = self.fit(title, size, f64::from(WIDTH) - 40.0);
        self.draw(
            area,
            &s,
            size,
            &BLACK,
            (HPos::Center, VPos::Center),
            false,
            (WIDTH as i32 / 2, 24),
        )
    }
}

/// A legend entry's symbol.
#[derive(Clone, Copy)]
enum Mark {
    Line(RGBColor, u32),
    Dashed(RGBColor),
    Dot(RGBColor),
}

/// A boxed legend, laid out before it is placed.
struct Legend {
    entries: Vec<(Mark, String)>,
    size: f64,
    w: i32,
    h: i32,
}

impl Legend {
    const PAD: i32 = 10;
    const SYMBOL: i32 = 26;

    /// Lays out `entries` at font `size`, shortening labels to `max_text` pixels. Without a font
    /// the legend is empty (zero size, draws nothing).
    fn new(text: Text, entries: Vec<(Mark, String)>, size: f64, max_text: f64) -> Self {
        if !text.on() || entries.is_empty() {
            return Legend {
                entries: Vec::new(),
                size,
                w: 0,
                h: 0,
            };
        }
        let entries: Vec<(Mark, String)> = entries
            .into_iter()
            .map(|(m, l)| (m, text.fit(&l, size, max_text)))
            .collect();
        let text_w = entries
            .iter()
            .map(|(_, l)| text.width(l, size))
            .fold(0.0, f64::max)
            .ceil() as i32;
        let w = Self::PAD + Self::SYMBOL + 8 + text_w + Self::PAD;
        let h = 2 * Self::PAD + Self::row_h(size) * (entries.len() as i32 - 1) + size as i32;
        Legend {
            entries,
            size,
            w,
            h,
        }
    }

    fn row_h(size: f64) -> i32 {
        (size * 1.25).round() as i32
    }

    /// Draws the legend with its top-left corner at `(x0, y0)`.
    fn draw(&self, area: &Area<'_>, text: Text, (x0, y0): (i32, i32)) -> Result<(), String> {
        if self.entries.is_empty() {
            return Ok(());
        }
        let rect = [(x0, y0), (x0 + self.w, y0 + self.h)];
        area.draw(&Rectangle::new(rect, WHITE.mix(0.92).filled()))
            .map_err(draw_err)?;
        area.draw(&Rectangle::new(
            rect,
            RGBColor(190, 190, 190).stroke_width(1),
        ))
        .map_err(draw_err)?;
        for (i, (mark, label)) in self.entries.iter().enumerate() {
            let cy = y0 + Self::PAD + (self.size / 2.0) as i32 + Self::row_h(self.size) * i as i32;
            let (sx0, sx1) = (x0 + Self::PAD, x0 + Self::PAD + Self::SYMBOL);
            match *mark {
                Mark::Line(color, width) => area
                    .draw(&PathElement::new(
                        vec![(sx0, cy), (sx1, cy)],
                        color.stroke_width(width),
                    ))
                    .map_err(draw_err)?,
                Mark::Dashed(color) => {
                    for k in 0..3 {
                        let a = sx0 + k * 10;
                        area.draw(&PathElement::new(
                            vec![(a, cy), ((a + 6).min(sx1), cy)],
                            color.stroke_width(1),
                        ))
                        .map_err(draw_err)?;
                    }
                }
                Mark::Dot(color) => area
                    .draw(&Circle::new(
                        (sx0 + Self::SYMBOL / 2, cy),
                        4,
                        color.filled(),
                    ))
                    .map_err(draw_err)?,
            }
            text.draw(
                area,
                label,
                self.size,
                &BLACK,
                (HPos::Left, VPos::Center),
                false,
                (sx1 + 8, cy),
            )?;
        }
        Ok(())
    }
}

/// Axis titles below and left of the plotting area `plot`.
fn draw_axis_titles(
    area: &Area<'_>,
    text: Text,
    plot: &(std::ops::Range<i32>, std::ops::Range<i32>),
    x_title: &str,
    x_offset: i32,
    y_title: &str,
    y_offset: i32,
) -> Result<(), String> {
    const SIZE: f64 = AXIS_TITLE_PX;
    let cx = (plot.0.start + plot.0.end) / 2;
    let cy = (plot.1.start + plot.1.end) / 2;
    let x_title = text.fit(x_title, SIZE, f64::from(WIDTH) - 20.0);
    text.draw(
        area,
        &x_title,
        SIZE,
        &BLACK,
        (HPos::Center, VPos::Top),
        false,
        (cx, plot.1.end + x_offset),
    )?;
    let y_title = text.fit(y_title, SIZE, f64::from(plot.1.end - plot.1.start));
    // Rotated: "top" of the text faces left, so anchor the top at the left edge.
    text.draw(
        area,
        &y_title,
        SIZE,
        &BLACK,
        (HPos::Center, VPos::Top),
        true,
        (plot.0.start - y_offset, cy),
    )
}

fn draw_err<E: std::fmt::Display>(e: E) -> String {
    format!("plot rendering failed: {e}")
}

/// Renders into a white RGB buffer and encodes it as PNG.
fn render(draw: impl FnOnce(&Area<'_>) -> Result<(), String>) -> Result<Vec<u8>, String> {
    let mut buf = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        draw(&root)?;
        root.present().map_err(draw_err)?;
    }
    encode_png(&buf, WIDTH, HEIGHT)
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(64 * 1024);
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| format!("png encoding failed: {e}"))?;
        writer
            .write_image_data(rgb)
            .map_err(|e| format!("png encoding failed: {e}"))?;
        writer
            .finish()
            .map_err(|e| format!("png encoding failed: {e}"))?;
    }
    Ok(out)
}

/// Largest magnitude used for an axis bound: plotters needs `hi - lo` to be finite (an infinite
/// span makes its tick search loop forever), so axes are clipped to ±1e300.
const AXIS_LIMIT: f64 = 1e300;

/// Clips axis bounds so that the span is finite and non-empty.
fn clip_bounds(lo: f64, hi: f64) -> (f64, f64) {
    let lo = if lo.is_nan() {
        0.0
    } else {
        lo.clamp(-AXIS_LIMIT, AXIS_LIMIT)
    };
    let hi = if hi.is_nan() {
        1.0
    } else {
        hi.clamp(-AXIS_LIMIT, AXIS_LIMIT)
    };
    if hi > lo {
        (lo, hi)
    } else {
        (lo, lo + lo.abs().max(1.0))
    }
}

/// Padded `(lo, hi)` around finite values with a non-empty span.
fn padded_range(lo: f64, hi: f64, pad_frac: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() || lo > hi {
        return (0.0, 1.0);
    }
    // Halves keep the span finite even for bounds near ±f64::MAX.
    let span = hi / 2.0 - lo / 2.0;
    if span <= f64::EPSILON * lo.abs().max(hi.abs()).max(1.0) {
        let half = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return clip_bounds(lo - half, hi + half);
    }
    let pad = 2.0 * span * pad_frac;
    clip_bounds(lo - pad, hi + pad)
}

/// Compact tick label for a value on an axis spanning `span`.
fn fmt_tick(v: f64, span: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".to_string();
    }
    let span = span.abs();
    if !(1e-4..1e6).contains(&span) || v.abs() >= 1e7 {
        return format!("{v:.2e}");
    }
    let decimals = (2.0 - span.log10().floor()).clamp(0.0, 8.0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.');
        if t == "-0" {
            "0".to_string()
        } else {
            t.to_string()
        }
    } else {
        s
    }
}

/// Sequential blue colour map, `t` in [0, 1].
fn blues(t: f64) -> RGBColor {
    const STOPS: [(f64, (f64, f64, f64)); 3] = [
        (0.0, (247.0, 251.0, 255.0)),
        (0.5, (107.0, 174.0, 214.0)),
        (1.0, (8.0, 48.0, 107.0)),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (a, b) = if t <= STOPS[1].0 {
        (STOPS[0], STOPS[1])
    } else {
        (STOPS[1], STOPS[2])
    };
    let f = (t - a.0) / (b.0 - a.0);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    RGBColor(
        mix(a.1 .0, b.1 .0),
        mix(a.1 .1, b.1 .1),
        mix(a.1 .2, b.1 .2),
    )
}

/// Categorical palette (Tableau 10).
const PALETTE: [RGBColor; 10] = [
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

const GRID: RGBColor = RGBColor(225, 225, 225);
const AXIS: RGBColor = RGBColor(90, 90, 90);

// ---------------------------------------------------------------------------------------------
// Confusion matrix
// ---------------------------------------------------------------------------------------------

/// Heatmap of `counts[actual][predicted]` with the count written in each cell.
pub fn confusion_matrix(labels: &[String], counts: &[Vec<u64>]) -> Result<Vec<u8>, String> {
    confusion_matrix_with(
        Text {
            font: loaded_font(),
        },
        labels,
        counts,
    )
}

fn confusion_matrix_with(
    text: Text,
    labels: &[String],
    counts: &[Vec<u64>],
) -> Result<Vec<u8>, String> {
    let n = labels.len();
    if n == 0 {
        return Err("confusion matrix: no classes".to_string());
    }
    if counts.len() != n || counts.iter().any(|row| row.len() != n) {
        return Err(format!(
            "confusion matrix: counts must be {n}x{n} to match the labels"
        ));
    }
    render(|root| draw_confusion(root, text, labels, counts))
}

fn draw_confusion(
    root: &Area<'_>,
    text: Text,
    labels: &[String],
    counts: &[Vec<u64>],
) -> Result<(), String> {
    let n = labels.len() as i32;
    let (w, h) = (WIDTH as i32, HEIGHT as i32);
    text.title(root, "Confusion matrix (test set)")?;

    const TOP: i32 = 52;
    const RIGHT: i32 = 40;
    const TITLE: i32 = 34; // room for an axis title
    const GAP: i32 = 8; // between the grid and the tick labels
    const MAX_LABEL: f64 = 190.0;

    // Tick font shrinks with the number of classes.
    let tick_px = (440.0 / f64::from(n) * 0.55).clamp(9.0, 16.0);
    let names: Vec<String> = labels
        .iter()
        .map(|l| text.fit(l, tick_px, MAX_LABEL))
        .collect();
    let max_label_w = names
        .iter()
        .map(|s| text.width(s, tick_px))
        .fold(0.0, f64::max)
        .ceil() as i32;
    let label_h = text.cap(tick_px).ceil() as i32 + 6;

    let left = TITLE + max_label_w + GAP + 4;
    // First guess of the cell size decides whether the x labels must be rotated.
    let guess = ((w - left - RIGHT).min(h - TOP - TITLE - label_h - GAP) / n).max(1);
    let rotate = text.on() && max_label_w > guess - 6;
    let x_labels_h = if rotate { max_label_w } else { label_h };
    let bottom = TITLE + x_labels_h + GAP + 4;

    let avail_w = w - left - RIGHT;
    let avail_h = h - TOP - bottom;
    let cell = (avail_w.min(avail_h) / n).max(1);
    let side = cell * n;
    // Centre the grid on the canvas as far as the label area allows.
    let gx = ((w - side) / 2).max(left);
    let gy = TOP + ((avail_h - side) / 2).max(0);

    let max = counts.iter().flatten().copied().max().unwrap_or(0);
    // Count font: fits the cell height and the widest number in the cell width.
    let widest = text.width(&max.max(1).to_string(), 1.0);
    let cell_px = f64::from(cell);
    let mut count_px = (cell_px * 0.36).max((cell_px * 0.55).min(9.0)).min(26.0);
    if widest > 0.0 {
        count_px = count_px.min(f64::from(cell) * 0.85 / widest);
    }
    let show_counts = count_px >= 6.5;

    for (a, row) in counts.iter().enumerate() {
        for (p, &c) in row.iter().enumerate() {
            let t = if max == 0 { 0.0 } else { c as f64 / max as f64 };
            let x0 = gx + p as i32 * cell;
            let y0 = gy + a as i32 * cell;
            let rect = [(x0, y0), (x0 + cell, y0 + cell)];
            root.draw(&Rectangle::new(rect, blues(t).filled()))
                .map_err(draw_err)?;
            if cell >= 6 {
                root.draw(&Rectangle::new(rect, WHITE.stroke_width(1)))
                    .map_err(draw_err)?;
            }
            if show_counts {
                let color = if t > 0.5 { WHITE } else { BLACK };
                text.draw(
                    root,
                    &c.to_string(),
                    count_px,
                    &color,
                    (HPos::Center, VPos::Center),
                    false,
                    (x0 + cell / 2, y0 + cell / 2),
                )?;
            }
        }
    }
    root.draw(&Rectangle::new(
        [(gx, gy), (gx + side, gy + side)],
        AXIS.stroke_width(1),
    ))
    .map_err(draw_err)?;

    // Tick labels, skipped when the cells are too small for them to be readable.
    let show_ticks = f64::from(cell) >= text.cap(tick_px) * 1.2;
    if show_ticks {
        for (i, name) in names.iter().enumerate() {
            let mid = i as i32 * cell + cell / 2;
            text.draw(
                root,
                name,
                tick_px,
                &BLACK,
                (HPos::Right, VPos::Center),
                false,
                (gx - GAP, gy + mid),
            )?;
            let (anchor, y) = if rotate {
                ((HPos::Right, VPos::Center), gy + side + GAP)
            } else {
                ((HPos::Center, VPos::Top), gy + side + GAP)
            };
            text.draw(root, name, tick_px, &BLACK, anchor, rotate, (gx + mid, y))?;
        }
    }

    let plot = (gx..gx + side, gy..gy + side);
    let (x_off, y_off) = if show_ticks {
        (GAP + x_labels_h + 12, GAP + max_label_w + 12 + 18)
    } else {
        (GAP + 8, GAP + 8 + 18)
    };
    draw_axis_titles(root, text, &plot, "Predicted", x_off, "Actual", y_off)
}

// ---------------------------------------------------------------------------------------------
// ROC curves
// ---------------------------------------------------------------------------------------------

/// ROC curves with a chance diagonal; legend entries read "label (AUC 0.953)".
pub fn roc_curves(curves: &[RocCurve]) -> Result<Vec<u8>, String> {
    roc_curves_with(
        Text {
            font: loaded_font(),
        },
        curves,
    )
}

fn roc_curves_with(text: Text, curves: &[RocCurve]) -> Result<Vec<u8>, String> {
    if curves.is_empty() {
        return Err("roc curves: no curves".to_string());
    }
    render(|root| draw_roc(root, text, curves))
}

const TICK_PX: f64 = 15.0;
const AXIS_TITLE_PX: f64 = 18.0;
const TOP: i32 = 52;
const BOTTOM: i32 = 12;
const X_LABEL_AREA: i32 = 62;

/// Grid, axes and tick labels. plotters picks the tick positions (recorded through its label
/// formatter); the labels themselves are drawn with [`Text::draw`] for correct glyph spacing.
/// `n_y == 0` draws no horizontal grid lines and no y labels.
fn draw_mesh(
    root: &Area<'_>,
    chart: &mut Chart<'_, '_>,
    text: Text,
    (n_x, n_y): (usize, usize),
    fmt: &dyn Fn(f64) -> String,
) -> Result<(), String> {
    let xs = std::cell::RefCell::new(Vec::new());
    let ys = std::cell::RefCell::new(Vec::new());
    let record_x = |v: &f64| {
        xs.borrow_mut().push(*v);
        String::new()
    };
    let record_y = |v: &f64| {
        ys.borrow_mut().push(*v);
        String::new()
    };
    let mut mesh = chart.configure_mesh();
    mesh.x_labels(n_x)
        .y_labels(n_y)
        .x_label_formatter(&record_x)
        .y_label_formatter(&record_y)
        // plotters' own labels are invisible (transparent text never touches the font);
        // the recorded positions are labelled below.
        .label_style((FAMILY, TICK_PX).into_font().color(&TRANSPARENT))
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .axis_style(AXIS);
    if n_y == 0 {
        mesh.disable_y_mesh();
    }
    mesh.draw().map_err(draw_err)?;

    let (x_range, y_range) = chart.plotting_area().get_pixel_range();
    let (x0, y0) = (chart.x_range().start, chart.y_range().start);
    for x in xs.into_inner() {
        let (px, _) = chart.backend_coord(&(x, y0));
        if x_range.contains(&px) || px == x_range.end {
            let anchor = (HPos::Center, VPos::Top);
            text.draw(
                root,
                &fmt(x),
                TICK_PX,
                &BLACK,
                anchor,
                false,
                (px, y_range.end + 10),
            )?;
        }
    }
    for y in ys.into_inner() {
        let (_, py) = chart.backend_coord(&(x0, y));
        if y_range.contains(&py) || py == y_range.end {
            let anchor = (HPos::Right, VPos::Center);
            text.draw(
                root,
                &fmt(y),
                TICK_PX,
                &BLACK,
                anchor,
                false,
                (x_range.start - 10, py),
            )?;
        }
    }
    Ok(())
}

/// Width of the y label area: tick labels, a gap and the rotated axis title.
fn y_label_area(text: Text, tick_w: f64) -> i32 {
    let title = text.cap(AXIS_TITLE_PX).ceil() as i32;
    tick_w.ceil() as i32 + 6 + 16 + title + 4
}

/// Builds a chart whose plotting area is square and horizontally centred.
fn square_chart<'a, 'b>(
    root: &'a Area<'b>,
    y_label_area: i32,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<Chart<'a, 'b>, String> {
    let plot = HEIGHT as i32 - TOP - BOTTOM - X_LABEL_AREA;
    let free = (WIDTH as i32 - plot).max(2 * y_label_area);
    let (left, right) = (free / 2 - y_label_area, free / 2);
    ChartBuilder::on(root)
        .margin_top(TOP)
        .margin_bottom(BOTTOM)
        .margin_left(left.max(0))
        .margin_right(right)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(y_label_area)
        .build_cartesian_2d(x, y)
        .map_err(draw_err)
}

fn draw_roc(root: &Area<'_>, text: Text, curves: &[RocCurve]) -> Result<(), String> {
    text.title(root, "ROC curve (test set)")?;

    // A few curves: legend inside the (square) plot, lower right, where ROC curves rarely go.
    // Many: a smaller legend to the right of a narrower plot, so it hides no curve.
    let outside = curves.len() > 5;
    let (legend_px, legend_max_w) = if outside {
        (13.0, 240.0)
    } else {
        (16.0, 330.0)
    };
    let chance_color = RGBColor(140, 140, 140);
    let mut entries = vec![(Mark::Dashed(chance_color), "chance".to_string())];
    for (i, curve) in curves.iter().enumerate() {
        let auc = if curve.auc.is_finite() {
            format!("{:.3}", curve.auc)
        } else {
            "n/a".to_string()
        };
        // Only the class label is shortened; the AUC always stays readable.
        let suffix = format!(" (AUC {auc})");
        let room = legend_max_w - text.width(&suffix, legend_px);
        let label = text.fit(&curve.label, legend_px, room);
        entries.push((
            Mark::Line(PALETTE[i % PALETTE.len()], 2),
            format!("{label}{suffix}"),
        ));
    }
    let legend = Legend::new(text, entries, legend_px, f64::INFINITY);

    let yla = y_label_area(text, text.width("0.8", TICK_PX));
    let (x, y) = (-0.01..1.01, -0.01..1.01);
    let mut chart = if outside && legend.w > 0 {
        ChartBuilder::on(root)
            .margin_top(TOP)
            .margin_bottom(BOTTOM)
            .margin_left(12)
            .margin_right(legend.w + 30)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(yla)
            .build_cartesian_2d(x, y)
            .map_err(draw_err)?
    } else {
        square_chart(root, yla, x, y)?
    };
    draw_mesh(root, &mut chart, text, (6, 6), &|v| fmt_tick(v, 1.0))?;

    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            6,
            5,
            chance_color.stroke_width(1),
        ))
        .map_err(draw_err)?;
    for (i, curve) in curves.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let mut pts: Vec<(f64, f64)> = curve
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| (x.clamp(0.0, 1.0), y.clamp(0.0, 1.0)))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(draw_err)?;
    }

    let plot = chart.plotting_area().get_pixel_range();
    draw_axis_titles(
        root,
        text,
        &plot,
        "False positive rate",
        34,
        "True positive rate",
        yla,
    )?;
    let at = if outside {
        (plot.0.end + 16, plot.1.start)
    } else {
        (plot.0.end - 12 - legend.w, plot.1.end - 12 - legend.h)
    };
    legend.draw(root, text, at)
}

// ---------------------------------------------------------------------------------------------
// Predicted vs actual
// ---------------------------------------------------------------------------------------------

/// Scatter of `(actual, predicted)` pairs with the ideal `y = x` line.
pub fn predicted_vs_actual(points: &[(f64, f64)]) -> Result<Vec<u8>, String> {
    predicted_vs_actual_with(
        Text {
            font: loaded_font(),
        },
        points,
    )
}

fn predicted_vs_actual_with(text: Text, points: &[(f64, f64)]) -> Result<Vec<u8>, String> {
    if points.is_empty() {
        return Err("predicted vs actual: no points".to_string());
    }
    let finite: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(a, p)| a.is_finite() && p.is_finite())
        .collect();
    if finite.is_empty() {
        return Err("predicted vs actual: no finite points".to_string());
    }
    render(|root| draw_pred_actual(root, text, &finite, points.len()))
}

fn draw_pred_actual(
    root: &Area<'_>,
    text: Text,
    points: &[(f64, f64)],
    total: usize,
) -> Result<(), String> {
    text.title(root, "Predicted vs actual (test set)")?;
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(a, p)| {
            (lo.min(a).min(p), hi.max(a).max(p))
        });
    let (lo, hi) = padded_range(lo, hi, 0.05);
    let span = hi - lo;
    let fmt = |v: f64| fmt_tick(v, span);

    // The y label area fits the widest tick label.
    let tick_w = [lo, hi, (lo + hi) / 2.0]
        .iter()
        .map(|&v| text.width(&fmt(v), TICK_PX))
        .fold(0.0, f64::max);
    let yla = y_label_area(text, tick_w);
    let mut chart = square_chart(root, yla, lo..hi, lo..hi)?;
    draw_mesh(root, &mut chart, text, (7, 7), &fmt)?;

    let ideal = PALETTE[3];
    chart
        .draw_series(LineSeries::new([(lo, lo), (hi, hi)], ideal.stroke_width(2)))
        .map_err(draw_err)?;

    // Only values beyond ±AXIS_LIMIT fall outside the axes; plotters' pixel mapping would
    // overflow on them, so they are left out (they would be clipped anyway).
    let inside = |v: f64| (lo..=hi).contains(&v);
    let (radius, alpha) = if points.len() > 2000 {
        (2, 0.35)
    } else {
        (3, 0.55)
    };
    let dot: RGBAColor = PALETTE[0].mix(alpha);
    chart
        .draw_series(
            points
                .iter()
                .filter(|(a, p)| inside(*a) && inside(*p))
                .map(|&(a, p)| Circle::new((a, p), radius, dot.filled())),
        )
        .map_err(draw_err)?;

    let plot = chart.plotting_area().get_pixel_range();
    draw_axis_titles(root, text, &plot, "Actual", 34, "Predicted", yla)?;
    let rows = if points.len() == total {
        format!("test rows (n = {total})")
    } else {
        format!("test rows (n = {} of {total}, finite only)", points.len())
    };
    let legend = Legend::new(
        text,
        vec![
            (Mark::Line(ideal, 2), "ideal (y = x)".to_string()),
            (Mark::Dot(PALETTE[0]), rows),
        ],
        16.0,
        f64::from(plot.0.end - plot.0.start - 100),
    );
    legend.draw(root, text, (plot.0.start + 12, plot.1.start + 12))
}

// ---------------------------------------------------------------------------------------------
// Feature importance
// ---------------------------------------------------------------------------------------------

/// Horizontal bars of `(feature, mean importance, std)`, sorted descending, at most 20 shown,
/// with ±std whiskers.
pub fn feature_importance(items: &[(String, f64, f64)]) -> Result<Vec<u8>, String> {
    feature_importance_with(
        Text {
            font: loaded_font(),
        },
        items,
    )
}

fn feature_importance_with(text: Text, items: &[(String, f64, f64)]) -> Result<Vec<u8>, String> {
    if items.is_empty() {
        return Err("feature importance: no features".to_string());
    }
    let mut sorted: Vec<&(String, f64, f64)> = items.iter().collect();
    // Descending by mean; non-finite means go last.
    sorted.sort_by(|a, b| match (a.1.is_finite(), b.1.is_finite()) {
        (true, true) => b.1.total_cmp(&a.1),
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => std::cmp::Ordering::Equal,
    });
    sorted.truncate(MAX_FEATURES);
    render(|root| draw_importance(root, text, &sorted, items.len()))
}

fn draw_importance(
    root: &Area<'_>,
    text: Text,
    items: &[&(String, f64, f64)],
    total: usize,
) -> Result<(), String> {
    text.title(root, "Permutation feature importance (test set)")?;
    let k = items.len();
    // Non-finite values draw as zero; magnitudes are capped so every sum stays finite.
    let mean = |m: f64| {
        if m.is_finite() {
            m.clamp(-AXIS_LIMIT, AXIS_LIMIT)
        } else {
            0.0
        }
    };
    let std = |s: f64| {
        if s.is_finite() {
            s.abs().min(AXIS_LIMIT)
        } else {
            0.0
        }
    };

    let mut lo: f64 = 0.0;
    let mut hi: f64 = 0.0;
    for (_, m, s) in items {
        let (m, s) = (mean(*m), std(*s));
        lo = lo.min(m - s);
        hi = hi.max(m + s);
    }
    let half_span = hi / 2.0 - lo / 2.0;
    let (lo, hi) = if half_span <= f64::EPSILON * lo.abs().max(hi.abs()).max(1e-300) {
        // Everything zero: a unit axis from zero.
        (0.0, 1.0)
    } else {
        (
            if lo < 0.0 { lo - half_span * 0.1 } else { lo },
            if hi > 0.0 { hi + half_span * 0.1 } else { hi },
        )
    };
    let (lo, hi) = clip_bounds(lo, hi);
    let span = hi - lo;

    let name_px = if k > 14 { 14.0 } else { 16.0 };
    let names: Vec<String> = items
        .iter()
        .map(|(n, _, _)| text.fit(n, name_px, 300.0))
        .collect();
    let name_w = names
        .iter()
        .map(|n| text.width(n, name_px))
        .fold(0.0, f64::max)
        .ceil() as i32;

    let mut chart = ChartBuilder::on(root)
        .margin_top(TOP)
        .margin_bottom(BOTTOM)
        .margin_left(15)
        .margin_right(40)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(name_w + 14)
        .build_cartesian_2d(lo..hi, -0.6f64..(k as f64 - 0.4))
        .map_err(draw_err)?;
    draw_mesh(root, &mut chart, text, (8, 0), &|v| fmt_tick(v, span))?;

    // Row 0 (largest) at the top.
    let row_y = |i: usize| (k - 1 - i) as f64;
    // Bars fill ~70% of a row, but at most 36 px when there are only a few features.
    let (_, plot_h) = chart.plotting_area().get_pixel_range();
    let row_px = f64::from((plot_h.end - plot_h.start).max(1)) / (k as f64 + 0.2);
    let bar_half = 0.36f64.min(18.0 / row_px);
    let bar_color = RGBColor(70, 130, 180);
    chart
        .draw_series(items.iter().enumerate().map(|(i, (_, m, _))| {
            let m = mean(*m);
            let y = row_y(i);
            Rectangle::new(
                [(m.min(0.0), y - bar_half), (m.max(0.0), y + bar_half)],
                bar_color.filled(),
            )
        }))
        .map_err(draw_err)?;

    if lo < 0.0 {
        chart
            .draw_series(LineSeries::new(
                [(0.0, -0.6), (0.0, k as f64 - 0.4)],
                AXIS.stroke_width(1),
            ))
            .map_err(draw_err)?;
    }

    let whisker = BLACK.stroke_width(1);
    let cap = bar_half * 0.5;
    for (i, (_, m, s)) in items.iter().enumerate() {
        if !m.is_finite() || !s.is_finite() || *s == 0.0 {
            continue;
        }
        let (m, s, y) = (mean(*m), std(*s), row_y(i));
        chart
            .draw_series([
                PathElement::new(vec![(m - s, y), (m + s, y)], whisker),
                PathElement::new(vec![(m - s, y - cap), (m - s, y + cap)], whisker),
                PathElement::new(vec![(m + s, y - cap), (m + s, y + cap)], whisker),
            ])
            .map_err(draw_err)?;
    }

    // Feature names, right-aligned against the plotting area.
    let plot = chart.plotting_area().get_pixel_range();
    for (i, name) in names.iter().enumerate() {
        let (_, py) = chart.backend_coord(&(lo, row_y(i)));
        text.draw(
            root,
            name,
            name_px,
            &BLACK,
            (HPos::Right, VPos::Center),
            false,
            (plot.0.start - 8, py),
        )?;
    }

    let x_title = if total > k {
        format!("Mean decrease in score when permuted (top {k} of {total} features)")
    } else {
        "Mean decrease in score when permuted".to_string()
    };
    let cx = (plot.0.start + plot.0.end) / 2;
    text.draw(
        root,
        &x_title,
        17.0,
        &BLACK,
        (HPos::Center, VPos::Top),
        false,
        (cx, plot.1.end + 34),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// Decodes `bytes`, checks the size and returns the RGB(A) pixels.
    fn decode(bytes: &[u8]) -> Vec<u8> {
        assert!(bytes.starts_with(&PNG_SIGNATURE), "missing PNG signature");
        let decoder = png::Decoder::new(bytes);
        let mut reader = decoder.read_info().expect("png header");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("png frame");
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        buf.truncate(info.buffer_size());
        buf
    }

    /// Number of clearly non-white pixels.
    fn ink(bytes: &[u8]) -> usize {
        decode(bytes)
            .chunks(3)
            .filter(|px| px.iter().any(|&c| c < 200))
            .count()
    }

    fn modes() -> [Text; 2] {
        [
            Text {
                font: loaded_font(),
            },
            Text { font: None },
        ]
    }

    fn labels(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn sample_confusion() -> (Vec<String>, Vec<Vec<u64>>) {
        (
            labels(&["setosa", "versicolor", "virginica"]),
            vec![vec![19, 0, 0], vec![0, 13, 2], vec![0, 1, 15]],
        )
    }

    fn sample_roc() -> Vec<RocCurve> {
        let curve = |label: &str, k: f64, auc: f64| RocCurve {
            label: label.to_string(),
            points: (0..=50)
                .map(|i| {
                    let x = f64::from(i) / 50.0;
                    (x, 1.0 - (1.0 - x).powf(k))
                })
                .collect(),
            auc,
        };
        vec![
            curve("setosa", 12.0, 0.992),
            curve("versicolor", 4.0, 0.953),
            curve("virginica", 2.5, 0.874),
        ]
    }

    fn sample_regression() -> Vec<(f64, f64)> {
        (0..300)
            .map(|i| {
                let a = 10.0 + f64::from(i) * 0.7;
                let noise = ((f64::from(i) * 12.9898).sin() * 43758.545).fract() * 25.0;
                (a, a * 0.95 + noise - 8.0)
            })
            .collect()
    }

    fn sample_importance() -> Vec<(String, f64, f64)> {
        (0..26)
            .map(|i| {
                let m = 0.25 / (1.0 + f64::from(i)).powf(1.3) - 0.004;
                (
                    format!(
                        "feature_{i:02}_{}",
                        ["sepal", "petal", "width"][i as usize % 3]
                    ),
                    m,
                    m.abs() * 0.2 + 0.002,
                )
            })
            .collect()
    }

    #[test]
    fn plots_confusion_matrix_renders() {
        let (l, c) = sample_confusion();
        let png = confusion_matrix(&l, &c).unwrap();
        assert!(ink(&png) > 1000);
        for text in modes() {
            ink(&confusion_matrix_with(text, &l, &c).unwrap());
        }
    }

    #[test]
    fn plots_confusion_matrix_degenerate() {
        assert!(confusion_matrix(&[], &[]).is_err());
        assert!(confusion_matrix(&labels(&["a", "b"]), &[vec![1, 2]]).is_err());
        assert!(confusion_matrix(&labels(&["a", "b"]), &[vec![1, 2], vec![3]]).is_err());
        for text in modes() {
            // All zero, a single class, huge counts, many classes with long names.
            ink(
                &confusion_matrix_with(text, &labels(&["a", "b"]), &[vec![0, 0], vec![0, 0]])
                    .unwrap(),
            );
            ink(&confusion_matrix_with(text, &labels(&["only"]), &[vec![7]]).unwrap());
            ink(&confusion_matrix_with(
                text,
                &labels(&["x", "y"]),
                &[vec![u64::MAX, 0], vec![1, u64::MAX / 2]],
            )
            .unwrap());
            let many: Vec<String> = (0..60)
                .map(|i| format!("a rather long class name number {i}"))
                .collect();
            let counts: Vec<Vec<u64>> = (0..60)
                .map(|a| {
                    (0..60)
                        .map(|p| if a == p { 50 } else { (a * p) % 3 })
                        .collect()
                })
                .collect();
            ink(&confusion_matrix_with(text, &many, &counts).unwrap());
            let empty_names = labels(&["", ""]);
            ink(&confusion_matrix_with(text, &empty_names, &[vec![1, 0], vec![0, 1]]).unwrap());
        }
    }

    #[test]
    fn plots_roc_curves_render() {
        let png = roc_curves(&sample_roc()).unwrap();
        assert!(ink(&png) > 1000);
        for text in modes() {
            ink(&roc_curves_with(text, &sample_roc()).unwrap());
        }
    }

    #[test]
    fn plots_roc_curves_degenerate() {
        assert!(roc_curves(&[]).is_err());
        let odd = vec![
            RocCurve {
                label: "empty".into(),
                points: vec![],
                auc: f64::NAN,
            },
            RocCurve {
                label: "nan".into(),
                points: vec![
                    (f64::NAN, 0.5),
                    (0.0, 0.0),
                    (1.0, f64::INFINITY),
                    (1.0, 1.0),
                ],
                auc: f64::INFINITY,
            },
            RocCurve {
                label: "single point and out of range".into(),
                points: vec![(-3.0, 7.0)],
                auc: 0.5,
            },
        ];
        let many: Vec<RocCurve> = (0..14)
            .map(|i| RocCurve {
                label: format!("class {i}"),
                points: vec![(0.0, 0.0), (0.1, 0.05 * f64::from(i)), (1.0, 1.0)],
                auc: 0.5 + 0.03 * f64::from(i),
            })
            .collect();
        for text in modes() {
            ink(&roc_curves_with(text, &odd).unwrap());
            ink(&roc_curves_with(text, &many).unwrap());
        }
    }

    #[test]
    fn plots_predicted_vs_actual_renders() {
        let png = predicted_vs_actual(&sample_regression()).unwrap();
        assert!(ink(&png) > 1000);
        for text in modes() {
            ink(&predicted_vs_actual_with(text, &sample_regression()).unwrap());
        }
    }

    #[test]
    fn plots_predicted_vs_actual_degenerate() {
        assert!(predicted_vs_actual(&[]).is_err());
        assert!(predicted_vs_actual(&[(f64::NAN, 1.0), (2.0, f64::INFINITY)]).is_err());
        let big: Vec<(f64, f64)> = (0..20_000)
            .map(|i| (f64::from(i), f64::from(i) * 1.01))
            .collect();
        for text in modes() {
            ink(&predicted_vs_actual_with(text, &[(3.0, 3.0), (3.0, 3.0)]).unwrap());
            ink(&predicted_vs_actual_with(text, &[(0.0, 0.0)]).unwrap());
            ink(&predicted_vs_actual_with(text, &[(f64::NAN, 1.0), (1.0, 2.0)]).unwrap());
            ink(&predicted_vs_actual_with(text, &[(-1e12, 1e12), (1e-9, 2e-9)]).unwrap());
            ink(&predicted_vs_actual_with(text, &[(1e-12, 1e-12), (2e-12, 3e-12)]).unwrap());
            ink(&predicted_vs_actual_with(text, &[(f64::MAX, f64::MIN)]).unwrap());
            ink(&predicted_vs_actual_with(text, &big).unwrap());
        }
    }

    #[test]
    fn plots_feature_importance_renders() {
        let png = feature_importance(&sample_importance()).unwrap();
        assert!(ink(&png) > 1000);
        for text in modes() {
            ink(&feature_importance_with(text, &sample_importance()).unwrap());
        }
    }

    #[test]
    fn plots_feature_importance_degenerate() {
        assert!(feature_importance(&[]).is_err());
        let item = |n: &str, m: f64, s: f64| (n.to_string(), m, s);
        for text in modes() {
            ink(
                &feature_importance_with(text, &[item("a", 0.0, 0.0), item("b", 0.0, 0.0)])
                    .unwrap(),
            );
            ink(&feature_importance_with(text, &[item("only", 0.3, 0.0)]).unwrap());
            ink(&feature_importance_with(text, &[item("neg", -0.2, 0.05)]).unwrap());
            ink(&feature_importance_with(
                text,
                &[
                    item("nan mean", f64::NAN, 0.1),
                    item("nan std", 0.1, f64::NAN),
                    item("inf", f64::INFINITY, f64::NEG_INFINITY),
                    item("negative std", 0.05, -0.01),
                    item(&"very long feature name ".repeat(8), 0.02, 0.01),
                ],
            )
            .unwrap());
            ink(&feature_importance_with(text, &[item("all nan", f64::NAN, f64::NAN)]).unwrap());
            ink(&feature_importance_with(
                text,
                &[item("huge", 1e300, 1e300), item("tiny", -1e300, 0.0)],
            )
            .unwrap());
        }
    }

    #[test]
    fn plots_font_metrics_match_plotters_layout() {
        let Some(Font { metrics: Some(m) }) = loaded_font() else {
            panic!(
                "no parsable plot font: install DejaVu Sans or set {FONT_ENV} to a TTF file \
                 (scripts/test points it at the one matplotlib ships in the test venv)"
            );
        };
        for s in [
            "versicolor",
            "False positive rate",
            "0.25",
            "feature_11_width",
        ] {
            let ours = m.layout(s, 16.0).1;
            let (theirs, _) = (FAMILY, 16.0).into_font().box_size(s).unwrap();
            assert!(
                (ours - f64::from(theirs)).abs() <= 2.0,
                "{s}: {ours} vs {theirs}"
            );
        }
        assert_ne!(m.glyph('a'), 0);
        assert!(m.cap_height > 0.0);
    }

    /// Renders the four sample charts as PNGs of the documented size with ink on them, and
    /// writes them to `$FERROFLOW_PLOTS_DUMP_DIR` (when set) for a visual check.
    #[test]
    fn plots_dump_samples() {
        let (l, c) = sample_confusion();
        let charts = [
            ("confusion_matrix.png", confusion_matrix(&l, &c).unwrap()),
            ("roc_curves.png", roc_curves(&sample_roc()).unwrap()),
            (
                "predicted_vs_actual.png",
                predicted_vs_actual(&sample_regression()).unwrap(),
            ),
            (
                "feature_importance.png",
                feature_importance(&sample_importance()).unwrap(),
            ),
        ];
        for (name, bytes) in &charts {
            // `ink` decodes the PNG and checks its size.
            assert!(ink(bytes) > 1_000, "{name} is blank");
        }
        if let Some(dir) = std::env::var_os("FERROFLOW_PLOTS_DUMP_DIR") {
            let dir = std::path::PathBuf::from(dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in charts {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
    }
}
