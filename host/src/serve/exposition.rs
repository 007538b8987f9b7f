//! The Prometheus text exposition format (version 0.0.4): `# HELP` and `# TYPE` per family,
//! escaped label values, and histograms as cumulative `_bucket`s with `_sum` and `_count`.

use hdrhistogram::Histogram;
use std::fmt::Write;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the latency histograms' buckets, seconds: 50 µs to 10 s.
pub const LATENCY_BUCKETS_S: [f64; 17] =
    [5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
pub struct Exposition {
    out: String,
}

#[derive(Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Exposition {
    pub fn finish(self) -> String {
        self.out
    }

    /// Starts a metric family; its samples follow.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }

    /// One whole family with a single sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A latency histogram recorded in microseconds, exposed in seconds.
    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram<u64>, sum_us: u64) {
        self.family(name, Kind::Histogram, help);
        let bucket = format!("{name}_bucket");
        for le in LATENCY_BUCKETS_S {
            let upto = h.count_between(0, (le * 1e6).round() as u64);
            self.sample(&bucket, &[("le", &number(le))], upto as f64);
        }
        self.sample(&bucket, &[("le", "+Inf")], h.len() as f64);
        self.sample(&format!("{name}_sum"), &[], sum_us as f64 / 1e6);
        self.sample(&format!("{name}_count"), &[], h.len() as f64);
    }
}

fn number(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_in_seconds() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for us in [40, 90, 900, 2_000_000, 20_000_000] {
            h.record(us).unwrap();
        }
        let mut e = Exposition::default();
        e.histogram("t_seconds", "test", &h, 22_000_000 + 1030);
        let text = e.finish();
        assert!(text.contains("t_seconds_bucket{le=\"0.00005\"} 1\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"0.0001\"} 2\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"0.001\"} 3\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"2.5\"} 4\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"10\"} 4\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"+Inf\"} 5\n"), "{text}");
        assert!(text.contains("t_seconds_sum 22.00103\n"), "{text}");
        assert!(text.contains("t_seconds_count 5\n"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut e = Exposition::default();
        e.sample("m", &[("k", "a\"b\\c\nd")], 1.5);
        assert_eq!(e.finish(), "m{k=\"a\\\"b\\\\c\\nd\"} 1.5\n");
    }
}
