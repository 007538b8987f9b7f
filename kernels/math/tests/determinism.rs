//! Bit-for-bit determinism: one chunk or many, in any order, gives the same answer, and a run
//! with fewer units is an exact prefix of the full run.

mod common;

use common::*;
use helix_math::chunk::{BLOCK, Partial, split};
use helix_math::ewma::{self, ROWS_PER_BLOCK, ReturnWindow};
use helix_math::option::{self, BarrierKind, Contract, Method, OptionBook, OptionType, Style};
use helix_math::particle::{self, StateSpaceModel};
use helix_math::var::{self, VarBook, VarMode, VarQuery};
use helix_math::vmath::{Isa, Simd, Width};
use std::ops::Range;

/// Runs `units` as `chunks` pieces, simulated in reverse order, then joined.
fn chunked<B>(units: u64, chunks: u64, block: u64, sim: impl Fn(Range<u64>) -> Partial<B>) -> Partial<B> {
    let mut parts: Vec<Partial<B>> = split(units, chunks, block).into_iter().rev().map(sim).collect();
    parts.reverse();
    Partial::join(parts).unwrap()
}

fn books() -> Vec<OptionBook> {
    let c = &cases("european")[2];
    let m = market(c);
    let k = f(c, "strike");
    let one = |style, kind| OptionBook::single(m, 24, Contract { style, kind, strike: k }).unwrap();
    vec![
        one(Style::European, OptionType::Call),
        one(Style::European, OptionType::Put),
        one(Style::Asian, OptionType::Call),
        one(Style::Barrier { level: 80.0, kind: BarrierKind::DownOut }, OptionType::Call),
        one(Style::Barrier { level: 120.0, kind: BarrierKind::UpOut }, OptionType::Put),
        // Importance sampling: the same blocks, drawn about a shift and weighted.
        one(Style::European, OptionType::Call).with_method(Method::Importance).unwrap(),
        one(Style::European, OptionType::Put).with_method(Method::Importance).unwrap(),
        one(Style::Asian, OptionType::Call).with_method(Method::Importance).unwrap(),
        one(Style::Barrier { level: 80.0, kind: BarrierKind::DownOut }, OptionType::Call)
            .with_method(Method::Importance)
            .unwrap(),
        // Randomised QMC: each block holds its own rounds of scrambled Sobol points.
        one(Style::European, OptionType::Call).with_method(Method::Quasi).unwrap(),
        one(Style::Asian, OptionType::Call).with_method(Method::Quasi).unwrap(),
        one(Style::Barrier { level: 80.0, kind: BarrierKind::DownOut }, OptionType::Call)
            .with_method(Method::Quasi)
            .unwrap(),
    ]
}

#[test]
fn option_estimates_do_not_depend_on_chunking() {
    let units = 10 * BLOCK + 333;
    for book in books() {
        let whole = option::run(&book, 99, units).unwrap();
        for chunks in [2, 3, 11] {
            let parts = chunked(units, chunks, BLOCK, |r| option::simulate(&book, 99, r).unwrap());
            assert_eq!(option::finish(&book, &parts).unwrap(), whole, "{chunks} chunks, {:?}", book.contracts());
        }
    }
}

/// A degraded run's blocks are the full run's blocks, and its estimate is what the full run's
/// first units give when cut there.
#[test]
fn option_degraded_run_is_a_prefix_of_the_full_run() {
    for book in books() {
        let full = option::simulate(&book, 5, 0..20 * BLOCK).unwrap();
        for units in [BLOCK, 7 * BLOCK, 7 * BLOCK + 100] {
            let prefix = option::simulate(&book, 5, 0..units).unwrap();
            let whole_blocks = (units / BLOCK) as usize;
            assert_eq!(prefix.blocks[..whole_blocks], full.blocks[..whole_blocks]);
            // The short last block replays the start of the full run's block.
            let tail = option::simulate(&book, 5, whole_blocks as u64 * BLOCK..units).unwrap();
            assert_eq!(prefix.blocks[whole_blocks..], tail.blocks[..]);
        }
    }
}

