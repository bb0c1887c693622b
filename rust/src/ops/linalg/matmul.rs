//! Matrix products: `matmul` (every rank combination PyTorch accepts), `mm`,
//! `bmm`, `mv`, `dot`, `vdot` and the fused `addmm` family. All of them
//! reduce to one primitive, [`gemm_batched`], which hands strided operands
//! straight to the `gemm` crate (transposed views cost no copy).

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cpu::iter::for_each_offset;
use crate::cpu::parallel::{for_ranges, num_threads};
use crate::dispatch;
use crate::error::{try_vec, Error, Result};
use crate::ops::copy;
use crate::tensor::layout::{broadcast_shapes, Layout};
use crate::tensor::{DType, Element, Scalar, Tensor};

/// The C++ type name PyTorch prints in `mat1 and mat2` dtype errors.
fn c_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "float",
        DType::F64 => "double",
        DType::F16 => "c10::Half",
        DType::BF16 => "c10::BFloat16",
        DType::I64 => "long int",
        DType::I32 => "int",
        DType::I16 => "short int",
        DType::I8 => "signed char",
        DType::U8 => "unsigned char",
        DType::Bool => "bool",
    }
}

fn same_dtype(a: &Tensor, b: &Tensor) -> Result<()> {
    if a.dtype() != b.dtype() {
        return Err(Error::Runtime(format!(
            "expected m1 and m2 to have the same dtype, but got: {} != {}",
            c_name(a.dtype()),
            c_name(b.dtype())
        )));
    }
    Ok(())
}

fn not_bool(kernel: &str, d: DType) -> Result<()> {
    if d == DType::Bool {
        return Err(Error::Runtime(format!(
            "\"{kernel}\" not implemented for 'Bool'"
        )));
    }
    Ok(())
}

/// Integer tensors refuse floating `alpha`/`beta`, as PyTorch.
fn check_coef(name: &str, d: DType, s: Scalar) -> Result<()> {
    if !d.is_floating_point() && matches!(s, Scalar::Float(_)) {
        return Err(Error::Runtime(format!(
            "For integral input tensors, argument {name} must not be a floating point number."
        )));
    }
    Ok(())
}

/// Raw pointers cross into worker threads as addresses.
#[derive(Clone, Copy)]
struct Addr(usize);

/// One strided matrix: element pointer plus row and column strides.
#[derive(Clone, Copy)]
struct Mat {
    ptr: Addr,
    rs: isize,
    cs: isize,
}

impl Mat {
    fn at<T>(self, r: usize, c: usize) -> *mut T {
        (self.ptr.0 as *mut T).wrapping_offset(r as isize * self.rs + c as isize * self.cs)
    }
}

/// `dst = beta * dst + alpha * a @ b` for one m x n product of depth k
/// (`beta = None` overwrites `dst`). Floats go to the `gemm` crate, integers
/// to a plain loop with wrapping arithmetic (as C++ integers in PyTorch).
///
/// # Safety
/// The three matrices must be valid for their shapes and strides, `dst` must
/// not overlap `a` or `b`, and `T` must be their element type.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_one<T: Element>(
    m: usize,
    n: usize,
    k: usize,
    dst: Mat,
    a: Mat,
    b: Mat,
    beta: Option<Scalar>,
    alpha: Scalar,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || !T::DTYPE.is_floating_point() {
        gemm_loop::<T>(m, n, k, dst, a, b, beta, alpha);
        return;
    }
    macro_rules! call {
        ($F:ty) => {
            gemm::gemm::<$F>(
                m,
                n,
                k,
                dst.ptr.0 as *mut $F,
                dst.cs,
                dst.rs,
                beta.is_some(),
                a.ptr.0 as *const $F,
                a.cs,
                a.rs,
                b.ptr.0 as *const $F,
                b.cs,
                b.rs,
                beta.map_or(0.0, |s| s.to_f64()) as $F,
                alpha.to_f64() as $F,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        };
    }
    match T::DTYPE {
        DType::F32 => call!(f32),
        DType::F64 => call!(f64),
        // f16/bf16 are upcast to f32 before reaching here.
        _ => gemm_loop::<T>(m, n, k, dst, a, b, beta, alpha),
    }
}

/// The reference loop: integers (wrapping i64 accumulation) and `k == 0`.
///
/// # Safety
/// As [`gemm_one`].
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_loop<T: Element>(
    m: usize,
    n: usize,
    k: usize,
    dst: Mat,
    a: Mat,
    b: Mat,
    beta: Option<Scalar>,
    alpha: Scalar,
) {
    let float = T::DTYPE.is_floating_point();
    for i in 0..m {
        for j in 0..n {
            let d = dst.at::<T>(i, j);
            if float {
                let mut acc = 0.0f64;
                for p in 0..k {
                    acc += (*a.at::<T>(i, p)).to_f64() * (*b.at::<T>(p, j)).to_f64();
                }
                let mut v = alpha.to_f64() * acc;
                if let Some(s) = beta {
                    v += s.to_f64() * (*d).to_f64();
                }
                *d = T::from_f64(v);
            } else {
                let mut acc = 0i64;
                for p in 0..k {
                    let x = (*a.at::<T>(i, p)).to_i64();
                    acc = acc.wrapping_add(x.wrapping_mul((*b.at::<T>(p, j)).to_i64()));
                }
                let mut v = alpha.to_i64().wrapping_mul(acc);
                if let Some(s) = beta {
                    v = v.wrapping_add(s.to_i64().wrapping_mul((*d).to_i64()));
                }
                *d = T::from_i64(v);
            }
        }
    }
}

