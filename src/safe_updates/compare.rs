//! The perceptual pixel diff of two screenshots of one page, before and after an update.
//!
//! A safe-update run must tell "the update changed how the page looks" from noise: a font
//! rasterised a sub-pixel further left, a date in the footer. So pixels are compared in the YIQ
//! colour space with a tolerance (pixelmatch's algorithm, Kotsarenko & Ramos' colour metric),
//! anti-aliased pixels (pixelmatch's `antialiased` test) are shown but not counted, and the
//! rectangles the operator marked as dynamic are skipped. Images of different sizes (a page that
//! grew) are compared over the larger canvas: the area only one of them covers counts as changed.
//! Written here rather than taken from the `pixelmatch`/`dify` crates: neither knows masks nor
//! different sizes, and both pull in the `image` crate with every format (docs/decisions.md
//! "Safe updates (issue 16): comparison and screenshots").

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits, RgbaImage};
use serde::{Deserialize, Serialize};

/// A rectangle in CSS pixels of the page (= image pixels: screenshots use device scale 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mask {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// The verdict on one page.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Pixels that differ beyond the colour tolerance and are not anti-aliasing.
    pub changed_pixels: u64,
    /// Pixels compared: the larger canvas less the masked pixels.
    pub total_pixels: u64,
    /// `changed_pixels / total_pixels` in percent (0 when nothing was compared).
    pub changed_percent: f64,
    /// `changed_percent <= threshold_percent`.
    pub passed: bool,
    /// The diff image: a faint grey copy of `before`, changed pixels red, anti-aliasing yellow,
    /// masks light blue.
    pub diff_png: Vec<u8>,
    /// The bounding box of the changed pixels; `None` when nothing changed.
    pub changed_box: Option<Mask>,
}

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("the {which} image is not a readable PNG: {message}")]
    Decode {
        which: &'static str,
        message: String,
    },
    #[error("the {which} image is larger than {MAX_SIDE}×{MAX_SIDE} pixels")]
    TooLarge { which: &'static str },
    #[error("the threshold must be a number from 0 to 100, not {0}")]
    Threshold(f64),
    #[error("the diff image could not be encoded: {0}")]
    Encode(String),
}

/// The largest side accepted (screenshots are 1280 wide and at most 4000 high).
pub const MAX_SIDE: u32 = 16_384;

/// pixelmatch's default colour tolerance (0–1; smaller is stricter).
const COLOR_THRESHOLD: f64 = 0.1;
/// The largest YIQ delta there is (black against white), squared as the metric is.
const MAX_YIQ_DELTA: f64 = 35_215.0;

const RED: [u8; 4] = [255, 0, 0, 255];
const YELLOW: [u8; 4] = [255, 255, 0, 255];
const LIGHT_BLUE: [u8; 4] = [173, 216, 230, 255];
/// How much of `before` shows through in unchanged pixels.
const GREY_ALPHA: f64 = 0.1;

/// Compares two PNG screenshots; see the module documentation for the rules.
pub fn compare(
    before_png: &[u8],
    after_png: &[u8],
    masks: &[Mask],
    threshold_percent: f64,
) -> Result<Comparison, CompareError> {
    if !threshold_percent.is_finite() || !(0.0..=100.0).contains(&threshold_percent) {
        return Err(CompareError::Threshold(threshold_percent));
    }
    let before = decode(before_png, "before")?;
    let after = decode(after_png, "after")?;
    let width = before.width().max(after.width());
    let height = before.height().max(after.height());
    let masked = mask_bitmap(width, height, masks);
    // The overlap, where both images have pixels and the anti-aliasing test can look around.
    let overlap = (
        before.width().min(after.width()),
        before.height().min(after.height()),
    );
    let max_delta = MAX_YIQ_DELTA * COLOR_THRESHOLD * COLOR_THRESHOLD;

    let mut out = RgbaImage::new(width, height);
    let mut changed = 0u64;
    let mut total = 0u64;
    let mut bbox: Option<(u32, u32, u32, u32)> = None;
    for y in 0..height {
        for x in 0..width {
            let i = (y as usize) * (width as usize) + x as usize;
            if masked[i] {
                out.put_pixel(x, y, image::Rgba(LIGHT_BLUE));
                continue;
            }
            total += 1;
            let is_change = if x < overlap.0 && y < overlap.1 {
                let p1 = before.get_pixel(x, y).0;
                let p2 = after.get_pixel(x, y).0;
                if p1 == p2 || color_delta(p1, p2, false).abs() <= max_delta {
                    out.put_pixel(x, y, image::Rgba(grey(p1)));
                    false
                } else if antialiased(&before, x, y, overlap, &after)
                    || antialiased(&after, x, y, overlap, &before)
                {
                    out.put_pixel(x, y, image::Rgba(YELLOW));
                    false
                } else {
                    true
                }
            } else {
                // Only one image covers this pixel: the page grew or shrank here.
                true
            };
            if is_change {
                out.put_pixel(x, y, image::Rgba(RED));
                changed += 1;
                bbox = Some(match bbox {
                    None => (x, y, x, y),
                    Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
                });
            }
        }
    }
    let changed_percent = if total == 0 {
        0.0
    } else {
        changed as f64 * 100.0 / total as f64
    };
    Ok(Comparison {
        changed_pixels: changed,
        total_pixels: total,
        changed_percent,
        passed: changed_percent <= threshold_percent,
        diff_png: encode(&out)?,
        changed_box: bbox.map(|(x0, y0, x1, y1)| Mask {
            x: x0,
            y: y0,
            width: x1 - x0 + 1,
            height: y1 - y0 + 1,
        }),
    })
}

