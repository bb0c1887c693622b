//! Intra-op parallelism on a small persistent pool.
//!
//! A large op is split into one contiguous chunk per thread; the calling
//! thread and the pool's workers claim chunks from a shared counter, so a
//! worker the OS schedules late finds its chunk already done by the caller
//! instead of making the caller wait (freshly spawned threads started
//! 30 us to several ms late on a loaded 2-vCPU machine, and an add of 1M
//! float32 ran slower on two threads than on one).
//!
//! Workers spin only briefly after a job (`SPIN`, so back-to-back ops find
//! them awake) and then sleep on a condition variable: nothing spins between
//! bursts of work (on shared 2-vCPU machines an always-spinning pool was
//! seen to stall other work ~8 ms). The pool belongs to the process that
//! made it: a forked child (DataLoader workers) has no worker threads, sees
//! another pid, and builds its own pool, never touching the parent's locks.
//! A call made while the pool is busy with another caller's op (several
//! Python threads) spawns scoped threads instead; a call from inside a
//! chunk runs serially.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

static NUM_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Work below this many element-nanoseconds (about 0.26 ms) runs on the
/// calling thread. Handing a chunk to a worker costs 5-30 us, so above it a
/// second thread pays for itself several times over (an add of 1M float32,
/// ~0.45 ms alone, takes ~0.25 ms on two threads).
const MIN_PARALLEL_WORK: usize = 1 << 18;

/// How long an idle worker watches for the next job before sleeping.
const SPIN: Duration = Duration::from_micros(100);

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

thread_local! {
    /// Set while this thread runs a chunk: nested calls run serially.
    static IN_CHUNK: Cell<bool> = const { Cell::new(false) };
}

/// Calls `f(start, end)` over a split of `0..n` into contiguous chunks, in
/// parallel when `n * cost_ns` is large enough to pay for the threads.
/// Chunk boundaries are multiples of `align` (so SIMD loops stay aligned);
/// there is one chunk per thread, so per-chunk setup (packing, scratch
/// buffers) is paid once per thread.
pub fn for_ranges(n: usize, cost_ns: usize, align: usize, f: impl Fn(usize, usize) + Sync) {
    let threads = num_threads();
    if threads <= 1 || n.saturating_mul(cost_ns) < MIN_PARALLEL_WORK || IN_CHUNK.get() {
        f(0, n);
        return;
    }
    let align = align.max(1);
    let chunk = n.div_ceil(threads).div_ceil(align) * align;
    if chunk >= n {
        f(0, n);
        return;
    }
    let pool = Pool::get();
    if pool.busy.swap(true, Ordering::Acquire) {
        return scoped(n, chunk, &f);
    }
    let panicked = pool.run(threads, n, chunk, &f);
    pool.busy.store(false, Ordering::Release);
    if let Some(payload) = panicked {
        // A chunk's panic goes on in the caller, as with scoped threads.
        std::panic::resume_unwind(payload);
    }
}

/// The split on scoped threads spawned for this call.
fn scoped(n: usize, chunk: usize, f: &(impl Fn(usize, usize) + Sync)) {
    std::thread::scope(|s| {
        let mut start = chunk;
        while start < n {
            let end = (start + chunk).min(n);
            s.spawn(move || in_chunk(f, start, end));
            start = end;
        }
        in_chunk(f, 0, chunk.min(n));
    });
}

fn in_chunk(f: &(dyn Fn(usize, usize) + Sync), start: usize, end: usize) {
    let was = IN_CHUNK.replace(true);
    f(start, end);
    IN_CHUNK.set(was);
}

type Body<'a> = dyn Fn(usize, usize) + Sync + 'a;

/// One parallel call: chunks `0..chunks` of `0..n`, claimed through `next`.
struct Job {
    /// The caller's closure, its lifetime erased. Only dereferenced for a
    /// claimed chunk, and the caller returns only once `done` counts every
    /// chunk, so it is alive whenever it is used.
    body: *const Body<'static>,
    n: usize,
    chunk: usize,
    chunks: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    /// The first panic raised by a chunk.
    panicked: Mutex<Option<Payload>>,
}

type Payload = Box<dyn std::any::Any + Send>;

// SAFETY: `body` points to a `Sync` closure, used under the protocol above.
unsafe impl Send for Job {}
// SAFETY: as for `Send`; the counters are atomics.
unsafe impl Sync for Job {}

