#!/usr/bin/env python3
"""Sobol direction numbers for helix-math, from scipy's copy of Joe and Kuo's set.

    python3 kernels/math/tools/sobol_directions.py            # writes src/qmc/directions.rs
    python3 kernels/math/tools/sobol_directions.py --points   # writes tests/data/sobol_points.json

The set is Joe and Kuo's new-joe-kuo-6.21201 (https://web.maths.unsw.edu.au/~fkuo/sobol/), the
one scipy.stats.qmc.Sobol uses; scipy ships it as `scipy/stats/_sobol_direction_numbers.npz`
with two arrays, row i for dimension i + 1:
  poly[i]   the primitive polynomial as an integer, leading and constant terms included
            (x^3 + x + 1 = 0b1011 = 11), so the degree is s = bit_length - 1 and the file's
            `a` is the s - 1 middle coefficients, (poly >> 1) & (2^(s-1) - 1);
  vinit[i]  the initial m_1..m_s, zero-padded to 18 (row 0, dimension 1, is [1, 0, ...] and
            poly 1: the van der Corput sequence, which is not a row of Joe and Kuo's file).
Both modes check the table against scipy's own 32-bit direction integers before writing.
"""

import json
import os
import sys

import numpy as np
import scipy
from scipy.stats import qmc

DIMENSIONS = 1024
BITS = 32
KERNEL = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # kernels/math
TABLE = os.path.join(KERNEL, "src", "qmc", "directions.rs")
POINTS = os.path.join(KERNEL, "tests", "data", "sobol_points.json")
# The reference points: dimensions 1..=64 and a sample of higher ones.
SAMPLED = list(range(1, 65)) + [100, 500, 1024]
FIRST_M = 8  # the first 2^8 points
FAR_START, FAR_ROWS = 2**22 - 8, 16  # a block of rows across row 2^22
PAIRS, PAIR_M = [(1, 2), (5, 17), (100, 500)], 10  # two-dimensional projections' t-values


def joe_kuo():
    """[(s, a, [m_1..m_s])] for dimensions 2..=DIMENSIONS, checked as it is read."""
    path = os.path.join(os.path.dirname(scipy.__file__), "stats", "_sobol_direction_numbers.npz")
    data = np.load(path)
    poly, vinit = data["poly"], data["vinit"]
    assert int(poly[0]) == 1 and list(vinit[0][:2]) == [1, 0], "row 0 should be van der Corput"
    rows = []
    for i in range(1, DIMENSIONS):
        p = int(poly[i])
        s = p.bit_length() - 1
        a = (p >> 1) & ((1 << (s - 1)) - 1)
        m = [int(v) for v in vinit[i][:s]]
        assert p & 1 and 1 <= s < BITS, (i + 1, p)
        assert all(v == 0 for v in vinit[i][s:]), (i + 1, "m beyond the degree")
        # m_k is odd and below 2^k, so m_k << (32 - k) is a 32-bit direction integer.
        assert all(v % 2 == 1 and v < 2 ** (k + 1) for k, v in enumerate(m)), (i + 1, m)
        assert s < 2**8 and a < 2**16 and max(m) < 2**16, "the Rust table stores u8, u16, u16"
        rows.append((s, a, m))
    # The first rows of Joe and Kuo's file: "d s a m_i" = 2 1 0 1 / 3 2 1 1 3 / 4 3 1 1 3 1 / 5 3 2 1 1 1.
    assert rows[:4] == [(1, 0, [1]), (2, 1, [1, 3]), (3, 1, [1, 3, 1]), (3, 2, [1, 1, 1])], rows[:4]
    return rows


def directions(row):
    """The 32 direction integers v_1..v_32 (MSB-first) of a dimension, Joe and Kuo's recurrence."""
    if row is None:  # dimension 1: every m_k = 1
        return [1 << (BITS - 1 - k) for k in range(BITS)]
    s, a, m = row
    v = [m[k] << (BITS - 1 - k) for k in range(s)]
    for k in range(s, BITS):
        x = v[k - s] ^ (v[k - s] >> s)
        for i in range(1, s):
            if (a >> (s - 1 - i)) & 1:
                x ^= v[k - i]
        v.append(x)
    return v


def check_against_scipy(rows):
    """Our reading of the table gives scipy's own direction integers, for every dimension.

    `Sobol._sv` is scipy's private (dimension, bit) matrix of them; `write_points` checks that
    XORing its columns reproduces scipy's public `random_base2` output."""
    sv = qmc.Sobol(DIMENSIONS, scramble=False, bits=BITS)._sv
    for d in range(1, DIMENSIONS + 1):
        assert directions(rows[d - 2] if d > 1 else None) == [int(x) for x in sv[d - 1]], d
    return sv