/// Element offsets of every matrix in a batch of shape `batch`, for a
/// tensor whose leading dims have `strides`.
fn batch_offsets(batch: &[usize], strides: &[isize]) -> Result<Vec<isize>> {
    let count = batch.iter().product();
    let mut v = try_vec(count)?;
    for_each_offset(batch, strides, |o| v.push(o));
    if batch.contains(&0) {
        v.clear();
    }
    Ok(v)
}

/// Work (in multiply-adds) below which a product runs on the calling thread.
const PARALLEL_FLOPS: usize = 1 << 21;

/// Multiply-adds per task below which batch elements are grouped.
const TASK_FLOPS: usize = 1 << 16;

/// How the threads share a batch of `count` products of shape m x k @ k x n:
/// every product is cut into `blocks` row or column blocks of `size` rows or
/// columns, and the threads claim (product, block) tasks from a counter.
///
/// The `gemm` crate packs `b` into panels but reads a row-major `a` (unit
/// column stride) in place, unless a block is over 8192 columns wide; a
/// strided `a` is packed once the block is over 128 columns wide. A block of
/// columns therefore costs no duplicated packing when `a` is read in place:
/// each block packs only its own columns of `b`. A block of rows re-packs
/// all of `b` (as a column block with a packed `a` re-packs all of `a`), so
/// those splits make one block per thread and cut the longer side of the
/// output (256x784x512 on 2 threads: 1.37x the one-thread speed by rows,
/// 1.8x by columns).
///
/// Blocks that cost nothing extra are made twice as many as the threads: a
/// thread the OS runs late (other processes on the cores) then finds its
/// share taken by the threads that run, instead of every thread waiting for
/// it at the end.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Split {
    /// Blocks are column ranges (else row ranges).
    cols: bool,
    /// Rows or columns per block (the last block may be shorter).
    size: usize,
    /// Blocks per product.
    blocks: usize,
}

fn plan_split(count: usize, m: usize, n: usize, k: usize, a_cs: isize, threads: usize) -> Split {
    let whole = Split {
        cols: false,
        size: m.max(1),
        blocks: 1,
    };
    let work = m.saturating_mul(n).saturating_mul(k.max(1));
    if threads <= 1
        || work < PARALLEL_FLOPS
        || count >= 4 * threads
        || count.is_multiple_of(threads)
    {
        return whole;
    }
    // Column blocks up to this wide read a row-major `a` in place.
    const IN_PLACE_WIDTH: usize = 8192;
    let a_in_place = a_cs == 1 || k <= 1;
    // Narrow products (matrix @ vector) still split their rows.
    let cols = n > m || (a_in_place && n >= 256);
    let (total, other) = if cols { (n, m) } else { (m, n) };
    let per_thread = if cols && a_in_place { 2 } else { 1 };
    // Blocks per product so that the batch has `per_thread` tasks per thread.
    let want = (per_thread * threads).div_ceil(count);
    // Each block does at least PARALLEL_FLOPS / 2 multiply-adds.
    let min_size = (PARALLEL_FLOPS / 2).div_ceil(other.saturating_mul(k.max(1)));
    // Multiples of 16 rows or columns keep the micro-kernel's vectors full.
    let mut size = total.div_ceil(want).max(min_size).div_ceil(16) * 16;
    if cols && a_cs == 1 {
        size = size.min(IN_PLACE_WIDTH);
    }
    let blocks = total.div_ceil(size);
    if blocks <= 1 {
        return whole;
    }
    Split { cols, size, blocks }
}

