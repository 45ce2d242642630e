//! The soak report, written to the report directory:
//!
//! - `report.json`: everything, machine-readable;
//! - `report.md` with `throughput.svg` and `latency.svg` beside it;
//! - `report.html`: one self-contained page, the same plots inline;
//! - `junit.xml`: one test case per clause, plus coverage and target health.
//!
//! Plots are drawn with plotters' SVG backend: throughput over time, and
//! latency percentiles (p50, p90, p99, p99.9) per action from hdrhistogram.
//! **Invariant:** only aliases, clauses, counts and timings reach these
//! files, because the soak outcome holds nothing else.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde_json::{Value, json};

use crate::model::ACTIONS;
use crate::oracle::Clause;
use crate::runner::Verdict;
use crate::runner::soak::{ActionLatency, SoakOutcome};

/// The files a report consists of.
#[derive(Debug, Clone)]
pub struct Written {
    /// `report.html`.
    pub html: PathBuf,
    /// `report.md`.
    pub markdown: PathBuf,
    /// `report.json`.
    pub json: PathBuf,
    /// `junit.xml`.
    pub junit: PathBuf,
}

/// Write every report file into `dir`.
pub fn write(outcome: &SoakOutcome, dir: &Path) -> io::Result<Written> {
    std::fs::create_dir_all(dir)?;
    let throughput = throughput_svg(outcome).map_err(io::Error::other)?;
    let latency = latency_svg(outcome).map_err(io::Error::other)?;
    super::write_atomic(&dir.join("throughput.svg"), &throughput)?;
    super::write_atomic(&dir.join("latency.svg"), &latency)?;
    let written = Written {
        html: dir.join("report.html"),
        markdown: dir.join("report.md"),
        json: dir.join("report.json"),
        junit: dir.join("junit.xml"),
    };
    let value = to_json(outcome);
    let text = serde_json::to_string_pretty(&value).map_err(io::Error::other)?;
    super::write_atomic(&written.json, format!("{text}\n"))?;
    super::write_atomic(&written.markdown, markdown(outcome, dir))?;
    super::write_atomic(&written.html, html(outcome, dir, &throughput, &latency))?;
    super::write_atomic(&written.junit, junit(outcome).map_err(io::Error::other)?)?;
    Ok(written)
}

fn verdict_line(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Pass => "PASS: no privacy violation".to_string(),
        Verdict::Violation => "FAIL: privacy violation".to_string(),
        Verdict::Unknown(why) => format!("UNKNOWN: {why}"),
    }
}

