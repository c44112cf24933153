//! Plots: a session's bitrate chosen, throughput measured and buffer level against wall
//! time; a load run's live figures over time and its per-session distributions. SVG, or
//! PNG when the file name ends in `.png`.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::load::report::LoadReport;
use crate::session::SessionReport;
use crate::session::summary::{SegmentLog, Summary};
use crate::sim::report::{Contender, SetReport};

/// A plot that could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PlotError(String);

fn err(e: impl std::fmt::Display) -> PlotError {
    PlotError(e.to_string())
}

const SIZE: (u32, u32) = (1000, 640);

/// Something drawn on any plotters backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError>
    where
        DB::ErrorType: 'static;
}

/// Writes `figure` to `path`: PNG for `.png`, SVG otherwise.
fn save(path: &Path, figure: &impl Figure) -> Result<(), PlotError> {
    let png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if png {
        let root = BitMapBackend::new(path, SIZE).into_drawing_area();
        figure.draw(&root)?;
        root.present().map_err(err)
    } else {
        let root = SVGBackend::new(path, SIZE).into_drawing_area();
        figure.draw(&root)?;
        root.present().map_err(err)
    }
}

/// Draws a session report to `path`.
pub fn session(path: &Path, report: &SessionReport) -> Result<(), PlotError> {
    save(path, &SessionFigure(report))
}

/// Writes `timeline` (live figures over time) and `sessions` (distributions over
/// sessions) of a load report into `dir`, each as SVG and PNG.
pub fn load(dir: &Path, report: &LoadReport) -> Result<(), PlotError> {
    for ext in ["svg", "png"] {
        save(
            &dir.join(format!("timeline.{ext}")),
            &TimelineFigure(report),
        )?;
        save(
            &dir.join(format!("sessions.{ext}")),
            &DistributionFigure(report),
        )?;
    }
    Ok(())
}

struct SessionFigure<'a>(&'a SessionReport);

impl Figure for SessionFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError>
    where
        DB::ErrorType: 'static,
    {
        draw_session(root, self.0)
    }
}

fn draw_session<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &SessionReport,
) -> Result<(), PlotError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let (top, bottom) = root.split_vertically(SIZE.1 * 3 / 5);
    let segs = &report.segments;
    let end_s = report.summary.wall_s.max(1.0);
    let arrival = |s: &SegmentLog| s.requested_at_s + s.download_ms / 1000.0;
    // Throughput on loopback runs to Gbit/s: cap the axis at a few times the top bitrate
    // so the ladder stays readable; faster samples sit on the top edge.
    let top_kbps = report.bitrates_bps.iter().max().copied().unwrap_or(1000) as f64 / 1000.0;
    let cap = top_kbps * 4.0;
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!("{} ({})", report.url, report.abr),
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end_s, 0.0..cap)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("kbit/s")
        .draw()
        .map_err(err)?;
    // The bitrate chosen holds from each segment's request to the next one's.
    let mut steps = Vec::with_capacity(segs.len() * 2);
    for (i, s) in segs.iter().enumerate() {
        let until = segs.get(i + 1).map_or(end_s, |n| n.requested_at_s);
        let kbps = s.bitrate_bps as f64 / 1000.0;
        steps.push((s.requested_at_s, kbps));
        steps.push((until, kbps));
    }
    chart
        .draw_series(LineSeries::new(steps, BLUE.stroke_width(2)))
        .map_err(err)?
        .label("bitrate chosen")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(segs.iter().map(|s| {
            Circle::new(
                (arrival(s), (s.throughput_bps / 1000.0).min(cap)),
                3,
                RED.filled(),
            )
        }))
        .map_err(err)?
        .label("throughput measured")
        .legend(|(x, y)| Circle::new((x + 10, y), 3, RED.filled()));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;

    let max_buffer = segs.iter().map(|s| s.buffer_after_s).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end_s, 0.0..max_buffer)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("buffer (s)")
        .draw()
        .map_err(err)?;
    chart
        .draw_series(
            report
                .stalls
                .iter()
                .map(|&(a, b)| Rectangle::new([(a, 0.0), (b, max_buffer)], RED.mix(0.2).filled())),
        )
        .map_err(err)?
        .label("rebuffering")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], RED.mix(0.2).filled()));
    // Between arrivals the buffer drains; each arrival lifts it by a segment.
    let mut level = Vec::with_capacity(segs.len() * 2);
    for s in segs {
        level.push((arrival(s), s.buffer_after_s - s.duration_s));
        level.push((arrival(s), s.buffer_after_s));
    }
    chart
        .draw_series(LineSeries::new(level, GREEN.stroke_width(2)))
        .map_err(err)?
        .label("buffer at arrivals")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

struct TimelineFigure<'a>(&'a LoadReport);

