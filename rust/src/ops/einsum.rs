//! Contractions: einsum, tensordot, inner, outer, kron, cross, cdist.
//!
//! Every multiply goes through `contract` (a batched matmul of two 3-d
//! tensors on the linear-algebra GEMM).

use crate::error::{wrap_dim, Error, Result};
use crate::ops::binary::{binary, BinaryOp};
use crate::ops::join::{cat, to_i64s};
use crate::ops::{copy, shape, Operand};
use crate::tensor::layout::{broadcast_shapes, fmt_shape, Dims};
use crate::tensor::{DType, Tensor};

/// Batched matrix product `[B, M, K] @ [B, K, N] -> [B, M, N]` of two
/// tensors of one dtype: the one place einsum, tensordot and trace
/// multiply, on the GEMM of `ops::linalg` (strided, vectorised, threaded).
pub fn contract(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.dtype() == DType::Bool {
        // The GEMM refuses bools: multiply as int64, then nonzero is true.
        let (ai, bi) = (
            copy::cast_copy(a, DType::I64)?,
            copy::cast_copy(b, DType::I64)?,
        );
        return copy::to_dtype(&crate::ops::linalg::bmm(&ai, &bi)?, DType::Bool, false);
    }
    crate::ops::linalg::bmm(a, b)
}

/// Permutes `t` to `order`, makes it contiguous and views it as `[.., ..]`
/// with the given 3-d shape.
fn as_3d(t: &Tensor, order: &[usize], shape3: [usize; 3]) -> Result<Tensor> {
    let p = shape::permute(t, &order.iter().map(|&d| d as i64).collect::<Vec<_>>())?;
    let c = copy::contiguous(&p)?;
    shape::reshape(&c, &shape3.map(|d| d as i64))
}

/// One einsum operand: a tensor whose dims carry `labels`.
struct Term {
    t: Tensor,
    labels: Vec<usize>,
}

impl Term {
    fn size(&self, l: usize) -> Option<usize> {
        self.labels
            .iter()
            .position(|&x| x == l)
            .map(|i| self.t.shape()[i])
    }
    /// Sums out the dims whose labels are in `drop` (a product with ones).
    fn sum_out(self, drop: &[usize]) -> Result<Term> {
        let (keep, gone): (Vec<usize>, Vec<usize>) =
            (0..self.labels.len()).partition(|&i| !drop.contains(&self.labels[i]));
        if gone.is_empty() {
            return Ok(self);
        }
        let m: usize = keep.iter().map(|&i| self.t.shape()[i]).product();
        let k: usize = gone.iter().map(|&i| self.t.shape()[i]).product();
        let order: Vec<usize> = keep.iter().chain(&gone).copied().collect();
        let a = as_3d(&self.t, &order, [1, m, k])?;
        let ones =
            crate::ops::creation::full(&[1, k, 1], crate::tensor::Scalar::Int(1), a.dtype())?;
        let r = contract(&a, &ones)?;
        let shape: Vec<i64> = keep.iter().map(|&i| self.t.shape()[i] as i64).collect();
        Ok(Term {
            t: shape::reshape(&r, &shape)?,
            labels: keep.iter().map(|&i| self.labels[i]).collect(),
        })
    }
}

