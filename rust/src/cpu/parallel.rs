//! Intra-op parallelism with scoped threads.
//!
//! No persistent pool: threads are spawned per large op (tens of
//! microseconds, against the milliseconds such an op takes) and joined
//! before it returns. So nothing spins between calls (on shared 2-vCPU
//! machines an idle-spinning pool was seen to stall other work ~8 ms), and a
//! forked child (DataLoader workers) has no pool to hang on.

use std::sync::atomic::{AtomicUsize, Ordering};

static NUM_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Work below this many element-nanoseconds runs on the calling thread.
const MIN_PARALLEL_WORK: usize = 1 << 20;

/// `torch.get_num_threads()`: the machine's parallelism unless set.
pub fn num_threads() -> usize {
    match NUM_THREADS.load(Ordering::Relaxed) {
        0 => {
            // available_parallelism reads cgroup files (microseconds): ask once.
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            NUM_THREADS.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}

/// `torch.set_num_threads(n)`; `n` must be positive (checked by the caller).
pub fn set_num_threads(n: usize) {
    NUM_THREADS.store(n.max(1), Ordering::Relaxed);
}

/// Calls `f(start, end)` over a split of `0..n` into contiguous chunks, in
/// parallel when `n * cost_ns` is large enough to pay for the threads.
/// Chunk boundaries are multiples of `align` (so SIMD loops stay aligned).
pub fn for_ranges(n: usize, cost_ns: usize, align: usize, f: impl Fn(usize, usize) + Sync) {
    let threads = num_threads();
    if threads <= 1 || n.saturating_mul(cost_ns) < MIN_PARALLEL_WORK {
        f(0, n);
        return;
    }
    let align = align.max(1);
    let chunk = n.div_ceil(threads).div_ceil(align) * align;
    std::thread::scope(|s| {
        let f = &f;
        let mut start = chunk;
        while start < n {
            let end = (start + chunk).min(n);
            s.spawn(move || f(start, end));
            start = end;
        }
        f(0, chunk.min(n));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn ranges_cover_everything_once() {
        let seen = Mutex::new(vec![0u8; 10_000_001]);
        for_ranges(10_000_001, 1, 16, |s, e| {
            let mut v = seen.lock().unwrap();
            for x in &mut v[s..e] {
                *x += 1;
            }
        });
        assert!(seen.into_inner().unwrap().iter().all(|&c| c == 1));
    }
}