/// `dst[i] = beta * dst[i] + alpha * a[i] @ b[i]` over the batch.
///
/// `dst`, `a`, `b` have shapes `batch + [m, n]`, `batch + [m, k]`,
/// `batch + [k, n]` with any strides (batch strides may be 0 for broadcast
/// operands); `dst` is a fresh tensor that overlaps neither input.
///
/// Threads (see [`plan_split`]): many products are shared out whole, fewer
/// large ones in row or column blocks; each block is one call of the `gemm`
/// crate on one thread, which packs its own panels.
fn gemm_batched(
    dst: &Tensor,
    a: &Tensor,
    b: &Tensor,
    beta: Option<Scalar>,
    alpha: Scalar,
) -> Result<()> {
    let nd = dst.ndim();
    let (m, n) = (dst.shape()[nd - 2], dst.shape()[nd - 1]);
    let k = a.shape()[nd - 1];
    let batch = &dst.shape()[..nd - 2];
    let od = batch_offsets(batch, &dst.strides()[..nd - 2])?;
    let oa = batch_offsets(batch, &a.strides()[..nd - 2])?;
    let ob = batch_offsets(batch, &b.strides()[..nd - 2])?;
    let mat = |t: &Tensor, o: isize| -> Mat {
        let s = t.strides();
        let size = t.dtype().size() as isize;
        Mat {
            ptr: Addr((t.raw_ptr() as isize + o * size) as usize),
            rs: s[nd - 2],
            cs: s[nd - 1],
        }
    };
    let work = m.saturating_mul(n).saturating_mul(k.max(1));
    let count = od.len();
    let threads = num_threads();
    let split = plan_split(count, m, n, k, a.strides()[nd - 1], threads);
    // Whole products are grouped so that a task is worth claiming.
    let group = if split.blocks == 1 {
        TASK_FLOPS
            .div_ceil(work.max(1))
            .clamp(1, count.div_ceil(threads).max(1))
    } else {
        1
    };
    let tasks = if split.blocks == 1 {
        count.div_ceil(group)
    } else {
        count * split.blocks
    };
    dispatch!(dst.dtype(), T => {
        // Rows r0..r1 and columns c0..c1 of product `i`.
        let run_block = |i: usize, (r0, r1): (usize, usize), (c0, c1): (usize, usize)| {
            let (d, x) = (mat(dst, od[i]), mat(a, oa[i]));
            let y = mat(b, ob[i]);
            let d = Mat { ptr: Addr(d.at::<T>(r0, c0) as usize), ..d };
            let x = Mat { ptr: Addr(x.at::<T>(r0, 0) as usize), ..x };
            let y = Mat { ptr: Addr(y.at::<T>(0, c0) as usize), ..y };
            // SAFETY: the views were validated against their storages when
            // made; this block of `d` belongs to this call alone, and `dst`
            // is fresh so it overlaps neither input.
            unsafe { gemm_one::<T>(r1 - r0, c1 - c0, k, d, x, y, beta, alpha) };
        };
        let run_task = |t: usize| {
            if split.blocks == 1 {
                for i in t * group..((t + 1) * group).min(count) {
                    run_block(i, (0, m), (0, n));
                }
                return;
            }
            let (i, j) = (t / split.blocks, t % split.blocks);
            let total = if split.cols { n } else { m };
            let span = (j * split.size, ((j + 1) * split.size).min(total));
            if split.cols {
                run_block(i, (0, m), span);
            } else {
                run_block(i, span, (0, n));
            }
        };
        let next = AtomicUsize::new(0);
        let slots = threads.clamp(1, tasks.max(1));
        // About 16 multiply-adds per nanosecond per core.
        let cost = (count.saturating_mul(work) / 16) / slots + 1;
        for_ranges(slots, cost, 1, |s, e| {
            for _ in s..e {
                loop {
                    let t = next.fetch_add(1, Ordering::Relaxed);
                    if t >= tasks {
                        break;
                    }
                    run_task(t);
                }
            }
        });
    });
    Ok(())
}

/// Runs `f` on f32 copies of half-precision operands and casts the result
/// back (PyTorch's CPU kernels accumulate half products in f32 too).
fn upcast_half(ts: &[&Tensor], f: impl FnOnce(&[Tensor]) -> Result<Tensor>) -> Result<Tensor> {
    let dtype = ts[0].dtype();
    if matches!(dtype, DType::F16 | DType::BF16) {
        let up = ts
            .iter()
            .map(|t| copy::to_dtype(t, DType::F32, false))
            .collect::<Result<Vec<_>>>()?;
        copy::to_dtype(&f(&up)?, dtype, false)
    } else {
        let same: Vec<Tensor> = ts.iter().map(|t| (*t).clone()).collect();
        f(&same)
    }
}

fn view(t: &Tensor, shape: &[usize], strides: &[isize]) -> Result<Tensor> {
    t.view_with(Layout {
        shape: shape.into(),
        strides: strides.into(),
        offset: t.offset(),
    })
}

/// Batched product of 3-D-or-more views with explicit batch shape (already
/// broadcast): the shared tail of matmul and bmm.
fn product(a: &Tensor, b: &Tensor, batch: &[usize]) -> Result<Tensor> {
    let (na, nb) = (a.ndim(), b.ndim());
    let (m, k, n) = (a.shape()[na - 2], a.shape()[na - 1], b.shape()[nb - 1]);
    let mut sa: Vec<usize> = batch.to_vec();
    sa.extend([m, k]);
    let mut sb: Vec<usize> = batch.to_vec();
    sb.extend([k, n]);
    let a = a.view_with(a.layout().broadcast_to(&sa)?)?;
    let b = b.view_with(b.layout().broadcast_to(&sb)?)?;
    upcast_half(&[&a, &b], |t| {
        let mut so: Vec<usize> = batch.to_vec();
        so.extend([m, n]);
        let out = Tensor::empty(&so, t[0].dtype())?;
        gemm_batched(&out, &t[0], &t[1], None, Scalar::Int(1))?;
        Ok(out)
    })
}

