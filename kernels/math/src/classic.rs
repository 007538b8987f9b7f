//! The two classic HelixRouter job kinds, kept so existing job streams run unchanged.

use crate::error::{KernelError, Result};

/// Largest `compute_cost` a HashMix job may ask for (about a second of mixing).
pub const MAX_HASHMIX_COST: u64 = 1 << 36;

/// FNV-1a over the inputs' bytes, then `max(compute_cost / 64, 1)` rounds of
/// rotate-xor-multiply. Returns the full 64-bit hash.
pub fn hashmix(inputs: &[u64], compute_cost: u64) -> Result<u64> {
    if compute_cost > MAX_HASHMIX_COST {
        return Err(KernelError::invalid("compute_cost", format!("must be <= {MAX_HASHMIX_COST}, got {compute_cost}")));
    }
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for x in inputs {
        for byte in x.to_le_bytes() {
            h ^= byte as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    for round in 0..(compute_cost / 64).max(1) {
        h = (h.rotate_left(23) ^ round).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    Ok(h)
}

/// The sieve bound a PrimeCount job uses: `compute_cost` clamped to [10 000, 250 000].
pub fn primecount_limit(compute_cost: u64) -> u64 {
    compute_cost.clamp(10_000, 250_000)
}

/// Number of primes up to `primecount_limit(compute_cost)`, by the sieve of Eratosthenes.
pub fn primecount(compute_cost: u64) -> u64 {
    let n = primecount_limit(compute_cost) as usize;
    let mut composite = vec![false; n + 1];
    let mut count = 0;
    for i in 2..=n {
        if !composite[i] {
            count += 1;
            let mut j = i * i;
            while j <= n {
                composite[j] = true;
                j += i;
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primecount_matches_known_counts_at_the_clamps() {
        assert_eq!(primecount(0), 1229); // pi(10 000)
        assert_eq!(primecount(100_000), 9592);
        assert_eq!(primecount(u64::MAX), 22044); // pi(250 000)
    }

    #[test]
    fn hashmix_depends_on_every_input_and_on_the_rounds() {
        let base = hashmix(&[1, 2, 3], 640).unwrap();
        assert_eq!(base, hashmix(&[1, 2, 3], 640).unwrap());
        assert_ne!(base, hashmix(&[1, 2, 4], 640).unwrap());
        assert_ne!(base, hashmix(&[2, 1, 3], 640).unwrap());
        assert_ne!(base, hashmix(&[1, 2, 3], 704).unwrap());
        // Costs below 128 all run one round.
        assert_eq!(hashmix(&[9], 0).unwrap(), hashmix(&[9], 127).unwrap());
        assert!(hashmix(&[9], u64::MAX).is_err());
    }
}