/// Multiplies two terms, keeping the labels in `keep` and summing the rest.
fn contract_terms(a: Term, b: Term, keep: &[usize]) -> Result<Term> {
    let only = |x: &Term, y: &Term| -> Vec<usize> {
        x.labels
            .iter()
            .filter(|l| !y.labels.contains(l) && !keep.contains(l))
            .copied()
            .collect()
    };
    let (da, db) = (only(&a, &b), only(&b, &a));
    let (a, b) = (a.sum_out(&da)?, b.sum_out(&db)?);
    let shared: Vec<usize> = a
        .labels
        .iter()
        .filter(|l| b.labels.contains(l))
        .copied()
        .collect();
    let batch: Vec<usize> = shared
        .iter()
        .filter(|l| keep.contains(l))
        .copied()
        .collect();
    let summed: Vec<usize> = shared
        .iter()
        .filter(|l| !keep.contains(l))
        .copied()
        .collect();
    let afree: Vec<usize> = a
        .labels
        .iter()
        .filter(|l| !shared.contains(l))
        .copied()
        .collect();
    let bfree: Vec<usize> = b
        .labels
        .iter()
        .filter(|l| !shared.contains(l))
        .copied()
        .collect();
    // Shared labels of size 1 on one side broadcast to the other's size.
    let size = |l: usize| a.size(l).unwrap_or(1).max(b.size(l).unwrap_or(1));
    let expand = |x: &Term| -> Result<Tensor> {
        let s: Vec<i64> = x.labels.iter().map(|&l| size(l) as i64).collect();
        shape::expand(&x.t, &s)
    };
    let (ta, tb) = (expand(&a)?, expand(&b)?);
    let pos = |x: &Term, ls: &[usize]| -> Vec<usize> {
        ls.iter()
            .filter_map(|l| x.labels.iter().position(|y| y == l))
            .collect()
    };
    let prod = |ls: &[usize]| ls.iter().map(|&l| size(l)).product::<usize>();
    let (nb, m, k, n) = (prod(&batch), prod(&afree), prod(&summed), prod(&bfree));
    let oa: Vec<usize> = [pos(&a, &batch), pos(&a, &afree), pos(&a, &summed)].concat();
    let ob: Vec<usize> = [pos(&b, &batch), pos(&b, &summed), pos(&b, &bfree)].concat();
    // PyTorch multiplies operands with no summed label elementwise (which
    // promotes) and contracts the rest with bmm (which needs one dtype).
    if !summed.is_empty() && a.t.dtype() != b.t.dtype() {
        return Err(Error::Runtime(format!(
            "expected scalar type {} but found {}",
            a.t.dtype().scalar_name(),
            b.t.dtype().scalar_name()
        )));
    }
    let dtype = a.t.dtype().promote(b.t.dtype());
    let a3 = copy::to_dtype(&as_3d(&ta, &oa, [nb, m, k])?, dtype, false)?;
    let b3 = copy::to_dtype(&as_3d(&tb, &ob, [nb, k, n])?, dtype, false)?;
    let r = contract(&a3, &b3)?;
    let labels: Vec<usize> = [batch, afree, bfree].concat();
    let shape: Vec<i64> = labels.iter().map(|&l| size(l) as i64).collect();
    Ok(Term {
        t: shape::reshape(&r, &shape)?,
        labels,
    })
}

const ELL: usize = 52;

fn label_of(c: char, pos: usize) -> Result<usize> {
    match c {
        'A'..='Z' => Ok(c as usize - 'A' as usize),
        'a'..='z' => Ok(c as usize - 'a' as usize + 26),
        _ => Err(Error::Runtime(format!(
            "einsum(): invalid subscript given at index {pos} in the equation string, subscripts must be in [a-zA-Z]"
        ))),
    }
}

/// Parses one subscript string into labels, with `None` for the ellipsis.
fn parse_subscripts(s: &str, start: usize) -> Result<Vec<Option<usize>>> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '.' {
            if chars.get(i + 1) != Some(&'.') || chars.get(i + 2) != Some(&'.') {
                return Err(Error::Runtime(
                    "einsum(): found '.' for operand 0 that is not part of any ellipsis".into(),
                ));
            }
            if out.contains(&None) {
                return Err(Error::Runtime(
                    "einsum(): found '.' for operand 0 for which an ellipsis was already found"
                        .into(),
                ));
            }
            out.push(None);
            i += 3;
        } else {
            out.push(Some(label_of(chars[i], start + i)?));
            i += 1;
        }
    }
    Ok(out)
}