/// Records a product op `out = f(a, b)` whose gradients are
/// `ga = g @ b^T` and `gb = a^T @ g` in terms of `prod` (mm or bmm).
fn record_product(
    rec: Option<crate::autograd::Recorder>,
    a: &Tensor,
    b: &Tensor,
    out: &Tensor,
    prod: fn(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<()> {
    let Some(mut rec) = rec else { return Ok(()) };
    let ia = if rec.needs(1) {
        Some(rec.save(a)?)
    } else {
        None
    };
    let ib = if rec.needs(0) {
        Some(rec.save(b)?)
    } else {
        None
    };
    rec.finish(&[out], move |ctx, grads| {
        let Some(g) = grads.into_iter().next().flatten() else {
            return Ok(vec![None, None]);
        };
        let ga = match ib {
            Some(i) if ctx.needs(0) => Some(prod(
                &g,
                &crate::ops::shape::transpose(&ctx.saved(i)?, -2, -1)?,
            )?),
            _ => None,
        };
        let gb = match ia {
            Some(i) if ctx.needs(1) => Some(prod(
                &crate::ops::shape::transpose(&ctx.saved(i)?, -2, -1)?,
                &g,
            )?),
            _ => None,
        };
        Ok(vec![ga, gb])
    });
    Ok(())
}

/// `torch.mm`.
pub fn mm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.ndim() != 2 {
        return Err(Error::Runtime("self must be a matrix".into()));
    }
    if b.ndim() != 2 {
        return Err(Error::Runtime("mat2 must be a matrix".into()));
    }
    let rec = crate::autograd::Recorder::new("MmBackward0", &[a, b]);
    let out = mm_checked(a, b)?;
    record_product(rec, a, b, &out, mm)?;
    Ok(out)
}

fn mm_checked(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_dtype(a, b)?;
    not_bool("addmm_impl_cpu_", a.dtype())?;
    let (sa, sb) = (a.shape(), b.shape());
    if sa[1] != sb[0] {
        return Err(Error::Runtime(format!(
            "mat1 and mat2 shapes cannot be multiplied ({}x{} and {}x{})",
            sa[0], sa[1], sb[0], sb[1]
        )));
    }
    product(a, b, &[])
}

/// `torch.bmm`.
pub fn bmm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    bmm_checks(a, b)?;
    let sa = a.shape();
    let rec = crate::autograd::Recorder::new("BmmBackward0", &[a, b]);
    let out = product(a, b, &sa[..1])?;
    record_product(rec, a, b, &out, bmm)?;
    Ok(out)
}

/// `torch.mv`.
pub fn mv(a: &Tensor, v: &Tensor) -> Result<Tensor> {
    if crate::autograd::needs_grad(&[a, v]) {
        mv_checks(a, v)?;
        let col = crate::ops::shape::unsqueeze(v, 1)?;
        return crate::ops::shape::squeeze(&mm(a, &col)?, Some(&[1]));
    }
    let (m, k) = mv_checks(a, v)?;
    let col = view(v, &[k, 1], &[v.strides()[0], 1])?;
    let out = product(a, &col, &[])?;
    view(&out, &[m], &[1])
}

fn mv_checks(a: &Tensor, v: &Tensor) -> Result<(usize, usize)> {
    if a.ndim() != 2 || v.ndim() != 1 {
        return Err(Error::Runtime(format!(
            "vector + matrix @ vector expected, got 1, {}, {}",
            a.ndim(),
            v.ndim()
        )));
    }
    let (m, k) = (a.shape()[0], a.shape()[1]);
    if v.shape()[0] != k {
        return Err(Error::Runtime(format!(
            "size mismatch, got input ({m}), mat ({m}x{k}), vec ({})",
            v.shape()[0]
        )));
    }
    same_dtype(a, v)?;
    not_bool("addmv_impl_cpu", a.dtype())?;
    Ok((m, k))
}

fn dot_impl(name: &str, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.ndim() != 1 || b.ndim() != 1 {
        return Err(Error::Runtime(format!(
            "1D tensors expected, but got {}D and {}D tensors",
            a.ndim(),
            b.ndim()
        )));
    }
    if a.dtype() != b.dtype() {
        return Err(Error::Runtime(format!(
            "{name} : expected both vectors to have same dtype, but found {} and {}",
            a.dtype().scalar_name(),
            b.dtype().scalar_name()
        )));
    }
    let (n, nb) = (a.shape()[0], b.shape()[0]);
    if n != nb {
        return Err(Error::Runtime(format!(
            "inconsistent tensor size, expected tensor [{n}] and src [{nb}] to have the same number of elements, but got {n} and {nb} elements respectively"
        )));
    }
    not_bool(name, a.dtype())?;
    if crate::autograd::needs_grad(&[a, b]) {
        return crate::ops::reduce::sum(&crate::ops::arith::mul(a, b)?, None, false, None);
    }
    let row = view(a, &[1, n], &[1, a.strides()[0]])?;
    let col = view(b, &[n, 1], &[b.strides()[0], 1])?;
    let out = product(&row, &col, &[])?;
    view(&out, &[], &[])
}

/// `torch.dot`.
pub fn dot(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    dot_impl("dot", a, b)
}

