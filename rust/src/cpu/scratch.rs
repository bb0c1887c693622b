//! Reusable scratch buffers for kernels that need temporary matrices
//! (im2col columns, GEMM staging).
//!
//! A fresh multi-megabyte `Vec` per call costs an `mmap`, a page fault per
//! 4 KiB and a memset, which for a small convolution is as much as the
//! arithmetic. Buffers come from a process-wide pool instead (kernel threads
//! are short-lived scoped threads, so a thread-local pool would not survive
//! the call) and go back to it on drop. Their contents are stale: callers
//! overwrite what they read.

use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::marker::PhantomData;

/// Buffers kept for reuse, and the largest one kept (larger ones are freed).
const KEEP: usize = 8;
const KEEP_BYTES: usize = 64 << 20;

static POOL: Mutex<Vec<Vec<u64>>> = Mutex::new(Vec::new());

/// Element types whose every bit pattern is a valid value, so stale bytes
/// can be viewed as them.
///
/// # Safety
/// Implementors must be plain data of size and alignment at most 8.
pub unsafe trait Plain: Copy {}
// SAFETY: floats of size 4 and 8; any bit pattern is some float.
unsafe impl Plain for f32 {}
// SAFETY: as above.
unsafe impl Plain for f64 {}

/// A scratch buffer of `len` elements with unspecified contents.
pub struct Scratch<T: Plain> {
    words: Vec<u64>,
    len: usize,
    _t: PhantomData<T>,
}

impl<T: Plain> Scratch<T> {
    /// A buffer of `len` elements, reused from the pool when one is large
    /// enough (the smallest such), else the largest grown to size.
    pub fn new(len: usize) -> Result<Self> {
        let need = len.saturating_mul(std::mem::size_of::<T>()).div_ceil(8);
        let mut words = {
            let mut pool = POOL.lock();
            let fit = (0..pool.len())
                .filter(|&i| pool[i].len() >= need)
                .min_by_key(|&i| pool[i].len())
                .or_else(|| (0..pool.len()).max_by_key(|&i| pool[i].len()));
            fit.map(|i| pool.swap_remove(i)).unwrap_or_default()
        };
        if words.len() < need {
            words
                .try_reserve_exact(need - words.len())
                .map_err(|_| Error::OutOfMemory {
                    device: "DefaultCPUAllocator".into(),
                    bytes: need.saturating_mul(8),
                })?;
            words.resize(need, 0);
        }
        Ok(Self {
            words,
            len,
            _t: PhantomData,
        })
    }
}

impl<T: Plain> std::ops::Deref for Scratch<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `words` holds at least `len * size_of::<T>()` initialised
        // bytes, 8-aligned (T's alignment is at most 8), and every bit
        // pattern is a valid `T` (`Plain`).
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<T>(), self.len) }
    }
}

impl<T: Plain> std::ops::DerefMut for Scratch<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `self` is borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<T>(), self.len) }
    }
}

impl<T: Plain> Drop for Scratch<T> {
    fn drop(&mut self) {
        let words = std::mem::take(&mut self.words);
        if words.is_empty() || words.len() * 8 > KEEP_BYTES {
            return;
        }
        let mut pool = POOL.lock();
        if pool.len() < KEEP {
            pool.push(words);
        } else if let Some(i) = (0..pool.len()).min_by_key(|&i| pool[i].len()) {
            // Keep the larger buffers: they are the expensive ones to make.
            if pool[i].len() < words.len() {
                pool[i] = words;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_have_the_asked_length_and_are_reused() {
        let ptr = {
            let mut a = Scratch::<f32>::new(1000).unwrap();
            assert_eq!(a.len(), 1000);
            a.fill(1.5);
            a.as_ptr() as usize
        };
        let b = Scratch::<f64>::new(400).unwrap();
        assert_eq!(b.len(), 400);
        // Another test may have taken it meanwhile; when it is ours, the
        // stale values are the f32 pattern written above.
        if b.as_ptr() as usize == ptr {
            assert_eq!(f32::from_bits(b[0].to_bits() as u32), 1.5);
        }
    }
}