pub fn einsum(equation: &str, operands: &[Tensor]) -> Result<Tensor> {
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let subs: Vec<&str> = lhs.split(',').collect();
    if subs.len() < operands.len() {
        return Err(Error::Runtime(
            "einsum(): more operands were provided than specified in the equation".into(),
        ));
    }
    if subs.len() > operands.len() {
        return Err(Error::Runtime(
            "einsum(): fewer operands were provided than specified in the equation".into(),
        ));
    }
    if operands.is_empty() {
        return Err(Error::Runtime(
            "einsum(): must provide at least one operand".into(),
        ));
    }
    let parsed: Vec<Vec<Option<usize>>> = subs
        .iter()
        .map(|s| parse_subscripts(s, 0))
        .collect::<Result<_>>()?;
    // Ellipsis dims get labels ELL.. aligned to the right.
    let mut ell_max = 0;
    for (i, (p, t)) in parsed.iter().zip(operands).enumerate() {
        let named = p.iter().filter(|x| x.is_some()).count();
        let has_ell = p.len() != named;
        if has_ell && named > t.ndim() {
            return Err(Error::Runtime(format!(
                "einsum(): the number of subscripts in the equation ({named}) is more than the number of dimensions ({}) for operand {i}",
                t.ndim()
            )));
        }
        if !has_ell && named != t.ndim() {
            return Err(Error::Runtime(format!(
                "einsum(): the number of subscripts in the equation ({named}) does not match the number of dimensions ({}) for operand {i} and no ellipsis was given",
                t.ndim()
            )));
        }
        ell_max = ell_max.max(t.ndim() - named);
    }
    let mut terms = Vec::with_capacity(operands.len());
    let mut counts = [0usize; ELL];
    let mut sizes: Vec<Option<usize>> = vec![None; ELL + ell_max];
    for (i, (p, t)) in parsed.iter().zip(operands).enumerate() {
        let mut ls = Vec::with_capacity(t.ndim());
        for x in p {
            match x {
                Some(l) => {
                    counts[*l] += 1;
                    ls.push(*l)
                }
                None => {
                    let e = t.ndim() + 1 - p.len();
                    ls.extend((ell_max - e..ell_max).map(|j| ELL + j));
                }
            }
        }
        for (d, &l) in ls.iter().enumerate() {
            let s = t.shape()[d];
            match sizes[l] {
                Some(prev) if prev != s && prev != 1 && s != 1 && l < ELL => {
                    let c = if l < 26 {
                        (b'A' + l as u8) as char
                    } else {
                        (b'a' + (l - 26) as u8) as char
                    };
                    return Err(Error::Runtime(format!(
                        "einsum(): subscript {c} has size {s} for operand {i} which does not broadcast with previously seen size {prev}"
                    )));
                }
                Some(prev) if prev != s && prev != 1 && s != 1 => {
                    return Err(Error::Runtime(format!(
                        "einsum(): operands do not broadcast with remapped shapes (original->remapped): {} and size {prev}",
                        fmt_shape(t.shape())
                    )));
                }
                Some(prev) if prev >= s => {}
                _ => sizes[l] = Some(s),
            }
        }
        terms.push(Term {
            t: t.clone(),
            labels: ls,
        });
    }
    let has_ell = parsed.iter().any(|p| p.contains(&None));
    let output: Vec<usize> = match rhs {
        Some(r) => {
            let p = parse_subscripts(r, lhs.len() + 2)?;
            let mut out = Vec::new();
            for x in p {
                match x {
                    Some(l) => {
                        let c = r
                            .chars()
                            .find(|&c| label_of(c, 0).ok() == Some(l))
                            .unwrap_or('?');
                        if counts[l] == 0 {
                            return Err(Error::Runtime(format!(
                                "einsum(): output subscript {c} does not appear in the equation for any input operand"
                            )));
                        }
                        if out.contains(&l) {
                            return Err(Error::Runtime(format!(
                                "einsum(): output subscript {c} appears more than once in the output"
                            )));
                        }
                        out.push(l);
                    }
                    None => out.extend((0..ell_max).map(|j| ELL + j)),
                }
            }
            out
        }
        None => {
            let mut out: Vec<usize> = if has_ell {
                (0..ell_max).map(|j| ELL + j).collect()
            } else {
                Vec::new()
            };
            out.extend((0..ELL).filter(|&l| counts[l] == 1));
            out
        }
    };
    // Repeated labels within one operand: take their diagonal.
    for term in &mut terms {
        loop {
            let dup = term.labels.iter().enumerate().find_map(|(i, l)| {
                term.labels[i + 1..]
                    .iter()
                    .position(|m| m == l)
                    .map(|j| (i, i + 1 + j))
            });
            let Some((i, j)) = dup else { break };
            let l = term.labels[i];
            term.t = shape::diagonal(&term.t, 0, i as i64, j as i64)?;
            term.labels.remove(j);
            term.labels.remove(i);
            term.labels.push(l);
        }
    }
    let mut terms = terms.into_iter();
    let mut acc = terms
        .next()
        .ok_or_else(|| Error::Runtime("einsum(): must provide at least one operand".into()))?;
    let rest: Vec<Term> = terms.collect();
    for k in 0..rest.len() {
        // Labels still needed by the output or a later operand are kept.
        let mut keep = output.clone();
        for later in &rest[k + 1..] {
            keep.extend_from_slice(&later.labels);
        }
        let next = Term {
            t: rest[k].t.clone(),
            labels: rest[k].labels.clone(),
        };
        acc = contract_terms(acc, next, &keep)?;
    }
    let drop: Vec<usize> = acc
        .labels
        .iter()
        .filter(|l| !output.contains(l))
        .copied()
        .collect();
    let acc = acc.sum_out(&drop)?;
    // Output labels a broadcast left out keep their full size.
    let order: Vec<i64> = output
        .iter()
        .map(|l| acc.labels.iter().position(|x| x == l).unwrap_or(0) as i64)
        .collect();
    let r = shape::permute(&acc.t, &order)?;
    let full: Vec<i64> = output
        .iter()
        .map(|&l| sizes[l].unwrap_or(1) as i64)
        .collect();
    shape::expand(&r, &full)
}