/// `torch.vdot` (the same as `dot` for real dtypes).
pub fn vdot(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    dot_impl("vdot", a, b)
}

/// `torch.matmul` with PyTorch's rank rules: 1-D operands are promoted to
/// matrices and the added dim removed afterwards; batch dims broadcast.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (na, nb) = (a.ndim(), b.ndim());
    if na == 0 || nb == 0 {
        return Err(Error::Runtime(format!(
            "both arguments to matmul need to be at least 1D, but they are {na}D and {nb}D"
        )));
    }
    match (na, nb) {
        (1, 1) => return dot(a, b),
        (2, 1) => return mv(a, b),
        (2, 2) => return mm(a, b),
        _ if crate::autograd::needs_grad(&[a, b]) => return matmul_composite(a, b),
        (1, 2) => {
            let row = view(a, &[1, a.shape()[0]], &[0, a.strides()[0]])?;
            let out = mm_checked(&row, b)?;
            return view(&out, &[out.shape()[1]], &[1]);
        }
        _ => {}
    }
    same_dtype(a, b)?;
    not_bool("addmm_impl_cpu_", a.dtype())?;
    // 1-D operands become a row (left) or a column (right) matrix.
    let a2 = if na == 1 {
        view(a, &[1, a.shape()[0]], &[0, a.strides()[0]])?
    } else {
        a.clone()
    };
    let b2 = if nb == 1 {
        view(b, &[b.shape()[0], 1], &[b.strides()[0], 0])?
    } else {
        b.clone()
    };
    let (sa, sb) = (a2.shape(), b2.shape());
    let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
    let (kb, n) = (sb[sb.len() - 2], sb[sb.len() - 1]);
    if nb <= 2 && k != kb {
        // PyTorch folds the batch of `a` into rows and reports an mm error.
        let rows = a2.numel().checked_div(k).unwrap_or(0);
        return Err(Error::Runtime(format!(
            "mat1 and mat2 shapes cannot be multiplied ({rows}x{k} and {kb}x{n})"
        )));
    }
    if nb <= 2 {
        // A batch times one matrix is a single GEMM over the folded rows of
        // `a` (a view when its strides allow, else a copy, as PyTorch): one
        // packing of `b` instead of one per batch element.
        let rows: usize = sa[..sa.len() - 1].iter().product();
        let folded = crate::ops::shape::reshape(&a2, &[rows as i64, k as i64])?;
        let out = product(&folded, &b2, &[])?;
        let mut shape: Vec<usize> = sa[..sa.len() - 1].to_vec();
        if nb > 1 {
            shape.push(n);
        }
        let strides = crate::tensor::layout::contiguous_strides(&shape);
        return view(&out, &shape, &strides);
    }
    let batch = broadcast_shapes(&sa[..sa.len() - 2], &sb[..sb.len() - 2])?;
    if k != kb {
        let count: usize = batch.iter().product();
        return Err(Error::Runtime(format!(
            "Expected size for first two dimensions of batch2 tensor to be: [{count}, {k}] but got: [{count}, {kb}]."
        )));
    }
    let out = product(&a2, &b2, &batch)?;
    let mut shape: Vec<usize> = batch.to_vec();
    if na > 1 {
        shape.push(m);
    }
    if nb > 1 {
        shape.push(n);
    }
    let strides = crate::tensor::layout::contiguous_strides(&shape);
    view(&out, &shape, &strides)
}

/// `matmul` from differentiable ops (as PyTorch's composite matmul): 1-D
/// operands unsqueezed, batch dims broadcast and folded, one `bmm` (or
/// `mm` when `b` is a matrix).
fn matmul_composite(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    use crate::ops::shape::{expand, reshape, squeeze, unsqueeze};
    let (na, nb) = (a.ndim(), b.ndim());
    let a2 = if na == 1 { unsqueeze(a, 0)? } else { a.clone() };
    let b2 = if nb == 1 { unsqueeze(b, 1)? } else { b.clone() };
    let (sa, sb) = (a2.shape().to_vec(), b2.shape().to_vec());
    let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
    let (kb, n) = (sb[sb.len() - 2], sb[sb.len() - 1]);
    if k != kb {
        return Err(Error::Runtime(format!(
            "mat1 and mat2 shapes cannot be multiplied ({m}x{k} and {kb}x{n})"
        )));
    }
    let out = if nb <= 2 {
        let rows: usize = sa[..sa.len() - 1].iter().product();
        let folded = reshape(&a2, &[rows as i64, k as i64])?;
        let prod = mm(&folded, &b2)?;
        let mut shape: Vec<i64> = sa[..sa.len() - 1].iter().map(|&d| d as i64).collect();
        shape.push(n as i64);
        reshape(&prod, &shape)?
    } else {
        let batch = broadcast_shapes(&sa[..sa.len() - 2], &sb[..sb.len() - 2])?;
        let count: usize = batch.iter().product();
        let mut ea: Vec<i64> = batch.iter().map(|&d| d as i64).collect();
        let mut eb = ea.clone();
        ea.extend([m as i64, k as i64]);
        eb.extend([k as i64, n as i64]);
        let a3 = reshape(&expand(&a2, &ea)?, &[count as i64, m as i64, k as i64])?;
        let b3 = reshape(&expand(&b2, &eb)?, &[count as i64, k as i64, n as i64])?;
        let prod = bmm(&a3, &b3)?;
        let mut shape: Vec<i64> = batch.iter().map(|&d| d as i64).collect();
        shape.extend([m as i64, n as i64]);
        reshape(&prod, &shape)?
    };
    let out = if na == 1 {
        squeeze(&out, Some(&[-2]))?
    } else {
        out
    };
    if nb == 1 {
        squeeze(&out, Some(&[-1]))
    } else {
        Ok(out)
    }
}

