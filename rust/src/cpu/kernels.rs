//! Generic elementwise kernels over the strided iterator. The inner loop has
//! a unit-stride branch the compiler vectorises.

use crate::cpu::iter::for_each_row;
use crate::tensor::{Element, Tensor};

/// `dst[i] = f(src[i])`, with `src` already broadcast to `dst`'s shape.
pub fn map1<S: Element, D: Element>(
    src: &Tensor,
    src_strides: &[isize],
    dst: &Tensor,
    f: impl Fn(S) -> D,
) {
    let (ps, pd) = (src.data_ptr::<S>(), dst.data_ptr::<D>());
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
