//! Counter-based random numbers (Philox 4x32-10). Element `i` of a draw
//! depends only on (seed, offset, i), so a GPU backend can produce the same
//! stream by giving each thread its own counter.

use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// One Philox 4x32 block with 10 rounds.
pub fn philox(counter: u64, subsequence: u64, key: u64) -> [u32; 4] {
    let mut c = [
        counter as u32,
        (counter >> 32) as u32,
        subsequence as u32,
        (subsequence >> 32) as u32,
    ];
    let mut k = [key as u32, (key >> 32) as u32];
    for _ in 0..10 {
        let p0 = (M0 as u64) * (c[0] as u64);
        let p1 = (M1 as u64) * (c[2] as u64);
        c = [
            ((p1 >> 32) as u32) ^ c[1] ^ k[0],
            p1 as u32,
            ((p0 >> 32) as u32) ^ c[3] ^ k[1],
            p0 as u32,
        ];
        k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
    }
    c
}

/// Philox blocks `counter .. counter + 16` (subsequence 0) at once, lane
/// major: `out[l][j]` is lane `l` of block `counter + j`, as [`philox`]
/// gives it. The sixteen blocks' rounds run side by side, so they
/// vectorise (one block at a time is a chain of dependent multiplies).
#[inline(always)]
pub fn philox16(counter: u64, key: u64) -> [[u32; 16]; 4] {
    let mut c0 = [0u32; 16];
    let mut c1 = [0u32; 16];
    let mut c2 = [0u32; 16];
    let mut c3 = [0u32; 16];
    for j in 0..16 {
        let c = counter.wrapping_add(j as u64);
        c0[j] = c as u32;
        c1[j] = (c >> 32) as u32;
    }
    let (mut k0, mut k1) = (key as u32, (key >> 32) as u32);
    for _ in 0..10 {
        for j in 0..16 {
            let p0 = (M0 as u64) * (c0[j] as u64);
            let p1 = (M1 as u64) * (c2[j] as u64);
            let n0 = ((p1 >> 32) as u32) ^ c1[j] ^ k0;
            let n2 = ((p0 >> 32) as u32) ^ c3[j] ^ k1;
            c0[j] = n0;
            c1[j] = p1 as u32;
            c2[j] = n2;
            c3[j] = p0 as u32;
        }
        k0 = k0.wrapping_add(W0);
        k1 = k1.wrapping_add(W1);
    }
    [c0, c1, c2, c3]
}

/// A seeded stream: `next_block` hands out consecutive counter values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratorState {
    pub seed: u64,
    pub offset: u64,
}

#[derive(Debug)]
pub struct Generator {
    state: Mutex<GeneratorState>,
}

/// PyTorch's default seed.
pub const DEFAULT_SEED: u64 = 67280421310721;

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator {
            state: Mutex::new(GeneratorState { seed, offset: 0 }),
        }
    }

    pub fn manual_seed(&self, seed: u64) {
        *self.state.lock() = GeneratorState { seed, offset: 0 };
    }

    pub fn state(&self) -> GeneratorState {
        *self.state.lock()
    }

    pub fn set_state(&self, s: GeneratorState) {
        *self.state.lock() = s;
    }

    /// Reserves `n` blocks; returns (key, first counter).
    pub fn reserve(&self, n: u64) -> (u64, u64) {
        let mut s = self.state.lock();
        let start = s.offset;
        s.offset = s.offset.wrapping_add(n);
        (s.seed, start)
    }
}

/// The process-wide CPU generator behind `manual_seed`.
pub fn default_generator() -> &'static Arc<Generator> {
    static GEN: OnceLock<Arc<Generator>> = OnceLock::new();
    GEN.get_or_init(|| Arc::new(Generator::new(DEFAULT_SEED)))
}

/// 32 random bits to a float in [0, 1) with 24 bits of precision.
#[inline]
pub fn u32_to_unit_f32(x: u32) -> f64 {
    (x >> 8) as f64 * (1.0 / (1u64 << 24) as f64)
}

/// 64 random bits to a float in [0, 1) with 53 bits of precision.
#[inline]
pub fn u64_to_unit_f64(x: u64) -> f64 {
    (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_matches_reference_vector() {
        // Known-answer test from the Random123 distribution (philox4x32_10,
        // counter and key all zero).
        assert_eq!(
            philox(0, 0, 0),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
    }

    #[test]
    fn reseeding_restarts_the_stream() {
        let g = Generator::new(1);
        let a = g.reserve(3);
        g.manual_seed(1);
        assert_eq!(g.reserve(3), a);
    }
}
