//! `/api/v1/rum`: the web app's own load timings and Core Web Vitals, as
//! measured in users' browsers, exported as Prometheus histograms.

use axum::http::StatusCode;
use serde::Deserialize;

use super::extract::Json;
use crate::error::{Error, Result};

/// Timings the app reports, in milliseconds since navigation start (INP is
/// an interaction's duration). `cls` is the unitless layout-shift score.
const TIMINGS: &[&str] = &["ttfb", "fcp", "lcp", "inp", "load", "board_ready"];
const LAYOUT_SHIFT: &str = "cls";
/// A page load report carries a handful of values; more is not a browser.
const MAX_METRICS: usize = 16;
/// Longer than any page load worth recording.
const MAX_MILLISECONDS: f64 = 10.0 * 60.0 * 1000.0;
const MAX_LAYOUT_SHIFT: f64 = 100.0;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RumReport {
    metrics: Vec<RumMetric>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RumMetric {
    name: String,
    value: f64,
}

/// Record a browser's page-load timings (no sign-in needed: the sign-in page
/// is measured too). Names outside the known set are refused, so label
/// values stay bounded.
pub async fn record(Json(report): Json<RumReport>) -> Result<StatusCode> {
    if report.metrics.len() > MAX_METRICS {
        return Err(Error::validation(format!(
            "at most {MAX_METRICS} metrics per report"
        )));
    }
    let mut valid = Vec::with_capacity(report.metrics.len());
    for metric in &report.metrics {
        let name = metric.name.as_str();
        let (name, limit) = match name {
            LAYOUT_SHIFT => (LAYOUT_SHIFT, MAX_LAYOUT_SHIFT),
            _ => match TIMINGS.iter().find(|known| **known == name) {
                Some(known) => (*known, MAX_MILLISECONDS),
                None => {
                    return Err(Error::validation(format!(
                        "unknown metric `{}`; expected one of: {}, {LAYOUT_SHIFT}",
                        name.chars().take(40).collect::<String>(),
                        TIMINGS.join(", ")
                    )))
                }
            },
        };
        if !metric.value.is_finite() || !(0.0..=limit).contains(&metric.value) {
            return Err(Error::validation(format!(
                "`{name}` must be between 0 and {limit}"
            )));
        }
        valid.push((name, metric.value));
    }
    // Recorded only once the whole report is valid.
    for (name, value) in valid {
        if name == LAYOUT_SHIFT {
            metrics::histogram!("web_vitals_cls").record(value);
        } else {
            metrics::histogram!("web_vitals_seconds", "metric" => name).record(value / 1000.0);
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