def write_table(rows):
    out = [
        "//! Joe and Kuo's Sobol direction numbers, set new-joe-kuo-6.21201, for dimensions 2 to 1024.",
        "//!",
        "//! GENERATED: do not edit. Regenerate with `python3 kernels/math/tools/sobol_directions.py`,",
        f"//! which reads scipy's copy of the set (scipy {scipy.__version__},",
        "//! `scipy/stats/_sobol_direction_numbers.npz`, the set `scipy.stats.qmc.Sobol` uses) and checks",
        "//! it against scipy's 32-bit direction integers. The set is published at",
        "//! <https://web.maths.unsw.edu.au/~fkuo/sobol/> (S. Joe and F. Y. Kuo, \"Constructing Sobol",
        "//! sequences with better two-dimensional projections\", SIAM J. Sci. Comput. 30, 2008).",
        "",
        "/// Row `d - 2` is dimension `d` as in Joe and Kuo's file, whose first row is dimension 2:",
        "/// `(s, a, [m_1, ..., m_s])`, with `s` the degree of the primitive polynomial",
        "/// `x^s + a_1 x^(s-1) + ... + a_(s-1) x + 1`, `a` its middle coefficients as the binary number",
        "/// `a_1 a_2 ... a_(s-1)`, and `m_k` (odd, below `2^k`) the initial direction numbers. Dimension 1,",
        "/// the van der Corput sequence (every `m_k = 1`), has no row. Here",
        f"/// `s <= {max(s for s, _, _ in rows)}` and every `a` and `m_k` is below"
        f" `2^{max(max(a, *m) for _, a, m in rows).bit_length()}`.",
        f"pub(super) static JOE_KUO: [(u8, u16, &[u16]); {len(rows)}] = [",
    ]
    entries = [f"({s}, {a}, &[{', '.join(map(str, m))}])," for s, a, m in rows]
    width = max(map(len, entries))  # rustfmt lines the trailing comments up
    out += [f"    {e:<{width}} // {d}" for d, e in enumerate(entries, start=2)]
    out.append("];")
    with open(TABLE, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {TABLE}")


def t_value(xs, ys, m):
    """The least t for which the 2^m points (x_i, y_i) are a (t, m, 2)-net in base 2: every
    elementary box of area 2^(t - m) (2^-a by 2^-b, a + b = m - t) holds exactly 2^t of them."""
    for t in range(m + 1):
        boxes = [{} for _ in range(m - t + 1)]
        for x, y in zip(xs, ys):
            for a, count in enumerate(boxes):
                box = (int(x) >> (BITS - a), int(y) >> (BITS - (m - t - a)))
                count[box] = count.get(box, 0) + 1
        if all(len(c) == 2 ** (m - t) and set(c.values()) == {2**t} for c in boxes):
            return t
    raise AssertionError("a set of 2^m points is always a (m, m, 2)-net")


def write_points(sv):
    """scipy's unscrambled points, in scipy's (Gray code) order, as exact integers."""
    scale = float(2**BITS)

    def integers(sample):
        ints = sample * scale
        assert (ints == np.floor(ints)).all() and ints.max() < scale, "x / 2^32 should be exact"
        return ints.astype(np.uint64)

    first = integers(qmc.Sobol(DIMENSIONS, scramble=False, bits=BITS).random_base2(FIRST_M))
    # A column does not depend on how many dimensions the engine has.
    assert (integers(qmc.Sobol(64, scramble=False, bits=BITS).random_base2(FIRST_M)) == first[:, :64]).all()
    # Point i < 2^m is an XOR of v_1..v_m, each a multiple of 2^(32 - m): store the top m bits.
    shift = BITS - FIRST_M
    assert (first % (1 << shift) == 0).all()
    # Row r of scipy's output is point r ^ (r >> 1) of the natural order (Gray code).
    for r in range(2**FIRST_M):
        g = r ^ (r >> 1)
        want = np.zeros(DIMENSIONS, dtype=np.uint64)
        for k in range(FIRST_M):
            if (g >> k) & 1:
                want ^= sv[:, k].astype(np.uint64)
        assert (first[r] == want).all(), r

    # The first 2^m rows are the first 2^m points of the natural order too, shuffled.
    net = integers(qmc.Sobol(DIMENSIONS, scramble=False, bits=BITS).random_base2(PAIR_M))
    projections = [
        {
            "dimensions": [p, q],
            "t": [t_value(net[: 2**m, p - 1], net[: 2**m, q - 1], m) for m in range(PAIR_M + 1)],
        }
        for p, q in PAIRS
    ]

    far = qmc.Sobol(DIMENSIONS, scramble=False, bits=BITS)
    far.fast_forward(FAR_START)
    far = integers(far.random(FAR_ROWS))

    doc = {
        "generator": f"scipy {scipy.__version__}: scipy.stats.qmc.Sobol(d, scramble=False, bits=32), "
        "Joe and Kuo's new-joe-kuo-6.21201 direction numbers",
        "command": "python3 kernels/math/tools/sobol_directions.py --points",
        "order": "scipy's Gray code order: row r is point r ^ (r >> 1) of the natural order",
        "first_m": FIRST_M,
        "first_shift": shift,
        "far_start": FAR_START,
        # t[m]: the first 2^m points of the pair are a (t[m], m, 2)-net
        "projections": projections,
        "dimensions": [
            {
                "dimension": d,
                # random_base2(first_m) as integers x = u * 2^32, stored as x >> first_shift
                "first": [int(x) >> shift for x in first[:, d - 1]],
                # scipy's direction integers v_1..v_32 (Sobol._sv)
                "directions": [int(x) for x in sv[d - 1]],
                # rows far_start.. after fast_forward(far_start), as integers x = u * 2^32
                "far": [int(x) for x in far[:, d - 1]],
            }
            for d in SAMPLED
        ],
    }
    # One line a list entry; the header fields one a line.
    lists = {key: doc.pop(key) for key in ["projections", "dimensions"]}
    text = json.dumps(doc, indent=1)[:-2]  # without the closing "\n}"
    for key, entries in lists.items():
        lines = ",\n  ".join(json.dumps(e, separators=(",", ":")) for e in entries)
        text += f',\n "{key}": [\n  {lines}\n ]'
    with open(POINTS, "w") as f:
        f.write(text + "\n}\n")
    json.load(open(POINTS))  # it parses
    print(f"wrote {POINTS} ({os.path.getsize(POINTS)} bytes)")


def main():
    rows = joe_kuo()
    sv = check_against_scipy(rows)
    if sys.argv[1:] == ["--points"]:
        write_points(sv)
    elif sys.argv[1:] == []:
        write_table(rows)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
