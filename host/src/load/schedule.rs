//! Arrival instants, fixed by the rate, the process and a seed before the run starts: a slow
//! target can make jobs late, never move their due time (that is what keeps the load open-loop).

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::time::Duration;

/// How arrivals are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrivals {
    /// Exponential gaps (a Poisson process): bursts and lulls, as independent clients make.
    Poisson,
    /// Exactly `1 / rate` apart.
    Constant,
}

impl Arrivals {
    /// The name on the command line and in reports: `poisson` or `constant`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arrivals::Poisson => "poisson",
            Arrivals::Constant => "constant",
        }
    }
}

impl std::str::FromStr for Arrivals {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "poisson" => Ok(Arrivals::Poisson),
            "constant" => Ok(Arrivals::Constant),
            _ => Err(format!("arrivals must be poisson or constant, got {s:?}")),
        }
    }
}

/// Offsets from the run's start at which jobs are due, in order, up to (not including) `duration`.
pub struct Schedule {
    process: Arrivals,
    rate: f64,
    end_s: f64,
    index: u64,
    last_s: f64,
    rng: ChaCha8Rng,
}

impl Schedule {
    /// `rate` jobs per second for `duration`; an error unless the rate is positive and finite.
    pub fn new(process: Arrivals, rate: f64, duration: Duration, seed: u64) -> Result<Schedule, String> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!("the rate must be a positive number of jobs per second, got {rate}"));
        }
        Ok(Schedule {
            process,
            rate,
            end_s: duration.as_secs_f64(),
            index: 0,
            last_s: 0.0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// A uniform draw in (0, 1]: never 0, so its logarithm is finite.
    fn unit(&mut self) -> f64 {
        ((self.rng.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let t = match self.process {
            // From the index, not by summing gaps, so rounding never drifts over a long run.
            Arrivals::Constant => self.index as f64 / self.rate,
            // Inverse CDF of the exponential distribution.
            Arrivals::Poisson => self.last_s - self.unit().ln() / self.rate,
        };
        if t >= self.end_s {
            return None;
        }
        self.index += 1;
        self.last_s = t;
        Some(Duration::from_secs_f64(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(process: Arrivals, rate: f64, secs: u64, seed: u64) -> Vec<f64> {
        Schedule::new(process, rate, Duration::from_secs(secs), seed).unwrap().map(|d| d.as_secs_f64()).collect()
    }

    #[test]
    fn constant_arrivals_are_exactly_evenly_spaced() {
        let t = offsets(Arrivals::Constant, 250.0, 4, 1);
        assert_eq!(t.len(), 1000);
        for (i, x) in t.iter().enumerate() {
            assert!((x - i as f64 / 250.0).abs() < 1e-9, "arrival {i} at {x}");
        }
    }

    #[test]
    fn poisson_arrivals_have_the_rate_and_the_spread_of_an_exponential() {
        let rate = 2000.0;
        let t = offsets(Arrivals::Poisson, rate, 20, 7);
        let n = t.len() as f64;
        // 40 000 expected; the count of a Poisson process has sd 200: allow 5 sd.
        assert!((n - 40_000.0).abs() < 1_000.0, "{n} arrivals");
        let gaps: Vec<f64> = std::iter::once(t[0]).chain(t.windows(2).map(|w| w[1] - w[0])).collect();
        let mean = gaps.iter().sum::<f64>() / n;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!((mean * rate - 1.0).abs() < 0.03, "mean gap {mean}");
        // An exponential's coefficient of variation is 1; a constant schedule's is 0.
        assert!((sd / mean - 1.0).abs() < 0.05, "cv {}", sd / mean);
        // P(gap > 3/rate) = e^-3.
        let long = gaps.iter().filter(|g| **g > 3.0 / rate).count() as f64 / n;
        assert!((long - (-3.0f64).exp()).abs() < 0.01, "{long}");
        assert!(t.windows(2).all(|w| w[0] <= w[1]) && t.iter().all(|x| *x < 20.0));
    }

    #[test]
    fn a_seed_fixes_the_schedule() {
        assert_eq!(offsets(Arrivals::Poisson, 100.0, 5, 3), offsets(Arrivals::Poisson, 100.0, 5, 3));
        assert_ne!(offsets(Arrivals::Poisson, 100.0, 5, 3), offsets(Arrivals::Poisson, 100.0, 5, 4));
    }

    #[test]
    fn bad_rates_are_errors() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Schedule::new(Arrivals::Constant, rate, Duration::from_secs(1), 1).is_err(), "{rate}");
        }
        assert_eq!("poisson".parse::<Arrivals>(), Ok(Arrivals::Poisson));
        assert!("bursty".parse::<Arrivals>().unwrap_err().contains("poisson or constant"));
    }
}