/// `tensordot(a, b, dims=(dims_a, dims_b))`.
pub fn tensordot(a: &Tensor, b: &Tensor, dims_a: &[i64], dims_b: &[i64]) -> Result<Tensor> {
    if dims_a.len() != dims_b.len() {
        return Err(Error::Runtime(
            "both dimension lists should have same length".into(),
        ));
    }
    if a.dtype() != b.dtype() {
        return Err(Error::Runtime("both inputs should have same dtype".into()));
    }
    let ca: Vec<usize> = dims_a
        .iter()
        .map(|&d| wrap_dim(d, a.ndim()))
        .collect::<Result<_>>()?;
    let cb: Vec<usize> = dims_b
        .iter()
        .map(|&d| wrap_dim(d, b.ndim()))
        .collect::<Result<_>>()?;
    for (&x, &y) in ca.iter().zip(&cb) {
        let (sx, sy) = (a.shape()[x], b.shape()[y]);
        if sx != sy && sx != 1 && sy != 1 {
            return Err(Error::Runtime(format!(
                "contracted dimensions need to match, but first has size {sx} in dim {x} and second has size {sy} in dim {y}"
            )));
        }
    }
    // Labels: a's dims 0..na, b's free dims after; contracted dims share a's.
    let na = a.ndim();
    let la: Vec<usize> = (0..na).collect();
    let lb: Vec<usize> = (0..b.ndim())
        .map(|d| cb.iter().position(|&y| y == d).map_or(na + d, |k| ca[k]))
        .collect();
    let keep: Vec<usize> = la
        .iter()
        .filter(|l| !ca.contains(l))
        .copied()
        .chain((0..b.ndim()).filter(|d| !cb.contains(d)).map(|d| na + d))
        .collect();
    let r = contract_terms(
        Term {
            t: a.clone(),
            labels: la,
        },
        Term {
            t: b.clone(),
            labels: lb,
        },
        &keep,
    )?;
    let order: Vec<i64> = keep
        .iter()
        .map(|l| r.labels.iter().position(|x| x == l).unwrap_or(0) as i64)
        .collect();
    shape::permute(&r.t, &order)
}

pub fn inner(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.ndim() == 0 || b.ndim() == 0 {
        return binary(
            BinaryOp::Mul,
            &Operand::Tensor(a.clone()),
            &Operand::Tensor(b.clone()),
            None,
        );
    }
    let (x, y) = (a.shape()[a.ndim() - 1], b.shape()[b.ndim() - 1]);
    if x != y {
        return Err(Error::Runtime(format!(
            "inner() the last dimension must match on both input tensors but got shapes {} and {}",
            fmt_shape(a.shape()),
            fmt_shape(b.shape())
        )));
    }
    // Unlike tensordot, inner promotes mixed dtypes (as PyTorch does).
    let dtype = a.dtype().promote(b.dtype());
    let (a, b) = (
        copy::to_dtype(a, dtype, false)?,
        copy::to_dtype(b, dtype, false)?,
    );
    tensordot(&a, &b, &[-1], &[-1])
}

pub fn outer(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    for (t, name) in [(a, "self"), (b, "vec2")] {
        if t.ndim() != 1 {
            return Err(Error::Runtime(format!(
                "outer: Expected 1-D argument {name}, but got {}-D",
                t.ndim()
            )));
        }
    }
    binary(
        BinaryOp::Mul,
        &Operand::Tensor(shape::unsqueeze(a, 1)?),
        &Operand::Tensor(b.clone()),
        None,
    )
}

