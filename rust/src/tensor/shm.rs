//! Anonymous shared memory for storages that cross process boundaries.
//!
//! A segment is a sealed `memfd` mapped `MAP_SHARED`. It has no name in any
//! file system, so the kernel frees it when the last file descriptor and the
//! last mapping go away, whichever process held them and however it died
//! (SIGKILL included): nothing can leak. The size is sealed (`F_SEAL_SHRINK
//! | F_SEAL_GROW`), so no process can truncate a segment under another's
//! mapping (which would turn every later access into SIGBUS); a received
//! descriptor without those seals is refused.
//!
//! Processes tell segments apart by `(st_dev, st_ino)`: a per-process cache
//! maps that key to the live `Storage`, so two tensors sharing a storage
//! still share one after a trip through a pipe, and a storage sent back to
//! its owner comes back as the same storage.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex as StdMutex, MutexGuard, Once, PoisonError, Weak};

use super::storage::{aligned_dangling, Storage};
use crate::error::{Error, Result};

/// Identifies one segment across processes: `(st_dev, st_ino)`.
pub type SegmentKey = (u64, u64);

/// One mapped segment: the descriptor (kept so the storage can be sent on)
/// and the mapping, both released on drop.
pub struct Segment {
    fd: OwnedFd,
    map: NonNull<u8>,
    len: usize,
    key: SegmentKey,
}

// SAFETY: the mapping is plain shared bytes with no thread affinity; the
// descriptor is an owned integer. Data races on the bytes are the caller's
// concern, as for every storage.
unsafe impl Send for Segment {}
// SAFETY: see `Send`; `Segment` exposes no interior mutation of its own.
unsafe impl Sync for Segment {}

fn os_err(what: &str) -> Error {
    Error::Runtime(format!("{what}: {}", std::io::Error::last_os_error()))
}

impl Segment {
    /// A fresh zero-filled segment of `len` bytes.
    pub fn create(len: usize) -> Result<Segment> {
        let oom = || Error::OutOfMemory {
            device: "shared memory".into(),
            bytes: len,
        };
        let size = libc::off_t::try_from(len).map_err(|_| oom())?;
        let fd = sys::anonymous_fd()?;
        let raw = fd.as_raw_fd();
        // SAFETY: a plain syscall on our own descriptor.
        if unsafe { libc::ftruncate(raw, size) } != 0 {
            return Err(oom());
        }
        sys::reserve_and_seal(raw, size, oom)?;
        Segment::map(fd, len)
    }

    /// Maps a received descriptor holding at least `len` bytes.
    pub fn open(fd: OwnedFd, len: usize) -> Result<Segment> {
        let raw = fd.as_raw_fd();
        sys::check_sealed(raw)?;
        let size = fstat(raw)?.st_size;
        if u64::try_from(size).map_or(true, |s| s < len as u64) {
            return Err(Error::Runtime(format!(
                "shared memory segment holds {size} bytes, fewer than the {len} expected"
            )));
        }
        Segment::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> Result<Segment> {
        let key = key_of(&fd)?;
        if len == 0 {
            return Ok(Segment {
                fd,
                map: aligned_dangling(),
                len,
                key,
            });
        }
        // SAFETY: a fresh mapping of `len` bytes of a descriptor whose size
        // is at least `len` and sealed against shrinking.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | sys::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error::OutOfMemory {
                device: "shared memory".into(),
                bytes: len,
            });
        }
        let map = NonNull::new(p.cast::<u8>()).ok_or_else(|| os_err("mmap"))?;
        Ok(Segment { fd, map, len, key })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.map.as_ptr()
    }
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
    pub fn key(&self) -> SegmentKey {
        self.key
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: the mapping was made in `map` with exactly this length
            // and nothing refers to it once its storage is gone.
            unsafe { libc::munmap(self.map.as_ptr().cast(), self.len) };
        }
        // The descriptor closes when `fd` drops.
    }
}

