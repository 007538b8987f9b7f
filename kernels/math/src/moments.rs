//! Means and co-moments of a few jointly sampled quantities, accumulated per block and merged
//! in block order (Chan et al.), so the result is the same however the blocks were grouped.

/// Running sums over one block, raw for speed; converted to centred form when the block ends.
#[derive(Clone, Copy, Debug)]
pub struct BlockSums<const N: usize> {
    n: f64,
    sum: [f64; N],
    cross: [[f64; N]; N],
}

impl<const N: usize> Default for BlockSums<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> BlockSums<N> {
    pub fn new() -> Self {
        BlockSums { n: 0.0, sum: [0.0; N], cross: [[0.0; N]; N] }
    }

    /// Sums over `n` samples accumulated elsewhere (in vector lanes, say); `cross[i][j]` is
    /// read for `j <= i` only.
    pub fn from_raw(n: f64, sum: [f64; N], cross: [[f64; N]; N]) -> Self {
        BlockSums { n, sum, cross }
    }

    #[inline]
    pub fn add(&mut self, x: [f64; N]) {
        self.n += 1.0;
        for i in 0..N {
            self.sum[i] += x[i];
            for j in 0..=i {
                self.cross[i][j] += x[i] * x[j];
            }
        }
    }

    pub fn finish(&self) -> Comoments<N> {
        let mut m = Comoments { n: self.n, mean: [0.0; N], co: [[0.0; N]; N] };
        if self.n == 0.0 {
            return m;
        }
        for i in 0..N {
            m.mean[i] = self.sum[i] / self.n;
        }
        for i in 0..N {
            for j in 0..=i {
                let c = self.cross[i][j] - self.sum[i] * self.sum[j] / self.n;
                m.co[i][j] = c;
                m.co[j][i] = c;
            }
        }
        m
    }
}

/// Count, means and centred cross-products (`co[i][j] = sum (x_i - mean_i)(x_j - mean_j)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comoments<const N: usize> {
    pub n: f64,
    pub mean: [f64; N],
    pub co: [[f64; N]; N],
}

impl<const N: usize> Comoments<N> {
    pub fn empty() -> Self {
        Comoments { n: 0.0, mean: [0.0; N], co: [[0.0; N]; N] }
    }

    /// Folds `other` (the next block) into `self`.
    pub fn merge(&mut self, other: &Comoments<N>) {
        if other.n == 0.0 {
            return;
        }
        let n = self.n + other.n;
        let mut delta = [0.0; N];
        for i in 0..N {
            delta[i] = other.mean[i] - self.mean[i];
        }
        let w = self.n * other.n / n;
        for i in 0..N {
            for j in 0..N {
                self.co[i][j] += other.co[i][j] + delta[i] * delta[j] * w;
            }
        }
        for i in 0..N {
            self.mean[i] += delta[i] * other.n / n;
        }
        self.n = n;
    }

    /// Sample variance of component `i`.
    pub fn variance(&self, i: usize) -> f64 {
        if self.n > 1.0 { self.co[i][i] / (self.n - 1.0) } else { f64::NAN }
    }

    /// Sample covariance of components `i` and `j`.
    pub fn covariance(&self, i: usize, j: usize) -> f64 {
        if self.n > 1.0 { self.co[i][j] / (self.n - 1.0) } else { f64::NAN }
    }

    /// Standard error of the mean of component `i`.
    pub fn std_error(&self, i: usize) -> f64 {
        (self.variance(i) / self.n).sqrt()
    }
}

/// Folds per-block moments in block order.
pub fn fold<const N: usize>(blocks: &[Comoments<N>]) -> Comoments<N> {
    let mut total = Comoments::empty();
    for b in blocks {
        total.merge(b);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_blocks_match_direct_two_pass_moments() {
        let xs: Vec<[f64; 2]> = (0..1000).map(|i| [(i as f64 * 0.37).sin() + 100.0, (i as f64).sqrt()]).collect();
        let blocks: Vec<Comoments<2>> = xs
            .chunks(64)
            .map(|c| {
                let mut s = BlockSums::new();
                c.iter().for_each(|x| s.add(*x));
                s.finish()
            })
            .collect();
        let m = fold(&blocks);
        let n = xs.len() as f64;
        let mean: Vec<f64> = (0..2).map(|k| xs.iter().map(|x| x[k]).sum::<f64>() / n).collect();
        let cov01 = xs.iter().map(|x| (x[0] - mean[0]) * (x[1] - mean[1])).sum::<f64>() / (n - 1.0);
        let var0 = xs.iter().map(|x| (x[0] - mean[0]).powi(2)).sum::<f64>() / (n - 1.0);
        assert_eq!(m.n, n);
        assert!((m.mean[0] - mean[0]).abs() < 1e-12 && (m.mean[1] - mean[1]).abs() < 1e-12);
        assert!((m.covariance(0, 1) - cov01).abs() < 1e-10 * cov01.abs().max(1.0));
        assert!((m.variance(0) - var0).abs() < 1e-10);
    }
}
