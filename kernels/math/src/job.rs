//! A job in generic form, the interface the router and the Wasm guests share: a kernel name and
//! named parameters in, a prepared computation that runs any block-aligned range of its units
//! and finishes into named estimates.

use crate::chunk::{BLOCK, Partial};
use crate::classic;
use crate::error::{KernelError, Result};
use crate::ewma::{self, EwmaPartial, ROWS_PER_BLOCK, ReturnWindow};
use crate::option::{self, BarrierKind, Contract, Market, Method, OptionBook, OptionPartial, OptionType, Style};
use crate::output::{Estimate, Output};
use crate::params::{Params, whole};
use crate::particle::{self, FilterPartial, StateSpaceModel};
use crate::var::{self, Portfolio, VarBook, VarMode, VarPartial, VarQuery};
use std::ops::Range;

/// The bundled kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelKind {
    McOption,
    McVar,
    ParticleFilter,
    EwmaCov,
    HashMix,
    PrimeCount,
}

impl KernelKind {
    pub const ALL: [KernelKind; 6] = [
        KernelKind::McOption,
        KernelKind::McVar,
        KernelKind::ParticleFilter,
        KernelKind::EwmaCov,
        KernelKind::HashMix,
        KernelKind::PrimeCount,
    ];

    pub fn name(self) -> &'static str {
        match self {
            KernelKind::McOption => "mc-option",
            KernelKind::McVar => "mc-var",
            KernelKind::ParticleFilter => "particle-filter",
            KernelKind::EwmaCov => "ewma-cov",
            KernelKind::HashMix => "hashmix",
            KernelKind::PrimeCount => "primecount",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The parameter that sets the work size, if the kernel has one.
    pub fn unit_param(self) -> Option<&'static str> {
        match self {
            KernelKind::McOption | KernelKind::McVar => Some("paths"),
            KernelKind::ParticleFilter => Some("particles"),
            KernelKind::EwmaCov => Some("rows"),
            KernelKind::HashMix | KernelKind::PrimeCount => None,
        }
    }
}

/// Default work sizes when a job does not name one.
pub const DEFAULT_PATHS: u64 = 100_000;
pub const DEFAULT_PARTICLES: u64 = 4096;
/// Most units one job may ask for.
pub const MAX_UNITS: u64 = 100_000_000;

/// A validated computation, ready to run any range of its units.
#[derive(Clone, Debug)]
pub enum Prepared {
    Option(OptionBook),
    Var(VarBook),
    Particle(StateSpaceModel),
    Ewma(ReturnWindow),
    HashMix { inputs: Vec<u64>, compute_cost: u64 },
    PrimeCount { compute_cost: u64 },
}

/// The result of running a range of units.
#[derive(Clone, Debug, PartialEq)]
pub enum Chunk {
    Option(OptionPartial),
    Var(VarPartial),
    Particle(FilterPartial),
    Ewma(EwmaPartial),
    /// Kernels with a single unit answer at once.
    Done(Output),
}

/// A parsed job: what to compute and how many units it asks for.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub prepared: Prepared,
    pub units: u64,
}

impl Prepared {
    /// Validates `params` for `kind` and prepares the computation. Takes the parameters by
    /// value and moves their arrays into the kernel's inputs: a Wasm guest (whose memory is
    /// fresh pages past its first 128 KiB) otherwise copied a large window or correlation
    /// matrix once more.
    pub fn parse(kind: KernelKind, mut p: Params) -> Result<Parsed> {
        let (prepared, units) = match kind {
            KernelKind::McOption => parse_option(&p)?,
            KernelKind::McVar => parse_var(&mut p)?,
            KernelKind::ParticleFilter => {
                let model = StateSpaceModel {
                    a: p.number("a")?,
                    q: p.number("q")?,
                    r: p.number("r")?,
                    observations: p.take_array("observations")?,
                };
                model.validate()?;
                (Prepared::Particle(model), p.count_or("particles", DEFAULT_PARTICLES)?)
            }
            KernelKind::EwmaCov => {
                let w = ReturnWindow {
                    returns: p.take_array("returns")?,
                    assets: p.count("assets")? as usize,
                    lambda: p.number_or("lambda", 0.94)?,
                };
                w.validate()?;
                let rows = p.count_or("rows", w.rows())?;
                if rows > w.rows() {
                    return Err(KernelError::invalid("rows", format!("window has only {} rows", w.rows())));
                }
                (Prepared::Ewma(w), rows)
            }
            KernelKind::HashMix => {
                let inputs = p.array("inputs")?.iter().map(|&x| whole("inputs", x)).collect::<Result<Vec<u64>>>()?;
                let compute_cost = p.count("compute_cost")?;
                if compute_cost > classic::MAX_HASHMIX_COST {
                    return Err(KernelError::invalid(
                        "compute_cost",
                        format!("must be <= {}", classic::MAX_HASHMIX_COST),
                    ));
                }
                (Prepared::HashMix { inputs, compute_cost }, 1)
            }
            KernelKind::PrimeCount => (Prepared::PrimeCount { compute_cost: p.count("compute_cost")? }, 1),
        };
        if units == 0 || units > MAX_UNITS {
            let name = kind.unit_param().unwrap_or("units");
            return Err(KernelError::invalid(name, format!("must be in 1..={MAX_UNITS}, got {units}")));
        }
        Ok(Parsed { prepared, units })
    }

