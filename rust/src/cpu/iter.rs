//! The strided N-operand iterator every elementwise CPU kernel runs on.
//!
//! Dims of size 1 are dropped and neighbouring dims that are contiguous with
//! each other in *every* operand are merged, so a contiguous (or uniformly
//! strided) tensor becomes a single inner loop whatever its rank.

use smallvec::SmallVec;

/// Calls `f(offsets, len, inner_strides)` once per inner row of `shape`.
/// Offsets and strides are in elements, per operand.
pub fn for_each_row<const N: usize>(
    shape: &[usize],
    strides: [&[isize]; N],
    mut f: impl FnMut([isize; N], usize, [isize; N]),
) {
    if shape.contains(&0) {
        return;
    }
    // (size, strides) from innermost to outermost, coalesced.
    let mut dims: SmallVec<[(usize, [isize; N]); 8]> = SmallVec::new();
    for d in (0..shape.len()).rev() {
        if shape[d] == 1 {
            continue;
        }
        let st: [isize; N] = std::array::from_fn(|k| strides[k][d]);
        if let Some(last) = dims.last_mut() {
            if (0..N).all(|k| st[k] == last.1[k] * last.0 as isize) {
                last.0 *= shape[d];
                continue;
            }
        }
        dims.push((shape[d], st));
    }
    let Some(&(inner_len, inner_st)) = dims.first() else {
        f([0; N], 1, [0; N]);
        return;
    };
    let outer = &dims[1..];
    let mut counter: SmallVec<[usize; 8]> = SmallVec::from_elem(0, outer.len());
    let mut offs = [0isize; N];
    loop {
        f(offs, inner_len, inner_st);
        // Odometer increment over the outer dims.
        let mut i = 0;
        loop {
            if i == outer.len() {
                return;
            }
            counter[i] += 1;
            for (k, off) in offs.iter_mut().enumerate() {
                *off += outer[i].1[k];
            }
            if counter[i] < outer[i].0 {
                break;
            }
            for (k, off) in offs.iter_mut().enumerate() {
                *off -= outer[i].1[k] * outer[i].0 as isize;
            }
            counter[i] = 0;
            i += 1;
        }
    }
}

/// `for_each_row` in the memory order of the first operand (the output of
/// an elementwise kernel) instead of row-major order: dims are sorted by
/// that operand's stride, largest outermost, so a dense output with permuted
/// strides (a clone of a transpose keeps its strides) is written as one
/// sequential run. Only for kernels where visiting order does not matter.
pub fn for_each_row_in_memory_order<const N: usize>(
    shape: &[usize],
    strides: [&[isize]; N],
    f: impl FnMut([isize; N], usize, [isize; N]),
) {
    let Some(first) = strides.first() else {
        return for_each_row(shape, strides, f);
    };
    if first
        .windows(2)
        .all(|w| w[0].unsigned_abs() >= w[1].unsigned_abs())
    {
        return for_each_row(shape, strides, f);
    }
    let mut order: SmallVec<[usize; 8]> = (0..shape.len()).collect();
    order.sort_by_key(|&d| std::cmp::Reverse(first[d].unsigned_abs()));
    let pshape: SmallVec<[usize; 8]> = order.iter().map(|&d| shape[d]).collect();
    let pstrides: [SmallVec<[isize; 8]>; N] =
        std::array::from_fn(|k| order.iter().map(|&d| strides[k][d]).collect());
    for_each_row(&pshape, std::array::from_fn(|k| &pstrides[k][..]), f)
}

/// Calls `f(offset)` for every element, in row-major order of `shape`.
pub fn for_each_offset(shape: &[usize], strides: &[isize], mut f: impl FnMut(isize)) {
    for_each_row(shape, [strides], |[o], len, [s]| {
        for i in 0..len as isize {
            f(o + i * s);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_tensor_is_one_row() {
        let mut rows = 0;
        for_each_row(&[2, 3, 4], [&[12, 4, 1]], |_, len, st| {
            rows += 1;
            assert_eq!((len, st), (24, [1]));
        });
        assert_eq!(rows, 1);
    }

    #[test]
    fn transposed_offsets_in_row_major_order() {
        let mut seen = vec![];
        for_each_offset(&[3, 2], &[1, 3], |o| seen.push(o));
        assert_eq!(seen, vec![0, 3, 1, 4, 2, 5]);
    }
}
