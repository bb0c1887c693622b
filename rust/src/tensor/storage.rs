//! Reference-counted, 64-byte-aligned buffers with a version counter.
//!
//! Invariant: `as_ptr()` is valid for reads and writes of `nbytes` bytes for
//! the storage's whole lifetime. Views never outlive their storage because
//! every tensor holds an `Arc<Storage>`.
//!
//! Note [moving a storage to shared memory]: `share_memory` copies the bytes
//! into a shared segment (`shm.rs`) and swaps the pointer in place, so every
//! tensor over the storage sees shared memory from then on. The pointer is
//! an `AtomicPtr` and the first allocation (`base`) stays alive until the
//! storage drops: a kernel that loaded the old pointer just before the swap
//! (another thread, running without the GIL) still touches live memory,
//! never freed memory. Its writes after the copy land in the old buffer and
//! are lost, the same data race as any unsynchronised write. Large own
//! buffers give their pages back to the OS after the move (`MADV_DONTNEED`:
//! the range stays mapped and reads as zeros), so the move does not double
//! a dataset's memory. A storage moves at most once and never back.

use std::alloc::{self, Layout as AllocLayout};
use std::any::Any;
use std::os::fd::{OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::tensor::device::Device;
use crate::tensor::shm::{self, Segment, SegmentKey};

pub const ALIGN: usize = 64;

enum Owner {
    /// Allocated here with `ALIGN`; freed on drop.
    Aligned,
    /// Memory owned by someone else (a NumPy array, a DLPack capsule, a
    /// mapping); dropping the owner releases it.
    External(#[allow(dead_code)] Box<dyn Any + Send + Sync>),
    /// Born in shared memory (received from another process): `base` is a
    /// dangling placeholder and the segment owns the bytes.
    Nothing,
}

pub struct Storage {
    /// Where the bytes are: `base`, or the segment's mapping once shared.
    ptr: AtomicPtr<u8>,
    /// The first allocation, released on drop (see the note above).
    base: NonNull<u8>,
    nbytes: usize,
    owner: Owner,
    shared: OnceLock<Segment>,
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
                return Ok(Storage::with_base(ptr, nbytes, Owner::Aligned));
            }
        }
        if nbytes == 0 {
            return Ok(Storage::with_base(aligned_dangling(), 0, Owner::Aligned));
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
        Ok(Storage::with_base(ptr, nbytes, Owner::Aligned))
    }

    fn with_base(base: NonNull<u8>, nbytes: usize, owner: Owner) -> Storage {
        Storage {
            ptr: AtomicPtr::new(base.as_ptr()),
            base,
            nbytes,
            owner,
            shared: OnceLock::new(),
            device: Device::Cpu,
            version: AtomicU64::new(0),
        }
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
        let base = NonNull::new(ptr).unwrap_or_else(aligned_dangling);
        Storage::with_base(base, nbytes, Owner::External(owner))
    }

    /// A storage over a shared segment received from another process
    /// (`fd` is taken over). A segment already mapped here yields the live
    /// storage over it, so aliasing survives the trip.
    pub fn from_shared_fd(fd: OwnedFd, nbytes: usize) -> Result<Arc<Storage>> {
        if let Some(s) = shm::lookup(shm::key_of(&fd)?) {
            return Ok(s);
        }
        Ok(Storage::over_segment(Segment::open(fd, nbytes)?, nbytes))
    }

    /// A fresh zero-filled storage in shared memory (a DataLoader worker
    /// collates straight into one, so sending it copies nothing).
    pub fn new_shared(nbytes: usize) -> Result<Arc<Storage>> {
        Ok(Storage::over_segment(Segment::create(nbytes)?, nbytes))
    }

    fn over_segment(seg: Segment, nbytes: usize) -> Arc<Storage> {
        let key = seg.key();
        let mut s = Storage::with_base(aligned_dangling(), nbytes, Owner::Nothing);
        s.ptr = AtomicPtr::new(seg.as_ptr());
        s.shared = OnceLock::from(seg);
        let s = Arc::new(s);
        shm::remember(key, &s);
        s
    }

    /// Moves the bytes into a shared segment in place (a no-op when already
    /// shared). See Note [moving a storage to shared memory].
    pub fn share_memory(self: &Arc<Self>) -> Result<()> {
        if self.shared.get().is_some() {
            return Ok(());
        }
        if self.device != Device::Cpu {
            return Err(Error::NotImplemented(format!(
                "share_memory_: only CPU storages can be shared, not {}",
                self.device
            )));
        }
        let seg = Segment::create(self.nbytes)?;
        // SAFETY: both ranges hold `nbytes` bytes (the storage invariant and
        // a fresh segment of that length) and cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(self.as_ptr(), seg.as_ptr(), self.nbytes) };
        let key = seg.key();
        // Two threads racing here each made a segment; the loser's drops.
        if self.shared.set(seg).is_err() {
            return Ok(());
        }
        if let Some(seg) = self.shared.get() {
            self.ptr.store(seg.as_ptr(), Ordering::Release);
        }
        self.release_base_pages();
        shm::remember(key, self);
        Ok(())
    }

    /// After a move, hands the physical pages of a large own buffer back to
    /// the OS; the range stays mapped (reads as zeros) for late readers.
    fn release_base_pages(&self) {
        const PAGE: usize = 4096;
        if !matches!(self.owner, Owner::Aligned) || self.nbytes < (1 << 20) {
            return;
        }
        let start = (self.base.as_ptr() as usize).div_ceil(PAGE) * PAGE;
        let end = (self.base.as_ptr() as usize + self.nbytes) / PAGE * PAGE;
        if end > start {
            // SAFETY: whole pages inside our own allocation; MADV_DONTNEED
            // keeps them mapped, so later access is defined (zero-filled).
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
    }

    /// Whether `resize_` may grow it: own memory only (not shared, not borrowed).
    pub fn resizable(&self) -> bool {
        matches!(self.owner, Owner::Aligned) && !self.is_shared()
    }

    pub fn is_shared(&self) -> bool {
        self.shared.get().is_some()
    }

    /// The shared segment's descriptor (borrowed) and key, once shared.
    pub fn shared_handle(&self) -> Option<(RawFd, SegmentKey)> {
        self.shared.get().map(|s| (s.fd(), s.key()))
    }

    pub fn nbytes(&self) -> usize {
        self.nbytes
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.load(Ordering::Acquire)
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Records an in-place write, so autograd can detect stale saved tensors.
    pub fn bump_version(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }
}

pub(crate) fn aligned_dangling() -> NonNull<u8> {
    // An aligned, never dereferenced address for zero-byte storages.
    NonNull::new(ALIGN as *mut u8).unwrap_or(NonNull::dangling())
}

impl Drop for Storage {
    fn drop(&mut self) {
        if matches!(self.owner, Owner::Aligned) && self.nbytes > 0 {
            if cache::put(self.base, self.nbytes) {
                return;
            }
            if let Ok(layout) = AllocLayout::from_size_align(self.nbytes, ALIGN) {
                // SAFETY: allocated in `alloc` with exactly this layout.
                unsafe { alloc::dealloc(self.base.as_ptr(), layout) };
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
    use std::cell::RefCell;
    use std::ptr::NonNull;
    use std::sync::{Mutex, MutexGuard, PoisonError};

    use super::ALIGN;

    const MIN_BYTES: usize = 1 << 20;
    const MAX_ENTRIES: usize = 8;
    const MAX_TOTAL: usize = 1 << 30;

    struct Entry(NonNull<u8>, usize);
    // SAFETY: entries are plain allocations owned by the cache alone.
    unsafe impl Send for Entry {}

    // A std (futex) mutex for fork safety, as `shm::CACHE`.
    static FREE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

    fn free() -> MutexGuard<'static, Vec<Entry>> {
        FREE.lock().unwrap_or_else(PoisonError::into_inner)
    }

    std::thread_local! {
        /// The free list's guard, held by the forking thread across `fork`.
        static HELD: RefCell<Option<MutexGuard<'static, Vec<Entry>>>> = const { RefCell::new(None) };
    }

    pub fn take(nbytes: usize) -> Option<NonNull<u8>> {
        if nbytes < MIN_BYTES {
            return None;
        }
        crate::tensor::shm::install_fork_handlers();
        let mut free = free();
        let i = free.iter().rposition(|e| e.1 == nbytes)?;
        Some(free.swap_remove(i).0)
    }

    /// Keeps the buffer; false when the caller must free it.
    pub fn put(ptr: NonNull<u8>, nbytes: usize) -> bool {
        if !(MIN_BYTES..=MAX_TOTAL / 2).contains(&nbytes) {
            return false;
        }
        crate::tensor::shm::install_fork_handlers();
        let mut free = free();
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

    /// Locks the free list across `fork` (see `shm::install_fork_handlers`).
    pub fn lock_for_fork() {
        HELD.with(|h| *h.borrow_mut() = Some(free()));
    }

    pub fn unlock_after_fork() {
        HELD.with(|h| drop(h.borrow_mut().take()));
    }
}

pub(crate) use cache::{lock_for_fork, unlock_after_fork};

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.is_shared() { ", shared" } else { "" };
        write!(f, "Storage({} bytes on {}{kind})", self.nbytes, self.device)
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
