//! Generic elementwise kernels over the strided iterator. The inner loop has
//! a unit-stride branch the compiler vectorises.

use crate::cpu::iter::for_each_row_in_memory_order as for_each_row;
use crate::tensor::{Element, Tensor};

/// `dst[i] = f(src[i])`, with `src` already broadcast to `dst`'s shape.
pub fn map1<S: Element, D: Element>(
    src: &Tensor,
    src_strides: &[isize],
    dst: &Tensor,
    f: impl Fn(S) -> D,
) {
    let (ps, pd) = (src.data_ptr::<S>(), dst.data_ptr::<D>());
    if transposed_tiles(src_strides, dst, ps, pd, &f) {
        return;
    }
    for_each_row(
        dst.shape(),
        [dst.strides(), src_strides],
        |[od, os], len, [sd, ss]| {
            // SAFETY: offsets and strides come from layouts validated against
            // their storages, and `len` stays inside the broadcast shape.
            unsafe {
                let (d, s) = (pd.offset(od), ps.offset(os));
                if sd == 1 && ss == 1 {
                    let d = std::slice::from_raw_parts_mut(d, len);
                    let s = std::slice::from_raw_parts(s, len);
                    for (o, &x) in d.iter_mut().zip(s) {
                        *o = f(x);
                    }
                } else if sd == 1 && ss == 0 {
                    let v = f(*s);
                    std::slice::from_raw_parts_mut(d, len).fill(v);
                } else {
                    for i in 0..len as isize {
                        *d.offset(i * sd) = f(*s.offset(i * ss));
                    }
                }
            }
        },
    );
}

/// `map1` for a transposing copy (`t.mT.contiguous()`, a permute made
/// dense): `dst` runs along its last dim while `src` runs along another.
/// Row by row, every read would touch a new cache line; 32x32 tiles reuse
/// each line 32 times (a 784x512 float32 transpose: 0.75 ms -> 0.2 ms).
/// False (nothing done) when the layouts are not of that kind.
fn transposed_tiles<S: Element, D: Element>(
    src_strides: &[isize],
    dst: &Tensor,
    ps: *const S,
    pd: *mut D,
    f: &impl Fn(S) -> D,
) -> bool {
    const B: usize = 32;
    let (shape, ds) = (dst.shape(), dst.strides());
    let Some(last) = shape.len().checked_sub(1) else {
        return false;
    };
    if shape[last] < B || ds[last] != 1 || src_strides[last] == 1 {
        return false;
    }
    let Some(j) = (0..last)
        .rev()
        .find(|&d| src_strides[d] == 1 && shape[d] >= B)
    else {
        return false;
    };
    let outer: Vec<usize> = (0..last).filter(|&d| d != j).collect();
    let n_outer: usize = outer.iter().map(|&d| shape[d]).product();
    let (ni, nj) = (shape[last], shape[j]);
    let (si, dj) = (src_strides[last], ds[j]);
    for o in 0..n_outer {
        let (mut rem, mut os, mut od) = (o, 0isize, 0isize);
        for &d in outer.iter().rev() {
            let k = (rem % shape[d]) as isize;
            rem /= shape[d];
            os += k * src_strides[d];
            od += k * ds[d];
        }
        for jb in (0..nj).step_by(B) {
            for ib in (0..ni).step_by(B) {
                for jj in jb..(jb + B).min(nj) {
                    let jj = jj as isize;
                    for ii in ib..(ib + B).min(ni) {
                        let ii = ii as isize;
                        // SAFETY: offsets come from layouts validated against
                        // their storages; (jj, ii) stays inside the shape.
                        unsafe { *pd.offset(od + jj * dj + ii) = f(*ps.offset(os + jj + ii * si)) };
                    }
                }
            }
        }
    }
    true
}

/// `dst[i] = f(a[i], b[i])`, with `a` and `b` broadcast to `dst`'s shape.
pub fn map2<A: Element, B: Element, D: Element>(
    a: &Tensor,
    a_strides: &[isize],
    b: &Tensor,
    b_strides: &[isize],
    dst: &Tensor,
    f: impl Fn(A, B) -> D,
) {
    let (pa, pb, pd) = (a.data_ptr::<A>(), b.data_ptr::<B>(), dst.data_ptr::<D>());
    for_each_row(
        dst.shape(),
        [dst.strides(), a_strides, b_strides],
        |[od, oa, ob], len, [sd, sa, sb]| {
            // SAFETY: as in `map1`.
            unsafe {
                let (d, a, b) = (pd.offset(od), pa.offset(oa), pb.offset(ob));
                if sd == 1 && sa == 1 && sb == 1 {
                    let d = std::slice::from_raw_parts_mut(d, len);
                    let a = std::slice::from_raw_parts(a, len);
                    let b = std::slice::from_raw_parts(b, len);
                    for i in 0..len {
                        d[i] = f(a[i], b[i]);
                    }
                } else if sd == 1 && sa == 1 && sb == 0 {
                    let d = std::slice::from_raw_parts_mut(d, len);
                    let a = std::slice::from_raw_parts(a, len);
                    let y = *b;
                    for i in 0..len {
                        d[i] = f(a[i], y);
                    }
                } else {
                    for i in 0..len as isize {
                        *d.offset(i * sd) = f(*a.offset(i * sa), *b.offset(i * sb));
                    }
                }
            }
        },
    );
}

