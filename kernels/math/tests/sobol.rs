//! The Sobol sequence against scipy's (tests/data/sobol_points.json, written by
//! `python3 kernels/math/tools/sobol_directions.py --points`), and the net properties that
//! randomised QMC relies on, with and without Owen scrambling.

use helix_math::qmc::{MAX_DIMENSIONS, Sobol, owen_scramble, scramble_seed};
use serde_json::Value;

fn data() -> Value {
    serde_json::from_str(include_str!("data/sobol_points.json")).expect("sobol_points.json parses")
}

fn ints(v: &Value) -> Vec<u64> {
    v.as_array().expect("an array").iter().map(|x| x.as_u64().expect("an integer")).collect()
}

fn num(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no integer {key}"))
}

/// Point `index` of the full sequence.
fn point(sobol: &Sobol, index: u32) -> Vec<u32> {
    let mut x = vec![0; sobol.dimensions()];
    sobol.point(index, &mut x);
    x
}

/// scipy's row `r` is point `r ^ (r >> 1)` in natural order (Gray code).
fn gray(r: u32) -> u32 {
    r ^ (r >> 1)
}

#[test]
fn points_equal_scipys_exactly() {
    let data = data();
    let sobol = Sobol::new(MAX_DIMENSIONS).unwrap();
    let (first_m, shift, far_start) = (num(&data, "first_m"), num(&data, "first_shift"), num(&data, "far_start"));
    let first: Vec<Vec<u32>> = (0..1u32 << first_m).map(|r| point(&sobol, gray(r))).collect();
    let dims = data["dimensions"].as_array().unwrap();
    assert_eq!(dims.len(), 67, "dimensions 1..=64, 100, 500, 1024");
    for entry in dims {
        let d = num(entry, "dimension") as usize;
        // The first 256 points, whose coordinates are multiples of 2^24: stored as x >> 24.
        for (r, want) in ints(&entry["first"]).into_iter().enumerate() {
            assert_eq!(u64::from(first[r][d - 1]), want << shift, "dimension {d}, scipy row {r}");
        }
        // All 32 direction integers: point 2^k is v_(k+1).
        for (k, want) in ints(&entry["directions"]).into_iter().enumerate() {
            assert_eq!(u64::from(point(&sobol, 1 << k)[d - 1]), want, "dimension {d}, v_{}", k + 1);
        }
        // Rows 2^22 - 8 .. 2^22 + 8, where scipy's walk crosses bit 22.
        for (i, want) in ints(&entry["far"]).into_iter().enumerate() {
            let r = (far_start + i as u64) as u32;
            assert_eq!(u64::from(point(&sobol, gray(r))[d - 1]), want, "dimension {d}, scipy row {r}");
        }
    }
    // A sequence of fewer dimensions is the same sequence, cut.
    let small = Sobol::new(64).unwrap();
    for i in [0, 1, 77, 1 << 20, u32::MAX] {
        assert_eq!(point(&small, i)[..], point(&sobol, i)[..64], "point {i}");
    }
}

#[test]
fn next_from_walks_the_same_points_as_point() {
    let sobol = Sobol::new(MAX_DIMENSIONS).unwrap();
    // From the start, and across the high bits up to the last point.
    for (start, len) in [(0, 5000), ((1 << 31) - 700, 1400), (u32::MAX - 600, 600)] {
        let mut x = point(&sobol, start);
        for i in start..start + len {
            sobol.next_from(i, &mut x);
            assert_eq!(x, point(&sobol, i + 1), "point {}", i + 1);
        }
    }
}

/// Whether the top `m` digits of `xs` (2^m values) are 0..2^m, each once: every interval
/// `[k/2^m, (k+1)/2^m)` is hit exactly once.
fn stratified(xs: &[u32], m: u32) -> bool {
    let mut hit = vec![false; 1 << m];
    xs.len() == 1 << m && xs.iter().all(|&x| !std::mem::replace(&mut hit[(u64::from(x) >> (32 - m)) as usize], true))
}

