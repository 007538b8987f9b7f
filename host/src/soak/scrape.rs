//! Reading the server's `/metrics`: just enough of the Prometheus text format to sum a family,
//! optionally filtered by one label.

/// A sample's labels, as (name, value) pairs.
type Labels = Vec<(String, String)>;

/// One scrape: every sample as (name, labels, value).
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    samples: Vec<(String, Labels, f64)>,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let value: f64 = value.parse().ok()?;
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => (name, labels(rest.strip_suffix('}')?)),
                    None => (series, Vec::new()),
                };
                Some((name.to_string(), labels, value))
            })
            .collect();
        Scrape { samples }
    }

    /// Several replicas' scrapes as one: every sum is then the fleet's.
    pub fn merged(scrapes: &[Scrape]) -> Scrape {
        Scrape { samples: scrapes.iter().flat_map(|s| s.samples.iter().cloned()).collect() }
    }

    /// The sum of every sample of `name`.
    pub fn sum(&self, name: &str) -> f64 {
        self.samples.iter().filter(|(n, _, _)| n == name).map(|(_, _, v)| v).sum()
    }

    /// The sum of the samples of `name` whose label `label` is `value`.
    pub fn sum_where(&self, name: &str, label: &str, value: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| n == name && l.iter().any(|(k, v)| k == label && v == value))
            .map(|(_, _, v)| v)
            .sum()
    }
}

/// `a="x",b="y"` into pairs (label values here never hold quotes or commas).
fn labels(text: &str) -> Labels {
    text.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_families_and_filters_by_label() {
        let s = Scrape::parse(
            "# HELP helix_jobs_total x\n# TYPE helix_jobs_total counter\n\
             helix_jobs_total{kernel=\"a\",status=\"completed\"} 3\n\
             helix_jobs_total{kernel=\"b\",status=\"completed\"} 4\n\
             helix_jobs_total{kernel=\"b\",status=\"failed\"} 2\n\
             helix_jobs_submitted_total 9\n",
        );
        assert_eq!(s.sum("helix_jobs_total"), 9.0);
        assert_eq!(s.sum_where("helix_jobs_total", "status", "completed"), 7.0);
        assert_eq!(s.sum_where("helix_jobs_total", "kernel", "b"), 6.0);
        assert_eq!(s.sum("helix_jobs_submitted_total"), 9.0);
        assert_eq!(s.sum("absent"), 0.0);
        let two = Scrape::merged(&[s.clone(), s]);
        assert_eq!(two.sum_where("helix_jobs_total", "kernel", "b"), 12.0);
    }
}