/// Sets every element of `dst` to `v`.
pub fn fill<T: Element>(dst: &Tensor, v: T) {
    let pd = dst.data_ptr::<T>();
    for_each_row(dst.shape(), [dst.strides()], |[o], len, [s]| {
        // SAFETY: as in `map1`.
        unsafe {
            if s == 1 {
                std::slice::from_raw_parts_mut(pd.offset(o), len).fill(v);
            } else {
                for i in 0..len as isize {
                    *pd.offset(o + i * s) = v;
                }
            }
        }
    });
}

/// `dst[i] = f(a[i], b[i], c[i])`, all broadcast to `dst`'s shape.
#[allow(clippy::too_many_arguments)]
pub fn map3<A: Element, B: Element, C: Element, D: Element>(
    a: &Tensor,
    a_strides: &[isize],
    b: &Tensor,
    b_strides: &[isize],
    c: &Tensor,
    c_strides: &[isize],
    dst: &Tensor,
    f: impl Fn(A, B, C) -> D,
) {
    let (pa, pb, pc, pd) = (
        a.data_ptr::<A>(),
        b.data_ptr::<B>(),
        c.data_ptr::<C>(),
        dst.data_ptr::<D>(),
    );
    for_each_row(
        dst.shape(),
        [dst.strides(), a_strides, b_strides, c_strides],
        |[od, oa, ob, oc], len, [sd, sa, sb, sc]| {
            if sd == 1 && sa == 1 && sb == 1 && sc == 1 {
                // SAFETY: as in `map1`; a unit-stride row of `len` elements
                // in each operand (a select the compiler vectorises).
                unsafe {
                    let d = std::slice::from_raw_parts_mut(pd.offset(od), len);
                    let a = std::slice::from_raw_parts(pa.offset(oa), len);
                    let b = std::slice::from_raw_parts(pb.offset(ob), len);
                    let c = std::slice::from_raw_parts(pc.offset(oc), len);
                    for i in 0..len {
                        d[i] = f(a[i], b[i], c[i]);
                    }
                }
                return;
            }
            if sd == 1 && sa == 1 && sb == 1 && sc == 0 {
                // `where(mask, x, scalar)`, the common masked case.
                // SAFETY: as above, `c` a broadcast scalar.
                unsafe {
                    let d = std::slice::from_raw_parts_mut(pd.offset(od), len);
                    let a = std::slice::from_raw_parts(pa.offset(oa), len);
                    let b = std::slice::from_raw_parts(pb.offset(ob), len);
                    let cv = *pc.offset(oc);
                    for i in 0..len {
                        d[i] = f(a[i], b[i], cv);
                    }
                }
                return;
            }
            for i in 0..len as isize {
                // SAFETY: as in `map1`.
                unsafe {
                    *pd.offset(od + i * sd) = f(
                        *pa.offset(oa + i * sa),
                        *pb.offset(ob + i * sb),
                        *pc.offset(oc + i * sc),
                    );
                }
            }
        },
    );
}

/// The start of a dense tensor's memory span and its length in elements:
/// `Some` when the tensor covers exactly `numel` contiguous elements in some
/// dim order, so a flat slice kernel can run over it.
pub fn dense_span<T: Element>(t: &Tensor) -> Option<*mut T> {
    let l = t.layout();
    if !l.is_contiguous() && l.strides.as_slice() != l.preserved_strides().as_slice() {
        return None;
    }
    Some(t.data_ptr::<T>())
}

/// Calls `f(start, end)` over `0..n` in two pieces split where `dst`
/// reaches a 64-byte boundary, so a flat kernel's vector stores after the
/// split fill whole cache lines instead of straddling two (an `add(out=)`
/// into a 16-byte-aligned NumPy buffer ran 14% slower). Short runs go in
/// one piece: the second call would cost more than the split saves.
pub fn split_at_cache_line<T>(dst: *const T, n: usize, mut f: impl FnMut(usize, usize)) {
    let head = if n >= 1024 {
        dst.align_offset(64).min(n)
    } else {
        0
    };
    if head > 0 {
        f(0, head);
    }
    f(head, n);
}

crate::multiversion! {
    /// Sets `*top` to the largest exponent field (bits 23..31) in `x`: one
    /// vectorised pass with no early exit.
    fn max_exponent_f32(x: &[f32], top: &mut u32) {
        *top = x.iter().fold(0u32, |m, v| m.max(v.to_bits() & 0x7f80_0000)) >> 23;
    }
}

/// Whether every element of the dense float32 span `x..x + n` is below
/// 2^`log2` in magnitude (so finite, not NaN), checked over threads.
///
/// # Safety
/// `x` is valid for reads of `n` elements.
pub unsafe fn all_below_f32(x: *const f32, n: usize, log2: u32) -> bool {
    let x = x as usize;
    let bad = std::sync::atomic::AtomicBool::new(false);
    crate::cpu::parallel::for_ranges(n, 1, 16, |s, e| {
        let mut top = 0;
        // SAFETY: `s..e` lies within the caller's `n` elements.
        let span = unsafe { std::slice::from_raw_parts((x as *const f32).add(s), e - s) };
        max_exponent_f32(span, &mut top);
        if top >= 127 + log2 {
            bad.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    !bad.into_inner()
}
