//! Single-thread throughput of the vector math (`helix_math::vmath`) at every instruction set
//! and width this CPU runs, against the scalar code it replaces: `libm::exp` for `exp`, and
//! the ziggurat (`rng::Normals`) for normals, both from the same ChaCha8 stream.
//!
//! Names are `<isa>-x<width>`; `vmath-normals/words-only` is the cost of the ChaCha8 words
//! alone, which every generator pays.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use helix_math::rng::{Normals, block_rng};
use helix_math::vmath::Simd;
use rand_core::{Rng, SeedableRng};
use std::hint::black_box;
use std::time::Duration;

const N: usize = 4096;

fn name(simd: Simd) -> String {
    format!("{}-x{}", simd.isa().name(), simd.width().lanes())
}

fn group<'a>(c: &'a mut Criterion, title: &str) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(title);
    g.sample_size(30).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(N as u64));
    g
}

/// A scalar function over a slice against a vector one at each `Simd`.
fn map_group(
    c: &mut Criterion,
    title: &str,
    xs: &[f64],
    scalar: fn(f64) -> f64,
    vector: fn(Simd, &mut [f64]),
    simds: &[Simd],
) {
    let mut g = group(c, title);
    let mut out = xs.to_vec();
    g.bench_function("libm", |b| {
        b.iter(|| {
            for (y, &x) in out.iter_mut().zip(black_box(xs)) {
                *y = scalar(x);
            }
        })
    });
    for &simd in simds {
        g.bench_function(name(simd), |b| {
            b.iter(|| {
                out.copy_from_slice(black_box(xs));
                vector(simd, &mut out);
            })
        });
    }
    g.finish();
}

fn unit(rng: &mut impl Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn exp(c: &mut Criterion) {
    // A Monte Carlo kernel's range: log-returns and discount exponents.
    let mut rng = block_rng(1, 0);
    let xs: Vec<f64> = (0..N).map(|_| (unit(&mut rng) - 0.5) * 40.0).collect();
    map_group(c, "vmath-exp", &xs, libm::exp, Simd::exp, &Simd::all_available());
}

fn ln(c: &mut Criterion) {
    // Uniforms in (0, 1], as a tail probability or a Box-Muller radius takes them.
    let mut rng = block_rng(2, 0);
    let xs: Vec<f64> = (0..N).map(|_| 1.0 - unit(&mut rng)).collect();
    map_group(c, "vmath-ln", &xs, libm::log, Simd::ln, &[Simd::best()]);
}

fn normals(c: &mut Criterion) {
    let mut g = group(c, "vmath-normals");
    let mut out = vec![0.0; N];
    let mut ziggurat = Normals::new(block_rng(7, 0));
    g.bench_function("ziggurat", |b| b.iter(|| ziggurat.fill(black_box(&mut out))));
    let mut words = vec![0u64; N];
    let mut rng = block_rng(7, 0);
    g.bench_function("words-only", |b| {
        b.iter(|| {
            for w in black_box(&mut words).iter_mut() {
                *w = rng.next_u64();
            }
        })
    });
    // The same stream from rand_chacha, which the native build drew from before `BlockStream`.
    let mut reference = rand_chacha::ChaCha8Rng::from_seed([7; 32]);
    g.bench_function("words-only-rand-chacha", |b| {
        b.iter(|| {
            for w in black_box(&mut words).iter_mut() {
                *w = reference.next_u64();
            }
        })
    });
    for simd in Simd::all_available() {
        let mut rng = block_rng(7, 0);
        g.bench_function(name(simd), |b| b.iter(|| simd.fill_normals(&mut rng, black_box(&mut out))));
    }
    g.finish();

    // The word-to-normal transform alone, on words drawn once.
    let mut g = group(c, "vmath-normals-from-words");
    let mut rng = block_rng(8, 0);
    let words: Vec<u64> = (0..N).map(|_| rng.next_u64()).collect();
    for simd in Simd::all_available() {
        g.bench_function(name(simd), |b| b.iter(|| simd.normals_from_words(black_box(&words), &mut out).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, exp, ln, normals);
criterion_main!(benches);
