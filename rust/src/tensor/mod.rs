//! The tensor handle: a cheap `Arc` to storage, layout, dtype and autograd state.

pub mod device;
pub mod dtype;
pub mod layout;
pub mod shm;
pub mod storage;

use std::sync::{Arc, Weak};

use parking_lot::Mutex;

pub use device::Device;
pub use dtype::{DType, Element, Scalar};
pub use layout::{Dims, Layout, Strides};
pub use storage::Storage;

use crate::autograd::{self, Hook, Node, ViewFn};
use crate::error::{Error, Result};

/// Per-tensor autograd state (see `crate::autograd`).
#[derive(Default)]
pub struct AutogradMeta {
    /// Set on leaves by the user; non-leaves require grad through `grad_fn`.
    pub requires_grad: bool,
    pub grad: Option<Tensor>,
    /// The node that made this tensor, and which of its outputs it is.
    pub grad_fn: Option<Arc<Node>>,
    pub output_nr: usize,
    /// A leaf's accumulator, shared by every graph that uses the leaf.
    pub grad_accumulator: Weak<Node>,
    pub retains_grad: bool,
    /// Hooks of a leaf (a non-leaf's hooks live on its `grad_fn`).
    pub hooks: Vec<(u64, Hook)>,
    /// For a differentiable view: its base and how to remake the view from it.
    pub view: Option<(Tensor, ViewFn)>,
    /// Made under inference mode: never saved for backward.
    pub inference: bool,
}

pub struct TensorImpl {
    storage: Arc<Storage>,
    layout: Layout,
    dtype: DType,
    autograd: Mutex<AutogradMeta>,
}

#[derive(Clone)]
pub struct Tensor(Arc<TensorImpl>);

/// A tensor handle that does not keep the tensor alive.
#[derive(Clone)]
pub struct WeakTensor(Weak<TensorImpl>);

impl WeakTensor {
    pub fn upgrade(&self) -> Option<Tensor> {
        self.0.upgrade().map(Tensor)
    }
}

impl Tensor {
    /// Makes a tensor over `storage`, validating that `layout` fits inside it.
    pub fn from_parts(storage: Arc<Storage>, layout: Layout, dtype: DType) -> Result<Tensor> {
        layout.check_fits(storage.nbytes(), dtype.size())?;
        Ok(Tensor(Arc::new(TensorImpl {
            storage,
            layout,
            dtype,
            autograd: Mutex::new(AutogradMeta {
                inference: autograd::is_inference_mode(),
                ..AutogradMeta::default()
            }),
        })))
    }

    /// An uninitialised contiguous tensor.
    pub fn empty(shape: &[usize], dtype: DType) -> Result<Tensor> {
        let nbytes = bytes_for(shape, dtype)?;
        let storage = Arc::new(Storage::new_uninit(nbytes)?);
        Tensor::from_parts(storage, Layout::contiguous(shape), dtype)
    }

    /// An uninitialised tensor with the given strides (dense, non-overlapping).
    pub fn empty_strided(shape: &[usize], strides: &[isize], dtype: DType) -> Result<Tensor> {
        let nbytes = bytes_for(shape, dtype)?;
        let storage = Arc::new(Storage::new_uninit(nbytes)?);
        let layout = Layout {
            shape: shape.into(),
            strides: strides.into(),
            offset: 0,
        };
        Tensor::from_parts(storage, layout, dtype)
    }

    pub fn zeros(shape: &[usize], dtype: DType) -> Result<Tensor> {
        let nbytes = bytes_for(shape, dtype)?;
        let storage = Arc::new(Storage::new_zeroed(nbytes)?);
        Tensor::from_parts(storage, Layout::contiguous(shape), dtype)
    }

    /// A contiguous tensor holding a copy of `data`.
    pub fn from_slice<T: Element>(data: &[T], shape: &[usize]) -> Result<Tensor> {
        let numel = layout::checked_numel(shape)?;
        if numel != data.len() {
            return Err(Error::Runtime(format!(
                "shape {} is invalid for input of size {}",
                layout::fmt_shape(shape),
                data.len()
            )));
        }
        let t = Tensor::empty(shape, T::DTYPE)?;
        // SAFETY: `t` is a fresh contiguous buffer of exactly `numel` elements of T.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), t.data_ptr::<T>(), numel) };
        Ok(t)
    }

    pub fn scalar<T: Element>(v: T) -> Result<Tensor> {
        Tensor::from_slice(&[v], &[])
    }

    /// A new handle over the same storage with another layout (a view).
    pub fn view_with(&self, layout: Layout) -> Result<Tensor> {
        Tensor::from_parts(self.0.storage.clone(), layout, self.0.dtype)
    }