fn relative(path: &Path, dir: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

/// The machine-readable report.
pub fn to_json(o: &SoakOutcome) -> Value {
    let verdict = o.verdict();
    let coverage: serde_json::Map<String, Value> = ACTIONS
        .iter()
        .zip(o.coverage)
        .map(|(a, n)| (a.to_string(), json!(n)))
        .collect();
    let by_clause: serde_json::Map<String, Value> = o
        .by_clause
        .iter()
        .map(|(c, n)| (c.name().to_string(), json!(n)))
        .collect();
    json!({
        "tool": "chaperone",
        "version": env!("CARGO_PKG_VERSION"),
        "command": "soak",
        "verdict": verdict.name(),
        "exit_code": verdict.exit_code(),
        "unknown_reason": match &verdict { Verdict::Unknown(why) => Some(why.clone()), _ => None },
        "target": o.target,
        "faults": o.faults,
        "seed": o.config.seed,
        "limits": {
            "patients": o.config.patients,
            "duration_s": o.config.duration.map(|d| d.as_secs_f64()),
            "ops_max": o.config.ops_max,
            "rate": o.config.rate,
            "mix": o.config.mix.name(),
            "steps_per_patient_max": o.config.steps_per_patient_max,
            "scenarios_max": o.config.scenarios_max,
        },
        "interrupted": o.interrupted,
        "elapsed_s": o.elapsed.as_secs_f64(),
        "ops": o.ops,
        "ops_per_s": o.ops as f64 / o.elapsed.as_secs_f64().max(1e-6),
        "patients_total": o.patients_total,
        "peak_rss_kib": o.peak_rss_kib,
        "errors": o.errors,
        "first_errors": o.first_errors,
        "completeness_warnings": o.warnings,
        "violations": o.violations,
        "violations_by_clause": by_clause,
        "coverage": coverage,
        "upgrade_then_history": o.upgrade_then_history,
        "latency_ms": o.latency.iter().map(|l| json!({
            "action": l.action, "count": l.count, "p50": l.p50, "p90": l.p90,
            "p99": l.p99, "p999": l.p999, "max": l.max,
        })).collect::<Vec<_>>(),
        "throughput": o.throughput.iter().map(|(t, r)| json!([t, r])).collect::<Vec<_>>(),
        "journal": o.journal.display().to_string(),
        "distinct_findings": o.distinct.iter().map(|d| json!({
            "signature": d.signature,
            "clause": d.clause.name(),
            "count": d.count,
            "first": d.first,
            "first_at_ms": d.first_at_ms,
            "reproduced": d.reproduced.map(|(n, of)| json!({ "runs": of, "reproducing": n })),
            "scenario": d.scenario.as_ref().map(|p| p.display().to_string()),
        })).collect::<Vec<_>>(),
        "findings": o.findings.iter().map(|f| json!({
            "at_ms": f.at_ms,
            "clause": f.violation.clause.name(),
            "patient": f.violation.patient.to_string(),
            "patient_step": f.violation.step,
            "step": f.step.to_string(),
            "field": f.violation.field,
            "message": f.violation.to_string(),
            "scenario": f.scenario.as_ref().map(|p| p.display().to_string()),
            "history": f.history,
        })).collect::<Vec<_>>(),
    })
}

fn summary_rows(o: &SoakOutcome) -> Vec<(String, String)> {
    let mut rows = vec![
        ("target".to_string(), o.target.clone()),
        (
            "faults".to_string(),
            if o.faults.is_empty() {
                "none".to_string()
            } else {
                o.faults.join(", ")
            },
        ),
        ("seed".to_string(), o.config.seed.to_string()),
        (
            "patients (concurrent)".to_string(),
            o.config.patients.to_string(),
        ),
        (
            "patients (in all)".to_string(),
            o.patients_total.to_string(),
        ),
        ("mix".to_string(), o.config.mix.name().to_string()),
        (
            "elapsed".to_string(),
            format!(
                "{:.1} s{}",
                o.elapsed.as_secs_f64(),
                if o.interrupted { " (interrupted)" } else { "" }
            ),
        ),
        ("operations".to_string(), o.ops.to_string()),
        (
            "operations per second".to_string(),
            format!("{:.0}", o.ops as f64 / o.elapsed.as_secs_f64().max(1e-6)),
        ),
        ("violations".to_string(), o.violations.to_string()),
        ("errors".to_string(), o.errors.to_string()),
        ("completeness warnings".to_string(), o.warnings.to_string()),
        (
            "peak memory (RSS) of the harness".to_string(),
            o.peak_rss_kib.map_or("unknown".to_string(), |k| {
                format!("{:.1} MiB", k as f64 / 1024.0)
            }),
        ),
    ];
    for (clause, n) in &o.by_clause {
        rows.push((format!("violations of {clause}"), n.to_string()));
    }
    rows
}

fn markdown(o: &SoakOutcome, dir: &Path) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Chaperone soak report\n");
    let _ = writeln!(md, "**{}**\n", verdict_line(&o.verdict()));
    let _ = writeln!(md, "| | |\n| --- | --- |");
    for (k, v) in summary_rows(o) {
        let _ = writeln!(md, "| {k} | {v} |");
    }
    let _ = writeln!(
        md,
        "\n## Throughput\n\n![throughput over time](throughput.svg)\n"
    );
    let _ = writeln!(
        md,
        "## Latency per action\n\n![latency percentiles per action](latency.svg)\n"
    );
    let _ = writeln!(
        md,
        "| action | count | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |"
    );
    let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for l in &o.latency {
        let _ = writeln!(
            md,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            l.action, l.count, l.p50, l.p90, l.p99, l.p999, l.max
        );
    }
    let _ = writeln!(md, "\n## Action coverage\n");
    let _ = writeln!(md, "| transition | times |\n| --- | ---: |");
    for (a, n) in ACTIONS.iter().zip(o.coverage) {
        let _ = writeln!(md, "| {a} | {n} |");
    }
    let _ = writeln!(
        md,
        "| upgrade mid-call, then view history | {} |",
        o.upgrade_then_history
    );
    let _ = writeln!(md, "\n## Violations\n");
    if !o.distinct.is_empty() {
        let _ = writeln!(
            md,
            "{} distinct finding(s) (by clause, kind and action):\n\n| count | finding | first | scenario | reproduced on replay |\n| ---: | --- | --- | --- | --- |",
            o.distinct.len()
        );
        for d in &o.distinct {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                d.count,
                d.signature,
                d.first.replace('|', "\\|"),
                d.scenario
                    .as_ref()
                    .map_or("—".to_string(), |p| format!("`{}`", relative(p, dir))),
                d.reproduced
                    .map_or("not measured".to_string(), |(n, of)| format!("{n}/{of}"))
            );
        }
        let _ = writeln!(md);
    }
    if o.findings.is_empty() {
        let _ = writeln!(md, "None.");
    } else {
        let _ = writeln!(
            md,
            "{} in all; every one is in `{}`. The first {}:\n",
            o.violations,
            relative(&o.journal, dir),
            o.findings.len()
        );
        for f in &o.findings {
            let _ = writeln!(
                md,
                "- at {:.3} s, `{}` (step {} of {}): {}",
                f.at_ms as f64 / 1000.0,
                f.step,
                f.violation.step,
                f.violation.patient,
                f.violation
            );
            if let Some(path) = &f.scenario {
                let _ = writeln!(
                    md,
                    "  - scenario: [`{0}`]({0}) — `chaperone replay {1} --repeat 20`",
                    relative(path, dir),
                    path.display()
                );
            }
            if !f.history.is_empty() {
                let _ = writeln!(md, "\n  ```text");
                for line in &f.history {
                    let _ = writeln!(md, "  {line}");
                }
                let _ = writeln!(md, "  ```\n");
            }
        }
    }
    md
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html(o: &SoakOutcome, dir: &Path, throughput: &str, latency: &str) -> String {
    let verdict = o.verdict();
    let colour = match verdict {
        Verdict::Pass => "#1a7f37",
        Verdict::Violation => "#cf222e",
        Verdict::Unknown(_) => "#9a6700",
    };
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<title>Chaperone soak report</title><style>");
    h.push_str("body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#1f2328}");
    h.push_str("table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left}");
    h.push_str("td.n{text-align:right}pre{background:#f6f8fa;padding:8px;overflow-x:auto}");
    h.push_str("</style></head><body>\n<h1>Chaperone soak report</h1>\n");
    let _ = writeln!(
        h,
        "<p style=\"font-weight:bold;color:{colour}\">{}</p>",
        escape(&verdict_line(&verdict))
    );
    h.push_str("<table>\n");
    for (k, v) in summary_rows(o) {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", escape(&k), escape(&v));
    }
    h.push_str("</table>\n<h2>Throughput</h2>\n<figure>");
    h.push_str(strip_xml_declaration(throughput));
    h.push_str("</figure>\n<h2>Latency per action</h2>\n<figure>");
    h.push_str(strip_xml_declaration(latency));
    h.push_str("</figure>\n<table><tr><th>action</th><th>count</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>\n");
    for l in &o.latency {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{:.2}</td><td class=n>{:.2}</td><td class=n>{:.2}</td><td class=n>{:.2}</td><td class=n>{:.2}</td></tr>",
            l.action, l.count, l.p50, l.p90, l.p99, l.p999, l.max
        );
    }
    h.push_str(
        "</table>\n<h2>Action coverage</h2>\n<table><tr><th>transition</th><th>times</th></tr>\n",
    );
    for (a, n) in ACTIONS.iter().zip(o.coverage) {
        let _ = writeln!(h, "<tr><td>{a}</td><td class=n>{n}</td></tr>");
    }
    let _ = writeln!(
        h,
        "<tr><td>upgrade mid-call, then view history</td><td class=n>{}</td></tr></table>",
        o.upgrade_then_history
    );
    h.push_str("<h2>Violations</h2>\n");
    if o.findings.is_empty() {
        h.push_str("<p>None.</p>\n");
    } else {
        let _ = writeln!(
            h,
            "<p>{} in all; every one is in <code>{}</code>. The first {}:</p>\n<ol>",
            o.violations,
            escape(&relative(&o.journal, dir)),
            o.findings.len()
        );
        for f in &o.findings {
            let _ = write!(
                h,
                "<li>at {:.3} s, <code>{}</code> (step {} of {}): {}",
                f.at_ms as f64 / 1000.0,
                escape(&f.step.to_string()),
                f.violation.step,
                f.violation.patient,
                escape(&f.violation.to_string())
            );
            if let Some(path) = &f.scenario {
                let _ = write!(
                    h,
                    "<br>scenario: <a href=\"{0}\"><code>{0}</code></a> — <code>chaperone replay {1} --repeat 20</code>",
                    escape(&relative(path, dir)),
                    escape(&path.display().to_string())
                );
            }
            if !f.history.is_empty() {
                let _ = write!(h, "<pre>{}</pre>", escape(&f.history.join("\n")));
            }
            h.push_str("</li>\n");
        }
        h.push_str("</ol>\n");
    }
    h.push_str("</body></html>\n");
    h
}