/// The vector code gives the same bits at every width and under every instruction set this
/// CPU runs as one scalar lane does: over books of every style and method, several seeds, and
/// path counts that end a block on a partial row, an odd path or a short block.
#[test]
fn option_results_do_not_depend_on_vector_width_or_instruction_set() {
    let c = &cases("european")[2];
    let m = market(c);
    let mixed: Vec<Contract> = [70.0, 100.0, 135.0]
        .iter()
        .flat_map(|&k| {
            [OptionType::Call, OptionType::Put].map(|kind| Contract { style: Style::European, kind, strike: k })
        })
        .collect();
    let mut books = books();
    books.push(OptionBook::new(m, 1, mixed).unwrap());
    let scalar = Simd::new(Isa::Baseline, Width::One).unwrap();
    let every = Simd::all_available();
    assert!(every.len() >= 5, "at least the baseline's five widths");
    for book in &books {
        for seed in [0, 7, 2024, u64::MAX] {
            for units in [1, 2, 3, 31, 32, 33, BLOCK + 17, 3 * BLOCK] {
                let reference = format!("{:?}", option::simulate_with(book, seed, 0..units, scalar).unwrap());
                for &simd in &every {
                    let got = format!("{:?}", option::simulate_with(book, seed, 0..units, simd).unwrap());
                    assert!(got == reference, "{simd:?}, seed {seed}, {units} paths, {:?}", book.contracts());
                }
            }
        }
    }
}

/// Books differing in contracts but not in underlying share paths, so each contract's answer in
/// a book equals its answer alone: batching does not change results.
#[test]
fn options_priced_together_equal_options_priced_alone() {
    let c = &cases("european")[2];
    let m = market(c);
    let contracts: Vec<Contract> = [80.0, 100.0, 120.0]
        .iter()
        .flat_map(|&k| {
            [OptionType::Call, OptionType::Put].map(|kind| Contract { style: Style::Asian, kind, strike: k })
        })
        .collect();
    let together = option::run(&OptionBook::new(m, 12, contracts.clone()).unwrap(), 3, 5000).unwrap();
    for (c, t) in contracts.iter().zip(&together) {
        assert_eq!(&option::run(&OptionBook::single(m, 12, *c).unwrap(), 3, 5000).unwrap()[0], t);
    }
}

fn var_book(mode: VarMode) -> VarBook {
    let c = &cases("delta_normal_var_es")[0];
    VarBook::single(portfolio(c), VarQuery { horizon: 0.04, confidence: 0.99, mode }).unwrap()
}

/// As for options: every width and instruction set gives one scalar lane's losses and weights,
/// plain and importance-sampled, full and linear, one query or several.
#[test]
fn var_losses_do_not_depend_on_vector_width_or_instruction_set() {
    let c = &cases("delta_normal_var_es")[0];
    let deep = VarQuery { horizon: 0.04, confidence: 0.999, mode: VarMode::Full };
    let books = [
        var_book(VarMode::Full),
        var_book(VarMode::Linear),
        VarBook::single(portfolio(c), deep).unwrap().with_method(Method::Importance).unwrap(),
        VarBook::new(
            portfolio(c),
            vec![
                VarQuery { horizon: 0.04, confidence: 0.99, mode: VarMode::Full },
                VarQuery { horizon: 0.1, confidence: 0.95, mode: VarMode::Linear },
            ],
        )
        .unwrap(),
    ];
    let scalar = Simd::new(Isa::Baseline, Width::One).unwrap();
    for book in &books {
        for seed in [0, 8, u64::MAX] {
            for units in [1, 15, 16, 17, BLOCK + 33] {
                let reference = format!("{:?}", var::simulate_with(book, seed, 0..units, scalar).unwrap());
                for simd in Simd::all_available() {
                    let got = format!("{:?}", var::simulate_with(book, seed, 0..units, simd).unwrap());
                    assert!(got == reference, "{simd:?}, seed {seed}, {units} paths");
                }
            }
        }
    }
}

#[test]
fn var_estimates_do_not_depend_on_chunking_and_prefix_losses_match() {
    for mode in [VarMode::Full, VarMode::Linear] {
        let book = var_book(mode);
        let units = 9 * BLOCK + 17;
        let whole = var::simulate(&book, 8, 0..units).unwrap();
        for chunks in [2, 5, 10] {
            let parts = chunked(units, chunks, BLOCK, |r| var::simulate(&book, 8, r).unwrap());
            assert_eq!(var::finish(&book, &parts).unwrap(), var::finish(&book, &whole).unwrap());
        }
        let losses = |p: &var::VarPartial| p.blocks.iter().flat_map(|b| b.losses[0].clone()).collect::<Vec<f64>>();
        let full_losses = losses(&whole);
        for units in [1, 500, 3 * BLOCK + 1] {
            let prefix = var::simulate(&book, 8, 0..units).unwrap();
            assert_eq!(losses(&prefix)[..], full_losses[..units as usize], "{units} units");
        }
    }
}