/// The key of a received descriptor, to look it up before mapping it.
pub fn key_of(fd: &OwnedFd) -> Result<SegmentKey> {
    let st = fstat(fd.as_raw_fd())?;
    // Both are unsigned on Linux; macOS's st_dev is a signed int. A key only
    // needs to be the same bits in every process, so reinterpret.
    #[allow(clippy::unnecessary_cast)]
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// Linux: a sealed memfd (see the module docs).
#[cfg(target_os = "linux")]
mod sys {
    use super::{os_err, Error, Result};
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};

    const SEALS: libc::c_int = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
    pub const MAP_POPULATE: libc::c_int = libc::MAP_POPULATE;

    pub fn anonymous_fd() -> Result<OwnedFd> {
        // SAFETY: the name is a NUL-terminated literal; flags are valid.
        let raw = unsafe {
            libc::memfd_create(
                c"rtorch".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if raw < 0 {
            return Err(os_err("unable to create a shared memory segment"));
        }
        // SAFETY: `raw` is a descriptor we just opened and nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    }

    pub fn reserve_and_seal(raw: RawFd, size: libc::off_t, oom: impl Fn() -> Error) -> Result<()> {
        // SAFETY: plain syscalls on our own descriptor.
        unsafe {
            // Reserve the pages now: running out of memory is then an error
            // here instead of SIGBUS on first touch. Kernels without
            // fallocate for shmem (EOPNOTSUPP) keep the lazy behaviour.
            if size > 0 && libc::fallocate(raw, 0, 0, size) != 0 {
                let errno = std::io::Error::last_os_error().raw_os_error();
                if errno != Some(libc::EOPNOTSUPP) {
                    return Err(oom());
                }
            }
            if libc::fcntl(raw, libc::F_ADD_SEALS, SEALS | libc::F_SEAL_SEAL) != 0 {
                return Err(os_err("unable to seal a shared memory segment"));
            }
        }
        Ok(())
    }

    pub fn check_sealed(raw: RawFd) -> Result<()> {
        // SAFETY: F_GET_SEALS only reads the descriptor's state.
        let seals = unsafe { libc::fcntl(raw, libc::F_GET_SEALS) };
        if seals < 0 || seals & SEALS != SEALS {
            return Err(Error::Runtime(
                "received file descriptor is not a sealed rtorch shared memory segment".into(),
            ));
        }
        Ok(())
    }
}

/// Other Unix (macOS, BSD): a POSIX shared memory object unlinked as soon
/// as it is open, so it is as anonymous as a memfd. These systems have no
/// seals; a received segment is only checked to be large enough.
#[cfg(not(target_os = "linux"))]
mod sys {
    use super::{os_err, Error, Result};
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};
    use std::sync::atomic::{AtomicU64, Ordering};

    pub const MAP_POPULATE: libc::c_int = 0;

    pub fn anonymous_fd() -> Result<OwnedFd> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        for _ in 0..16 {
            let nonce = NEXT.fetch_add(1, Ordering::Relaxed);
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            // macOS limits the name to 31 bytes.
            let name = format!("/rt{}.{nonce}.{t:x}\0", std::process::id());
            // SAFETY: `name` is NUL-terminated; flags and mode are valid.
            let raw = unsafe {
                libc::shm_open(
                    name.as_ptr().cast(),
                    libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
                    0o600 as libc::c_uint,
                )
            };
            if raw < 0 {
                if std::io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST) {
                    continue;
                }
                return Err(os_err("unable to create a shared memory segment"));
            }
            // SAFETY: `raw` is a descriptor we just opened and nobody else
            // owns; unlinking leaves it (and its pages) alive.
            unsafe {
                libc::shm_unlink(name.as_ptr().cast());
                libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC);
                return Ok(OwnedFd::from_raw_fd(raw));
            }
        }
        Err(os_err("unable to create a shared memory segment"))
    }

    pub fn reserve_and_seal(_: RawFd, _: libc::off_t, _: impl Fn() -> Error) -> Result<()> {
        Ok(())
    }

    pub fn check_sealed(_: RawFd) -> Result<()> {
        Ok(())
    }
}

fn fstat(fd: RawFd) -> Result<libc::stat> {
    // SAFETY: `stat` is plain old data; fstat fills it or fails.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return Err(os_err("fstat"));
        }
        Ok(st)
    }
}

/// The received-storage cache: segment key to the live storage over it.
/// Dead entries are pruned when it outgrows `limit` (which then doubles the
/// live count, as in PyTorch's `SharedCache`).
struct Cache {
    map: BTreeMap<SegmentKey, Weak<Storage>>,
    limit: usize,
}

// A std (futex) mutex, not parking_lot's: a child forked while another
// thread was parked on a parking_lot mutex can inherit it handed to that
// (absent) thread, and deadlock. A futex mutex unlocked in the child is free.
static CACHE: StdMutex<Cache> = StdMutex::new(Cache {
    map: BTreeMap::new(),
    limit: 128,
});

fn cache() -> MutexGuard<'static, Cache> {
    CACHE.lock().unwrap_or_else(PoisonError::into_inner)
}

std::thread_local! {
    /// The cache's guard, held by the forking thread across `fork`.
    static HELD: RefCell<Option<MutexGuard<'static, Cache>>> = const { RefCell::new(None) };
}

pub fn remember(key: SegmentKey, storage: &Arc<Storage>) {
    install_fork_handlers();
    let mut cache = cache();
    cache.map.insert(key, Arc::downgrade(storage));
    if cache.map.len() > cache.limit {
        cache.map.retain(|_, w| w.strong_count() > 0);
        cache.limit = (cache.map.len() * 2).max(128);
    }
}

pub fn lookup(key: SegmentKey) -> Option<Arc<Storage>> {
    install_fork_handlers();
    cache().map.get(&key).and_then(Weak::upgrade)
}

/// Live entries in the cache (tests use it to prove storages are released).
pub fn cached_count() -> usize {
    cache()
        .map
        .values()
        .filter(|w| w.strong_count() > 0)
        .count()
}

/// Makes `fork` safe for the process-wide locks of the storage layer: each
/// is taken before the fork and released after it in both processes, so a
/// child forked while another thread held one (a DataLoader forking workers
/// while a background thread allocates) never inherits it locked.
pub fn install_fork_handlers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: the handlers are plain `extern "C"` functions that only
        // lock and unlock process-wide mutexes.
        unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork)) };
    });
}

extern "C" fn before_fork() {
    super::storage::lock_for_fork();
    HELD.with(|h| *h.borrow_mut() = Some(cache()));
}

/// Releases what `before_fork` took, in the parent and in the child (where
/// the forking thread is the only thread, and the guards are its own).
extern "C" fn after_fork() {
    HELD.with(|h| drop(h.borrow_mut().take()));
    super::storage::unlock_after_fork();
}