/// `beta * input + alpha * (a @ b)` over batch `batch` with `input`
/// broadcast to the result: the shared body of the `add*` ops.
fn add_product(
    input: &Tensor,
    a: &Tensor,
    b: &Tensor,
    batch: &[usize],
    beta: Scalar,
    alpha: Scalar,
) -> Result<Tensor> {
    if input.dtype() != a.dtype() {
        return Err(Error::Runtime(format!(
            "self and mat2 must have the same dtype, but got {} and {}",
            input.dtype().scalar_name(),
            b.dtype().scalar_name()
        )));
    }
    check_coef("beta", a.dtype(), beta)?;
    check_coef("alpha", a.dtype(), alpha)?;
    let (m, n) = (a.shape()[a.ndim() - 2], b.shape()[b.ndim() - 1]);
    let mut shape: Vec<usize> = batch.to_vec();
    shape.extend([m, n]);
    upcast_half(&[input, a, b], |t| {
        let out = Tensor::empty(&shape, t[0].dtype())?;
        // PyTorch ignores `input` entirely (NaNs included) when beta is 0.
        t[0].layout().broadcast_to(&shape)?;
        gemm_batched(&out, &t[1], &t[2], None, alpha)?;
        if beta.to_f64() != 0.0 {
            // The product, then `beta * input` added by the broadcast
            // kernel: a GEMM that reads its destination back (beta != 0)
            // cost more than this pass over a `linear`'s bias (15%).
            let _mode = crate::autograd::GradMode::set(false);
            let scale = (beta.to_f64() != 1.0).then_some(beta);
            crate::ops::binary::binary_(
                crate::ops::binary::BinaryOp::Add,
                &out,
                &crate::ops::Operand::Tensor(t[0].clone()),
                scale,
            )?;
        }
        Ok(out)
    })
}

fn matrix_arg(name: &str, t: &Tensor) -> Result<()> {
    if t.ndim() != 2 {
        return Err(Error::Runtime(format!(
            "{name} must be a matrix, got {}-D tensor",
            t.ndim()
        )));
    }
    Ok(())
}

/// `torch.addmm`: `beta * input + alpha * (mat1 @ mat2)`.
pub fn addmm(
    input: &Tensor,
    mat1: &Tensor,
    mat2: &Tensor,
    beta: Scalar,
    alpha: Scalar,
) -> Result<Tensor> {
    matrix_arg("mat1", mat1)?;
    matrix_arg("mat2", mat2)?;
    same_dtype(mat1, mat2)?;
    not_bool("addmm_impl_cpu_", mat1.dtype())?;
    let (sa, sb) = (mat1.shape(), mat2.shape());
    if sa[1] != sb[0] {
        return Err(Error::Runtime(format!(
            "mat1 and mat2 shapes cannot be multiplied ({}x{} and {}x{})",
            sa[0], sa[1], sb[0], sb[1]
        )));
    }
    let rec = crate::autograd::Recorder::new("AddmmBackward0", &[input, mat1, mat2]);
    let out = add_product(input, mat1, mat2, &[], beta, alpha)?;
    if let Some(mut rec) = rec {
        let i1 = if rec.needs(2) {
            Some(rec.save(mat1)?)
        } else {
            None
        };
        let i2 = if rec.needs(1) {
            Some(rec.save(mat2)?)
        } else {
            None
        };
        let (beta, alpha) = (beta.to_f64(), alpha.to_f64());
        rec.finish(&[&out], move |ctx, grads| {
            use crate::ops::arith::scale;
            use crate::ops::shape::t;
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None, None, None]);
            };
            // Scaling by 1 would copy the gradient (gradients are never
            // written in place, so passing `g` on is safe).
            let sc = |x: Tensor, v: f64| if v == 1.0 { Ok(x) } else { scale(&x, v) };
            let gi = if ctx.needs(0) {
                Some(sc(g.clone(), beta)?)
            } else {
                None
            };
            let g1 = match i2 {
                Some(i) if ctx.needs(1) => Some(sc(mm(&g, &t(&ctx.saved(i)?)?)?, alpha)?),
                _ => None,
            };
            let g2 = match i1 {
                Some(i) if ctx.needs(2) => Some(sc(mm(&t(&ctx.saved(i)?)?, &g)?, alpha)?),
                _ => None,
            };
            Ok(vec![gi, g1, g2])
        });
    }
    Ok(out)
}