fn decode(png: &[u8], which: &'static str) -> Result<RgbaImage, CompareError> {
    let mut reader = ImageReader::with_format(Cursor::new(png), ImageFormat::Png);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    reader.limits(limits);
    match reader.decode() {
        Ok(img) => Ok(img.into_rgba8()),
        Err(image::ImageError::Limits(_)) => Err(CompareError::TooLarge { which }),
        Err(e) => Err(CompareError::Decode {
            which,
            message: e.to_string(),
        }),
    }
}

fn encode(img: &RgbaImage) -> Result<Vec<u8>, CompareError> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let mut buf = Vec::new();
    let encoder =
        PngEncoder::new_with_quality(&mut buf, CompressionType::Fast, FilterType::Adaptive);
    img.write_with_encoder(encoder)
        .map_err(|e| CompareError::Encode(e.to_string()))?;
    Ok(buf)
}

/// One flag per canvas pixel: inside some mask. Masks reaching past the canvas are clipped.
fn mask_bitmap(width: u32, height: u32, masks: &[Mask]) -> Vec<bool> {
    let mut bits = vec![false; width as usize * height as usize];
    for m in masks {
        let x0 = m.x.min(width);
        let x1 = m.x.saturating_add(m.width).min(width);
        let y0 = m.y.min(height);
        let y1 = m.y.saturating_add(m.height).min(height);
        for y in y0..y1 {
            let row = y as usize * width as usize;
            bits[row + x0 as usize..row + x1 as usize].fill(true);
        }
    }
    bits
}

/// A pixel blended over white (screenshots are opaque; transparency is handled all the same).
fn blend(c: u8, a: u8) -> f64 {
    255.0 + (c as f64 - 255.0) * a as f64 / 255.0
}

fn rgb2y(r: f64, g: f64, b: f64) -> f64 {
    r * 0.298_895_31 + g * 0.586_622_47 + b * 0.114_482_23
}
fn rgb2i(r: f64, g: f64, b: f64) -> f64 {
    r * 0.595_977_99 - g * 0.274_176_10 - b * 0.321_801_89
}
fn rgb2q(r: f64, g: f64, b: f64) -> f64 {
    r * 0.211_470_17 - g * 0.522_617_11 + b * 0.311_146_94
}

/// The squared YIQ distance of two pixels, negative when the first is brighter (pixelmatch's
/// `colorDelta`); `y_only`: just the brightness difference.
fn color_delta(p1: [u8; 4], p2: [u8; 4], y_only: bool) -> f64 {
    let (r1, g1, b1) = (
        blend(p1[0], p1[3]),
        blend(p1[1], p1[3]),
        blend(p1[2], p1[3]),
    );
    let (r2, g2, b2) = (
        blend(p2[0], p2[3]),
        blend(p2[1], p2[3]),
        blend(p2[2], p2[3]),
    );
    let y1 = rgb2y(r1, g1, b1);
    let y2 = rgb2y(r2, g2, b2);
    let y = y1 - y2;
    if y_only {
        return y;
    }
    let i = rgb2i(r1, g1, b1) - rgb2i(r2, g2, b2);
    let q = rgb2q(r1, g1, b1) - rgb2q(r2, g2, b2);
    let delta = 0.5053 * y * y + 0.299 * i * i + 0.1957 * q * q;
    if y1 > y2 {
        -delta
    } else {
        delta
    }
}

