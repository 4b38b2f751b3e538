//! The seeded randomness behind the `random` strategy.
//!
//! A key is a pure function of (seed, placement number, instance index), so no RNG state
//! is threaded through the scan, a placement can be replayed alone, and the key of any
//! instance costs a few multiplications. SplitMix64's finaliser is enough for spreading
//! choices; nothing here needs cryptographic or statistical-suite quality, so the crate
//! carries no `rand` dependency and its version churn.

/// SplitMix64's output function: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The random key of one instance for one placement.
pub(crate) fn random_key(seed: u64, placement: u64, instance: u64) -> u64 {
    const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
    let a = mix(seed.wrapping_add(GOLDEN));
    let b = mix(a ^ placement.wrapping_mul(GOLDEN));
    mix(b ^ instance
        .wrapping_add(GOLDEN)
        .wrapping_mul(0xd6e8_feb8_6659_fd93))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn random_key_is_a_pure_function_of_its_inputs() {
        assert_eq!(random_key(7, 1, 2), random_key(7, 1, 2));
        assert_ne!(random_key(7, 1, 2), random_key(8, 1, 2));
        assert_ne!(random_key(7, 1, 2), random_key(7, 2, 2));
        assert_ne!(random_key(7, 1, 2), random_key(7, 1, 3));
    }

    #[test]
    fn random_key_picks_every_instance_about_equally_often() {
        let n = 8u64;
        let mut wins = [0u32; 8];
        for p in 0..8000 {
            let best = (0..n).min_by_key(|i| random_key(42, p, *i)).unwrap_or(0);
            wins[best as usize] += 1;
        }
        assert!(wins.iter().all(|w| (800..1200).contains(w)), "{wins:?}");
    }
}