#[test]
fn var_queries_on_one_portfolio_equal_the_queries_alone() {
    let c = &cases("delta_normal_var_es")[1];
    let queries = vec![
        VarQuery { horizon: 1.0 / 252.0, confidence: 0.99, mode: VarMode::Full },
        VarQuery { horizon: 1.0 / 252.0, confidence: 0.975, mode: VarMode::Full },
        VarQuery { horizon: 10.0 / 252.0, confidence: 0.99, mode: VarMode::Full },
        VarQuery { horizon: 10.0 / 252.0, confidence: 0.99, mode: VarMode::Linear },
    ];
    let together = var::run(&VarBook::new(portfolio(c), queries.clone()).unwrap(), 21, 4000).unwrap();
    for (q, t) in queries.iter().zip(&together) {
        assert_eq!(&var::run(&VarBook::single(portfolio(c), *q).unwrap(), 21, 4000).unwrap()[0], t);
    }
}

fn model() -> StateSpaceModel {
    let c = &cases("kalman_loglik")[0];
    StateSpaceModel { a: f(c, "a"), q: f(c, "q"), r: f(c, "r"), observations: floats(c, "observations") }
}

/// Every width and instruction set gives one scalar lane's islands, whole and short ones.
#[test]
fn particle_filter_islands_do_not_depend_on_vector_width_or_instruction_set() {
    let m = model();
    let scalar = Simd::new(Isa::Baseline, Width::One).unwrap();
    for seed in [0, 4, u64::MAX] {
        for units in [1, 17, 100, BLOCK + 5] {
            let reference = format!("{:?}", particle::simulate_with(&m, seed, 0..units, scalar).unwrap());
            for simd in Simd::all_available() {
                let got = format!("{:?}", particle::simulate_with(&m, seed, 0..units, simd).unwrap());
                assert!(got == reference, "{simd:?}, seed {seed}, {units} particles");
            }
        }
    }
}

#[test]
fn particle_filter_islands_do_not_depend_on_chunking_and_prefix_islands_match() {
    let m = model();
    let units = 6 * BLOCK + 200;
    let whole = particle::simulate(&m, 4, 0..units).unwrap();
    for chunks in [2, 3, 7] {
        let parts = chunked(units, chunks, BLOCK, |r| particle::simulate(&m, 4, r).unwrap());
        assert_eq!(particle::finish(&m, &parts).unwrap(), particle::finish(&m, &whole).unwrap());
    }
    let prefix = particle::simulate(&m, 4, 0..3 * BLOCK).unwrap();
    assert_eq!(prefix.blocks[..], whole.blocks[..3]);
}

#[test]
fn ewma_does_not_depend_on_chunking_and_fewer_rows_are_the_newest() {
    let (t, d) = (1000usize, 3usize);
    let returns = pseudo_returns(t * d);
    let w = ReturnWindow { returns: returns.clone(), assets: d, lambda: 0.97 };
    let whole = ewma::simulate(&w, 0..t as u64).unwrap();
    for chunks in [2, 4, 15] {
        let parts = chunked(t as u64, chunks, ROWS_PER_BLOCK, |r| ewma::simulate(&w, r).unwrap());
        assert_eq!(ewma::finish(&w, &parts).unwrap(), ewma::finish(&w, &whole).unwrap());
    }
    // `run` adds the blocks as they come instead of keeping them, in the same order.
    for rows in [1, 3, 64, 65, 1000] {
        let kept = ewma::simulate(&w, 0..rows).and_then(|p| ewma::finish(&w, &p));
        assert_eq!(ewma::run(&w, rows), kept, "{rows} rows");
    }
    // The newest 200 rows alone, as their own window, equal a 200-unit run on the long window.
    let recent = ReturnWindow { returns: returns[(t - 200) * d..].to_vec(), assets: d, lambda: 0.97 };
    assert_eq!(ewma::run(&w, 200).unwrap(), ewma::run(&recent, 200).unwrap());
}

#[test]
fn the_same_seed_repeats_and_another_seed_differs() {
    let book = &books()[2];
    let a = option::run(book, 1, 3000).unwrap();
    assert_eq!(a, option::run(book, 1, 3000).unwrap());
    assert_ne!(a, option::run(book, 2, 3000).unwrap());
}

/// Irregular returns from a 64-bit LCG (a structured formula can be rank-deficient).
fn pseudo_returns(n: usize) -> Vec<f64> {
    let mut state = 0x853C_49E6_748F_EA9Bu64;
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            0.02 * ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5)
        })
        .collect()
}