/// The 3×3 neighbourhood of (x, y) clipped to `bounds`: (x0, y0, x2, y2).
fn neighbourhood(x: u32, y: u32, bounds: (u32, u32)) -> (u32, u32, u32, u32) {
    (
        x.saturating_sub(1),
        y.saturating_sub(1),
        (x + 1).min(bounds.0 - 1),
        (y + 1).min(bounds.1 - 1),
    )
}

/// pixelmatch's anti-aliasing test: (x, y) in `img` lies on an edge between a darker and a
/// brighter neighbour (at most two neighbours equal to it), and the darkest or the brightest
/// neighbour sits inside a flat run (three or more identical siblings) in both images — the
/// pixel is a blend of two flat areas, i.e. anti-aliasing, not content.
fn antialiased(img: &RgbaImage, x: u32, y: u32, bounds: (u32, u32), other: &RgbaImage) -> bool {
    let (x0, y0, x2, y2) = neighbourhood(x, y, bounds);
    let centre = img.get_pixel(x, y).0;
    let mut zeroes = u32::from(x == x0 || x == x2 || y == y0 || y == y2);
    let (mut min, mut max) = (0.0f64, 0.0f64);
    let (mut min_at, mut max_at) = ((0, 0), (0, 0));
    for ny in y0..=y2 {
        for nx in x0..=x2 {
            if nx == x && ny == y {
                continue;
            }
            let delta = color_delta(centre, img.get_pixel(nx, ny).0, true);
            if delta == 0.0 {
                zeroes += 1;
                if zeroes > 2 {
                    return false;
                }
            } else if delta < min {
                min = delta;
                min_at = (nx, ny);
            } else if delta > max {
                max = delta;
                max_at = (nx, ny);
            }
        }
    }
    if min == 0.0 || max == 0.0 {
        return false;
    }
    (has_many_siblings(img, min_at, bounds) && has_many_siblings(other, min_at, bounds))
        || (has_many_siblings(img, max_at, bounds) && has_many_siblings(other, max_at, bounds))
}

/// Whether the pixel at `at` has three or more identical neighbours (edges count as one).
fn has_many_siblings(img: &RgbaImage, at: (u32, u32), bounds: (u32, u32)) -> bool {
    let (x, y) = at;
    let (x0, y0, x2, y2) = neighbourhood(x, y, bounds);
    let centre = img.get_pixel(x, y).0;
    let mut zeroes = u32::from(x == x0 || x == x2 || y == y0 || y == y2);
    for ny in y0..=y2 {
        for nx in x0..=x2 {
            if (nx, ny) != (x, y) && img.get_pixel(nx, ny).0 == centre {
                zeroes += 1;
                if zeroes > 2 {
                    return true;
                }
            }
        }
    }
    false
}