/// The block of `2^m` points from `start`, walked with `next_from`, coordinate-major.
fn block(sobol: &Sobol, start: u32, m: u32) -> Vec<Vec<u32>> {
    let mut x = point(sobol, start);
    let mut columns = vec![Vec::with_capacity(1 << m); sobol.dimensions()];
    for i in start..start + (1 << m) {
        for (c, &xd) in columns.iter_mut().zip(&x) {
            c.push(xd);
        }
        if i + 1 < start + (1 << m) {
            sobol.next_from(i, &mut x);
        }
    }
    columns
}

/// Owen-scrambles every coordinate of a block under randomisation `r` of job `job`.
fn scrambled(columns: &[Vec<u32>], job: u64, r: u32) -> Vec<Vec<u32>> {
    (0..columns.len())
        .map(|d| {
            let seed = scramble_seed(job, r, d as u32);
            columns[d].iter().map(|&x| owen_scramble(x, seed)).collect()
        })
        .collect()
}

#[test]
fn every_coordinate_is_stratified_scrambled_or_not() {
    // The first 2^m points, and an aligned block far out, in every one of the 1024
    // dimensions: unscrambled, and under three randomisations of two jobs.
    let sobol = Sobol::new(MAX_DIMENSIONS).unwrap();
    for m in 0..=10 {
        for start in [0, 3 << 20 | 5 << 10] {
            let columns = block(&sobol, start, m);
            let mut versions = vec![columns.clone()];
            for (job, r) in [(1, 0), (1, 1), (u64::MAX, 7)] {
                versions.push(scrambled(&columns, job, r));
            }
            for (v, version) in versions.iter().enumerate() {
                for (d, c) in version.iter().enumerate() {
                    assert!(stratified(c, m), "m {m}, block at {start}, version {v}, dimension {}", d + 1);
                }
            }
        }
    }
}

/// The least `t` for which the `2^m` points `(xs[i], ys[i])` are a `(t, m, 2)`-net: every
/// elementary box `2^-a` by `2^-b` with `a + b = m - t` holds exactly `2^t` of them.
fn t_value(xs: &[u32], ys: &[u32], m: u32) -> u32 {
    let digits = |x: u32, k: u32| if k == 0 { 0 } else { (x >> (32 - k)) as usize };
    (0..=m)
        .find(|&t| {
            (0..=m - t).all(|a| {
                let b = m - t - a;
                let mut count = vec![0u32; 1 << (m - t)];
                for (&x, &y) in xs.iter().zip(ys) {
                    count[(digits(x, a) << b) | digits(y, b)] += 1;
                }
                count.iter().all(|&c| c == 1 << t)
            })
        })
        .expect("2^m points are always an (m, m, 2)-net")
}

#[test]
fn two_dimensional_projections_are_nets_scrambled_or_not() {
    // scipy's points give t[m] for the first 2^m points of each pair. Owen scrambling maps
    // each coordinate's dyadic intervals onto dyadic intervals of the same level, so it
    // keeps every box count and the t; and an aligned block k 2^m.. is the first block with
    // every point XORed by the same digital shift, which does the same.
    let data = data();
    let sobol = Sobol::new(MAX_DIMENSIONS).unwrap();
    for pair in data["projections"].as_array().unwrap() {
        let dims = ints(&pair["dimensions"]);
        let (p, q) = (dims[0] as usize - 1, dims[1] as usize - 1);
        let t = ints(&pair["t"]);
        for m in 0..=10u32 {
            for start in [0, 7 << 24] {
                let columns = block(&sobol, start, m);
                let mut versions = vec![columns.clone()];
                versions.extend((0..3).map(|r| scrambled(&columns, 99, r)));
                for (v, c) in versions.iter().enumerate() {
                    let got = t_value(&c[p], &c[q], m);
                    assert_eq!(u64::from(got), t[m as usize], "dims {dims:?}, m {m}, block at {start}, version {v}");
                }
            }
        }
    }
    // Dimensions 1 and 2 are a (0, 2)-sequence: every shape, every m.
    assert!(ints(&data["projections"][0]["t"]).iter().all(|&t| t == 0));
}
