//! Merging and splitting OTLP requests by item (span, data point, log record).
//!
//! Merging appends resource lists, so the encoded size of a merge is the sum of its parts.
//! Splitting copies the resource and scope headers (never the items) into each piece.

use crate::Payload;
use crate::proto::logs::v1::{ResourceLogs, ScopeLogs};
use crate::proto::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics, metric::Data};
use crate::proto::trace::v1::{ResourceSpans, ScopeSpans};

/// Appends `other` to `into`; a payload of another signal is handed back.
pub fn merge(into: &mut Payload, other: Payload) -> Result<(), Payload> {
    match (into, other) {
        (Payload::Traces(a), Payload::Traces(b)) => a.resource_spans.extend(b.resource_spans),
        (Payload::Metrics(a), Payload::Metrics(b)) => a.resource_metrics.extend(b.resource_metrics),
        (Payload::Logs(a), Payload::Logs(b)) => a.resource_logs.extend(b.resource_logs),
        (_, other) => return Err(other),
    }
    Ok(())
}

/// Removes the first `n` items of `p` and returns them as a payload of their own.
pub fn split_front(p: &mut Payload, n: usize) -> Payload {
    match p {
        Payload::Traces(r) => {
            let mut out = r.clone_empty();
            out.resource_spans = split_list(&mut r.resource_spans, n);
            Payload::Traces(out)
        }
        Payload::Metrics(r) => {
            let mut out = r.clone_empty();
            out.resource_metrics = split_list(&mut r.resource_metrics, n);
            Payload::Metrics(out)
        }
        Payload::Logs(r) => {
            let mut out = r.clone_empty();
            out.resource_logs = split_list(&mut r.resource_logs, n);
            Payload::Logs(out)
        }
    }
}

/// A level of the OTLP tree that holds items, directly or below.
trait Split: Sized {
    fn items(&self) -> usize;
    /// Moves the first `n` items (fewer than `items()`) into a new node with the same header.
    fn split_front(&mut self, n: usize) -> Self;
}

/// Cloning a node without its children.
trait CloneEmpty {
    fn clone_empty(&mut self) -> Self;
}

macro_rules! clone_empty {
    ($ty:ty, $children:ident) => {
        impl CloneEmpty for $ty {
            fn clone_empty(&mut self) -> Self {
                let kids = std::mem::take(&mut self.$children);
                let copy = self.clone();
                self.$children = kids;
                copy
            }
        }
    };
}

clone_empty!(crate::ExportTraceServiceRequest, resource_spans);
clone_empty!(crate::ExportMetricsServiceRequest, resource_metrics);
clone_empty!(crate::ExportLogsServiceRequest, resource_logs);

/// A container of containers.
macro_rules! split_node {
    ($ty:ty, $children:ident) => {
        clone_empty!($ty, $children);
        impl Split for $ty {
            fn items(&self) -> usize {
                self.$children.iter().map(Split::items).sum()
            }
            fn split_front(&mut self, n: usize) -> Self {
                let mut piece = self.clone_empty();
                piece.$children = split_list(&mut self.$children, n);
                piece
            }
        }
    };
}

/// A container of items.
macro_rules! split_leaf {
    ($ty:ty, $items:ident) => {
        clone_empty!($ty, $items);
        impl Split for $ty {
            fn items(&self) -> usize {
                self.$items.len()
            }
            fn split_front(&mut self, n: usize) -> Self {
                let rest = self.$items.split_off(n);
                let mut piece = self.clone_empty();
                piece.$items = std::mem::replace(&mut self.$items, rest);
                piece
            }
        }
    };
}

split_node!(ResourceSpans, scope_spans);
split_leaf!(ScopeSpans, spans);
split_node!(ResourceLogs, scope_logs);
split_leaf!(ScopeLogs, log_records);
split_node!(ResourceMetrics, scope_metrics);
split_node!(ScopeMetrics, metrics);

impl Split for Metric {
    fn items(&self) -> usize {
        match &self.data {
            Some(Data::Gauge(d)) => d.data_points.len(),
            Some(Data::Sum(d)) => d.data_points.len(),
            Some(Data::Histogram(d)) => d.data_points.len(),
            Some(Data::ExponentialHistogram(d)) => d.data_points.len(),
            Some(Data::Summary(d)) => d.data_points.len(),
            None => 0,
        }
    }

    fn split_front(&mut self, n: usize) -> Self {
        let data = self.data.take();
        let mut piece = self.clone();
        self.data = data;
        piece.data = match &mut self.data {
            Some(Data::Gauge(d)) => take_points(d, n, |d| &mut d.data_points, Data::Gauge),
            Some(Data::Sum(d)) => take_points(d, n, |d| &mut d.data_points, Data::Sum),
            Some(Data::Histogram(d)) => take_points(d, n, |d| &mut d.data_points, Data::Histogram),
            Some(Data::ExponentialHistogram(d)) => {
                take_points(d, n, |d| &mut d.data_points, Data::ExponentialHistogram)
            }
            Some(Data::Summary(d)) => take_points(d, n, |d| &mut d.data_points, Data::Summary),
            None => None,
        };
        piece
    }
}

/// Moves the first `n` points of `d` into a copy of its header.
fn take_points<D: Clone, P>(
    d: &mut D,
    n: usize,
    points: fn(&mut D) -> &mut Vec<P>,
    wrap: fn(D) -> Data,
) -> Option<Data> {
    let rest = points(d).split_off(n);
    let first = std::mem::replace(points(d), rest);
    let held = std::mem::take(points(d));
    let mut piece = d.clone();
    *points(d) = held;
    *points(&mut piece) = first;
    Some(wrap(piece))
}

/// Takes up to `n` items from the front of `list`: whole elements while they fit, then the
/// front part of the next one.
fn split_list<T: Split>(list: &mut Vec<T>, mut n: usize) -> Vec<T> {
    let mut whole = 0;
    while whole < list.len() && list[whole].items() <= n {
        n -= list[whole].items();
        whole += 1;
    }
    let mut out: Vec<T> = list.drain(..whole).collect();
    if n > 0 && !list.is_empty() {
        out.push(list[0].split_front(n));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExportTraceServiceRequest;
    use crate::proto::trace::v1::Span;

    fn traces(resources: usize, scopes: usize, spans: usize) -> Payload {
        let mut id = 0u8;
        Payload::Traces(ExportTraceServiceRequest {
            resource_spans: (0..resources)
                .map(|_| ResourceSpans {
                    scope_spans: (0..scopes)
                        .map(|_| ScopeSpans {
                            spans: (0..spans)
                                .map(|_| {
                                    id += 1;
                                    Span {
                                        span_id: vec![id; 8],
                                        ..Default::default()
                                    }
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        })
    }

    fn ids(p: &Payload) -> Vec<u8> {
        let Payload::Traces(r) = p else { panic!() };
        r.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| s.span_id[0])
            .collect()
    }

    #[test]
    fn split_keeps_order_and_every_item() {
        let mut p = traces(2, 2, 3);
        let all = ids(&p);
        let mut got = Vec::new();
        while p.item_count() > 0 {
            let piece = split_front(&mut p, 5);
            assert!(piece.item_count() <= 5);
            got.extend(ids(&piece));
        }
        assert_eq!(got, all);
    }

    #[test]
    fn merge_sizes_add_up() {
        let mut a = traces(1, 1, 2);
        let b = traces(2, 1, 1);
        let sum = a.encoded_len() + b.encoded_len();
        merge(&mut a, b).unwrap();
        assert_eq!(a.encoded_len(), sum);
        assert_eq!(a.item_count(), 4);
    }
}
