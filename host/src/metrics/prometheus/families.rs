//! The encoding helpers [`super::render`] writes its families with: const counters and gauges,
//! labelled families, and histograms whose microsecond buckets become seconds.

use std::borrow::Cow;

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeMetric, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use crate::proto::LatencyHistogram;

pub(super) type Labels<'a> = Vec<(&'static str, Cow<'a, str>)>;

/// Writes families into one encoder.
pub(super) struct Families<'e, 'w> {
    pub(super) encoder: &'e mut DescriptorEncoder<'w>,
}

impl Families<'_, '_> {
    pub(super) fn counter<N: EncodeCounterValue>(
        &mut self,
        name: &str,
        help: &str,
        unit: Option<Unit>,
        value: N,
    ) -> Fmt {
        let metric = ConstCounter::new(value);
        let encoder =
            self.encoder
                .encode_descriptor(name, help, unit.as_ref(), metric.metric_type())?;
        metric.encode(encoder)
    }

    pub(super) fn gauge(&mut self, name: &str, help: &str, unit: Option<Unit>, value: i64) -> Fmt {
        let metric = ConstGauge::new(value);
        let encoder =
            self.encoder
                .encode_descriptor(name, help, unit.as_ref(), metric.metric_type())?;
        metric.encode(encoder)
    }

    /// One family of counters (or gauges) told apart by labels; nothing if `rows` is empty.
    pub(super) fn labelled(
        &mut self,
        kind: MetricType,
        name: &str,
        help: &str,
        unit: Option<Unit>,
        rows: &[(Labels<'_>, u64)],
    ) -> Fmt {
        if rows.is_empty() {
            return Ok(());
        }
        let mut family = self
            .encoder
            .encode_descriptor(name, help, unit.as_ref(), kind)?;
        for (labels, value) in rows {
            let encoder = family.encode_family(labels)?;
            match kind {
                MetricType::Counter => ConstCounter::new(*value).encode(encoder)?,
                _ => ConstGauge::new(*value as i64).encode(encoder)?,
            }
        }
        Ok(())
    }

    /// A histogram family in seconds, one series per labelled histogram.
    pub(super) fn histograms(
        &mut self,
        name: &str,
        help: &str,
        rows: &[(Labels<'_>, &LatencyHistogram)],
    ) -> Fmt {
        if rows.is_empty() {
            return Ok(());
        }
        let mut family = self.encoder.encode_descriptor(
            name,
            help,
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (labels, histogram) in rows {
            let buckets = seconds_buckets(histogram);
            let sum = histogram.sum_us as f64 / 1e6;
            if labels.is_empty() {
                family.encode_histogram::<NoLabelSet>(sum, histogram.count, &buckets, None)?;
            } else {
                family
                    .encode_family(labels)?
                    .encode_histogram::<NoLabelSet>(sum, histogram.count, &buckets, None)?;
            }
        }
        Ok(())
    }

    pub(super) fn histogram(
        &mut self,
        name: &str,
        help: &str,
        histogram: &LatencyHistogram,
    ) -> Fmt {
        self.histograms(name, help, &[(Vec::new(), histogram)])
    }
}

pub(super) type Fmt = Result<(), std::fmt::Error>;

/// `(upper bound in seconds, observations in that bucket)`, the last bucket at `+Inf`.
pub(super) fn seconds_buckets(histogram: &LatencyHistogram) -> Vec<(f64, u64)> {
    histogram
        .counts
        .iter()
        .enumerate()
        .map(|(i, count)| {
            let bound = histogram
                .bounds_us
                .get(i)
                .map_or(f64::INFINITY, |us| *us as f64 / 1e6);
            (bound, *count)
        })
        .collect()
}

pub(super) fn label<'a>(name: &'static str, value: impl Into<Cow<'a, str>>) -> Labels<'a> {
    vec![(name, value.into())]
}