fn strip_xml_declaration(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

/// A percentile line of the latency plot: its label, how to read it, its colour.
type Series = (&'static str, fn(&ActionLatency) -> f64, RGBColor);

type PlotResult = Result<String, Box<dyn std::error::Error + Send + Sync>>;

fn plot_error<E: std::fmt::Display>(e: E) -> Box<dyn std::error::Error + Send + Sync> {
    e.to_string().into()
}

/// Operations per second over time.
pub fn throughput_svg(o: &SoakOutcome) -> PlotResult {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let t_max = o.throughput.iter().map(|(t, _)| *t).fold(1.0f64, f64::max);
        let r_max = o.throughput.iter().map(|(_, r)| *r).fold(1.0f64, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption("throughput (operations per second)", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..t_max, 0.0..r_max)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("seconds since start")
            .y_desc("ops/s")
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(LineSeries::new(o.throughput.iter().copied(), &BLUE))
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// Latency percentiles per action (actions that ran), log-free milliseconds.
pub fn latency_svg(o: &SoakOutcome) -> PlotResult {
    let ran: Vec<_> = o.latency.iter().filter(|l| l.count > 0).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let y_max = ran.iter().map(|l| l.p999).fold(1.0f64, f64::max) * 1.1;
        let n = ran.len().max(1);
        let names: Vec<&str> = ran.iter().map(|l| l.action).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption("latency percentiles per action (ms)", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0.0..y_max)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 0.01 && i >= 0.0 {
                    names
                        .get(i as usize)
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("ms")
            .draw()
            .map_err(plot_error)?;
        let series: [Series; 4] = [
            ("p50", |l| l.p50, GREEN),
            ("p90", |l| l.p90, BLUE),
            ("p99", |l| l.p99, MAGENTA),
            ("p99.9", |l| l.p999, RED),
        ];
        for (label, value, colour) in series {
            let points: Vec<(f64, f64)> = ran
                .iter()
                .enumerate()
                .map(|(i, l)| (i as f64, value(l)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(1)))
                .map_err(plot_error)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, colour.filled())),
                )
                .map_err(plot_error)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// JUnit XML: a suite `chaperone-soak` with one case per privacy clause
/// (failed when violated), one for coverage and one for target health.
pub fn junit(o: &SoakOutcome) -> Result<String, quick_junit::SerializeError> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new("chaperone-soak");
    // Soak never runs a patient alone, so it cannot judge noninterference:
    // a case for it would be a pass that checked nothing.
    for clause in Clause::ALL
        .into_iter()
        .filter(|c| *c != Clause::Noninterference)
    {
        let n = o.by_clause.get(&clause).copied().unwrap_or(0);
        let status = if n == 0 {
            TestCaseStatus::success()
        } else {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let kinds: Vec<String> = o
                .distinct
                .iter()
                .filter(|d| d.clause == clause)
                .map(|d| format!("{}× {}", d.count, d.signature))
                .collect();
            let first = o
                .distinct
                .iter()
                .find(|d| d.clause == clause)
                .map_or("see the journal", |d| d.first.as_str());
            status.set_message(format!(
                "{n} violation(s) of {clause} in {} distinct finding(s) ({}); first: {first}",
                kinds.len(),
                kinds.join(", ")
            ));
            status
        };
        suite.add_test_case(TestCase::new(format!("privacy.{clause}"), status));
    }
    let verdict = o.verdict();
    let coverage = match &verdict {
        Verdict::Unknown(why) if o.errors == 0 => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(why.clone());
            status
        }
        _ => TestCaseStatus::success(),
    };
    suite.add_test_case(TestCase::new("coverage", coverage));
    for d in &o.distinct {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        let rate = d
            .reproduced
            .map(|(n, of)| format!(" (scenario reproduced {n}/{of} on replay)"))
            .unwrap_or_default();
        status.set_message(format!("{}× {}: {}{rate}", d.count, d.signature, d.first));
        suite.add_test_case(TestCase::new(format!("finding.{}", d.signature), status));
    }
    let health = if o.errors > 0 {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(format!(
            "{} target failure(s) or divergence(s); first: {}",
            o.errors,
            o.first_errors.first().map_or("?", String::as_str)
        ));
        status
    } else {
        TestCaseStatus::success()
    };
    suite.add_test_case(TestCase::new("target", health));
    let mut report = Report::new("chaperone");
    report.add_test_suite(suite);
    report.to_string()
}