/// `torch._addmm_activation`: `relu(beta * input + alpha * (mat1 @ mat2))`,
/// or the exact GELU of it with `use_gelu`. Without autograd, a float32
/// `linear` with a 1-D bias (beta 1) adds the bias and applies the ReLU in
/// one pass over the product; everything else is `addmm` then the
/// activation in place.
pub fn addmm_activation(
    input: &Tensor,
    mat1: &Tensor,
    mat2: &Tensor,
    beta: Scalar,
    alpha: Scalar,
    use_gelu: bool,
) -> Result<Tensor> {
    use crate::ops::unary::{unary_, Unary};
    let fused = !use_gelu
        && !crate::autograd::needs_grad(&[input, mat1, mat2])
        && beta.to_f64() == 1.0
        && mat1.ndim() == 2
        && mat2.ndim() == 2
        && input.ndim() == 1
        && input.is_contiguous()
        && [input, mat1, mat2].iter().all(|t| t.dtype() == DType::F32)
        && mat1.shape()[1] == mat2.shape()[0]
        && input.shape()[0] == mat2.shape()[1];
    if !fused {
        let out = addmm(input, mat1, mat2, beta, alpha)?;
        unary_(if use_gelu { Unary::Gelu } else { Unary::Relu }, &out)?;
        return Ok(out);
    }
    check_coef("alpha", DType::F32, alpha)?;
    let (m, n) = (mat1.shape()[0], mat2.shape()[1]);
    let out = Tensor::empty(&[m, n], DType::F32)?;
    gemm_batched(&out, mat1, mat2, None, alpha)?;
    if m * n == 0 {
        return Ok(out);
    }
    // SAFETY: `input` is a contiguous float32 vector of `n` elements.
    let bias = unsafe { std::slice::from_raw_parts(input.raw_ptr() as *const f32, n) };
    let po = out.raw_ptr() as usize;
    for_ranges(m, n, 1, |a, b| {
        // SAFETY: `out` is a fresh contiguous `m x n` float32 buffer; rows
        // [a, b) belong to this chunk only.
        let rows =
            unsafe { std::slice::from_raw_parts_mut((po as *mut f32).add(a * n), (b - a) * n) };
        bias_relu_rows_f32(rows, bias);
    });
    Ok(out)
}

crate::multiversion! {
    /// `y = relu(y + bias)` over consecutive rows of `bias.len()`, with
    /// `relu`'s rule (NaN stays NaN, -0 becomes 0).
    fn bias_relu_rows_f32(y: &mut [f32], bias: &[f32]) {
        for row in y.chunks_exact_mut(bias.len()) {
            for (o, &b) in row.iter_mut().zip(bias) {
                let v = *o + b;
                *o = if v > 0.0 || v.is_nan() { v } else { 0.0 };
            }
        }
    }
}

/// `torch.addmv`: `beta * input + alpha * (mat @ vec)`.
pub fn addmv(
    input: &Tensor,
    mat: &Tensor,
    vec: &Tensor,
    beta: Scalar,
    alpha: Scalar,
) -> Result<Tensor> {
    let (m, k) = mv_checks(mat, vec)?;
    if crate::autograd::needs_grad(&[input, mat, vec]) {
        return add_scaled(input, &mv(mat, vec)?, beta, alpha);
    }
    let col = view(vec, &[k, 1], &[vec.strides()[0], 1])?;
    let inp = if input.ndim() == 1 {
        view(input, &[input.shape()[0], 1], &[input.strides()[0], 0])?
    } else {
        input.clone()
    };
    if inp.ndim() > 2 || inp.layout().broadcast_to(&[m, 1]).is_err() {
        return Err(Error::Runtime(format!(
            "size mismatch, got input ({}), mat ({m}x{k}), vec ({k})",
            crate::tensor::layout::fmt_shape(input.shape())
                .trim_matches(['[', ']'])
                .replace(", ", "x")
        )));
    }
    let out = add_product(&inp, mat, &col, &[], beta, alpha)?;
    view(&out, &[m], &[1])
}

/// `torch.baddbmm`: `beta * input + alpha * bmm(batch1, batch2)`.
pub fn baddbmm(
    input: &Tensor,
    batch1: &Tensor,
    batch2: &Tensor,
    beta: Scalar,
    alpha: Scalar,
) -> Result<Tensor> {
    bmm_checks(batch1, batch2)?;
    if crate::autograd::needs_grad(&[input, batch1, batch2]) {
        return add_scaled(input, &bmm(batch1, batch2)?, beta, alpha);
    }
    add_product(input, batch1, batch2, &batch1.shape()[..1], beta, alpha)
}

/// `beta * input + alpha * product` from differentiable ops (the `add*`
/// family under autograd; the fused GEMM path serves the rest).
fn add_scaled(input: &Tensor, product: &Tensor, beta: Scalar, alpha: Scalar) -> Result<Tensor> {
    use crate::ops::arith::{add, scale};
    let p = scale(product, alpha.to_f64())?;
    if beta.to_f64() == 0.0 {
        // beta = 0 ignores input entirely (NaNs included), as PyTorch.
        return add(&crate::ops::arith::zeros_like(input)?, &p);
    }
    add(&scale(input, beta.to_f64())?, &p)
}

