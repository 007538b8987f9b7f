//! Arrival instants, fixed by the rate, its profile over the run, the process and a seed before
//! the run starts: a slow target can make jobs late, never move their due time (that is what
//! keeps the load open-loop).

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

/// How the rate moves during a run; every rate is a multiple of the run's rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Profile {
    /// The run's rate throughout.
    Steady,
    /// `from` times the rate until `at_s` seconds into the run, then `to` times it.
    Step {
        /// When the rate steps, seconds from the start.
        at_s: f64,
        /// The multiple before the step.
        from: f64,
        /// The multiple after it.
        to: f64,
    },
    /// On and off in turn, starting on: `on_s` seconds at `high` times the rate, then `off_s`
    /// seconds at `low` times it.
    Bursts {
        /// Seconds of each burst.
        on_s: f64,
        /// Seconds between bursts.
        off_s: f64,
        /// The multiple during a burst.
        high: f64,
        /// The multiple between bursts (0 for silence).
        low: f64,
    },
}

impl Profile {
    /// The stretch of the run starting at segment `k`: its start, end and rate multiple. Ends
    /// come from whole-segment arithmetic, so boundaries never drift over a long run.
    fn segment(&self, k: u64) -> Option<(f64, f64, f64)> {
        match *self {
            Profile::Steady => (k == 0).then_some((0.0, f64::INFINITY, 1.0)),
            Profile::Step { at_s, from, to } => match k {
                0 => Some((0.0, at_s, from)),
                1 => Some((at_s, f64::INFINITY, to)),
                _ => None,
            },
            Profile::Bursts { on_s, off_s, high, low } => {
                let start = (k / 2) as f64 * (on_s + off_s);
                Some(if k.is_multiple_of(2) {
                    (start, start + on_s, high)
                } else {
                    (start + on_s, start + on_s + off_s, low)
                })
            }
        }
    }

    /// The profile as reports name it, e.g. `step at 5 s: 0.5x -> 3x`.
    pub fn describe(&self) -> String {
        match *self {
            Profile::Steady => "steady".into(),
            Profile::Step { at_s, from, to } => format!("step at {at_s} s: {from}x -> {to}x"),
            Profile::Bursts { on_s, off_s, high, low } => {
                format!("bursts: {on_s} s at {high}x, {off_s} s at {low}x")
            }
        }
    }

    fn check(self) -> Result<Profile, String> {
        let multiple = |x: f64| x.is_finite() && x >= 0.0;
        let seconds = |x: f64| x.is_finite() && x > 0.0;
        let ok = match self {
            Profile::Steady => true,
            Profile::Step { at_s, from, to } => seconds(at_s) && multiple(from) && multiple(to),
            Profile::Bursts { on_s, off_s, high, low } => {
                seconds(on_s) && seconds(off_s) && multiple(high) && multiple(low) && high + low > 0.0
            }
        };
        if ok { Ok(self) } else { Err(format!("{self:?}: times must be positive seconds, multiples 0 or more")) }
    }
}

impl std::str::FromStr for Profile {
    type Err = String;

    /// `steady`, `step:AT_S:FROM:TO` or `bursts:ON_S:OFF_S:HIGH:LOW` (multiples of the rate).
    fn from_str(s: &str) -> Result<Self, String> {
        let usage = "the profile is steady, step:AT_S:FROM:TO (e.g. step:5:0.5:3) or \
                     bursts:ON_S:OFF_S:HIGH:LOW (e.g. bursts:0.5:1.5:3:0.5), rates as multiples of --rate";
        let mut parts = s.split(':');
        let kind = parts.next().unwrap_or_default();
        let numbers: Result<Vec<f64>, _> = parts.map(str::parse::<f64>).collect();
        let numbers = numbers.map_err(|_| format!("{s:?}: {usage}"))?;
        let profile = match (kind, numbers.as_slice()) {
            ("steady", []) => Profile::Steady,
            ("step", &[at_s, from, to]) => Profile::Step { at_s, from, to },
            ("bursts", &[on_s, off_s, high, low]) => Profile::Bursts { on_s, off_s, high, low },
            _ => return Err(format!("{s:?}: {usage}")),
        };
        profile.check().map_err(|e| format!("{e} ({usage})"))
    }
}

/// Offsets from the run's start at which jobs are due, in order, up to (not including) `duration`.
pub struct Schedule {
    process: Arrivals,
    profile: Profile,
    rate: f64,
    end_s: f64,
    index: u64,
    last_s: f64,
    /// Arrivals so far in the time the profile stretches: unit rate there.
    stretched_s: f64,
    /// The profile's segment the last arrival fell in, and the stretched time before it:
    /// arrivals only move forward, so each walks on from there.
    segment: u64,
    segment_start_stretched: f64,
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
            profile: Profile::Steady,
            rate,
            end_s: duration.as_secs_f64(),
            index: 0,
            last_s: 0.0,
            stretched_s: 0.0,
            segment: 0,
            segment_start_stretched: 0.0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// The same schedule with the rate moving as `profile` says.
    pub fn with_profile(mut self, profile: Profile) -> Result<Schedule, String> {
        self.profile = profile.check()?;
        Ok(self)
    }