impl Figure for TimelineFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError>
    where
        DB::ErrorType: 'static,
    {
        let r = self.0;
        root.fill(&WHITE).map_err(err)?;
        let end_s = r.timeline.last().map_or(1.0, |s| s.t_s).max(1.0);
        let panels = root.split_evenly((3, 1));
        type Series<'a> = (
            &'a str,
            &'a dyn Fn(&crate::load::report::Sample) -> f64,
            RGBColor,
        );
        let rows: [&[Series<'_>]; 3] = [
            &[
                ("active sessions", &|s| s.active as f64, BLUE),
                ("rebuffering now", &|s| s.rebuffering as f64, RED),
            ],
            &[(
                "mean bitrate (kbit/s)",
                &|s| s.mean_bitrate_bps / 1000.0,
                GREEN,
            )],
            &[
                ("requests/s", &|s| s.requests_per_s, BLACK),
                ("errors/s", &|s| s.errors_per_s, RED),
            ],
        ];
        for (i, (area, series)) in panels.iter().zip(rows).enumerate() {
            let top = r
                .timeline
                .iter()
                .flat_map(|s| series.iter().map(move |(_, f, _)| f(s)))
                .fold(1.0, f64::max)
                * 1.1;
            let mut builder = ChartBuilder::on(area);
            builder
                .margin(8)
                .x_label_area_size(25)
                .y_label_area_size(60);
            if i == 0 {
                builder.caption(
                    format!("{} sessions, {} ({})", r.sessions, r.abr, r.network),
                    ("sans-serif", 16),
                );
            }
            let mut chart = builder
                .build_cartesian_2d(0.0..end_s, 0.0..top)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("time (s)")
                .draw()
                .map_err(err)?;
            for (label, f, color) in series.iter() {
                let color = *color;
                chart
                    .draw_series(LineSeries::new(
                        r.timeline.iter().map(|s| (s.t_s, f(s))),
                        color.stroke_width(2),
                    ))
                    .map_err(err)?
                    .label(*label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
        Ok(())
    }
}

struct DistributionFigure<'a>(&'a LoadReport);

impl Figure for DistributionFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError>
    where
        DB::ErrorType: 'static,
    {
        let r = self.0;
        root.fill(&WHITE).map_err(err)?;
        let summaries: Vec<&Summary> = r
            .records
            .iter()
            .filter_map(|x| x.summary.as_ref())
            .filter(|s| s.startup_delay_s.is_some())
            .collect();
        type Metric<'a> = (&'a str, &'a dyn Fn(&Summary) -> f64);
        let metrics: [Metric<'_>; 4] = [
            ("startup delay (s)", &|s| s.startup_delay_s.unwrap_or(0.0)),
            ("average bitrate (kbit/s)", &|s| s.avg_bitrate_bps / 1000.0),
            ("rebuffer ratio", &|s| s.rebuffer_ratio),
            ("QoE_lin", &|s| s.qoe_lin),
        ];
        for (area, (name, f)) in root.split_evenly((2, 2)).iter().zip(metrics) {
            let mut values: Vec<f64> = summaries.iter().map(|s| f(s)).collect();
            values.sort_by(f64::total_cmp);
            let (lo, hi) = match (values.first(), values.last()) {
                (Some(&lo), Some(&hi)) if hi > lo => (lo, hi),
                (Some(&v), _) => (v - 0.5, v + 0.5),
                _ => (0.0, 1.0),
            };
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{name}, CDF over sessions"), ("sans-serif", 14))
                .margin(8)
                .x_label_area_size(25)
                .y_label_area_size(40)
                .build_cartesian_2d(lo..hi, 0.0..1.0)
                .map_err(err)?;
            chart.configure_mesh().draw().map_err(err)?;
            let n = values.len().max(1) as f64;
            chart
                .draw_series(LineSeries::new(
                    values
                        .iter()
                        .enumerate()
                        .flat_map(|(i, &v)| [(v, i as f64 / n), (v, (i + 1) as f64 / n)]),
                    BLUE.stroke_width(2),
                ))
                .map_err(err)?;
        }
        Ok(())
    }
}

/// Draws every report's per-trace QoE per chunk (chunk 0 skipped), traces in order of
/// the optimum's QoE (or of the first report's when the optimum is absent), to `path`.
pub fn per_trace(path: &Path, reports: &[SetReport], title: &str) -> Result<(), PlotError> {
    save(path, &PerTraceFigure { reports, title })
}

struct PerTraceFigure<'a> {
    reports: &'a [SetReport],
    title: &'a str,
}

impl Figure for PerTraceFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(err)?;
        let reports = self.reports;
        let Some(order_by) = reports
            .iter()
            .find(|r| r.abr == Contender::Optimal)
            .or(reports.first())
        else {
            return Ok(());
        };
        let mut order: Vec<usize> = (0..order_by.per_trace.len()).collect();
        order.sort_by(|&a, &b| {
            order_by.per_trace[a]
                .qoe_per_chunk
                .total_cmp(&order_by.per_trace[b].qoe_per_chunk)
        });
        let values = reports
            .iter()
            .flat_map(|r| r.per_trace.iter().map(|t| t.qoe_per_chunk));
        let (lo, hi) = values.fold((0.0f64, 1.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("QoE per chunk by trace: {}", self.title),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..order.len().max(1) as f64, lo.min(0.0)..hi * 1.05)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("trace (in order of the optimum's QoE)")
            .y_desc("QoE_lin per chunk")
            .draw()
            .map_err(err)?;
        for (i, r) in reports.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let points: Vec<(f64, f64)> = order
                .iter()
                .enumerate()
                .filter_map(|(x, &t)| r.per_trace.get(t).map(|s| (x as f64, s.qoe_per_chunk)))
                .collect();
            let label = match r.share_of_optimum {
                Some(share) if r.abr != Contender::Optimal => format!(
                    "{} (mean {:.3}, {:.1}% of optimum)",
                    r.abr,
                    r.qoe_per_chunk_mean,
                    100.0 * share
                ),
                _ => format!("{} (mean {:.3})", r.abr, r.qoe_per_chunk_mean),
            };
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(1)))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 2, color.filled())),
                )
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        Ok(())
    }
}