fn bmm_checks(a: &Tensor, b: &Tensor) -> Result<()> {
    if a.ndim() != 3 {
        return Err(Error::Runtime("batch1 must be a 3D tensor".into()));
    }
    if b.ndim() != 3 {
        return Err(Error::Runtime("batch2 must be a 3D tensor".into()));
    }
    same_dtype(a, b)?;
    not_bool("bmm", a.dtype())?;
    let (sa, sb) = (a.shape(), b.shape());
    if sb[0] != sa[0] || sb[1] != sa[2] {
        return Err(Error::Runtime(format!(
            "Expected size for first two dimensions of batch2 tensor to be: [{}, {}] but got: [{}, {}].",
            sa[0], sa[2], sb[0], sb[1]
        )));
    }
    Ok(())
}

/// `torch.addbmm`: `beta * input + alpha * sum_i batch1[i] @ batch2[i]`,
/// computed as one product `[b1_0 .. b1_B] @ [b2_0; ..; b2_B]`.
pub fn addbmm(
    input: &Tensor,
    batch1: &Tensor,
    batch2: &Tensor,
    beta: Scalar,
    alpha: Scalar,
) -> Result<Tensor> {
    bmm_checks(batch1, batch2)?;
    if crate::autograd::needs_grad(&[input, batch1, batch2]) {
        let summed = crate::ops::reduce::sum(&bmm(batch1, batch2)?, Some(&[0]), false, None)?;
        return add_scaled(input, &summed, beta, alpha);
    }
    let (bs, m, k) = (batch1.shape()[0], batch1.shape()[1], batch1.shape()[2]);
    let n = batch2.shape()[2];
    let wide = copy::contiguous_copy(&batch1.view_with(batch1.layout().permute(&[1, 0, 2])?)?)?;
    let wide = view(&wide, &[m, bs * k], &[(bs * k) as isize, 1])?;
    let tall = copy::contiguous(batch2)?;
    let tall = view(&tall, &[bs * k, n], &[n as isize, 1])?;
    add_product(input, &wide, &tall, &[], beta, alpha)
}

#[cfg(test)]
mod tests {
    use super::{plan_split, Split, PARALLEL_FLOPS};

    fn covers(s: Split, m: usize, n: usize) -> bool {
        let total = if s.cols { n } else { m };
        s.size * s.blocks >= total && s.size * (s.blocks - 1) < total
    }

    #[test]
    fn row_major_a_splits_columns_twice_per_thread() {
        let s = plan_split(1, 2048, 2048, 2048, 1, 2);
        assert_eq!(
            s,
            Split {
                cols: true,
                size: 512,
                blocks: 4
            }
        );
        let s = plan_split(1, 1600, 1024, 256, 1, 2);
        assert_eq!(
            s,
            Split {
                cols: true,
                size: 256,
                blocks: 4
            }
        );
        // Odd widths round blocks up to 16 columns; the last block is short.
        let s = plan_split(1, 97, 257, 211, 1, 2);
        assert!(
            s.cols && s.size.is_multiple_of(16) && covers(s, 97, 257),
            "{s:?}"
        );
    }

    #[test]
    fn strided_a_splits_the_longer_side_once_per_thread() {
        let s = plan_split(1, 2048, 2048, 2048, 2048, 2);
        assert_eq!(
            s,
            Split {
                cols: false,
                size: 1024,
                blocks: 2
            }
        );
        let s = plan_split(1, 256, 784, 512, 256, 2);
        assert_eq!(
            s,
            Split {
                cols: true,
                size: 400,
                blocks: 2
            }
        );
        // Matrix @ vector: rows even for a row-major `a`.
        let s = plan_split(1, 4096, 1, 1024, 1, 2);
        assert_eq!(
            s,
            Split {
                cols: false,
                size: 2048,
                blocks: 2
            }
        );
    }

    #[test]
    fn blocks_keep_a_minimum_size_and_the_in_place_width() {
        // 32 x 256 @ 256 x 1024 (an LSTM step): blocks of >= 2^20 multiply-adds.
        let s = plan_split(1, 32, 1024, 256, 1, 2);
        assert!(s.cols && s.size * 32 * 256 >= PARALLEL_FLOPS / 2, "{s:?}");
        let s = plan_split(1, 4, 40000, 32, 1, 2);
        assert_eq!(s.size, 8192, "{s:?}");
        assert!(covers(s, 4, 40000));
    }

    #[test]
    fn small_products_and_full_batches_stay_whole() {
        let whole = |s: Split| s.blocks == 1;
        assert!(whole(plan_split(1, 64, 64, 64, 1, 2)));
        assert!(whole(plan_split(1, 2048, 2048, 2048, 1, 1)));
        assert!(whole(plan_split(32, 128, 128, 64, 1, 2)));
        assert!(whole(plan_split(4, 1024, 1024, 1024, 1, 2)));
        // Three large products on two threads: each is cut.
        let s = plan_split(3, 300, 260, 200, 1, 2);
        assert!(!whole(s) && covers(s, 300, 260), "{s:?}");
    }
}
