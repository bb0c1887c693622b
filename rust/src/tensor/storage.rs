//! Reference-counted, 64-byte-aligned buffers with a version counter.
//!
//! Invariant: `ptr` is valid for reads and writes of `nbytes` bytes for the
//! storage's whole lifetime. Views never outlive their storage because every
//! tensor holds an `Arc<Storage>`.

use std::alloc::{self, Layout as AllocLayout};
use std::any::Any;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::tensor::device::Device;

pub const ALIGN: usize = 64;

enum Owner {
    /// Allocated here with `ALIGN`; freed on drop.
    Aligned,
    /// Memory owned by someone else (a NumPy array, a DLPack capsule, a
    /// mapping); dropping the owner releases it.
    External(#[allow(dead_code)] Box<dyn Any + Send + Sync>),
}

pub struct Storage {
    ptr: NonNull<u8>,
    nbytes: usize,
    owner: Owner,
    device: Device,
    version: AtomicU64,
}

// SAFETY: the buffer is plain bytes with no thread affinity. As in PyTorch,
// concurrent writes to one storage from several threads are a data race the
// caller must avoid; every kernel only touches memory inside `nbytes`.
unsafe impl Send for Storage {}
// SAFETY: see `Send`; shared access hands out raw pointers only to kernels.
unsafe impl Sync for Storage {}

impl Storage {
    /// Allocates `nbytes` uninitialised bytes; fails cleanly when memory runs out.
    pub fn new_uninit(nbytes: usize) -> Result<Storage> {
        Self::alloc(nbytes, false)
    }

    /// Allocates `nbytes` zeroed bytes (the OS hands out zero pages cheaply).
    pub fn new_zeroed(nbytes: usize) -> Result<Storage> {
        Self::alloc(nbytes, true)
    }

    fn alloc(nbytes: usize, zeroed: bool) -> Result<Storage> {
        if !zeroed {
            if let Some(ptr) = cache::take(nbytes) {
                return Ok(Storage {
                    ptr,
                    nbytes,
                    owner: Owner::Aligned,
                    device: Device::Cpu,
                    version: AtomicU64::new(0),
                });
            }
        }
        if nbytes == 0 {
            return Ok(Storage {
                ptr: aligned_dangling(),
                nbytes: 0,
                owner: Owner::Aligned,
                device: Device::Cpu,
                version: AtomicU64::new(0),
            });
        }
        let oom = || Error::OutOfMemory {
            device: "DefaultCPUAllocator".into(),
            bytes: nbytes,
        };
        let layout = AllocLayout::from_size_align(nbytes, ALIGN).map_err(|_| oom())?;
        // SAFETY: `layout` has non-zero size (checked above).
        let raw = unsafe {
            if zeroed {
                alloc::alloc_zeroed(layout)
            } else {
                alloc::alloc(layout)
            }
        };
        let ptr = NonNull::new(raw).ok_or_else(oom)?;
        Ok(Storage {
            ptr,
            nbytes,
            owner: Owner::Aligned,
            device: Device::Cpu,
            version: AtomicU64::new(0),
        })
    }

    /// Wraps memory owned by `owner`.
    ///
    /// # Safety
    /// `ptr` must be valid for reads and writes of `nbytes` bytes for as long
    /// as `owner` is alive.
    pub unsafe fn from_external(
        ptr: *mut u8,
        nbytes: usize,
        owner: Box<dyn Any + Send + Sync>,
    ) -> Storage {
        Storage {
            ptr: NonNull::new(ptr).unwrap_or_else(aligned_dangling),
            nbytes,
            owner: Owner::External(owner),
            device: Device::Cpu,
            version: AtomicU64::new(0),
        }
    }

    pub fn nbytes(&self) -> usize {
        self.nbytes
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Records an in-place write, so autograd can detect stale saved tensors.
    pub fn bump_version(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }
}

fn aligned_dangling() -> NonNull<u8> {
    // An aligned, never dereferenced address for zero-byte storages.
    NonNull::new(ALIGN as *mut u8).unwrap_or(NonNull::dangling())
}

impl Drop for Storage {
    fn drop(&mut self) {
        if matches!(self.owner, Owner::Aligned) && self.nbytes > 0 {
            if cache::put(self.ptr, self.nbytes) {
                return;
            }
            if let Ok(layout) = AllocLayout::from_size_align(self.nbytes, ALIGN) {
                // SAFETY: allocated in `alloc` with exactly this layout.
                unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) };
            }
        }
    }
}

/// Large freed buffers kept for reuse. A fresh multi-megabyte buffer costs
/// a page fault per 4 KiB on first touch (PyTorch's out-of-place add runs at
/// a third of its `out=` speed for that reason); handing back a buffer of
/// the same size, already mapped, avoids it. Bounded in count and bytes.
mod cache {
    use std::alloc::{self, Layout as AllocLayout};
    use std::ptr::NonNull;

    use parking_lot::Mutex;

    use super::ALIGN;

    const MIN_BYTES: usize = 1 << 20;
    const MAX_ENTRIES: usize = 8;
    const MAX_TOTAL: usize = 1 << 30;

    struct Entry(NonNull<u8>, usize);
    // SAFETY: entries are plain allocations owned by the cache alone.
    unsafe impl Send for Entry {}

    static FREE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

    pub fn take(nbytes: usize) -> Option<NonNull<u8>> {
        if nbytes < MIN_BYTES {
            return None;
        }
        let mut free = FREE.lock();
        let i = free.iter().rposition(|e| e.1 == nbytes)?;
        Some(free.swap_remove(i).0)
    }

    /// Keeps the buffer; false when the caller must free it.
    pub fn put(ptr: NonNull<u8>, nbytes: usize) -> bool {
        if !(MIN_BYTES..=MAX_TOTAL / 2).contains(&nbytes) {
            return false;
        }
        let mut free = FREE.lock();
        let mut total: usize = free.iter().map(|e| e.1).sum();
        // Evict the oldest until the new buffer fits the bounds.
        while !free.is_empty() && (free.len() >= MAX_ENTRIES || total + nbytes > MAX_TOTAL) {
            let old = free.remove(0);
            total -= old.1;
            if let Ok(layout) = AllocLayout::from_size_align(old.1, ALIGN) {
                // SAFETY: cached buffers were allocated with this layout.
                unsafe { alloc::dealloc(old.0.as_ptr(), layout) };
            }
        }
        free.push(Entry(ptr, nbytes));
        true
    }
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({} bytes on {})", self.nbytes, self.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_is_aligned_and_zeroed() {
        let s = Storage::new_zeroed(1000).unwrap();
        assert_eq!(s.as_ptr() as usize % ALIGN, 0);
        // SAFETY: 1000 bytes were just allocated.
        let bytes = unsafe { std::slice::from_raw_parts(s.as_ptr(), 1000) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn huge_allocation_fails_with_out_of_memory() {
        let err = Storage::new_uninit(1 << 62).unwrap_err();
        assert!(matches!(err, Error::OutOfMemory { .. }));
    }
}
