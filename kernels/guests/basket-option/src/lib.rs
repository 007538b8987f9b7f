//! `basket-option`: a kernel that exists only as Wasm, the way a team ships one. A European
//! call or put on `sum_i weights_i S_i(T)` for correlated GBM assets, priced by Monte Carlo
//! with the `helix-math` building blocks, so it keeps the router's guarantees: block `i` draws
//! from stream `i` of the seed and blocks merge in order, so a degraded run is a prefix.

use helix_kernel_sdk::{Estimate, Job, Kernel, KernelError, Output, export_kernel};
use helix_math::chunk::{BLOCK, blocks};
use helix_math::linalg::{cholesky, lower_mul};
use helix_math::moments::{BlockSums, Comoments, fold};
use helix_math::rng::{Normals, block_rng};

struct Basket;

impl Kernel for Basket {
    fn run(job: Job) -> Result<Output, KernelError> {
        let p = &job.params;
        let spots = p.array("spots")?;
        let weights = p.array("weights")?;
        let vols = p.array("vols")?;
        let d = spots.len();
        if weights.len() != d || vols.len() != d {
            return Err(KernelError::InvalidInput {
                param: "weights",
                reason: format!("weights and vols need one value per spot ({d})"),
            });
        }
        let chol = cholesky(p.array("correlation")?, d, "correlation")?;
        let (rate, t, strike) = (p.number("rate")?, p.number("maturity")?, p.number("strike")?);
        let call = p.text_or("type", "call")? == "call";
        let drift: Vec<f64> = vols.iter().map(|v| (rate - 0.5 * v * v) * t).collect();
        let scale: Vec<f64> = vols.iter().map(|v| v * t.sqrt()).collect();
        let (mut z, mut y) = (vec![0.0; d], vec![0.0; d]);
        let units = match job.units {
            Some(u) => u,
            None => p.count("paths")?,
        };
        let mut per_block: Vec<Comoments<1>> = Vec::new();
        for (block, n) in blocks(&(0..units), BLOCK)? {
            let mut normals = Normals::new(block_rng(job.seed, block));
            let mut sums = BlockSums::<1>::new();
            for _ in 0..n {
                normals.fill(&mut z);
                lower_mul(&chol, &z, &mut y);
                let basket: f64 = (0..d).map(|i| weights[i] * spots[i] * libm::exp(drift[i] + scale[i] * y[i])).sum();
                let payoff = if call { (basket - strike).max(0.0) } else { (strike - basket).max(0.0) };
                sums.add([payoff]);
            }
            per_block.push(sums.finish());
        }
        let m = fold(&per_block);
        let df = libm::exp(-rate * t);
        Ok(Output {
            estimates: vec![("price", Estimate::new(df * m.mean[0], df * m.std_error(0)))],
            arrays: Vec::new(),
            units_done: units,
        })
    }
}

export_kernel!(Basket);