    /// The instant by which `stretched` arrivals are due at unit rate: the inverse of the
    /// integrated rate, walked segment by segment from the last arrival's (infinite past the
    /// run's end). `stretched` never decreases between calls.
    fn instant_of(&mut self, stretched: f64) -> f64 {
        while let Some((start, end, multiple)) = self.profile.segment(self.segment) {
            if start >= self.end_s {
                break;
            }
            let rate = self.rate * multiple;
            let room = rate * (end.min(self.end_s) - start);
            let into = stretched - self.segment_start_stretched;
            if rate > 0.0 && into < room {
                return start + into / rate;
            }
            self.segment += 1;
            self.segment_start_stretched += room;
        }
        f64::INFINITY
    }

    /// A uniform draw in (0, 1]: never 0, so its logarithm is finite.
    fn unit(&mut self) -> f64 {
        ((self.rng.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let t = match (self.process, self.profile) {
            // From the index, not by summing gaps, so rounding never drifts over a long run.
            (Arrivals::Constant, Profile::Steady) => self.index as f64 / self.rate,
            // Inverse CDF of the exponential distribution.
            (Arrivals::Poisson, Profile::Steady) => self.last_s - self.unit().ln() / self.rate,
            // A moving rate: the same processes at unit rate, in time stretched by the rate.
            (Arrivals::Constant, _) => {
                let stretched = self.index as f64;
                self.instant_of(stretched)
            }
            (Arrivals::Poisson, _) => {
                self.stretched_s -= self.unit().ln();
                let stretched = self.stretched_s;
                self.instant_of(stretched)
            }
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

    fn profiled(process: Arrivals, rate: f64, secs: u64, profile: &str) -> Vec<f64> {
        let schedule = Schedule::new(process, rate, Duration::from_secs(secs), 5).unwrap();
        schedule.with_profile(profile.parse().unwrap()).unwrap().map(|d| d.as_secs_f64()).collect()
    }

    fn count(t: &[f64], from_s: f64, to_s: f64) -> usize {
        t.iter().filter(|x| (from_s..to_s).contains(*x)).count()
    }

    #[test]
    fn a_step_moves_the_rate_at_its_instant() {
        // 1000/s: 0.5x for 2 s, then 3x for 2 s.
        let t = profiled(Arrivals::Constant, 1000.0, 4, "step:2:0.5:3");
        assert_eq!((count(&t, 0.0, 2.0), count(&t, 2.0, 4.0)), (1000, 6000));
        assert!((t[1] - t[0] - 0.002).abs() < 1e-12 && (t[1001] - t[1000] - 1.0 / 3000.0).abs() < 1e-9);
        let p = profiled(Arrivals::Poisson, 1000.0, 4, "step:2:0.5:3");
        let (before, after) = (count(&p, 0.0, 2.0) as f64, count(&p, 2.0, 4.0) as f64);
        // Poisson counts: sd 32 and 77; allow 5 sd.
        assert!((before - 1000.0).abs() < 160.0 && (after - 6000.0).abs() < 390.0, "{before} {after}");
        assert!(p.windows(2).all(|w| w[0] <= w[1]) && p.iter().all(|x| *x < 4.0));
    }

    #[test]
    fn bursts_alternate_high_and_low() {
        // 400/s: 0.25 s at 4x, 0.75 s silent, four times.
        let t = profiled(Arrivals::Constant, 400.0, 4, "bursts:0.25:0.75:4:0");
        for k in 0..4 {
            let s = k as f64;
            assert_eq!((count(&t, s, s + 0.25), count(&t, s + 0.25, s + 1.0)), (400, 0), "period {k}");
        }
        let p = profiled(Arrivals::Poisson, 400.0, 4, "bursts:0.25:0.75:4:1");
        let on: usize = (0..4).map(|k| count(&p, k as f64, k as f64 + 0.25)).sum();
        let off: usize = (0..4).map(|k| count(&p, k as f64 + 0.25, k as f64 + 1.0)).sum();
        // 1600 and 1200 expected: sd 40 and 35.
        assert!((on as f64 - 1600.0).abs() < 200.0 && (off as f64 - 1200.0).abs() < 175.0, "{on} {off}");
    }

    #[test]
    fn profiles_parse_and_bad_ones_say_how_to_write_them() {
        assert_eq!("steady".parse::<Profile>(), Ok(Profile::Steady));
        assert_eq!("step:5:0.5:3".parse::<Profile>(), Ok(Profile::Step { at_s: 5.0, from: 0.5, to: 3.0 }));
        let bursts = Profile::Bursts { on_s: 0.5, off_s: 1.5, high: 3.0, low: 0.5 };
        assert_eq!("bursts:0.5:1.5:3:0.5".parse::<Profile>(), Ok(bursts));
        for bad in ["step", "step:5:0.5", "step:-1:1:1", "bursts:0:1:1:1", "bursts:1:1:0:0", "ramp:1", "step:a:1:2"] {
            let e = bad.parse::<Profile>().unwrap_err();
            assert!(e.contains("step:AT_S:FROM:TO"), "{bad}: {e}");
        }
        assert_eq!(Profile::Step { at_s: 5.0, from: 0.5, to: 3.0 }.describe(), "step at 5 s: 0.5x -> 3x");
        // A steady profile keeps the schedule it always had.
        assert_eq!(profiled(Arrivals::Poisson, 100.0, 5, "steady"), offsets(Arrivals::Poisson, 100.0, 5, 5));
    }
}