    pub fn kind(&self) -> KernelKind {
        match self {
            Prepared::Option(_) => KernelKind::McOption,
            Prepared::Var(_) => KernelKind::McVar,
            Prepared::Particle(_) => KernelKind::ParticleFilter,
            Prepared::Ewma(_) => KernelKind::EwmaCov,
            Prepared::HashMix { .. } => KernelKind::HashMix,
            Prepared::PrimeCount { .. } => KernelKind::PrimeCount,
        }
    }

    /// Units per block: chunk boundaries must fall on multiples of this.
    pub fn block(&self) -> u64 {
        match self {
            Prepared::Ewma(_) => ROWS_PER_BLOCK,
            Prepared::HashMix { .. } | Prepared::PrimeCount { .. } => 1,
            _ => BLOCK,
        }
    }

    /// Whether the units can run as several chunks (single-unit kernels cannot).
    pub fn splittable(&self) -> bool {
        !matches!(self, Prepared::HashMix { .. } | Prepared::PrimeCount { .. })
    }

    /// Runs units `range` (block-aligned start) with the job's seed.
    pub fn simulate(&self, seed: u64, range: Range<u64>) -> Result<Chunk> {
        Ok(match self {
            Prepared::Option(book) => Chunk::Option(option::simulate(book, seed, range)?),
            Prepared::Var(book) => Chunk::Var(var::simulate(book, seed, range)?),
            Prepared::Particle(m) => Chunk::Particle(particle::simulate(m, seed, range)?),
            Prepared::Ewma(w) => Chunk::Ewma(ewma::simulate(w, range)?),
            Prepared::HashMix { inputs, compute_cost } => {
                let h = classic::hashmix(inputs, *compute_cost)?;
                // The top 53 bits: an integer a double holds exactly.
                Chunk::Done(single("value", (h >> 11) as f64))
            }
            Prepared::PrimeCount { compute_cost } => {
                Chunk::Done(single("count", classic::primecount(*compute_cost) as f64))
            }
        })
    }

    /// Joins chunks (in any order) and finishes: one output per contract or query of the book.
    pub fn finish(&self, chunks: Vec<Chunk>) -> Result<Vec<Output>> {
        fn parts<B>(chunks: Vec<Chunk>, pick: impl Fn(Chunk) -> Option<Partial<B>>) -> Result<Partial<B>> {
            let parts = chunks.into_iter().map(|c| pick(c).ok_or_else(mismatch)).collect::<Result<Vec<_>>>()?;
            Partial::join(parts)
        }
        match self {
            Prepared::Option(book) => {
                option::finish(book, &parts(chunks, |c| if let Chunk::Option(p) = c { Some(p) } else { None })?)
            }
            Prepared::Var(book) => {
                var::finish(book, &parts(chunks, |c| if let Chunk::Var(p) = c { Some(p) } else { None })?)
            }
            Prepared::Particle(m) => Ok(vec![particle::finish(
                m,
                &parts(chunks, |c| if let Chunk::Particle(p) = c { Some(p) } else { None })?,
            )?]),
            Prepared::Ewma(w) => {
                Ok(vec![ewma::finish(w, &parts(chunks, |c| if let Chunk::Ewma(p) = c { Some(p) } else { None })?)?])
            }
            Prepared::HashMix { .. } | Prepared::PrimeCount { .. } => match chunks.into_iter().next() {
                Some(Chunk::Done(out)) => Ok(vec![out]),
                _ => Err(mismatch()),
            },
        }
    }

    /// Runs `units` in one call: the reference every other execution must equal.
    pub fn run(&self, seed: u64, units: u64) -> Result<Vec<Output>> {
        match self {
            // Adds its blocks as they come instead of keeping them: the same bits, less memory.
            Prepared::Ewma(w) => Ok(vec![ewma::run_parsed(w, units)?]),
            _ => self.finish(vec![self.simulate(seed, 0..units)?]),
        }
    }

