//! The chart of `media/bench/ladder_vs_ffmpeg.sh`: seconds of work per minute of source for
//! `media ladder` and for ffmpeg/libx264 making the same ladder, read from the JSON the
//! script writes, drawn as SVG.
//!
//! ```sh
//! cargo run --release -p media --example plot_bench -- media/bench/ladder_vs_ffmpeg.json media/bench/ladder_vs_ffmpeg.svg
//! ```

use std::path::PathBuf;

use anyhow::Context;
use plotters::prelude::*;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let (json, svg) = args
        .next()
        .zip(args.next())
        .context("usage: plot_bench RESULTS.json CHART.svg")?;
    let text = std::fs::read_to_string(&json).with_context(|| json.display().to_string())?;
    let results: serde_json::Value = serde_json::from_str(&text)?;
    let figure = |key: &str| {
        results[key]
            .as_f64()
            .with_context(|| format!("{key} missing in {}", json.display()))
    };
    let bars = [
        (
            "media ladder",
            figure("media_ladder_secs_per_minute")?,
            BLUE,
        ),
        (
            "ffmpeg libx264 veryfast",
            figure("ffmpeg_veryfast_secs_per_minute")?,
            RED,
        ),
    ];
    let top = bars.iter().map(|b| b.1).fold(1.0, f64::max) * 1.6;
    let root = SVGBackend::new(&svg, (800, 300)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!(
        "720p ladder, {} rungs, {} cores: seconds per minute of source (lower is faster)",
        results["rungs"], results["cores"]
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(10)
        .build_cartesian_2d(0.0..top, 0.0..bars.len() as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_desc("seconds per minute of source")
        .draw()?;
    for (i, (name, value, color)) in bars.iter().enumerate() {
        let y = bars.len() as f64 - i as f64 - 1.0;
        chart.draw_series([Rectangle::new(
            [(0.0, y + 0.2), (*value, y + 0.8)],
            color.mix(0.7).filled(),
        )])?;
        chart.draw_series([Text::new(
            format!("{name}: {value:.1} s"),
            (value + top * 0.01, y + 0.55),
            ("sans-serif", 14),
        )])?;
    }
    root.present()?;
    println!("chart written to {}", svg.display());
    Ok(())
}
