#!/usr/bin/env python3
"""Reference standard normal quantiles for helix-math's vector math tests, from mpmath.

    python3 kernels/math/tools/normal_quantiles.py     # writes src/vmath/quantile_reference.rs

For each probability p (a double: decades down to 1e-300, a grid of the centre, the edges of
AS241's three regions, points either side of 1/2, the upper tail near 1, and log-uniform
random points), x = Phi^-1(p) is solved to 60 digits by Newton's method on
log Phi(x) = log p (mpmath's ncdf is an erfc at any precision, so the far tails keep their
digits), with the upper half taken as -Phi^-1(1 - p) of the exact 1 - p. The file stores
p and x as the double pair (hi, lo), hi the double nearest x and lo the double nearest
x - hi, as bit patterns, so a test measures an error in fractions of an ulp.
"""

import os
import random
import struct

import mpmath as mp

mp.mp.dps = 60
KERNEL = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # kernels/math
TABLE = os.path.join(KERNEL, "src", "vmath", "quantile_reference.rs")


def bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def from_bits(b: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def next_up(x: float, steps: int) -> float:
    return from_bits(bits(x) + steps)


def lower_quantile(p):
    """Phi^-1(p) for 0 < p <= 1/2, to mp precision."""
    if p == mp.mpf("0.5"):
        return mp.mpf(0)
    # Abramowitz and Stegun 26.2.23 (error < 4.5e-4) as the start.
    t = mp.sqrt(-2 * mp.log(p))
    x = -(t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t**3))
    target = mp.log(p)
    for _ in range(100):
        cdf = mp.ncdf(x)
        step = (mp.log(cdf) - target) * cdf / mp.npdf(x)
        x -= step
        if abs(step) < mp.mpf(10) ** -55 * max(1, abs(x)):
            return x
    raise RuntimeError(f"no convergence at p={p}")


def quantile(p: float):
    mp_p = mp.mpf(p)  # exact
    if mp_p <= mp.mpf("0.5"):
        return lower_quantile(mp_p)
    return -lower_quantile(1 - mp_p)


def probabilities():
    ps = set()
    for e in range(1, 301):
        ps.add(float(mp.mpf(10) ** -e))
    for e in range(1, 300, 7):
        for k in (2, 3, 5, 7.5):
            ps.add(float(k * mp.mpf(10) ** -e))
    for i in range(1, 1000):
        ps.add(i / 1000)
    for k in range(2, 54):
        ps.add(0.5 - 2.0**-k)
        ps.add(0.5 + 2.0**-k)
    for e in range(1, 17):
        ps.add(1 - 10.0**-e)
    # AS241's region edges: |p - 1/2| = 0.425, and sqrt(-ln p) = 5, i.e. p = e^-25.
    for edge in (0.075, 0.925, float(mp.exp(-25))):
        for steps in range(-3, 4):
            ps.add(next_up(edge, steps))
    rng = random.Random(241)
    for _ in range(600):
        ps.add(10.0 ** -rng.uniform(0.3, 300))
    for _ in range(200):
        ps.add(rng.random())
    return sorted(p for p in ps if 0 < p < 1)


def main():
    rows = []
    for p in probabilities():
        x = quantile(p)
        hi = float(x)
        lo = float(x - mp.mpf(hi))
        rows.append(f"    (0x{bits(p):016x}, 0x{bits(hi):016x}, 0x{bits(lo):016x}),")
    with open(TABLE, "w") as out:
        out.write("//! GENERATED: do not edit. Regenerate with `python3 kernels/math/tools/normal_quantiles.py`.\n")
        out.write("//! `(p, hi, lo)` as f64 bits: the standard normal quantile of `p` is `hi + lo` to ~1e-32.\n\n")
        out.write(f"pub(super) static QUANTILES: [(u64, u64, u64); {len(rows)}] = [\n")
        out.write("\n".join(rows))
        out.write("\n];\n")
    print(f"wrote {len(rows)} quantiles to {TABLE}")


if __name__ == "__main__":
    main()