    /// One computation answering every member on shared work, or `None` if they cannot share:
    /// options on the same underlying and grid share paths; VaR queries on the same portfolio
    /// share the Cholesky factor and normals. Output `i` answers member `i`, bit-identical to
    /// running that member alone with the same seed and units.
    pub fn combine(members: &[&Prepared]) -> Option<Prepared> {
        match members.first()? {
            Prepared::Option(first) => {
                let mut contracts = Vec::with_capacity(members.len());
                for m in members {
                    match m {
                        Prepared::Option(b)
                            if b.market() == first.market()
                                && b.steps() == first.steps()
                                && b.sampling() == first.sampling() =>
                        {
                            contracts.extend_from_slice(b.contracts())
                        }
                        _ => return None,
                    }
                }
                let book = OptionBook::new(*first.market(), first.steps(), contracts).ok()?;
                Some(Prepared::Option(book.with_sampling(first.sampling())))
            }
            Prepared::Var(first) => {
                let mut queries = Vec::with_capacity(members.len());
                for m in members {
                    match m {
                        Prepared::Var(b) if b.portfolio() == first.portfolio() && b.sampling() == first.sampling() => {
                            queries.extend_from_slice(b.queries())
                        }
                        _ => return None,
                    }
                }
                let book = VarBook::new(first.portfolio().clone(), queries).ok()?;
                Some(Prepared::Var(book.with_sampling(first.sampling().clone())))
            }
            _ => None,
        }
    }

    /// How many outputs this computation answers (members of a combined book).
    pub fn outputs(&self) -> usize {
        match self {
            Prepared::Option(b) => b.contracts().len(),
            Prepared::Var(b) => b.queries().len(),
            _ => 1,
        }
    }
}

fn mismatch() -> KernelError {
    KernelError::NumericFailure("chunk results of another kernel were passed to finish".into())
}

fn single(name: &'static str, value: f64) -> Output {
    Output { estimates: vec![(name, Estimate::exact(value))], arrays: Vec::new(), units_done: 1 }
}

fn parse_option(p: &Params) -> Result<(Prepared, u64)> {
    let market = Market {
        spot: p.number("spot")?,
        rate: p.number_or("rate", 0.0)?,
        dividend: p.number_or("dividend", 0.0)?,
        vol: p.number("vol")?,
        maturity: p.number("maturity")?,
    };
    let kind = p.choice("type", "call", &[("call", OptionType::Call), ("put", OptionType::Put)])?;
    #[derive(Clone, Copy)]
    enum S {
        European,
        Asian,
        Barrier,
    }
    let style = match p.choice(
        "style",
        "european",
        &[("european", S::European), ("asian", S::Asian), ("barrier", S::Barrier)],
    )? {
        S::European => Style::European,
        S::Asian => Style::Asian,
        S::Barrier => Style::Barrier {
            level: p.number("barrier")?,
            kind: p.choice(
                "barrier_kind",
                "down-out",
                &[("down-out", BarrierKind::DownOut), ("up-out", BarrierKind::UpOut)],
            )?,
        },
    };
    let steps = p.count_or("steps", 1)?;
    let steps = u32::try_from(steps).map_err(|_| KernelError::invalid("steps", "is too large"))?;
    let method = p.choice(
        "method",
        "auto",
        &[("auto", Method::Auto), ("plain", Method::Plain), ("importance", Method::Importance), ("qmc", Method::Quasi)],
    )?;
    let book = OptionBook::single(market, steps, Contract { style, kind, strike: p.number("strike")? })?;
    Ok((Prepared::Option(book.with_method(method)?), p.count_or("paths", DEFAULT_PATHS)?))
}

fn parse_var(p: &mut Params) -> Result<(Prepared, u64)> {
    let positions = p.take_array("positions")?;
    let d = positions.len();
    let drifts = match p.get("drifts") {
        Some(_) => p.take_array("drifts")?,
        None => vec![0.0; d],
    };
    let portfolio =
        Portfolio { positions, drifts, vols: p.take_array("vols")?, correlation: p.take_array("correlation")? };
    let query = VarQuery {
        horizon: p.number_or("horizon", 1.0 / 252.0)?,
        confidence: p.number_or("confidence", 0.99)?,
        mode: p.choice("mode", "full", &[("full", VarMode::Full), ("linear", VarMode::Linear)])?,
    };
    let method = p.choice(
        "method",
        "auto",
        &[("auto", Method::Auto), ("plain", Method::Plain), ("importance", Method::Importance)],
    )?;
    let book = VarBook::single(portfolio, query)?.with_method(method)?;
    Ok((Prepared::Var(book), p.count_or("paths", DEFAULT_PATHS)?))
}
