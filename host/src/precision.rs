//! Layer 3: error-targeted jobs. A job may ask for a standard error instead of a unit count;
//! its units are then sized from the variance per unit the kernel showed on the same parameters
//! before (`Learnt`), or found by a pilot round. It runs in rounds: each continues the last
//! (the units of a Monte Carlo kernel are an exact prefix of a longer run), and the next is
//! sized from the error the run so far shows, until the target is met or the grant is spent.
//!
//! A Monte Carlo error falls as `units^-1/2`, so `n` units of variance per unit `v` give a
//! standard error `sqrt(v / n)`, and a target `t` needs `n = v / t^2`. `v` is the squared
//! standard error times the units, whatever the estimator (importance weights, control
//! variates): it is what the kernel's own error bar says. Under randomised quasi-Monte Carlo
//! the error falls faster than `units^-1/2`, so sizing from a smaller run is conservative.

use crate::job::{ErrorTarget, Tolerance};
use crate::manifest::Units;
use helix_math::{Params, Value};
use std::hash::{Hash, Hasher};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// Parameter classes a kernel remembers a variance for: a direct-mapped table, so it is
/// bounded, needs no lock, and a class seen again lands where it was.
const SLOTS: usize = 256;
/// Weight of each new observation of a class's variance, averaged in logs: it follows a change
/// within a few jobs, one run's noise moves it little, and one wild observation (a bound
/// standing in for a sample too small to show its spread) moves it by a factor, not to itself.
const LEARNING_RATE: f64 = 0.3;
/// Logs are kept above this (about 1e-304), so an estimate of exactly 0 stays a number.
const SMALLEST_LOG: f64 = -700.0;
/// Each round runs this many times the units the spread it knows asks for, so the standard
/// error lands about 10% under the target, not on it: a run that stops the moment its error
/// bar touches the target has an error within twice the target only 95.4% of the time, one
/// 10% under it 97.5%. The first round should usually be the last.
pub const FIRST_ROUND_MARGIN: f64 = 1.25;
/// A later round asks for this many times what the run so far says is needed.
pub const NEXT_ROUND_MARGIN: f64 = 1.25;
/// The router asks the lane for this many times what the learnt variance asks for, so a
/// round that falls short has room to continue.
pub const GRANT_MARGIN: f64 = 1.5;
/// A pilot round (for a class never seen) runs this many blocks.
pub const PILOT_BLOCKS: u64 = 4;
/// Rounds after which the job takes the rest of its grant at once.
pub const MAX_ROUNDS: u32 = 4;

/// What a class of jobs showed: the variance per unit of the estimate and the estimate's size
/// (for relative targets).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// Squared standard error times units.
    pub variance_per_unit: f64,
    /// The estimate's absolute value.
    pub magnitude: f64,
}

impl Spread {
    /// The spread an estimate of `value` with standard error `std_error` from `units` shows.
    pub fn observed(value: f64, std_error: f64, units: u64) -> Option<Spread> {
        let v = std_error * std_error * units as f64;
        (v.is_finite() && value.is_finite()).then_some(Spread { variance_per_unit: v, magnitude: value.abs() })
    }

    /// Units this spread needs for the standard error `tolerance` asks, times `margin`:
    /// `None` when no count reaches it (an estimate of 0 under a relative target).
    pub fn units_for(&self, tolerance: Tolerance, margin: f64) -> Option<f64> {
        let target = tolerance.std_error_at(self.magnitude);
        let n = margin * self.variance_per_unit / (target * target);
        (n.is_finite()).then_some(n)
    }
}

/// The variance per unit a kernel showed, per parameter class. Each entry is one word holding
/// its class's tag beside the `f32` log of its value (a variance per unit of a deep
/// out-of-the-money price can be 1e-35, below `f32`'s normal range), so a reader never pairs one class's tag with another's
/// value; two writers of one slot race harmlessly (the last one wins).
pub struct Learnt {
    variance: Box<[AtomicU64]>,
    magnitude: Box<[AtomicU64]>,
}

impl Default for Learnt {
    fn default() -> Self {
        let table = || (0..SLOTS).map(|_| AtomicU64::new(0)).collect();
        Learnt { variance: table(), magnitude: table() }
    }
}

impl std::fmt::Debug for Learnt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seen = self.variance.iter().filter(|w| w.load(Relaxed) != 0).count();
        f.debug_struct("Learnt").field("classes", &seen).finish()
    }
}

impl Learnt {
    /// What class `class` showed, if it was seen.
    pub fn get(&self, class: u64) -> Option<Spread> {
        let (slot, tag) = slot_and_tag(class);
        let read = |table: &[AtomicU64]| unpack(table[slot].load(Relaxed), tag).map(f64::exp);
        Some(Spread { variance_per_unit: read(&self.variance)?, magnitude: read(&self.magnitude)? })
    }