/// An unchanged pixel in the diff: `before`'s brightness, faded towards white.
fn grey(p: [u8; 4]) -> [u8; 4] {
    let (r, g, b) = (blend(p[0], p[3]), blend(p[1], p[3]), blend(p[2], p[3]));
    let v = 255.0 + (rgb2y(r, g, b) - 255.0) * GREY_ALPHA;
    let v = v.round().clamp(0.0, 255.0) as u8;
    [v, v, v, 255]
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u32 = 400;
    const H: u32 = 300;

    fn png(img: &RgbaImage) -> Vec<u8> {
        let mut buf = Vec::new();
        img.write_to(&mut Cursor::new(&mut buf), ImageFormat::Png)
            .unwrap();
        buf
    }

    /// A page: white, a grey header band (rows 0..60), some "content" blocks.
    fn page(header: [u8; 4], height: u32) -> RgbaImage {
        let mut img = RgbaImage::from_pixel(W, height, image::Rgba([255, 255, 255, 255]));
        for y in 0..60.min(height) {
            for x in 0..W {
                img.put_pixel(x, y, image::Rgba(header));
            }
        }
        for y in (100..height.saturating_sub(20)).step_by(40) {
            for x in 40..360 {
                for dy in 0..12 {
                    if y + dy < height {
                        img.put_pixel(x, y + dy, image::Rgba([60, 60, 60, 255]));
                    }
                }
            }
        }
        img
    }

    /// An anti-aliased dark line from (20, 80) to (380, 280), drawn with coverage-weighted
    /// edge pixels; `offset` shifts it by a fraction of a pixel, as a different rasterisation
    /// would.
    fn draw_aa_line(img: &mut RgbaImage, offset: f64) {
        let (x0, y0, x1, y1) = (20.0, 80.0 + offset, 380.0, 280.0 + offset);
        let slope = (y1 - y0) / (x1 - x0);
        for x in 20..380u32 {
            let yc = y0 + slope * (x as f64 + 0.5 - x0);
            // A line 2 px thick: rows fully inside are dark, the two edge rows partial.
            let top = yc - 1.0;
            let bottom = yc + 1.0;
            for y in (top.floor() as u32)..=(bottom.ceil() as u32) {
                let (py0, py1) = (y as f64, y as f64 + 1.0);
                let cover = (py1.min(bottom) - py0.max(top)).clamp(0.0, 1.0);
                if cover <= 0.0 {
                    continue;
                }
                let v = (255.0 - cover * 255.0).round() as u8;
                let old = img.get_pixel(x, y).0[0];
                let v = v.min(old);
                img.put_pixel(x, y, image::Rgba([v, v, v, 255]));
            }
        }
    }

    #[test]
    fn identical_images_change_nothing() {
        let a = png(&page([200, 200, 200, 255], H));
        let c = compare(&a, &a, &[], 0.5).unwrap();
        assert_eq!(c.changed_pixels, 0);
        assert_eq!(c.total_pixels, (W * H) as u64);
        assert_eq!(c.changed_percent, 0.0);
        assert!(c.passed);
        assert_eq!(c.changed_box, None);
        // The diff is a faint grey copy of the same size.
        let diff = image::load_from_memory(&c.diff_png).unwrap().into_rgba8();
        assert_eq!(diff.dimensions(), (W, H));
        let p = diff.get_pixel(50, 105).0;
        assert!(p[0] == p[1] && p[1] == p[2] && p[0] > 200, "{p:?}");
    }

    #[test]
    fn anti_aliasing_noise_is_not_counted() {
        let mut a = page([200, 200, 200, 255], H);
        let mut b = a.clone();
        draw_aa_line(&mut a, 0.0);
        draw_aa_line(&mut b, 0.35);
        let raw_differences = a
            .pixels()
            .zip(b.pixels())
            .filter(|(p, q)| color_delta(p.0, q.0, false).abs() > 35_215.0 * 0.01)
            .count();
        assert!(raw_differences > 100, "the pair differs: {raw_differences}");
        let c = compare(&png(&a), &png(&b), &[], 0.5).unwrap();
        assert!(c.passed, "{} % changed", c.changed_percent);
        assert!(
            (c.changed_pixels as usize) * 4 < raw_differences,
            "{} of {raw_differences} counted",
            c.changed_pixels
        );
        let diff = image::load_from_memory(&c.diff_png).unwrap().into_rgba8();
        assert!(
            diff.pixels().filter(|p| p.0 == YELLOW).count() > 100,
            "anti-aliasing shows yellow"
        );
    }

    #[test]
    fn masked_change_is_ignored() {
        let a = page([200, 200, 200, 255], H);
        let mut b = a.clone();
        // A "date" in the footer changed.
        for y in 270..290 {
            for x in 300..380 {
                b.put_pixel(x, y, image::Rgba([0, 0, 0, 255]));
            }
        }
        let unmasked = compare(&png(&a), &png(&b), &[], 0.5).unwrap();
        assert_eq!(unmasked.changed_pixels, 80 * 20);
        let mask = Mask {
            x: 290,
            y: 260,
            width: 100,
            height: 40,
        };
        let c = compare(&png(&a), &png(&b), &[mask], 0.5).unwrap();
        assert_eq!(c.changed_pixels, 0);
        assert_eq!(c.changed_percent, 0.0);
        assert_eq!(c.total_pixels, (W * H - 100 * 40) as u64);
        assert!(c.passed);
        let diff = image::load_from_memory(&c.diff_png).unwrap().into_rgba8();
        assert_eq!(diff.get_pixel(300, 270).0, LIGHT_BLUE);
    }

    #[test]
    fn a_mask_larger_than_the_image_is_clipped() {
        let a = png(&page([200, 200, 200, 255], H));
        let b = png(&page([255, 0, 0, 255], H));
        let all = Mask {
            x: 0,
            y: 0,
            width: u32::MAX,
            height: u32::MAX,
        };
        let c = compare(&a, &b, &[all], 0.5).unwrap();
        assert_eq!((c.changed_pixels, c.total_pixels), (0, 0));
        let outside = Mask {
            x: u32::MAX,
            y: u32::MAX,
            width: u32::MAX,
            height: 5,
        };
        let c = compare(&a, &b, &[outside], 0.5).unwrap();
        assert_eq!(c.total_pixels, (W * H) as u64);
        assert!(!c.passed);
    }

    #[test]
    fn a_recoloured_header_fails_and_is_boxed() {
        let a = page([200, 200, 200, 255], H);
        let b = page([220, 20, 20, 255], H);
        let c = compare(&png(&a), &png(&b), &[], 0.5).unwrap();
        assert_eq!(c.changed_pixels, (W * 60) as u64);
        assert!(!c.passed);
        assert!(
            (c.changed_percent - 20.0).abs() < 1e-9,
            "{}",
            c.changed_percent
        );
        assert_eq!(
            c.changed_box,
            Some(Mask {
                x: 0,
                y: 0,
                width: W,
                height: 60
            })
        );
        let diff = image::load_from_memory(&c.diff_png).unwrap().into_rgba8();
        assert_eq!(diff.get_pixel(10, 10).0, RED);
        assert_ne!(diff.get_pixel(10, 200).0, RED);
        // The same change passes under a generous threshold.
        assert!(compare(&png(&a), &png(&b), &[], 25.0).unwrap().passed);
    }

    #[test]
    fn a_taller_page_counts_the_new_area_as_changed() {
        let a = page([200, 200, 200, 255], H);
        let mut b = RgbaImage::from_pixel(W, H + 100, image::Rgba([255, 255, 255, 255]));
        image::imageops::replace(&mut b, &a, 0, 0);
        let c = compare(&png(&a), &png(&b), &[], 0.5).unwrap();
        assert_eq!(c.total_pixels, (W * (H + 100)) as u64);
        assert_eq!(c.changed_pixels, (W * 100) as u64);
        assert_eq!(
            c.changed_box,
            Some(Mask {
                x: 0,
                y: H,
                width: W,
                height: 100
            })
        );
        assert!(!c.passed);
        let diff = image::load_from_memory(&c.diff_png).unwrap().into_rgba8();
        assert_eq!(diff.dimensions(), (W, H + 100));
        // Shrinking is the same change seen from the other side.
        let c = compare(&png(&b), &png(&a), &[], 0.5).unwrap();
        assert_eq!(c.changed_pixels, (W * 100) as u64);
    }

    #[test]
    fn broken_input_is_an_error() {
        let a = png(&page([200, 200, 200, 255], H));
        let err = compare(b"not a png", &a, &[], 0.5).unwrap_err();
        assert!(
            matches!(
                err,
                CompareError::Decode {
                    which: "before",
                    ..
                }
            ),
            "{err}"
        );
        let truncated = &a[..a.len() / 2];
        let err = compare(&a, truncated, &[], 0.5).unwrap_err();
        assert!(
            matches!(err, CompareError::Decode { which: "after", .. }),
            "{err}"
        );
        for t in [f64::NAN, -0.1, 100.5, f64::INFINITY] {
            assert!(matches!(
                compare(&a, &a, &[], t),
                Err(CompareError::Threshold(_))
            ));
        }
    }

    #[test]
    fn an_oversized_png_is_refused_before_decoding() {
        // A PNG header claiming 20000×1 pixels: refused by the limits, not allocated.
        let img = RgbaImage::from_pixel(MAX_SIDE + 1, 1, image::Rgba([0, 0, 0, 255]));
        let big = png(&img);
        let small = png(&page([200, 200, 200, 255], H));
        assert!(matches!(
            compare(&small, &big, &[], 0.5),
            Err(CompareError::TooLarge { which: "after" })
        ));
    }
}