/// Through the generic job interface: every bundled kernel, one call vs chunks, and a combined
/// book answering each member exactly as it would alone.
#[test]
fn generic_jobs_are_chunk_invariant_and_combine_exactly() {
    use helix_math::{KernelKind, Params, Prepared, Value};
    let c = &cases("delta_normal_var_es")[0];
    let var_params = |confidence: f64, horizon: f64| {
        Params::new()
            .with("positions", Value::Array(floats(c, "positions")))
            .with("drifts", Value::Array(floats(c, "drifts")))
            .with("vols", Value::Array(floats(c, "vols")))
            .with("correlation", Value::Array(portfolio(c).correlation))
            .with("confidence", Value::Number(confidence))
            .with("horizon", Value::Number(horizon))
            .with("paths", Value::Number(5000.0))
    };
    let option_params = |strike: f64, kind: &str| {
        Params::new()
            .with("style", Value::Text("barrier".into()))
            .with("type", Value::Text(kind.into()))
            .with("barrier", Value::Number(70.0))
            .with("spot", Value::Number(100.0))
            .with("strike", Value::Number(strike))
            .with("vol", Value::Number(0.3))
            .with("maturity", Value::Number(0.5))
            .with("steps", Value::Number(20.0))
            .with("paths", Value::Number(6000.0))
    };
    let jobs = vec![
        (KernelKind::McVar, var_params(0.99, 0.04)),
        (KernelKind::McOption, option_params(95.0, "call")),
        (KernelKind::ParticleFilter, {
            let k = &cases("kalman_loglik")[1];
            Params::new()
                .with("a", Value::Number(f(k, "a")))
                .with("q", Value::Number(f(k, "q")))
                .with("r", Value::Number(f(k, "r")))
                .with("observations", Value::Array(floats(k, "observations")))
                .with("particles", Value::Number(5000.0))
        }),
        (
            KernelKind::HashMix,
            Params::new().with("inputs", Value::Array(vec![1.0, 2.0])).with("compute_cost", Value::Number(6400.0)),
        ),
        (KernelKind::PrimeCount, Params::new().with("compute_cost", Value::Number(50_000.0))),
    ];
    for (kind, params) in &jobs {
        let parsed = Prepared::parse(*kind, params.clone()).unwrap();
        let whole = parsed.prepared.run(17, parsed.units).unwrap();
        if parsed.prepared.splittable() {
            let chunks = split(parsed.units, 3, parsed.prepared.block())
                .into_iter()
                .map(|r| parsed.prepared.simulate(17, r).unwrap())
                .rev()
                .collect();
            assert_eq!(parsed.prepared.finish(chunks).unwrap(), whole, "{kind:?}");
        }
    }
    let members: Vec<Prepared> = [(0.99, 0.04), (0.95, 0.04), (0.99, 0.1)]
        .iter()
        .map(|&(a, h)| Prepared::parse(KernelKind::McVar, var_params(a, h)).unwrap().prepared)
        .chain(
            [(90.0, "call"), (110.0, "put")]
                .iter()
                .map(|&(k, t)| Prepared::parse(KernelKind::McOption, option_params(k, t)).unwrap().prepared),
        )
        .collect();
    for group in [&members[..3], &members[3..]] {
        let refs: Vec<&Prepared> = group.iter().collect();
        let combined = Prepared::combine(&refs).expect("members share work");
        let together = combined.run(5, 6000).unwrap();
        for (m, t) in group.iter().zip(&together) {
            assert_eq!(&m.run(5, 6000).unwrap()[0], t);
        }
    }
    assert!(Prepared::combine(&[&members[0], &members[3]]).is_none(), "VaR and options cannot share");
    // Importance-sampled quotes share paths only with quotes drawn about the same shift.
    let tilted = |strike: f64| {
        let p = Params::new()
            .with("spot", Value::Number(100.0))
            .with("strike", Value::Number(strike))
            .with("vol", Value::Number(0.2))
            .with("maturity", Value::Number(0.5))
            .with("method", Value::Text("importance".into()));
        Prepared::parse(KernelKind::McOption, p).unwrap().prepared
    };
    let (a, b) = (tilted(150.0), tilted(160.0));
    assert!(Prepared::combine(&[&a, &b]).is_none(), "different shifts cannot share paths");
    let together = Prepared::combine(&[&a, &a]).expect("the same shift shares").run(5, 6000).unwrap();
    assert_eq!(together, vec![a.run(5, 6000).unwrap().remove(0); 2]);
}