    /// Folds a run's spread into its class's.
    pub fn learn(&self, class: u64, seen: Spread) {
        let (slot, tag) = slot_and_tag(class);
        let update = |table: &[AtomicU64], x: f64| {
            let log = x.ln().max(SMALLEST_LOG);
            let old = unpack(table[slot].load(Relaxed), tag);
            let new = old.map_or(log, |o| o + LEARNING_RATE * (log - o));
            table[slot].store(pack(tag, new), Relaxed);
        };
        update(&self.variance, seen.variance_per_unit);
        update(&self.magnitude, seen.magnitude);
    }
}

fn slot_and_tag(class: u64) -> (usize, u32) {
    // The tag is never 0, so an empty slot matches no class.
    ((class as usize) % SLOTS, ((class >> 32) as u32) | 1)
}

fn pack(tag: u32, x: f64) -> u64 {
    (u64::from(tag) << 32) | u64::from((x as f32).to_bits())
}

fn unpack(word: u64, tag: u32) -> Option<f64> {
    ((word >> 32) as u32 == tag).then(|| f64::from(f32::from_bits(word as u32)))
}

/// How an error-targeted job runs, decided when it is submitted.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The estimate the target is about.
    pub estimate: String,
    /// The standard error to reach.
    pub tolerance: Tolerance,
    /// The job's parameter class (`class_of`).
    pub class: u64,
    /// Units of the first round.
    pub first_round: u64,
    /// The first round is sized from a learnt spread (else it is a pilot).
    pub learnt: bool,
    /// Units to ask the lane for: room for the first round and a margin.
    pub requested: u64,
}

/// The plan for a job on kernel `kernel` targeting `target`, whose unit count (`ceiling`, the
/// most it may use) is `units.param` of `params`; or what stops it.
pub fn plan(
    target: &ErrorTarget,
    kernel: &str,
    units: Option<&Units>,
    params: &Params,
    ceiling: u64,
    learnt: &Learnt,
) -> Result<Plan, String> {
    let units = units.ok_or_else(|| {
        format!("kernel {kernel} has no unit count (no [units] in its manifest): a target standard error needs a Monte Carlo kernel")
    })?;
    let estimate = target.estimate.clone().or_else(|| units.estimate.clone()).ok_or_else(|| {
        format!(
            "kernel {kernel}'s manifest names no default estimate ([units] estimate): name one in `target.estimate`"
        )
    })?;
    let class = class_of(kernel, params, &units.param, &estimate);
    let block = units.block.max(1);
    let pilot = (PILOT_BLOCKS * block).min(ceiling);
    let sized = learnt.get(class).and_then(|s| {
        let first = s.units_for(target.tolerance, FIRST_ROUND_MARGIN)?;
        let requested = s.units_for(target.tolerance, GRANT_MARGIN)?;
        Some((whole_blocks(first, block, ceiling), whole_blocks(requested, block, ceiling)))
    });
    Ok(match sized {
        Some((first_round, requested)) => {
            Plan { estimate, tolerance: target.tolerance, class, first_round, learnt: true, requested }
        }
        // Never seen: a pilot first, and the job may use up to its ceiling.
        None => {
            Plan { estimate, tolerance: target.tolerance, class, first_round: pilot, learnt: false, requested: ceiling }
        }
    })
}

/// A job's parameter class: everything but its unit count and seed, so jobs that differ only
/// in those share what was learnt. The estimate a target is about is part of the class.
pub fn class_of(kernel: &str, params: &Params, unit_param: &str, estimate: &str) -> u64 {
    // SipHash with fixed keys: a class is the same number in every process.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (kernel, estimate).hash(&mut h);
    let mut named: Vec<&(String, Value)> = params.0.iter().filter(|(n, _)| n != unit_param).collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in named {
        name.hash(&mut h);
        match value {
            Value::Number(x) => x.to_bits().hash(&mut h),
            Value::Array(xs) => xs.iter().for_each(|x| x.to_bits().hash(&mut h)),
            Value::Text(t) => t.hash(&mut h),
        }
    }
    h.finish()
}

/// `n` rounded up to whole blocks, within `[block, ceiling]` (a ceiling below one block
/// wins).
pub fn whole_blocks(n: f64, block: u64, ceiling: u64) -> u64 {
    let block = block.max(1);
    let blocks = (n / block as f64).ceil();
    if blocks.is_nan() || blocks < 1.0 {
        return block.min(ceiling);
    }
    let units = if blocks * block as f64 >= ceiling as f64 { ceiling } else { blocks as u64 * block };
    units.clamp(block.min(ceiling), ceiling)
}