pub fn kron(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let n = a.ndim().max(b.ndim());
    let pad = |t: &Tensor| -> Vec<i64> {
        let mut s = vec![1i64; n - t.ndim()];
        s.extend(to_i64s(t.shape()));
        s
    };
    let (sa, sb) = (pad(a), pad(b));
    let mut va = Vec::with_capacity(2 * n);
    let mut vb = Vec::with_capacity(2 * n);
    for i in 0..n {
        va.extend([sa[i], 1]);
        vb.extend([1, sb[i]]);
    }
    let p = binary(
        BinaryOp::Mul,
        &Operand::Tensor(shape::reshape(a, &va)?),
        &Operand::Tensor(shape::reshape(b, &vb)?),
        None,
    )?;
    let out: Vec<i64> = (0..n).map(|i| sa[i] * sb[i]).collect();
    shape::reshape(&p, &out)
}

/// `cross(a, b, dim)`; with no dim, the first dim of size 3.
pub fn cross(a: &Tensor, b: &Tensor, dim: Option<i64>) -> Result<Tensor> {
    if a.ndim() != b.ndim() {
        return Err(Error::Runtime(
            "linalg.cross: inputs must have the same number of dimensions.".into(),
        ));
    }
    let sh = broadcast_shapes(a.shape(), b.shape())?;
    let d = match dim {
        Some(d) => crate::error::wrap_dim_strict(d, sh.len())?,
        None => sh
            .iter()
            .position(|&s| s == 3)
            .ok_or_else(|| Error::Runtime("no dimension of size 3 in input".into()))?,
    };
    if a.shape()[d] != 3 || b.shape()[d] != 3 {
        return Err(Error::Runtime(format!(
            "linalg.cross: inputs dimension {d} must have length 3. Got {} and {}",
            a.shape()[d],
            b.shape()[d]
        )));
    }
    let s = to_i64s(&sh);
    let (a, b) = (shape::expand(a, &s)?, shape::expand(b, &s)?);
    let c = |t: &Tensor, i: i64| -> Result<Operand> {
        Ok(Operand::Tensor(shape::narrow(t, d as i64, i, 1)?))
    };
    let mut parts = Vec::with_capacity(3);
    for (i, j) in [(1, 2), (2, 0), (0, 1)] {
        let x = binary(BinaryOp::Mul, &c(&a, i)?, &c(&b, j)?, None)?;
        let y = binary(BinaryOp::Mul, &c(&a, j)?, &c(&b, i)?, None)?;
        parts.push(binary(
            BinaryOp::Sub,
            &Operand::Tensor(x),
            &Operand::Tensor(y),
            None,
        )?);
    }
    cat(&parts, d as i64)
}