impl Job {
    /// Claims and runs chunks until none are left.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.chunks {
                return;
            }
            let (start, end) = (i * self.chunk, ((i + 1) * self.chunk).min(self.n));
            // SAFETY: chunk `i` is claimed and not yet counted in `done`, so
            // the caller is still waiting and the closure is alive.
            let body = unsafe { &*self.body };
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| in_chunk(body, start, end))) {
                let mut first = self.panicked.lock().unwrap_or_else(PoisonError::into_inner);
                first.get_or_insert(payload);
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

struct Pool {
    /// The process the workers were started in.
    pid: u32,
    /// Bumped (under `job`'s lock) for every posted job; workers watch it.
    epoch: AtomicU64,
    job: Mutex<Option<Arc<Job>>>,
    wake: Condvar,
    workers: AtomicUsize,
    /// Held by the caller whose job the pool is running.
    busy: AtomicBool,
}

static POOL: AtomicPtr<Pool> = AtomicPtr::new(std::ptr::null_mut());

impl Pool {
    /// This process's pool, made on first use. A pool inherited over `fork`
    /// has no threads and maybe a lock held by a thread that is gone: it is
    /// left alone (leaked) and a new one made.
    fn get() -> &'static Pool {
        let pid = std::process::id();
        loop {
            let cur = POOL.load(Ordering::Acquire);
            // SAFETY: pools are leaked, never freed, once published.
            if let Some(p) = unsafe { cur.as_ref() } {
                if p.pid == pid {
                    return p;
                }
            }
            let new = Box::into_raw(Box::new(Pool {
                pid,
                epoch: AtomicU64::new(0),
                job: Mutex::new(None),
                wake: Condvar::new(),
                workers: AtomicUsize::new(0),
                busy: AtomicBool::new(false),
            }));
            match POOL.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                // SAFETY: just published; it lives for the rest of the process.
                Ok(_) => return unsafe { &*new },
                // SAFETY: `new` was never shared.
                Err(_) => drop(unsafe { Box::from_raw(new) }),
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Job>>> {
        self.job.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` over the chunks of `0..n` on the caller and the workers
    /// (started here up to `threads - 1`); a chunk's panic is returned.
    /// The caller holds `busy`.
    fn run(&'static self, threads: usize, n: usize, chunk: usize, f: &Body<'_>) -> Option<Payload> {
        let epoch = self.epoch.load(Ordering::Acquire);
        while self.workers.load(Ordering::Relaxed) < threads - 1 {
            let spawned = std::thread::Builder::new()
                .name("rtorch-worker".into())
                .spawn(move || self.worker(epoch));
            if spawned.is_err() {
                break; // fewer helpers; the caller claims what is left
            }
            self.workers.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: only the lifetime changes; see `Job::body`.
        let body: *const Body<'static> = unsafe { std::mem::transmute(f as *const Body<'_>) };
        let chunks = n.div_ceil(chunk);
        let job = Arc::new(Job {
            body,
            n,
            chunk,
            chunks,
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panicked: Mutex::new(None),
        });
        {
            let mut g = self.lock();
            *g = Some(job.clone());
            self.epoch.fetch_add(1, Ordering::Release);
        }
        self.wake.notify_all();
        job.work();
        // Chunks still running were claimed by a worker that is on them.
        let start = Instant::now();
        while job.done.load(Ordering::Acquire) < chunks {
            if start.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        *self.lock() = None;
        let mut panicked = job.panicked.lock().unwrap_or_else(PoisonError::into_inner);
        panicked.take()
    }

    /// A worker's life: run each posted job's unclaimed chunks.
    fn worker(&self, mut seen: u64) {
        loop {
            let start = Instant::now();
            let mut spins = 0u32;
            while self.epoch.load(Ordering::Acquire) == seen {
                std::hint::spin_loop();
                spins += 1;
                if spins.is_multiple_of(16) && start.elapsed() >= SPIN {
                    break;
                }
            }
            let job = {
                let mut g = self.lock();
                while self.epoch.load(Ordering::Acquire) == seen {
                    g = self.wake.wait(g).unwrap_or_else(PoisonError::into_inner);
                }
                seen = self.epoch.load(Ordering::Acquire);
                g.clone()
            };
            if let Some(job) = job {
                job.work();
            }
        }
    }
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

    #[test]
    fn nested_and_concurrent_calls_cover_everything_once() {
        let n = 1 << 20;
        let count = |outer: usize| {
            let seen: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            for_ranges(outer, n, 1, |s, e| {
                for _ in s..e {
                    // A nested call runs serially inside the chunk.
                    for_ranges(n, 1, 16, |a, b| {
                        for x in &seen[a..b] {
                            x.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
            });
            seen.iter().all(|x| x.load(Ordering::Relaxed) == outer)
        };
        std::thread::scope(|s| {
            let calls: Vec<_> = (1..5).map(|k| s.spawn(move || count(k))).collect();
            for c in calls {
                assert!(c.join().unwrap());
            }
        });
    }

    #[test]
    fn a_panicking_chunk_panics_the_caller_and_the_pool_recovers() {
        let r = std::panic::catch_unwind(|| {
            for_ranges(1 << 20, 1, 1, |s, _| {
                if s > 0 {
                    panic!("boom");
                }
            })
        });
        assert!(r.is_err() || num_threads() == 1);
        let total = AtomicUsize::new(0);
        for_ranges(1 << 20, 1, 1, |s, e| {
            total.fetch_add(e - s, Ordering::Relaxed);
        });
        assert_eq!(total.into_inner(), 1 << 20);
    }
}