/// The units the run should reach next, after `done` units (in `round` rounds) gave a
/// standard error `std_error` at an estimate `value`; `None` when it is done: the target is
/// met, or the grant `cap` is spent.
pub fn next_round(
    tolerance: Tolerance,
    done: u64,
    value: f64,
    std_error: f64,
    round: u32,
    block: u64,
    cap: u64,
) -> Option<u64> {
    if std_error <= tolerance.std_error_at(value) || done >= cap {
        return None;
    }
    if round + 1 >= MAX_ROUNDS {
        return Some(cap);
    }
    let needed = Spread::observed(value, std_error, done)
        .and_then(|s| s.units_for(tolerance, NEXT_ROUND_MARGIN))
        .unwrap_or(f64::INFINITY);
    Some(whole_blocks(needed, block, cap).max((done + block).min(cap)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learnt_spread_comes_back_for_its_class_only() {
        let learnt = Learnt::default();
        let params = Params::new().with("spot", Value::Number(100.0)).with("paths", Value::Number(1e5));
        let class = class_of("mc-option", &params, "paths", "price");
        assert_eq!(learnt.get(class), None);
        let close = |a: f64, b: f64| (a / b - 1.0).abs() < 1e-5;
        learnt.learn(class, Spread { variance_per_unit: 400.0, magnitude: 10.0 });
        let seen = learnt.get(class).unwrap();
        assert!(close(seen.variance_per_unit, 400.0) && close(seen.magnitude, 10.0), "{seen:?}");
        // Averaged in logs: 400 * 1.25^0.3.
        learnt.learn(class, Spread { variance_per_unit: 500.0, magnitude: 10.0 });
        assert!(close(learnt.get(class).unwrap().variance_per_unit, 427.694), "{:?}", learnt.get(class));
        // Far below f32's range, and zero, stay numbers.
        learnt.learn(class, Spread { variance_per_unit: 1e-40, magnitude: 0.0 });
        let tiny = learnt.get(class).unwrap();
        assert!(tiny.variance_per_unit > 0.0 && tiny.magnitude > 0.0 && tiny.magnitude < 1.0, "{tiny:?}");
        // The unit count is not part of the class; every other parameter and the estimate are.
        let more = Params::new().with("paths", Value::Number(9.0)).with("spot", Value::Number(100.0));
        assert_eq!(class_of("mc-option", &more, "paths", "price"), class);
        let other = Params::new().with("spot", Value::Number(101.0));
        assert_ne!(class_of("mc-option", &other, "paths", "price"), class);
        assert_ne!(class_of("mc-option", &params, "paths", "delta"), class);
        assert_ne!(class_of("basket-option", &params, "paths", "price"), class);
        // A class that shares the slot but not the tag is not confused with it.
        let clash = (0..u64::MAX)
            .map(|i| i * SLOTS as u64 + class % SLOTS as u64)
            .find(|c| slot_and_tag(*c).1 != slot_and_tag(class).1)
            .unwrap();
        assert_eq!(learnt.get(clash), None);
    }

    #[test]
    fn units_follow_the_inverse_square_of_the_target() {
        let s = Spread { variance_per_unit: 400.0, magnitude: 8.0 };
        let units = |t| s.units_for(t, 1.0).unwrap().round();
        assert_eq!(units(Tolerance::Absolute(0.1)), 40_000.0);
        assert_eq!(units(Tolerance::Absolute(0.05)), 160_000.0);
        // 1% of 8 is 0.08.
        assert_eq!(units(Tolerance::Relative(0.01)), 62_500.0);
        assert_eq!(Spread { magnitude: 0.0, ..s }.units_for(Tolerance::Relative(0.01), 1.0), None);
        assert_eq!(whole_blocks(40_000.0, 1024, 1_000_000), 40_960);
        assert_eq!(whole_blocks(2e9, 1024, 1_000_000), 1_000_000);
        assert_eq!(whole_blocks(f64::NAN, 1024, 1_000_000), 1024);
        assert_eq!(whole_blocks(10.0, 1024, 500), 500);
    }

    #[test]
    fn rounds_continue_until_the_target_or_the_grant() {
        let t = Tolerance::Absolute(0.01);
        // Met: done.
        assert_eq!(next_round(t, 4096, 5.0, 0.009, 0, 1024, 1 << 20), None);
        // 4x the error: 16x the units, and the margin.
        let next = next_round(t, 4096, 5.0, 0.04, 0, 1024, 1 << 20).unwrap();
        assert!((20 * 4096..=21 * 4096).contains(&next), "{next}");
        // Just over the target: the margin, in whole blocks; never past the grant.
        assert_eq!(next_round(t, 4096, 5.0, 0.010_001, 0, 1024, 1 << 20), Some(6144));
        assert_eq!(next_round(t, 4096, 5.0, 1.0, 0, 1024, 8192), Some(8192));
        assert_eq!(next_round(t, 8192, 5.0, 1.0, 1, 1024, 8192), None);
        // The last round takes the rest of the grant.
        assert_eq!(next_round(t, 4096, 5.0, 0.0101, MAX_ROUNDS - 1, 1024, 1 << 20), Some(1 << 20));
    }
}