/// `cdist(x1, x2, p)`: p-norm distances between the rows of two
/// (batched) matrices, computed in float64 and rounded once.
pub fn cdist(x1: &Tensor, x2: &Tensor, p: f64) -> Result<Tensor> {
    for (t, name) in [(x1, "X1"), (x2, "X2")] {
        if !t.dtype().is_floating_point() {
            return Err(Error::Runtime(format!(
                "cdist only supports floating-point dtypes, {name} got: {}",
                t.dtype().scalar_name()
            )));
        }
        if t.ndim() < 2 {
            return Err(Error::Runtime(format!(
                "cdist only supports at least 2D tensors, {name} got: {}D",
                t.ndim()
            )));
        }
    }
    let (n1, n2) = (x1.ndim(), x2.ndim());
    if x1.shape()[n1 - 1] != x2.shape()[n2 - 1] {
        return Err(Error::Runtime(format!(
            "X1 and X2 must have the same number of columns. X1: {} X2: {}",
            x1.shape()[n1 - 1],
            x2.shape()[n2 - 1]
        )));
    }
    if p < 0.0 || p.is_nan() {
        return Err(Error::Runtime(
            "cdist only supports non-negative p values".into(),
        ));
    }
    if crate::autograd::needs_grad(&[x1, x2]) {
        // Differentiable form: the p-norm of all pairwise differences.
        let diff = binary(
            BinaryOp::Sub,
            &Operand::Tensor(shape::unsqueeze(x1, -2)?),
            &Operand::Tensor(shape::unsqueeze(x2, -3)?),
            None,
        )?;
        return crate::ops::reduce::vector_norm(&diff, p, Some(&[-1]), false, None);
    }
    let batch = broadcast_shapes(&x1.shape()[..n1 - 2], &x2.shape()[..n2 - 2])?;
    let (r1, r2, m) = (x1.shape()[n1 - 2], x2.shape()[n2 - 2], x1.shape()[n1 - 1]);
    let full = |t: &Tensor, r: usize| -> Result<Tensor> {
        let mut s = to_i64s(&batch);
        s.extend([r as i64, m as i64]);
        copy::cast_copy(&shape::expand(t, &s)?, DType::F64)
    };
    let (a, b) = (full(x1, r1)?, full(x2, r2)?);
    let nb: usize = batch.iter().product();
    let mut shape: Dims = batch.clone();
    shape.extend([r1, r2]);
    let out = Tensor::empty(&shape, DType::F64)?;
    let (pa, pb, po) = (
        a.data_ptr::<f64>(),
        b.data_ptr::<f64>(),
        out.data_ptr::<f64>(),
    );
    for bi in 0..nb {
        for i in 0..r1 {
            for j in 0..r2 {
                // SAFETY: fresh contiguous buffers of the shapes indexed here.
                let (u, v) = unsafe {
                    (
                        std::slice::from_raw_parts(pa.add((bi * r1 + i) * m), m),
                        std::slice::from_raw_parts(pb.add((bi * r2 + j) * m), m),
                    )
                };
                let diffs = u.iter().zip(v).map(|(x, y)| (x - y).abs());
                let d = if p == 0.0 {
                    diffs.filter(|&x| x != 0.0).count() as f64
                } else if p == 1.0 {
                    diffs.sum()
                } else if p == 2.0 {
                    diffs.map(|x| x * x).sum::<f64>().sqrt()
                } else if p.is_infinite() {
                    diffs.fold(0.0, f64::max)
                } else {
                    diffs.map(|x| x.powf(p)).sum::<f64>().powf(1.0 / p)
                };
                // SAFETY: as above.
                unsafe { *po.add((bi * r1 + i) * r2 + j) = d };
            }
        }
    }
    copy::to_dtype(&out, x1.dtype().promote(x2.dtype()), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{creation, gather, join};
    use crate::tensor::Scalar;

    fn vals(t: &Tensor) -> Vec<f64> {
        copy::to_vec::<f64>(t).unwrap()
    }

    fn arange(n: i64, dtype: DType) -> Tensor {
        creation::arange(Scalar::Int(0), Scalar::Int(n), Scalar::Int(1), dtype).unwrap()
    }

    #[test]
    fn contract_is_a_batched_matmul_for_every_accumulator() {
        for dtype in [DType::F32, DType::F64, DType::I64, DType::F16] {
            let a = shape::view(&arange(12, dtype), &[2, 2, 3]).unwrap();
            let b = shape::view(&arange(12, dtype), &[2, 3, 2]).unwrap();
            let c = contract(&a, &b).unwrap();
            assert_eq!(c.shape(), &[2, 2, 2]);
            assert_eq!(c.dtype(), dtype);
            // Batch 0: [[0,1,2],[3,4,5]] @ [[0,1],[2,3],[4,5]].
            assert_eq!(&vals(&c)[..4], &[10.0, 13.0, 28.0, 40.0]);
        }
    }

    #[test]
    fn cat_promotes_and_flip_reads_backwards() {
        let a = arange(3, DType::I32);
        let b = creation::full(&[2], Scalar::Float(0.5), DType::F32).unwrap();
        let c = join::cat(&[a, b], 0).unwrap();
        assert_eq!(c.dtype(), DType::F32);
        assert_eq!(vals(&c), vec![0.0, 1.0, 2.0, 0.5, 0.5]);
        let m = shape::view(&arange(6, DType::F64), &[2, 3]).unwrap();
        let f = join::flip(&shape::transpose(&m, 0, 1).unwrap(), &[0, 1]).unwrap();
        assert_eq!(vals(&f), vec![5.0, 2.0, 4.0, 1.0, 3.0, 0.0]);
    }

    #[test]
    fn einsum_trace_and_gather_agree_with_hand_results() {
        let m = shape::view(&arange(9, DType::F64), &[3, 3]).unwrap();
        assert_eq!(
            vals(&einsum("ii", std::slice::from_ref(&m)).unwrap()),
            vec![12.0]
        );
        assert_eq!(vals(&join::trace(&m).unwrap()), vec![12.0]);
        let idx = Tensor::from_slice(&[2i64, 0], &[1, 2]).unwrap();
        assert_eq!(vals(&gather::gather(&m, 1, &idx).unwrap()), vec![2.0, 0.0]);
        let err =
            gather::gather(&m, 1, &Tensor::from_slice(&[3i64], &[1, 1]).unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "index 3 is out of bounds for dimension 1 with size 3"
        );
    }
}
