//! A picture of an incident replay: Kubernetes alone and guarded by deployguard side by side, on
//! one time axis — error rate and p99 latency per version, ready pods per version, the share of
//! traffic each version serves, and markers for the guard's decisions and the Deployment's
//! conditions. Drawn with plotters, as SVG or PNG.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use deployguard_core::{Error, ErrorKind, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::replay::Run;

/// Where the picture's font is looked for (plotters draws text with a TrueType font; Debian's
/// `fonts-dejavu-core` ships this one). `DEPLOYGUARD_FONT` names another.
const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// The panels, top to bottom: title, y-axis label, and how to read a version's value.
const PANELS: [(&str, &str); 4] = [
    ("error rate per version", "error rate (%)"),
    ("p99 latency per version", "p99 latency (s)"),
    ("ready pods per version", "ready pods"),
    ("traffic share per version", "traffic (%)"),
];

/// The picture's size in pixels.
const SIZE: (u32, u32) = (1600, 1400);

/// Draws the picture as SVG into `path`.
pub fn draw_svg(path: &Path, scenario: &str, unguarded: &Run, guarded: &Run) -> Result<()> {
    register_font()?;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    draw(&root, scenario, unguarded, guarded)?;
    root.present().map_err(drawing_error)
}

/// Draws the picture as PNG into `path`.
pub fn draw_png(path: &Path, scenario: &str, unguarded: &Run, guarded: &Run) -> Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    draw(&root, scenario, unguarded, guarded)?;
    root.present().map_err(drawing_error)
}

fn drawing_error(err: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unexpected, format!("drawing the picture: {err}"))
}

/// Loads the font once per process.
fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let candidates: Vec<String> = std::env::var("DEPLOYGUARD_FONT")
                .into_iter()
                .chain(FONT_PATHS.iter().map(|p| (*p).to_owned()))
                .collect();
            let bytes = candidates
                .iter()
                .find_map(|path| std::fs::read(path).ok())
                .ok_or_else(|| {
                    format!(
                        "no TrueType font found (looked at {}); install fonts-dejavu-core or set DEPLOYGUARD_FONT",
                        candidates.join(", ")
                    )
                })?;
            // plotters keeps fonts for the whole process: leak the bytes once.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| "the font file is not a TrueType font".to_owned())
        })
        .clone()
        .map_err(|message| Error::new(ErrorKind::Unavailable, message))
}

/// One run's series, per version, in seconds from fault onset.
struct Series {
    versions: Vec<String>,
    /// `[panel][version]` → points.
    points: Vec<Vec<Vec<(f64, f64)>>>,
}

fn series(run: &Run, horizon: f64) -> Series {
    // Every version the deployment ran, also one that never had a ready pod (drawn at zero).
    let versions: Vec<String> = run
        .seconds
        .iter()
        .flat_map(|s| s.versions.iter().map(|v| v.image.clone()))
        .chain(run.images.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut points = vec![vec![Vec::new(); versions.len()]; PANELS.len()];
    let Some(last) = run.seconds.last().map(|s| s.at) else {
        return Series { versions, points };
    };
    for second in &run.seconds {
        let before_end = last.duration_since(second.at).unwrap_or_default();
        let t = horizon - before_end.as_secs_f64();
        for (index, image) in versions.iter().enumerate() {
            let version = second.versions.iter().find(|v| &v.image == image);
            let (error_rate, p99, ready, share) = match version {
                Some(v) => (
                    if v.requests > 0 {
                        v.errors as f64 / v.requests as f64 * 100.0
                    } else {
                        0.0
                    },
                    v.p99,
                    f64::from(v.ready_pods),
                    if second.requests > 0 {
                        v.requests as f64 / second.requests as f64 * 100.0
                    } else {
                        0.0
                    },
                ),
                // Served nothing this second: no error rate or latency to draw.
                None => (f64::NAN, f64::NAN, 0.0, 0.0),
            };
            for (panel, value) in [error_rate, p99, ready, share].into_iter().enumerate() {
                if value.is_finite() {
                    points[panel][index].push((t, value));
                }
            }
        }
    }
    Series { versions, points }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    scenario: &str,
    unguarded: &Run,
    guarded: &Run,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(drawing_error)?;
    let root = root
        .titled(
            &format!("deployguard incident replay: {scenario}"),
            ("sans-serif", 32),
        )
        .map_err(drawing_error)?;
    let horizon = unguarded.seconds.len().max(guarded.seconds.len()).max(1) as f64;
    let runs = [
        ("Kubernetes alone", unguarded, series(unguarded, horizon)),
        ("guarded by deployguard", guarded, series(guarded, horizon)),
    ];
    // One colour per version, the same in both columns.
    let all_versions: Vec<String> = runs
        .iter()
        .flat_map(|(_, _, s)| s.versions.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let colour = |image: &str| {
        let index = all_versions.iter().position(|v| v == image).unwrap_or(0);
        Palette99::pick(index).to_rgba()
    };
    let columns = root.split_evenly((PANELS.len(), 2));
    for (panel, (title, y_label)) in PANELS.iter().enumerate() {
        let y_max = runs
            .iter()
            .flat_map(|(_, _, s)| s.points[panel].iter().flatten().map(|(_, y)| *y))
            .fold(0.0f64, f64::max);
        let y_range = 0.0..(y_max * 1.1).max(if panel == 2 { 1.0 } else { 0.1 });
        for (column, (label, run, series)) in runs.iter().enumerate() {
            let area = &columns[panel * 2 + column];
            let caption = format!("{label}: {title}");
            draw_panel(
                area,
                &caption,
                y_label,
                0.0..horizon,
                y_range.clone(),
                series,
                panel,
                &colour,
                &run.markers,
            )?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    y_label: &str,
    x_range: Range<f64>,
    y_range: Range<f64>,
    series: &Series,
    panel: usize,
    colour: &dyn Fn(&str) -> RGBAColor,
    markers: &[(Duration, String)],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let y_top = y_range.end;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range, y_range)
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the new version rolled out")
        .y_desc(y_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()
        .map_err(drawing_error)?;
    for (index, image) in series.versions.iter().enumerate() {
        let style = colour(image).stroke_width(2);
        chart
            .draw_series(LineSeries::new(
                series.points[panel][index].iter().copied(),
                style,
            ))
            .map_err(drawing_error)?
            .label(image.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    for (index, (at, what)) in markers.iter().enumerate() {
        let x = at.as_secs_f64();
        let style = BLACK.mix(0.6).stroke_width(1);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, 0.0), (x, y_top)],
                style,
            )))
            .map_err(drawing_error)?;
        if panel == 0 {
            chart
                .draw_series(std::iter::once(Text::new(
                    what.clone(),
                    // Staggered, so markers close in time stay readable.
                    (x, y_top * (0.95 - 0.09 * (index % 4) as f64)),
                    ("sans-serif", 12),
                )))
                .map_err(drawing_error)?;
        }
    }
    if !series.versions.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .position(SeriesLabelPosition::MiddleRight)
            .draw()
            .map_err(drawing_error)?;
    }
    Ok(())
}