    /// The same storage and layout reinterpreted under a fresh handle
    /// (no autograd history): `detach`.
    pub fn alias(&self) -> Tensor {
        Tensor(Arc::new(TensorImpl {
            storage: self.0.storage.clone(),
            layout: self.0.layout.clone(),
            dtype: self.0.dtype,
            autograd: Mutex::new(AutogradMeta {
                inference: autograd::is_inference_mode(),
                ..AutogradMeta::default()
            }),
        }))
    }

    pub fn storage(&self) -> &Arc<Storage> {
        &self.0.storage
    }
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }
    pub fn shape(&self) -> &[usize] {
        &self.0.layout.shape
    }
    pub fn strides(&self) -> &[isize] {
        &self.0.layout.strides
    }
    pub fn offset(&self) -> usize {
        self.0.layout.offset
    }
    pub fn ndim(&self) -> usize {
        self.0.layout.ndim()
    }
    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }
    pub fn device(&self) -> Device {
        self.0.storage.device()
    }
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }
    pub fn version(&self) -> u64 {
        self.0.storage.version()
    }
    pub fn bump_version(&self) {
        self.0.storage.bump_version()
    }
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }
    /// Whether this handle is the only one to its tensor and its storage
    /// (so a gradient can be kept without a copy).
    pub fn is_unique(&self) -> bool {
        Arc::strong_count(&self.0) == 1 && Arc::strong_count(&self.0.storage) == 1
    }
    /// Whether this is the only handle to its tensor.
    pub fn is_unique_handle(&self) -> bool {
        Arc::strong_count(&self.0) == 1
    }
    pub fn same_tensor(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Pointer to element 0 of this view.
    ///
    /// Callers must pass `T` equal to `self.dtype()` and stay within the
    /// layout, which was validated against the storage.
    pub fn data_ptr<T: Element>(&self) -> *mut T {
        debug_assert_eq!(T::DTYPE, self.dtype());
        self.raw_ptr() as *mut T
    }

    /// Address of element 0 of this view, as bytes.
    pub fn raw_ptr(&self) -> *mut u8 {
        // The offset is inside the storage (validated in `from_parts`) unless
        // the view is empty, in which case it is never dereferenced.
        self.0
            .storage
            .as_ptr()
            .wrapping_add(self.offset() * self.dtype().size())
    }

    pub fn requires_grad(&self) -> bool {
        let m = self.0.autograd.lock();
        m.requires_grad || m.grad_fn.is_some()
    }

    /// `requires_grad_()`: only leaves may change the flag.
    pub fn set_requires_grad(&self, flag: bool) -> Result<()> {
        let mut m = self.0.autograd.lock();
        if m.grad_fn.is_some() {
            if flag {
                return Ok(());
            }
            return Err(Error::Runtime(
                "you can only change requires_grad flags of leaf variables. If you want to use a computed variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach().".into(),
            ));
        }
        if flag && !self.dtype().is_floating_point() {
            return Err(Error::Runtime(
                "Only Tensors of floating point and complex dtype can require gradients".into(),
            ));
        }
        m.requires_grad = flag;
        Ok(())
    }

    pub fn grad(&self) -> Option<Tensor> {
        self.0.autograd.lock().grad.clone()
    }

    pub fn set_grad(&self, grad: Option<Tensor>) {
        self.0.autograd.lock().grad = grad;
    }

    pub fn grad_fn(&self) -> Option<Arc<Node>> {
        self.0.autograd.lock().grad_fn.clone()
    }

    pub fn output_nr(&self) -> usize {
        self.0.autograd.lock().output_nr
    }

    pub fn is_leaf(&self) -> bool {
        self.0.autograd.lock().grad_fn.is_none()
    }

    pub fn is_inference(&self) -> bool {
        self.0.autograd.lock().inference
    }

    /// The autograd state, locked. Keep the guard short-lived: never call
    /// an op or a hook while holding it.
    pub fn meta(&self) -> parking_lot::MutexGuard<'_, AutogradMeta> {
        self.0.autograd.lock()
    }

    /// A weak handle, for hooks that must not keep the tensor alive.
    pub fn downgrade(&self) -> WeakTensor {
        WeakTensor(Arc::downgrade(&self.0))
    }

    /// Reads element `i` of a contiguous walk, as a scalar (for `item`/`tolist`).
    pub fn get_scalar(&self, flat_offset: usize) -> Scalar {
        crate::dispatch!(self.dtype(), T => {
            // SAFETY: callers pass offsets computed from this tensor's layout.
            let v = unsafe { *self.data_ptr::<T>().add(flat_offset) };
            v.to_scalar()
        })
    }
}

fn bytes_for(shape: &[usize], dtype: DType) -> Result<usize> {
    let numel = layout::checked_numel(shape)?;
    numel
        .checked_mul(dtype.size())
        .ok_or_else(|| Error::OutOfMemory {
            device: "DefaultCPUAllocator".into(),
            bytes: usize::MAX,
        })
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor(shape={:?}, dtype={}, device={})",
            self.shape(),
            self.dtype(),
            self.device()
        )
    }
}
