//! `mc-option`: European, arithmetic Asian (geometric control variate) and discretely monitored
//! knock-out barrier options under GBM. Contracts on one underlying share simulated paths. A
//! European option far out of the money is priced by importance sampling (`sampling`); every
//! price says how many paths contributed to it, and one that too few paths reached gets an error
//! bar from a bound, not from a sample too small to show its spread.

pub mod closed_form;
mod grid;
mod quasi;
mod sampling;
mod slots;
mod terminal;

pub use quasi::{MAX_QMC_STEPS, RANDOMISATIONS};
pub use sampling::{AUTO_ITM_PROBABILITY, Method, Sampling};

use crate::chunk::{self, BLOCK, Partial};
use crate::error::{KernelError, Result, finite, non_negative, positive};
use crate::moments::{BlockSums, Comoments, fold};
use crate::output::{Estimate, Output};
use crate::rng::{Normals, block_rng};
use crate::select::{keep_if_greater, positive_part};
use crate::vmath::Simd;
use std::ops::Range;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OptionType {
    Call,
    Put,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BarrierKind {
    DownOut,
    UpOut,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Style {
    European,
    /// Arithmetic average over the `steps` fixings `i*T/steps`.
    Asian,
    /// Knocked out if the underlying touches `level` at any of the `steps` monitoring dates.
    Barrier {
        level: f64,
        kind: BarrierKind,
    },
}

/// The underlying and the time grid, shared by every contract of a book.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Market {
    pub spot: f64,
    pub rate: f64,
    pub dividend: f64,
    pub vol: f64,
    /// Years.
    pub maturity: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Contract {
    pub style: Style,
    pub kind: OptionType,
    pub strike: f64,
}

/// How paths are simulated: European contracts need only the terminal value (one draw per path),
/// path-dependent ones the full fixing/monitoring grid (`steps` draws per path).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PathKind {
    Terminal,
    Grid,
}

impl Style {
    pub fn path_kind(&self) -> PathKind {
        match self {
            Style::European => PathKind::Terminal,
            Style::Asian | Style::Barrier { .. } => PathKind::Grid,
        }
    }
}

/// Validated contracts that share one set of simulated paths.
#[derive(Clone, Debug)]
pub struct OptionBook {
    market: Market,
    steps: u32,
    path_kind: PathKind,
    contracts: Vec<Contract>,
    sampling: Sampling,
}

/// Most fixings or monitoring dates a path may have.
pub const MAX_STEPS: u32 = 10_000;

impl OptionBook {
    pub fn new(market: Market, steps: u32, contracts: Vec<Contract>) -> Result<Self> {
        positive("spot", market.spot)?;
        finite("rate", market.rate)?;
        finite("dividend", market.dividend)?;
        non_negative("vol", market.vol)?;
        positive("maturity", market.maturity)?;
        if steps == 0 || steps > MAX_STEPS {
            return Err(KernelError::invalid("steps", format!("must be in 1..={MAX_STEPS}, got {steps}")));
        }
        let first = contracts.first().ok_or_else(|| KernelError::invalid("contracts", "a book needs a contract"))?;
        let path_kind = first.style.path_kind();
        for c in &contracts {
            positive("strike", c.strike)?;
            if c.style.path_kind() != path_kind {
                return Err(KernelError::invalid("style", "European and path-dependent contracts cannot share paths"));
            }
            if let Style::Barrier { level, kind } = c.style {
                positive("barrier", level)?;
                let alive = match kind {
                    BarrierKind::DownOut => market.spot > level,
                    BarrierKind::UpOut => market.spot < level,
                };
                if !alive {
                    return Err(KernelError::invalid(
                        "barrier",
                        format!("{level} is already breached at spot {} for a {kind:?} barrier", market.spot),
                    ));
                }
            }
        }
        Ok(OptionBook { market, steps, path_kind, contracts, sampling: Sampling::Plain })
    }

    /// The book with its paths drawn as `method` asks (see `Method`).
    pub fn with_method(self, method: Method) -> Result<Self> {
        let sampling = sampling::choose(method, &self.market, self.path_kind, self.steps, &self.contracts)?;
        Ok(OptionBook { sampling, ..self })
    }

    /// The book with its paths drawn as `sampling` says: how a combined book keeps its
    /// members' sampling.
    pub fn with_sampling(self, sampling: Sampling) -> Self {
        OptionBook { sampling, ..self }
    }

    pub fn sampling(&self) -> Sampling {
        self.sampling
    }

    /// One contract on its own.
    pub fn single(market: Market, steps: u32, contract: Contract) -> Result<Self> {
        Self::new(market, steps, vec![contract])
    }

    pub fn market(&self) -> &Market {
        &self.market
    }

    pub fn steps(&self) -> u32 {
        self.steps
    }

    pub fn contracts(&self) -> &[Contract] {
        &self.contracts
    }

    /// Where a European path ends from its normal.
    fn terminal(&self) -> terminal::Terminal {
        let m = &self.market;
        let t = m.maturity;
        terminal::Terminal {
            forward: m.spot * libm::exp((m.rate - m.dividend - 0.5 * m.vol * m.vol) * t),
            sd: m.vol * t.sqrt(),
            inv_spot: 1.0 / m.spot,
        }
    }

    fn discount(&self) -> f64 {
        libm::exp(-self.market.rate * self.market.maturity)
    }
}

/// Per block, per contract: moments of (discounted-later payoff, second quantity), where the
/// second quantity is the pathwise delta (European), the geometric-average payoff (Asian), or
/// unused (barrier); and how many of the block's paths paid anything.
pub type OptionPartial = Partial<Vec<ContractBlock>>;

/// One contract's sums over one block.
#[derive(Clone, Debug, PartialEq)]
pub struct ContractBlock {
    pub moments: Comoments<2>,
    /// Paths with a non-zero payoff.
    pub contributing: u64,
    /// Under QMC, the sums of the two quantities over each randomisation's paths (see
    /// `quasi`); empty otherwise.
    pub by_randomisation: Vec<[f64; 2]>,
}

/// A block's running sums for one contract.
#[derive(Clone, Debug, Default)]
struct Sums {
    moments: BlockSums<2>,
    contributing: u64,
    by_randomisation: Vec<[f64; 2]>,
}

impl Sums {
    fn finish(&self) -> ContractBlock {
        ContractBlock {
            moments: self.moments.finish(),
            contributing: self.contributing,
            by_randomisation: self.by_randomisation.clone(),
        }
    }
}

/// Simulates the paths `units` (block-aligned start) for every contract of the book, in
/// vector lanes as wide as this CPU runs best.
pub fn simulate(book: &OptionBook, seed: u64, units: Range<u64>) -> Result<OptionPartial> {
    simulate_with(book, seed, units, Simd::best())
}

/// [`simulate`] at a given width and instruction set; the results are the same bits whatever
/// `simd` is, only the time differs.
pub fn simulate_with(book: &OptionBook, seed: u64, units: Range<u64>, simd: Simd) -> Result<OptionPartial> {
    let mut blocks = Vec::new();
    // A tilted grid shifts step k's normal by `shift * c_k / |c|` (see `sampling`).
    let grid_shifts = match (book.path_kind, book.sampling) {
        (PathKind::Grid, Sampling::Tilted { shift }) => {
            let directions = sampling::grid_directions(book.contracts[0].style, book.steps);
            let mu: Vec<f64> = directions.iter().map(|d| shift * d).collect();
            Some((mu, 0.5 * shift * shift))
        }
        _ => None,
    };
    let grid_tilt = grid_shifts.as_ref().map(|(mu, half_sq)| (mu.as_slice(), *half_sq));
    let quasi = match book.sampling {
        Sampling::Quasi => Some(quasi::QuasiPaths::new(book, seed)?),
        _ => None,
    };
    let (mut scratch, mut grid_scratch) = (None, None);
    for (block, n) in chunk::blocks(&units, BLOCK)? {
        let mut normals = Normals::new(block_rng(seed, block));
        let mut sums = vec![Sums::default(); book.contracts.len()];
        match (book.path_kind, book.sampling) {
            (_, Sampling::Quasi) => {
                let q = quasi.as_ref().expect("built above");
                quasi::quasi_block(book, q, block * BLOCK, n, &mut sums)
            }
            (PathKind::Terminal, Sampling::Plain) => {
                let scratch = scratch.get_or_insert_with(terminal::Scratch::new);
                terminal::terminal_block(book.terminal(), &book.contracts, simd, scratch, &mut normals, n, &mut sums)
            }
            (PathKind::Terminal, Sampling::Tilted { shift }) => {
                tilted_terminal_block(book, shift, &mut normals, n, &mut sums)
            }
            (PathKind::Grid, _) => {
                let scratch = grid_scratch.get_or_insert_with(grid::Scratch::new);
                grid::grid_block(book, grid_tilt, simd, scratch, &mut normals, n, &mut sums)
            }
        }
        blocks.push(sums.iter().map(Sums::finish).collect());
    }
    Ok(Partial { units, blocks })
}

/// European paths under importance sampling: the terminal normal is `shift + e`, drawn in
/// antithetic pairs about the shift (`shift + e` and `shift - e`), and each path's payoff and
/// delta are weighted by its likelihood ratio `exp(-shift z + shift^2 / 2)`, so their means are
/// unbiased for the plain ones. A pair costs two `exp`s: its prices, and its weights, are a
/// product and a quotient of one each.
fn tilted_terminal_block<R: rand_core::Rng>(
    book: &OptionBook,
    shift: f64,
    normals: &mut Normals<R>,
    n: u64,
    sums: &mut [Sums],
) {
    let m = &book.market;
    let t = m.maturity;
    let sd = m.vol * t.sqrt();
    // The price at z = shift, and the weight there; the pair's other weight is `w_inv / w`.
    let centre = m.spot * libm::exp((m.rate - m.dividend - 0.5 * m.vol * m.vol) * t + sd * shift);
    let half_shift_sq = 0.5 * shift * shift;
    let w_inv = libm::exp(-2.0 * half_shift_sq);
    let inv_spot = 1.0 / m.spot;
    let weighted = |c: &Contract, st: f64, w: f64, sum: &mut Sums| {
        let x = european_payoff(st, c.strike, c.kind == OptionType::Call, inv_spot);
        sum.contributing += u64::from(x[0] > 0.0);
        [w * x[0], w * x[1]]
    };
    for _ in 0..n / 2 {
        let e = normals.normal();
        let growth = libm::exp(sd * e);
        let w_up = libm::exp(-half_shift_sq - shift * e);
        let (up, down, w_down) = (centre * growth, centre / growth, w_inv / w_up);
        for (c, sum) in book.contracts.iter().zip(sums.iter_mut()) {
            let (a, b) = (weighted(c, up, w_up, sum), weighted(c, down, w_down, sum));
            sum.moments.add([0.5 * (a[0] + b[0]), 0.5 * (a[1] + b[1])]);
        }
    }
    if n % 2 == 1 {
        let e = normals.normal();
        let (st, w) = (centre * libm::exp(sd * e), libm::exp(-half_shift_sq - shift * e));
        for (c, sum) in book.contracts.iter().zip(sums.iter_mut()) {
            let x = weighted(c, st, w, sum);
            sum.moments.add(x);
        }
    }
}

/// Payoff and pathwise delta (both undiscounted), branch-free, in Wasm too (`select`): whether
/// a path ends in the money is a coin flip the branch predictor cannot learn.
#[inline(always)]
fn european_payoff(st: f64, k: f64, call: bool, inv_spot: f64) -> [f64; 2] {
    if call {
        [positive_part(st - k), keep_if_greater(st, k, st * inv_spot)]
    } else {
        [positive_part(k - st), -keep_if_greater(k, st, st * inv_spot)]
    }
}

/// Each contract's log barrier level (0 for contracts without one).
fn log_levels(book: &OptionBook) -> Vec<f64> {
    book.contracts
        .iter()
        .map(|c| match c.style {
            Style::Barrier { level, .. } => libm::log(level),
            _ => 0.0,
        })
        .collect()
}

/// A grid path's sample for contract `c`: (payoff, geometric-average payoff) for an Asian
/// option, (payoff, 0) otherwise; from the path's terminal price, its lowest and highest log
/// price, its mean price and its mean log price.
#[inline(always)]
fn grid_sample(c: &Contract, log_level: f64, st: f64, lo: f64, hi: f64, mean_s: f64, mean_x: f64) -> [f64; 2] {
    let vanilla = |s: f64| match c.kind {
        OptionType::Call => positive_part(s - c.strike),
        OptionType::Put => positive_part(c.strike - s),
    };
    match c.style {
        Style::Asian => [vanilla(mean_s), vanilla(libm::exp(mean_x))],
        Style::Barrier { kind, .. } => {
            let out = match kind {
                BarrierKind::DownOut => lo <= log_level,
                BarrierKind::UpOut => hi >= log_level,
            };
            [if out { 0.0 } else { vanilla(st) }, 0.0]
        }
        Style::European => [vanilla(st), 0.0],
    }
}

/// Contract `i`'s estimates from the moments of its paths (plain or importance-weighted): the
/// mean and its standard error, an Asian price through its geometric control variate.
fn moment_estimates(
    book: &OptionBook,
    c: &Contract,
    partial: &OptionPartial,
    i: usize,
) -> Vec<(&'static str, Estimate)> {
    let (df, m) = (book.discount(), &book.market);
    let per_block: Vec<Comoments<2>> = partial.blocks.iter().map(|b| b[i].moments).collect();
    let mo = fold(&per_block);
    let mean = |k: usize| Estimate::new(df * mo.mean[k], df * mo.std_error(k));
    match c.style {
        Style::European => vec![("price", mean(0)), ("delta", mean(1))],
        Style::Asian => {
            let geo = closed_form::geometric_asian(c.kind, c.strike, m, book.steps) / df;
            let (var_a, var_g, cov) = (mo.variance(0), mo.variance(1), mo.covariance(0, 1));
            let beta = if var_g > 0.0 { cov / var_g } else { 0.0 };
            let residual = if var_g > 0.0 { (var_a - cov * cov / var_g).max(0.0) } else { var_a };
            let price = mo.mean[0] - beta * (mo.mean[1] - geo);
            vec![
                ("price", Estimate::new(df * price, df * (residual / mo.n).sqrt())),
                ("price_plain", mean(0)),
                ("geometric_price", mean(1)),
            ]
        }
        Style::Barrier { .. } => vec![("price", mean(0))],
    }
}

/// Prices every contract of the book from its simulated paths.
pub fn finish(book: &OptionBook, partial: &OptionPartial) -> Result<Vec<Output>> {
    if partial.is_empty() {
        return Err(KernelError::invalid("paths", "must be at least 1"));
    }
    let m = &book.market;
    let mut outputs = Vec::with_capacity(book.contracts.len());
    for (i, c) in book.contracts.iter().enumerate() {
        let contributing: u64 = partial.blocks.iter().map(|b| b[i].contributing).sum();
        let mut estimates = match book.sampling {
            Sampling::Quasi => quasi::estimates(book, c, partial, i)?,
            Sampling::Plain | Sampling::Tilted { .. } => moment_estimates(book, c, partial, i),
        };
        if contributing < sampling::FEW_CONTRIBUTING {
            // Too few paths paid for their spread to show: the price's error bar becomes a bound
            // that holds whatever the sample (see `sampling::price_bound`).
            for (name, e) in estimates.iter_mut() {
                let bound = match *name {
                    "delta" => sampling::delta_bound(c, m),
                    _ => sampling::price_bound(c, m, book.steps),
                };
                e.std_error = Some(e.std_error.unwrap_or(0.0).max(e.value.abs()).max(bound));
            }
        }
        estimates.push(("contributing_paths", Estimate::exact(contributing as f64)));
        match book.sampling {
            Sampling::Tilted { shift } => estimates.push(("importance_shift", Estimate::exact(shift))),
            Sampling::Quasi => estimates.push(("qmc_randomisations", Estimate::exact(RANDOMISATIONS as f64))),
            Sampling::Plain => {}
        }
        if estimates.iter().any(|(_, e)| !e.value.is_finite()) {
            return Err(KernelError::NumericFailure(format!("non-finite price for contract {i}")));
        }
        outputs.push(Output { estimates, arrays: Vec::new(), units_done: partial.len() });
    }
    Ok(outputs)
}

/// Simulates `paths` paths in one call and prices the book.
pub fn run(book: &OptionBook, seed: u64, paths: u64) -> Result<Vec<Output>> {
    if paths == 0 {
        return Err(KernelError::invalid("paths", "must be at least 1"));
    }
    finish(book, &simulate(book, seed, 0..paths)?)
}
