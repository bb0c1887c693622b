//! Matrix decompositions and what is built on them: LU (inv, det, slogdet,
//! solve), Cholesky, Householder QR, one-sided Jacobi SVD (svd, svdvals,
//! pinv, lstsq, matrix_rank, matrix norms) and Jacobi eigh.
//!
//! Each matrix of a batch is read into a row-major f64 buffer, decomposed
//! there (f64 accumulation for float32 inputs too) and written back in the
//! input's dtype. Jacobi methods are chosen for their accuracy (relative
//! accuracy of small singular values) and simplicity over raw speed.

use crate::autograd::Recorder;
use crate::cpu::parallel::for_ranges;
use crate::error::{try_vec, wrap_dim, Error, Result};
use crate::ops::{arith, copy};
use crate::tensor::layout::fmt_shape;
use crate::tensor::{DType, Tensor};

/// A batch of matrices as row-major f64 buffers.
struct Mats {
    data: Vec<f64>,
    batch: Vec<usize>,
    m: usize,
    n: usize,
}

impl Mats {
    fn count(&self) -> usize {
        self.batch.iter().product()
    }
    fn get(&self, i: usize) -> &[f64] {
        let sz = self.m * self.n;
        &self.data[i * sz..(i + 1) * sz]
    }
}

fn check_float(name: &str, t: &Tensor) -> Result<()> {
    match t.dtype() {
        DType::F32 | DType::F64 => Ok(()),
        DType::F16 | DType::BF16 => Err(Error::Runtime(format!(
            "{name}: Low precision dtypes not supported. Got {}",
            t.dtype().scalar_name()
        ))),
        d => Err(Error::Runtime(format!(
            "{name}: Expected a floating point or complex tensor as input. Got {}",
            d.scalar_name()
        ))),
    }
}

/// Reads `t` (at least 2-D, float) as a batch of matrices.
fn load(name: &str, t: &Tensor, what: &str) -> Result<Mats> {
    if t.ndim() < 2 {
        return Err(Error::Runtime(format!(
            "{name}: The input tensor {what} must have at least 2 dimensions."
        )));
    }
    check_float(name, t)?;
    let nd = t.ndim();
    Ok(Mats {
        data: copy::to_vec::<f64>(t)?,
        batch: t.shape()[..nd - 2].to_vec(),
        m: t.shape()[nd - 2],
        n: t.shape()[nd - 1],
    })
}

fn load_square(name: &str, t: &Tensor) -> Result<Mats> {
    let a = load(name, t, "A")?;
    if a.m != a.n {
        return Err(Error::Runtime(format!(
            "{name}: A must be batches of square matrices, but they are {} by {} matrices",
            a.m, a.n
        )));
    }
    Ok(a)
}

/// A tensor of `dtype` and `shape` holding `data` (row-major f64).
fn store(data: &[f64], shape: &[usize], dtype: DType) -> Result<Tensor> {
    let t = Tensor::from_slice(data, shape)?;
    copy::to_dtype(&t, dtype, false)
}

fn with_batch(batch: &[usize], tail: &[usize]) -> Vec<usize> {
    let mut s = batch.to_vec();
    s.extend_from_slice(tail);
    s
}

/// PyTorch's prefix for an error in one matrix of a batch.
fn batch_prefix(name: &str, batched: bool, i: usize) -> String {
    if batched {
        format!("{name}: (Batch element {i}): ")
    } else {
        format!("{name}: ")
    }
}

/// Calls `f(i, out_i)` for every matrix `i`, each writing its own `out_len`
/// outputs, in parallel for large batches. Returns the first error.
fn per_matrix(
    count: usize,
    out_len: usize,
    cost: usize,
    f: impl Fn(usize, &mut [f64]) -> Result<()> + Sync,
) -> Result<Vec<f64>> {
    let total = count
        .checked_mul(out_len)
        .ok_or_else(|| Error::Runtime("linalg: result too large".into()))?;
    let mut out: Vec<f64> = try_vec(total)?;
    out.resize(total, 0.0);
    let first_err = parking_lot::Mutex::new(None::<(usize, Error)>);
    let base = out.as_mut_ptr() as usize;
    for_ranges(count, cost, 1, |s, e| {
        for i in s..e {
            // SAFETY: matrix i writes only its own disjoint `out_len` slots
            // of `out`, which outlives this scoped call.
            let slot = unsafe {
                std::slice::from_raw_parts_mut((base as *mut f64).add(i * out_len), out_len)
            };
            if let Err(err) = f(i, slot) {
                let mut g = first_err.lock();
                if g.as_ref().is_none_or(|(j, _)| i < *j) {
                    *g = Some((i, err));
                }
                return;
            }
        }
    });
    match first_err.into_inner() {
        Some((_, e)) => Err(e),
        None => Ok(out),
    }
}

fn cube(n: usize) -> usize {
    n.saturating_mul(n).saturating_mul(n).max(1)
}

// ---------------------------------------------------------------- LU

/// In-place LU with partial pivoting of the n x n row-major `a`:
/// returns the permutation sign and the first (1-based) zero pivot.
fn lu(a: &mut [f64], n: usize, perm: &mut [usize]) -> (f64, Option<usize>) {
    let mut sign = 1.0;
    let mut zero = None;
    for (i, p) in perm.iter_mut().enumerate() {
        *p = i;
    }
    for j in 0..n {
        let mut p = j;
        for i in j + 1..n {
            if a[i * n + j].abs() > a[p * n + j].abs() {
                p = i;
            }
        }
        if p != j {
            for c in 0..n {
                a.swap(j * n + c, p * n + c);
            }
            perm.swap(j, p);
            sign = -sign;
        }
        let d = a[j * n + j];
        if d == 0.0 {
            zero.get_or_insert(j + 1);
            continue;
        }
        for i in j + 1..n {
            let f = a[i * n + j] / d;
            a[i * n + j] = f;
            if f != 0.0 {
                for c in j + 1..n {
                    a[i * n + c] -= f * a[j * n + c];
                }
            }
        }
    }
    (sign, zero)
}

/// Solves `LU x = P b` for the `k` columns of row-major n x k `b`, in place.
/// `tmp` (n x k) holds the permuted rows; both substitutions then update
/// whole rows of length k at a time (contiguous, vectorised).
fn lu_solve(lu: &[f64], perm: &[usize], n: usize, b: &mut [f64], k: usize, tmp: &mut [f64]) {
    if n == 0 || k == 0 {
        return;
    }
    for (dst, &p) in tmp.chunks_exact_mut(k).zip(perm) {
        dst.copy_from_slice(&b[p * k..(p + 1) * k]);
    }
    b[..n * k].copy_from_slice(&tmp[..n * k]);
    let axpy = |b: &mut [f64], i: usize, j: usize, f: f64| {
        let (lo, hi) = b.split_at_mut(i.max(j) * k);
        let (dst, src) = if i > j {
            (&mut hi[..k], &lo[j * k..(j + 1) * k])
        } else {
            (&mut lo[i * k..(i + 1) * k], &hi[..k])
        };
        for (d, &s) in dst.iter_mut().zip(src) {
            *d -= f * s;
        }
    };
    for i in 0..n {
        for j in 0..i {
            let f = lu[i * n + j];
            if f != 0.0 {
                axpy(b, i, j, f);
            }
        }
    }
    for i in (0..n).rev() {
        for j in i + 1..n {
            let f = lu[i * n + j];
            if f != 0.0 {
                axpy(b, i, j, f);
            }
        }
        let d = lu[i * n + i];
        b[i * k..(i + 1) * k].iter_mut().for_each(|x| *x /= d);
    }
}

/// `torch.linalg.inv`.
pub fn inv(t: &Tensor) -> Result<Tensor> {
    let name = "linalg.inv";
    let a = load_square(name, t)?;
    let rec = Recorder::new("LinalgInvExBackward0", &[t]);
    let n = a.n;
    let batched = !a.batch.is_empty();
    let out = per_matrix(a.count(), n * n, cube(n), |i, out| {
        let mut m = a.get(i).to_vec();
        let mut perm = vec![0; n];
        let (_, zero) = lu(&mut m, n, &mut perm);
        if let Some(j) = zero {
            return Err(Error::LinAlg(format!(
                "{}The diagonal element {j} is zero, the inversion could not be completed because the input matrix is singular.",
                batch_prefix(name, batched, i)
            )));
        }
        for r in 0..n {
            out[r * n + r] = 1.0;
        }
        let mut tmp = vec![0.0; n * n];
        lu_solve(&m, &perm, n, out, n, &mut tmp);
        Ok(())
    })?;
    let out = store(&out, t.shape(), t.dtype())?;
    if let Some(mut rec) = rec {
        let io = rec.save_output(&out, 0)?;
        rec.finish(&[&out], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            // d(A^-1) = -A^-1 dA A^-1, so gA = -A^-T g A^-T.
            let xt = mt(&ctx.saved(io)?)?;
            Ok(vec![Some(arith::neg(&mm(&mm(&xt, &g)?, &xt)?)?)])
        });
    }
    Ok(out)
}

/// (sign, log|det|) of every matrix, from LU.
fn logdets(name: &str, t: &Tensor) -> Result<(Mats, Vec<f64>)> {
    let a = load_square(name, t)?;
    let n = a.n;
    let out = per_matrix(a.count(), 2, cube(n), |i, out| {
        let mut m = a.get(i).to_vec();
        let mut perm = vec![0; n];
        let (mut sign, zero) = lu(&mut m, n, &mut perm);
        if zero.is_some() {
            out[0] = 0.0;
            out[1] = f64::NEG_INFINITY;
            return Ok(());
        }
        let mut logabs = 0.0;
        for r in 0..n {
            let d = m[r * n + r];
            if d < 0.0 {
                sign = -sign;
            }
            logabs += d.abs().ln();
        }
        if logabs.is_nan() {
            sign = f64::NAN;
        }
        out[0] = sign;
        out[1] = logabs;
        Ok(())
    })?;
    Ok((a, out))
}

/// `torch.linalg.det` (the product of the LU pivots, with the permutation's sign).
pub fn det(t: &Tensor) -> Result<Tensor> {
    let a = load_square("linalg.det", t)?;
    let rec = Recorder::new("LinalgDetBackward0", &[t]);
    let n = a.n;
    let out = per_matrix(a.count(), 1, cube(n), |i, out| {
        let mut m = a.get(i).to_vec();
        let mut perm = vec![0; n];
        let (sign, _) = lu(&mut m, n, &mut perm);
        out[0] = (0..n).fold(sign, |acc, r| acc * m[r * n + r]);
        Ok(())
    })?;
    let out = store(&out, &a.batch, t.dtype())?;
    if let Some(mut rec) = rec {
        let (ia, io) = (rec.save(t)?, rec.save_output(&out, 0)?);
        rec.finish(&[&out], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            // d det(A) = det(A) tr(A^-1 dA): gA = g det(A) A^-T.
            let gd = as_matrix_scale(&arith::mul(&g, &ctx.saved(io)?)?)?;
            Ok(vec![Some(arith::mul(&gd, &mt(&inv(&ctx.saved(ia)?)?)?)?)])
        });
    }
    Ok(out)
}

/// `torch.linalg.slogdet`: (sign, logabsdet).
pub fn slogdet(t: &Tensor) -> Result<(Tensor, Tensor)> {
    let rec = Recorder::new("LinalgSlogdetBackward0", &[t]);
    let (a, out) = logdets("linalg.slogdet", t)?;
    let sign: Vec<f64> = out.iter().step_by(2).copied().collect();
    let logabs: Vec<f64> = out.iter().skip(1).step_by(2).copied().collect();
    let (sign, logabs) = (
        store(&sign, &a.batch, t.dtype())?,
        store(&logabs, &a.batch, t.dtype())?,
    );
    // The sign is piecewise constant: only logabsdet is differentiable.
    if let Some(mut rec) = rec {
        let ia = rec.save(t)?;
        rec.finish(&[&logabs], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            // d log|det A| = tr(A^-1 dA): gA = g A^-T.
            let gd = as_matrix_scale(&g)?;
            Ok(vec![Some(arith::mul(&gd, &mt(&inv(&ctx.saved(ia)?)?)?)?)])
        });
    }
    Ok((sign, logabs))
}

/// Broadcasts the batch dims of `a` (…, m, n) and `b` (…, r, k).
fn broadcast_batch(a: &Tensor, b: &Tensor) -> Result<(Tensor, Tensor, Vec<usize>)> {
    let (na, nb) = (a.ndim(), b.ndim());
    let batch =
        crate::tensor::layout::broadcast_shapes(&a.shape()[..na - 2], &b.shape()[..nb - 2])?;
    let sa = with_batch(&batch, &a.shape()[na - 2..]);
    let sb = with_batch(&batch, &b.shape()[nb - 2..]);
    Ok((
        a.view_with(a.layout().broadcast_to(&sa)?)?,
        b.view_with(b.layout().broadcast_to(&sb)?)?,
        batch.to_vec(),
    ))
}

/// PyTorch's rule for a vector right-hand side: `b` is 1-D, or has one dim
/// less than `a` and matches its batch shape.
fn is_vector_rhs(a: &Tensor, b: &Tensor) -> bool {
    let na = a.ndim();
    b.ndim() == 1 || (b.ndim() + 1 == na && b.shape() == &a.shape()[..na - 1])
}

fn same_dtypes(name: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.dtype() != b.dtype() {
        return Err(Error::Runtime(format!(
            "{name}: Expected A and B to have the same dtype, but found A of type {} and B of type {} instead",
            a.dtype().scalar_name(),
            b.dtype().scalar_name()
        )));
    }
    Ok(())
}

/// The right-hand side as (…, r, k) and whether it was a vector.
fn rhs_matrix(a: &Tensor, b: &Tensor) -> Result<(Tensor, bool)> {
    if is_vector_rhs(a, b) {
        Ok((crate::ops::shape::unsqueeze(b, -1)?, true))
    } else {
        Ok((b.clone(), false))
    }
}

/// `torch.linalg.solve(A, B, left=True)`.
pub fn solve(a: &Tensor, b: &Tensor, left: bool) -> Result<Tensor> {
    let name = "linalg.solve";
    if !left {
        // X A = B  <=>  A^T X^T = B^T.
        let at = crate::ops::shape::matrix_t(a)?;
        let bt = if b.ndim() >= 2 {
            crate::ops::shape::matrix_t(b)?
        } else {
            b.clone()
        };
        let x = solve(&at, &bt, true)?;
        return if x.ndim() >= 2 && b.ndim() >= 2 {
            crate::ops::shape::matrix_t(&x)
        } else {
            Ok(x)
        };
    }
    load_square(name, &a.alias()).map(|_| ())?;
    check_float(name, b)?;
    same_dtypes(name, a, b)?;
    let rec = Recorder::new("LinalgSolveExBackward0", &[a, b]);
    let (b2, vector) = rhs_matrix(a, b)?;
    let n = a.shape()[a.ndim() - 1];
    if b2.shape()[b2.ndim() - 2] != n {
        return Err(Error::Runtime(format!(
            "{name}: Incompatible shapes of A and B for the equation AX = B ({}x{} and {}x{})",
            n,
            n,
            b2.shape()[b2.ndim() - 2],
            b2.shape()[b2.ndim() - 1]
        )));
    }
    let (a3, b3, batch) = broadcast_batch(a, &b2)?;
    let k = b3.shape()[b3.ndim() - 1];
    let am = load_square(name, &a3)?;
    let bm = load(name, &b3, "B")?;
    let batched = !batch.is_empty();
    let out = per_matrix(am.count(), n * k, cube(n), |i, out| {
        let mut m = am.get(i).to_vec();
        let mut perm = vec![0; n];
        let (_, zero) = lu(&mut m, n, &mut perm);
        if zero.is_some() {
            return Err(Error::LinAlg(format!(
                "{}The solver failed because the input matrix is singular.",
                batch_prefix(name, batched, i)
            )));
        }
        out.copy_from_slice(bm.get(i));
        let mut tmp = vec![0.0; n * k];
        lu_solve(&m, &perm, n, out, k, &mut tmp);
        Ok(())
    })?;
    let x = store(&out, &with_batch(&batch, &[n, k]), a.dtype())?;
    let x = if vector {
        crate::ops::shape::squeeze(&x, Some(&[-1]))?
    } else {
        x
    };
    if let Some(mut rec) = rec {
        let (ia, io) = (rec.save(a)?, rec.save_output(&x, 0)?);
        rec.finish(&[&x], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None, None]);
            };
            // X = A^-1 B: gB = A^-T g, gA = -gB X^T (outer products for
            // vector right-hand sides); the engine sums broadcast batches.
            let gb = solve(&mt(&ctx.saved(ia)?)?, &g, true)?;
            let ga = if ctx.needs(0) {
                let x = ctx.saved(io)?;
                let (gb2, x2) = if vector {
                    (unsq(&gb, -1)?, unsq(&x, -1)?)
                } else {
                    (gb.clone(), x)
                };
                Some(arith::neg(&mm(&gb2, &mt(&x2)?)?)?)
            } else {
                None
            };
            Ok(vec![ga, ctx.needs(1).then_some(gb)])
        });
    }
    Ok(x)
}

// ---------------------------------------------------------------- Cholesky

/// `torch.linalg.cholesky(A, upper=False)`.
pub fn cholesky(t: &Tensor, upper: bool) -> Result<Tensor> {
    let name = "linalg.cholesky";
    let a = load_square(name, t)?;
    let rec = Recorder::new("LinalgCholeskyExBackward0", &[t]);
    let n = a.n;
    let batched = !a.batch.is_empty();
    let out = per_matrix(a.count(), n * n, cube(n) / 3 + 1, |i, l| {
        let src = a.get(i);
        for j in 0..n {
            let mut d = src[j * n + j];
            for p in 0..j {
                d -= l[j * n + p] * l[j * n + p];
            }
            if d.is_nan() || d <= 0.0 {
                return Err(Error::LinAlg(format!(
                    "{}The factorization could not be completed because the input is not positive-definite (the leading minor of order {} is not positive-definite).",
                    batch_prefix(name, batched, i),
                    j + 1
                )));
            }
            let d = d.sqrt();
            l[j * n + j] = d;
            for r in j + 1..n {
                let mut s = src[r * n + j];
                for p in 0..j {
                    s -= l[r * n + p] * l[j * n + p];
                }
                l[r * n + j] = s / d;
            }
        }
        if upper {
            for r in 0..n {
                for c in 0..r {
                    l[c * n + r] = l[r * n + c];
                    l[r * n + c] = 0.0;
                }
            }
        }
        Ok(())
    })?;
    let out = store(&out, t.shape(), t.dtype())?;
    if let Some(mut rec) = rec {
        let io = rec.save_output(&out, 0)?;
        rec.finish(&[&out], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            let l = ctx.saved(io)?;
            let (l, g) = if upper { (mt(&l)?, mt(&g)?) } else { (l, g) };
            Ok(vec![Some(cholesky_backward(&l, &g)?)])
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------- QR

/// Applies `I - tau v v^T` to rows `j..m`, columns `c0..` of the row-major
/// matrix `x` with `cols` columns: w = v^T X, then X -= tau v w^T, both
/// walking rows (contiguous) rather than columns.
fn reflect(x: &mut [f64], cols: usize, c0: usize, j: usize, m: usize, v: &[f64], tau: f64) {
    let mut w = vec![0.0; cols - c0];
    for i in j..m {
        let vi = v[i - j];
        for (acc, &e) in w.iter_mut().zip(&x[i * cols + c0..(i + 1) * cols]) {
            *acc += vi * e;
        }
    }
    for i in j..m {
        let f = tau * v[i - j];
        for (e, &wc) in x[i * cols + c0..(i + 1) * cols].iter_mut().zip(&w) {
            *e -= f * wc;
        }
    }
}

/// Householder QR of the m x n row-major `a`: returns (Q m x qc, R rows x n)
/// with `qc` columns of Q (k or m) and the top `rows` rows of R.
fn householder_qr(a: &[f64], m: usize, n: usize, qc: usize, rows: usize) -> (Vec<f64>, Vec<f64>) {
    let k = m.min(n);
    let mut r = a.to_vec();
    let mut vs: Vec<Vec<f64>> = Vec::with_capacity(k);
    let mut taus = Vec::with_capacity(k);
    for j in 0..k {
        let norm = (j..m).map(|i| r[i * n + j].powi(2)).sum::<f64>().sqrt();
        let alpha = r[j * n + j];
        let mut v: Vec<f64> = (j..m).map(|i| r[i * n + j]).collect();
        let mut tau = 0.0;
        if norm > 0.0 {
            // beta = -sign(alpha) * ||x||, as LAPACK's geqrf.
            let beta = if alpha >= 0.0 { -norm } else { norm };
            v[0] = alpha - beta;
            let vnorm2: f64 = v.iter().map(|x| x * x).sum();
            if vnorm2 > 0.0 {
                tau = 2.0 / vnorm2;
            }
        }
        if tau != 0.0 {
            reflect(&mut r, n, j, j, m, &v, tau);
            for i in j + 1..m {
                r[i * n + j] = 0.0;
            }
        }
        vs.push(v);
        taus.push(tau);
    }
    // Q = H_0 H_1 ... H_{k-1} applied to the first qc columns of I.
    let mut q = vec![0.0; m * qc];
    for i in 0..m.min(qc) {
        q[i * qc + i] = 1.0;
    }
    for j in (0..k).rev() {
        let (v, tau) = (&vs[j], taus[j]);
        if tau == 0.0 {
            continue;
        }
        reflect(&mut q, qc, 0, j, m, v, tau);
    }
    r.truncate(rows * n);
    r.resize(rows * n, 0.0);
    (q, r)
}

/// `torch.linalg.qr(A, mode)`: mode is `reduced`, `complete` or `r`.
pub fn qr(t: &Tensor, mode: &str) -> Result<(Tensor, Tensor)> {
    let name = "linalg.qr";
    if !matches!(mode, "reduced" | "complete" | "r") {
        return Err(Error::Runtime(format!(
            "qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), 'r', or 'complete'"
        )));
    }
    let a = load(name, t, "A")?;
    let rec = Recorder::new("LinalgQrBackward0", &[t]);
    let (m, n) = (a.m, a.n);
    let k = m.min(n);
    let (qc, rows) = if mode == "complete" { (m, m) } else { (k, k) };
    let count = a.count();
    let mut qs: Vec<f64> = try_vec(count.saturating_mul(m.saturating_mul(qc)))?;
    let mut rs: Vec<f64> = try_vec(count.saturating_mul(rows.saturating_mul(n)))?;
    for i in 0..count {
        let (q, r) = householder_qr(a.get(i), m, n, qc, rows);
        qs.extend(q);
        rs.extend(r);
    }
    let r = store(&rs, &with_batch(&a.batch, &[rows, n]), t.dtype())?;
    let q = if mode == "r" {
        Tensor::zeros(&[0], t.dtype())?
    } else {
        store(&qs, &with_batch(&a.batch, &[m, qc]), t.dtype())?
    };
    if let Some(mut rec) = rec {
        let (iq, ir) = (rec.save_output(&q, 0)?, rec.save_output(&r, 1)?);
        let mode = mode.to_string();
        rec.finish(&[&q, &r], move |ctx, grads| {
            let mut it = grads.into_iter();
            let (gq, gr) = (it.next().flatten(), it.next().flatten());
            if mode == "r" {
                return Err(Error::Runtime("The derivative of linalg.qr depends on Q, which is not computed when mode='r'. Please use linalg.qr(A, mode='reduced') if you are going to differentiate through linalg.qr.".into()));
            }
            if mode == "complete" && m > n {
                return Err(Error::Runtime("The QR decomposition is not differentiable when mode='complete' and nrows > ncols.".into()));
            }
            Ok(vec![Some(qr_backward(&ctx.saved(iq)?, &ctx.saved(ir)?, gq, gr)?)])
        });
    }
    Ok((q, r))
}

// ---------------------------------------------------------------- SVD

/// Orthonormalises columns `0..cols` of the column-major `basis` (each of
/// length `len`); columns flagged in `bad` (numerically zero) and columns
/// `valid..cols` are replaced by unit vectors orthogonal to the others.
fn complete_basis(basis: &mut [Vec<f64>], len: usize, keep: &[bool]) {
    let mut unit = 0;
    for j in 0..basis.len() {
        if keep[j] {
            continue;
        }
        // Try standard basis vectors until one has a substantial residual.
        loop {
            if unit >= len {
                break;
            }
            let mut v = vec![0.0; len];
            v[unit] = 1.0;
            unit += 1;
            for _ in 0..2 {
                for (p, b) in basis.iter().enumerate() {
                    if p == j || !(keep[p] || p < j) {
                        continue;
                    }
                    let d: f64 = b.iter().zip(&v).map(|(x, y)| x * y).sum();
                    for (x, y) in v.iter_mut().zip(b) {
                        *x -= d * y;
                    }
                }
            }
            // A unit vector skipped here stays below the bar, and the
            // squared residuals of all units sum to len - rank; so with the
            // bar at sqrt(1 / (2 len)) some later unit always clears it.
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm > (0.5 / len as f64).sqrt() {
                v.iter_mut().for_each(|x| *x /= norm);
                basis[j] = v;
                break;
            }
        }
    }
}

/// Starting columns for one-sided Jacobi: `B = A V0` and `V0`, where `V0`
/// holds the eigenvectors of `A^T A`. `B`'s columns are then orthogonal up to
/// the Gram matrix's rounding, so Jacobi (which keeps its own accuracy, as
/// it works on `B`, not on `A^T A`) converges in two or three sweeps
/// instead of eight or more.
fn gram_preconditioned(a: &[f64], m: usize, n: usize) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let mut g = vec![0.0; n * n];
    for row in a.chunks_exact(n) {
        for (p, &x) in row.iter().enumerate() {
            for (gq, &y) in g[p * n + p..(p + 1) * n].iter_mut().zip(&row[p..]) {
                *gq += x * y;
            }
        }
    }
    let (_, v0) = sym_eigh(symmetrize(&g, n, true), n, true);
    let mut b = vec![0.0; m * n];
    for (brow, arow) in b.chunks_exact_mut(n).zip(a.chunks_exact(n)) {
        for (&x, vrow) in arow.iter().zip(v0.chunks_exact(n)) {
            for (o, &y) in brow.iter_mut().zip(vrow) {
                *o += x * y;
            }
        }
    }
    let u = (0..n)
        .map(|c| (0..m).map(|r| b[r * n + c]).collect())
        .collect();
    let v = (0..n)
        .map(|c| (0..n).map(|r| v0[r * n + c]).collect())
        .collect();
    (u, v)
}

/// One-sided Jacobi SVD of the m x n row-major `a` with m >= n.
/// Returns U's columns (n of them, each length m), S (descending) and V's
/// columns (n, each length n). Zero singular values leave zero U columns.
fn jacobi_svd_tall(
    a: &[f64],
    m: usize,
    n: usize,
    want_v: bool,
) -> (Vec<Vec<f64>>, Vec<f64>, Vec<Vec<f64>>) {
    if a.iter().any(|x| x.is_nan()) {
        // Rotations would never converge; LAPACK returns NaNs too.
        let nan = |len: usize| vec![vec![f64::NAN; len]; n];
        let v = if want_v { nan(n) } else { Vec::new() };
        return (nan(m), vec![f64::NAN; n], v);
    }
    let (mut u, mut v) = if n > JACOBI_EIGH_MAX {
        gram_preconditioned(a, m, n)
    } else {
        let u: Vec<Vec<f64>> = (0..n)
            .map(|c| (0..m).map(|r| a[r * n + c]).collect())
            .collect();
        let v: Vec<Vec<f64>> = (0..n)
            .map(|c| (0..n).map(|r| (r == c) as u8 as f64).collect())
            .collect();
        (u, v)
    };
    let eps = f64::EPSILON;
    for _sweep in 0..80 {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let (up, uq) = (&u[p], &u[q]);
                let (mut alpha, mut beta, mut gamma) = (0.0, 0.0, 0.0);
                for (x, y) in up.iter().zip(uq) {
                    alpha += x * x;
                    beta += y * y;
                    gamma += x * y;
                }
                if gamma == 0.0 || gamma.abs() <= eps * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                let (lo, hi) = u.split_at_mut(q);
                for (x, y) in lo[p].iter_mut().zip(hi[0].iter_mut()) {
                    let (a0, b0) = (*x, *y);
                    *x = c * a0 - s * b0;
                    *y = s * a0 + c * b0;
                }
                if want_v {
                    let (lo, hi) = v.split_at_mut(q);
                    for (x, y) in lo[p].iter_mut().zip(hi[0].iter_mut()) {
                        let (a0, b0) = (*x, *y);
                        *x = c * a0 - s * b0;
                        *y = s * a0 + c * b0;
                    }
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let mut s: Vec<f64> = u
        .iter()
        .map(|c| c.iter().map(|x| x * x).sum::<f64>().sqrt())
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| s[j].total_cmp(&s[i]));
    let smax = s.iter().cloned().fold(0.0, f64::max);
    let u2: Vec<Vec<f64>> = order
        .iter()
        .map(|&j| {
            let norm = s[j];
            if norm > smax * f64::EPSILON * (m as f64) && norm > 0.0 {
                u[j].iter().map(|x| x / norm).collect()
            } else {
                vec![0.0; m]
            }
        })
        .collect();
    let v2 = if want_v {
        order.iter().map(|&j| std::mem::take(&mut v[j])).collect()
    } else {
        Vec::new()
    };
    s = order.iter().map(|&j| s[j]).collect();
    (u2, s, v2)
}

/// SVD of one m x n matrix: (U m x uc row-major, S, Vh vc x n row-major)
/// with uc = vc = min(m, n), or m and n with `full`.
fn svd_one(
    a: &[f64],
    m: usize,
    n: usize,
    full: bool,
    want_uv: bool,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let k = m.min(n);
    let tall = m >= n;
    // For wide matrices decompose A^T = V S U^T.
    let at: Vec<f64>;
    let (src, rows, cols) = if tall {
        (a, m, n)
    } else {
        at = (0..n * m).map(|i| a[(i % m) * n + i / m]).collect();
        (&at[..], n, m)
    };
    let (mut left, s, mut right) = jacobi_svd_tall(src, rows, cols, want_uv);
    if !want_uv {
        return (Vec::new(), s, Vec::new());
    }
    // `left` has k columns of length rows; complete to rows columns if full.
    let smax = s.first().copied().unwrap_or(0.0);
    let mut keep: Vec<bool> = left.iter().map(|c| c.iter().any(|&x| x != 0.0)).collect();
    let _ = smax;
    let lc = if full { rows } else { k };
    left.resize(lc, vec![0.0; rows]);
    keep.resize(lc, false);
    complete_basis(&mut left, rows, &keep);
    let rc = k;
    right.truncate(rc);
    let (ucols, vcols) = if tall { (left, right) } else { (right, left) };
    // U: m x uc from its columns; Vh: rows are V's columns.
    let uc = ucols.len();
    let mut u = vec![0.0; m * uc];
    for (c, col) in ucols.iter().enumerate() {
        for r in 0..m {
            u[r * uc + c] = col[r];
        }
    }
    let mut vh = Vec::with_capacity(vcols.len() * n);
    for col in &vcols {
        vh.extend_from_slice(col);
    }
    (u, s, vh)
}

/// `torch.linalg.svd(A, full_matrices=True)`: (U, S, Vh).
pub fn svd(t: &Tensor, full_matrices: bool) -> Result<(Tensor, Tensor, Tensor)> {
    let a = load("linalg.svd", t, "A")?;
    let rec = Recorder::new("LinalgSvdBackward0", &[t]);
    let (m, n) = (a.m, a.n);
    let k = m.min(n);
    let (uc, vr) = if full_matrices { (m, n) } else { (k, k) };
    let count = a.count();
    let mut us: Vec<f64> = try_vec(count.saturating_mul(m.saturating_mul(uc)))?;
    let mut ss: Vec<f64> = try_vec(count.saturating_mul(k))?;
    let mut vs: Vec<f64> = try_vec(count.saturating_mul(vr.saturating_mul(n)))?;
    for i in 0..count {
        let (u, s, vh) = svd_one(a.get(i), m, n, full_matrices, true);
        us.extend(u);
        ss.extend(s);
        vs.extend(vh);
    }
    let (u, s, vh) = (
        store(&us, &with_batch(&a.batch, &[m, uc]), t.dtype())?,
        store(&ss, &with_batch(&a.batch, &[k]), t.dtype())?,
        store(&vs, &with_batch(&a.batch, &[vr, n]), t.dtype())?,
    );
    if let Some(mut rec) = rec {
        let (iu, is, iv) = (
            rec.save_output(&u, 0)?,
            rec.save_output(&s, 1)?,
            rec.save_output(&vh, 2)?,
        );
        rec.finish(&[&u, &s, &vh], move |ctx, grads| {
            let mut it = grads.into_iter();
            let (gu, gs, gv) = (
                it.next().flatten(),
                it.next().flatten(),
                it.next().flatten(),
            );
            // With full_matrices, only the first k singular vectors enter
            // A = U S Vh; the rest are arbitrary (PyTorch narrows too).
            let kk = k as i64;
            let cols = |x: Tensor| crate::ops::shape::narrow(&x, -1, 0, kk);
            let rows = |x: Tensor| crate::ops::shape::narrow(&x, -2, 0, kk);
            let (u, vh) = (cols(ctx.saved(iu)?)?, rows(ctx.saved(iv)?)?);
            let gu = gu.map(cols).transpose()?;
            let gv = gv.map(rows).transpose()?;
            Ok(vec![svd_backward(&u, &ctx.saved(is)?, &vh, gu, gs, gv)?])
        });
    }
    Ok((u, s, vh))
}

/// Singular values of every matrix, descending.
fn singular_values(a: &Mats) -> Result<Vec<f64>> {
    let (m, n) = (a.m, a.n);
    let k = m.min(n);
    per_matrix(a.count(), k, cube(k.max(1)) * 4, |i, out| {
        out.copy_from_slice(&svd_one(a.get(i), m, n, false, false).1);
        Ok(())
    })
}

/// `torch.linalg.svdvals`.
pub fn svdvals(t: &Tensor) -> Result<Tensor> {
    if crate::autograd::needs_grad(&[t]) {
        // The derivative needs the singular vectors (as PyTorch).
        load("linalg.svdvals", t, "A")?;
        return Ok(svd(t, false)?.1);
    }
    let a = load("linalg.svdvals", t, "A")?;
    let s = singular_values(&a)?;
    store(&s, &with_batch(&a.batch, &[a.m.min(a.n)]), t.dtype())
}

// ---------------------------------------------------------------- eigh

/// Cyclic Jacobi eigendecomposition of the symmetric n x n row-major `a`:
/// eigenvalues ascending and eigenvectors as the columns of row-major V.
///
/// Each rotation updates rows p and q (contiguous) and mirrors them into
/// the columns; V is kept transposed so its updates are contiguous too. A
/// pair is skipped once |a_pq| is below eps * sqrt(|a_pp a_qq|), and the
/// sweeps stop when none rotates (quadratic convergence: a handful).
fn jacobi_eigh(mut a: Vec<f64>, n: usize, want_v: bool) -> (Vec<f64>, Vec<f64>) {
    if a.iter().any(|x| x.is_nan()) {
        // No rotation would converge; LAPACK returns NaNs too.
        return (
            vec![f64::NAN; n],
            vec![f64::NAN; if want_v { n * n } else { 0 }],
        );
    }
    let mut vt = vec![0.0; if want_v { n * n } else { 0 }];
    if want_v {
        for i in 0..n {
            vt[i * n + i] = 1.0;
        }
    }
    for _sweep in 0..100 {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                let (app, aqq) = (a[p * n + p], a[q * n + q]);
                if apq.abs() < f64::MIN_POSITIVE
                    || apq.abs() <= f64::EPSILON * (app.abs() * aqq.abs()).sqrt()
                {
                    continue;
                }
                rotated = true;
                let theta = (aqq - app) / (2.0 * apq);
                let t = if theta == 0.0 {
                    1.0
                } else {
                    theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt())
                };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    if k == p || k == q {
                        continue;
                    }
                    let (akp, akq) = (a[p * n + k], a[q * n + k]);
                    let (np, nq) = (c * akp - s * akq, s * akp + c * akq);
                    a[p * n + k] = np;
                    a[q * n + k] = nq;
                    a[k * n + p] = np;
                    a[k * n + q] = nq;
                }
                a[p * n + p] = app - t * apq;
                a[q * n + q] = aqq + t * apq;
                a[p * n + q] = 0.0;
                a[q * n + p] = 0.0;
                if want_v {
                    let (lo, hi) = vt.split_at_mut(q * n);
                    let (rp, rq) = (&mut lo[p * n..(p + 1) * n], &mut hi[..n]);
                    for (x, y) in rp.iter_mut().zip(rq.iter_mut()) {
                        let (vp, vq) = (*x, *y);
                        *x = c * vp - s * vq;
                        *y = s * vp + c * vq;
                    }
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let w: Vec<f64> = (0..n).map(|i| a[i * n + i]).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| w[i].total_cmp(&w[j]));
    let ws = order.iter().map(|&i| w[i]).collect();
    let mut vs = vec![0.0; vt.len()];
    if want_v {
        for (c, &j) in order.iter().enumerate() {
            for r in 0..n {
                vs[r * n + c] = vt[j * n + r];
            }
        }
    }
    (ws, vs)
}

/// Jacobi is accurate and quick for small matrices; above this size the
/// tridiagonal route's O(n^3) with a small constant wins (n = 512: ~50x).
const JACOBI_EIGH_MAX: usize = 16;

/// Eigendecomposition of the symmetric n x n row-major `a` (ascending
/// eigenvalues, eigenvectors as the columns of row-major V).
fn sym_eigh(a: Vec<f64>, n: usize, want_v: bool) -> (Vec<f64>, Vec<f64>) {
    if n <= JACOBI_EIGH_MAX || a.iter().any(|x| !x.is_finite()) {
        return jacobi_eigh(a, n, want_v);
    }
    tridiagonal_eigh(a, n, want_v)
}

/// Householder reduction of the symmetric `a` to tridiagonal form
/// `Q^T A Q = T`, then implicit-shift QL on `T` (LAPACK's `steqr` route).
///
/// The reduction keeps the whole trailing block and applies each reflector
/// as a symmetric rank-2 update (row-wise, contiguous); `Q` is accumulated
/// backwards from the stored reflectors and kept transposed, so each QL
/// rotation updates two contiguous rows.
fn tridiagonal_eigh(mut a: Vec<f64>, n: usize, want_v: bool) -> (Vec<f64>, Vec<f64>) {
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    // Reflector k is `I - beta_k v v^T` on rows/cols k+1..n; v lives in
    // row k's tail of `a` once the row is no longer needed.
    let mut betas = vec![0.0; n];
    let (mut p, mut w) = (vec![0.0; n], vec![0.0; n]);
    for k in 0..n.saturating_sub(2) {
        let m = n - k - 1;
        let x = &a[k * n + k + 1..(k + 1) * n];
        let tail: f64 = x[1..].iter().map(|v| v * v).sum();
        let norm = (x[0] * x[0] + tail).sqrt();
        if tail == 0.0 {
            e[k] = x[0];
            continue;
        }
        let alpha = if x[0] > 0.0 { -norm } else { norm };
        let mut v = x.to_vec();
        v[0] -= alpha;
        let beta = 2.0 / (v[0] * v[0] + tail);
        e[k] = alpha;
        betas[k] = beta;
        // p = beta S v, w = p - (beta/2)(p.v) v, S -= v w^T + w v^T.
        let base = (k + 1) * n + k + 1;
        for i in 0..m {
            let row = &a[base + i * n..base + i * n + m];
            p[i] = beta * row.iter().zip(&v).map(|(s, v)| s * v).sum::<f64>();
        }
        let kk = 0.5 * beta * p[..m].iter().zip(&v).map(|(p, v)| p * v).sum::<f64>();
        for i in 0..m {
            w[i] = p[i] - kk * v[i];
        }
        for i in 0..m {
            let (vi, wi) = (v[i], w[i]);
            let row = &mut a[base + i * n..base + i * n + m];
            for ((s, &vj), &wj) in row.iter_mut().zip(&v).zip(&w[..m]) {
                *s -= vi * wj + wi * vj;
            }
        }
        a[k * n + k + 1..(k + 1) * n].copy_from_slice(&v);
    }
    for i in 0..n {
        d[i] = a[i * n + i];
    }
    if n >= 2 {
        e[n - 2] = a[(n - 2) * n + n - 1];
    }
    // zt = Q^T, rows are the eigenvectors-to-be; Q = H_0 H_1 ... built from
    // the last reflector back, each touching rows k+1.. of Q.
    let mut zt = Vec::new();
    if want_v {
        let mut q = vec![0.0; n * n];
        for i in 0..n {
            q[i * n + i] = 1.0;
        }
        for k in (0..n.saturating_sub(2)).rev() {
            let beta = betas[k];
            if beta == 0.0 {
                continue;
            }
            let v = &a[k * n + k + 1..(k + 1) * n];
            let wk = &mut w[..n];
            wk.iter_mut().for_each(|x| *x = 0.0);
            for (i, &vi) in v.iter().enumerate() {
                let row = &q[(k + 1 + i) * n..(k + 2 + i) * n];
                for (acc, &r) in wk.iter_mut().zip(row) {
                    *acc += vi * r;
                }
            }
            for (i, &vi) in v.iter().enumerate() {
                let f = beta * vi;
                let row = &mut q[(k + 1 + i) * n..(k + 2 + i) * n];
                for (r, &acc) in row.iter_mut().zip(wk.iter()) {
                    *r -= f * acc;
                }
            }
        }
        zt = vec![0.0; n * n];
        for r in 0..n {
            for c in 0..n {
                zt[c * n + r] = q[r * n + c];
            }
        }
    }
    tridiagonal_ql(&mut d, &mut e, &mut zt, n);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[i].total_cmp(&d[j]));
    let ws = order.iter().map(|&i| d[i]).collect();
    let mut vs = vec![0.0; if want_v { n * n } else { 0 }];
    if want_v {
        for (c, &j) in order.iter().enumerate() {
            for r in 0..n {
                vs[r * n + c] = zt[j * n + r];
            }
        }
    }
    (ws, vs)
}

/// Implicit QL with Wilkinson-style shifts on the tridiagonal (`d`, `e`;
/// `e[i]` couples i and i+1): `d` becomes the eigenvalues and each
/// rotation is applied to rows i, i+1 of `zt` (when not empty).
fn tridiagonal_ql(d: &mut [f64], e: &mut [f64], zt: &mut [f64], n: usize) {
    for l in 0..n {
        for _iter in 0..64 {
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0, 1.0, 0.0);
            let mut underflow = false;
            for i in (l..m).rev() {
                let f = s * e[i];
                let b = c * e[i];
                r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    underflow = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                if !zt.is_empty() {
                    let (lo, hi) = zt.split_at_mut((i + 1) * n);
                    let (zi, zi1) = (&mut lo[i * n..], &mut hi[..n]);
                    for (x, y) in zi.iter_mut().zip(zi1.iter_mut()) {
                        let f = *y;
                        *y = s * *x + c * f;
                        *x = c * *x - s * f;
                    }
                }
            }
            if underflow {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
}

/// The symmetric matrix read from one triangle of `a` (PyTorch's `UPLO`).
fn symmetrize(a: &[f64], n: usize, upper: bool) -> Vec<f64> {
    let mut s = a.to_vec();
    for r in 0..n {
        for c in 0..r {
            let v = if upper { a[c * n + r] } else { a[r * n + c] };
            s[r * n + c] = v;
            s[c * n + r] = v;
        }
    }
    s
}

fn parse_uplo(uplo: &str) -> Result<bool> {
    match uplo {
        "L" | "l" => Ok(false),
        "U" | "u" => Ok(true),
        _ => Err(Error::Runtime(format!(
            "Expected UPLO argument to be 'L' or 'U', but got {uplo}"
        ))),
    }
}

/// `torch.linalg.eigh(A, UPLO='L')`: (eigenvalues ascending, eigenvectors).
pub fn eigh(t: &Tensor, uplo: &str) -> Result<(Tensor, Tensor)> {
    let upper = parse_uplo(uplo)?;
    let a = load_square("linalg.eigh", t)?;
    let rec = Recorder::new("LinalgEighBackward0", &[t]);
    let n = a.n;
    let out = per_matrix(a.count(), n + n * n, cube(n) * 8, |i, out| {
        let (w, v) = sym_eigh(symmetrize(a.get(i), n, upper), n, true);
        out[..n].copy_from_slice(&w);
        out[n..].copy_from_slice(&v);
        Ok(())
    })?;
    let per = n + n * n;
    let count = a.count();
    let w: Vec<f64> = (0..count)
        .flat_map(|i| out[i * per..i * per + n].to_vec())
        .collect();
    let v: Vec<f64> = (0..count)
        .flat_map(|i| out[i * per + n..(i + 1) * per].to_vec())
        .collect();
    let (w, v) = (
        store(&w, &with_batch(&a.batch, &[n]), t.dtype())?,
        store(&v, t.shape(), t.dtype())?,
    );
    if let Some(mut rec) = rec {
        let (iw, iv) = (rec.save_output(&w, 0)?, rec.save_output(&v, 1)?);
        rec.finish(&[&w, &v], move |ctx, grads| {
            let mut it = grads.into_iter();
            let (gw, gv) = (it.next().flatten(), it.next().flatten());
            Ok(vec![eigh_backward(
                &ctx.saved(iw)?,
                &ctx.saved(iv)?,
                gw,
                gv,
            )?])
        });
    }
    Ok((w, v))
}

/// `torch.linalg.eigvalsh(A, UPLO='L')`.
pub fn eigvalsh(t: &Tensor, uplo: &str) -> Result<Tensor> {
    let upper = parse_uplo(uplo)?;
    if crate::autograd::needs_grad(&[t]) {
        // The derivative needs the eigenvectors (as PyTorch).
        load_square("linalg.eigvalsh", t)?;
        return Ok(eigh(t, uplo)?.0);
    }
    let a = load_square("linalg.eigvalsh", t)?;
    let n = a.n;
    let w = per_matrix(a.count(), n, cube(n) * 4, |i, out| {
        out.copy_from_slice(&sym_eigh(symmetrize(a.get(i), n, upper), n, false).0);
        Ok(())
    })?;
    store(&w, &with_batch(&a.batch, &[n]), t.dtype())
}

// ---------------------------------------------------------------- SVD-based

fn eps_of(d: DType) -> f64 {
    if d == DType::F32 {
        f32::EPSILON as f64
    } else {
        f64::EPSILON
    }
}

/// The threshold below which singular values count as zero, as PyTorch's
/// `pinv`/`matrix_rank`: max(atol, rtol * smax), rtol defaulting to
/// eps * max(m, n) when neither is given.
fn tolerance(smax: f64, atol: Option<f64>, rtol: Option<f64>, m: usize, n: usize, d: DType) -> f64 {
    let rtol = match (atol, rtol) {
        (_, Some(r)) => r,
        (Some(a), None) if a > 0.0 => 0.0,
        _ => eps_of(d) * m.max(n) as f64,
    };
    atol.unwrap_or(0.0).max(rtol * smax)
}

/// `torch.linalg.pinv(A, atol=None, rtol=None, hermitian=False)`.
pub fn pinv(t: &Tensor, atol: Option<f64>, rtol: Option<f64>, hermitian: bool) -> Result<Tensor> {
    let a = load("linalg.pinv", t, "A")?;
    let (m, n) = (a.m, a.n);
    let d = t.dtype();
    if hermitian && m != n {
        return Err(Error::Runtime(format!(
            "linalg.pinv(hermitian=True): A must be batches of square matrices, but they are {m} by {n} matrices"
        )));
    }
    if crate::autograd::needs_grad(&[t]) {
        return pinv_composite(t, atol, rtol, hermitian);
    }
    let out = per_matrix(a.count(), n * m, cube(m.max(n)) * 8, |i, out| {
        if hermitian {
            let (w, v) = sym_eigh(symmetrize(a.get(i), n, false), n, true);
            let wmax = w.iter().fold(0.0f64, |acc, x| acc.max(x.abs()));
            let tol = tolerance(wmax, atol, rtol, m, n, d);
            for (j, &l) in w.iter().enumerate() {
                if l.abs() > tol {
                    for r in 0..n {
                        for c in 0..n {
                            out[r * n + c] += v[r * n + j] * v[c * n + j] / l;
                        }
                    }
                }
            }
            return Ok(());
        }
        let (u, s, vh) = svd_one(a.get(i), m, n, false, true);
        if s.iter().any(|x| x.is_nan()) {
            out.fill(f64::NAN);
            return Ok(());
        }
        let k = m.min(n);
        let tol = tolerance(s.first().copied().unwrap_or(0.0), atol, rtol, m, n, d);
        // pinv = V diag(1/s) U^T : n x m.
        for (j, &sv) in s.iter().enumerate() {
            if sv > tol {
                for r in 0..n {
                    let x = vh[j * n + r] / sv;
                    for c in 0..m {
                        out[r * m + c] += x * u[c * k + j];
                    }
                }
            }
        }
        Ok(())
    })?;
    store(&out, &with_batch(&a.batch, &[n, m]), d)
}

/// `pinv` from tracked `svd` (or `eigh`): V diag(1/s) U^T over the values
/// above the tolerance, as PyTorch's composite.
fn pinv_composite(
    t: &Tensor,
    atol: Option<f64>,
    rtol: Option<f64>,
    hermitian: bool,
) -> Result<Tensor> {
    let nd = t.ndim();
    let (m, n) = (t.shape()[nd - 2], t.shape()[nd - 1]);
    let (vals, left, right) = if hermitian {
        let (w, v) = eigh(t, "L")?;
        (w, v.clone(), mt(&v)?)
    } else {
        let (u, s, vh) = svd(t, false)?;
        (s, u, vh)
    };
    let keep = {
        let _off = crate::autograd::GradMode::set(false);
        let abs = arith::un(crate::ops::unary::Unary::Abs, &vals)?;
        let vmax = crate::ops::reduce::amax(&abs, Some(&[-1]), true)?;
        let rt = match (atol, rtol) {
            (_, Some(r)) => r,
            (Some(a), None) if a > 0.0 => 0.0,
            _ => eps_of(t.dtype()) * m.max(n) as f64,
        };
        let above = |x: &Tensor| arith::cmp(crate::ops::binary::BinaryOp::Gt, &abs, x);
        let k = arith::and(
            &above(&arith::scale(&vmax, rt)?)?,
            &arith::cmp_s(crate::ops::binary::BinaryOp::Gt, &abs, atol.unwrap_or(0.0))?,
        )?;
        copy::to_dtype(&k, t.dtype(), false)?
    };
    // 1/v where kept, 0 elsewhere, without dividing by a dropped zero.
    let safe = arith::add(&vals, &arith::rsub_s(1.0, &keep)?)?;
    let recip = arith::div(&keep, &safe)?;
    mm(&arith::mul(&mt(&right)?, &unsq(&recip, -2)?)?, &mt(&left)?)
}

/// `torch.linalg.matrix_rank(A, atol=None, rtol=None, hermitian=False)`.
pub fn matrix_rank(
    t: &Tensor,
    atol: Option<f64>,
    rtol: Option<f64>,
    hermitian: bool,
) -> Result<Tensor> {
    let a = load("linalg.matrix_rank", t, "A")?;
    let (m, n) = (a.m, a.n);
    let s = if hermitian {
        let w = per_matrix(a.count(), n, cube(n) * 4, |i, out| {
            let w = sym_eigh(symmetrize(a.get(i), n, false), n, false).0;
            let mut w: Vec<f64> = w.iter().map(|x| x.abs()).collect();
            w.sort_by(|x, y| y.total_cmp(x));
            out.copy_from_slice(&w);
            Ok(())
        })?;
        w
    } else {
        singular_values(&a)?
    };
    let k = if hermitian { n } else { m.min(n) };
    let ranks: Vec<i64> = (0..a.count())
        .map(|i| {
            let sv = &s[i * k..(i + 1) * k];
            let tol = tolerance(
                sv.first().copied().unwrap_or(0.0),
                atol,
                rtol,
                m,
                n,
                t.dtype(),
            );
            sv.iter().filter(|&&x| x > tol).count() as i64
        })
        .collect();
    Tensor::from_slice(&ranks, &a.batch)
}

/// `torch.linalg.lstsq(A, B, rcond=None, driver=None)`: (solution,
/// residuals, rank, singular_values) through the SVD (as LAPACK's gelsd).
/// What is filled follows PyTorch's CPU drivers: `rank` for all but
/// 'gels', `singular_values` for 'gelsd'/'gelss', `residuals` when m > n
/// and every matrix has full rank.
pub fn lstsq(
    a: &Tensor,
    b: &Tensor,
    rcond: Option<f64>,
    driver: Option<&str>,
) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
    let name = "torch.linalg.lstsq";
    let driver = driver.unwrap_or("gelsy");
    if !matches!(driver, "gels" | "gelsy" | "gelsd" | "gelss") {
        return Err(Error::Runtime(format!(
            "{name}: parameter `driver` should be one of (gels, gelsy, gelsd, gelss)"
        )));
    }
    if a.ndim() < 2 {
        return Err(Error::Runtime(format!(
            "{name}: input must have at least 2 dimensions."
        )));
    }
    check_float(name, a)?;
    if a.dtype() != b.dtype() {
        return Err(Error::Runtime(format!(
            "{name}: Expected input and other to have the same dtype, but got input's dtype {} and other's dtype {}",
            a.dtype(),
            b.dtype()
        )));
    }
    let vector = b.ndim() + 1 == a.ndim();
    let b2 = if vector {
        crate::ops::shape::unsqueeze(b, -1)?
    } else {
        b.clone()
    };
    if b2.ndim() < 2 {
        return Err(Error::Runtime(format!(
            "{name}: other must have at least 1 dimension."
        )));
    }
    let (m, n) = (a.shape()[a.ndim() - 2], a.shape()[a.ndim() - 1]);
    if b2.shape()[b2.ndim() - 2] != m {
        return Err(Error::Runtime(format!(
            "{name}: input.size(-2) should match other.size(-2)"
        )));
    }
    if crate::autograd::needs_grad(&[a, b]) {
        // The solution is pinv(A) B; the residuals are recomputed from it.
        let (_, res, rank, sv) = {
            let _off = crate::autograd::GradMode::set(false);
            lstsq(a, b, rcond, Some(driver))?
        };
        let rc = rcond.unwrap_or(eps_of(a.dtype()) * m.max(n) as f64);
        let x = mm(&pinv(a, None, Some(rc), false)?, b)?;
        let res = if res.numel() > 0 {
            let r = arith::sub(&mm(a, &x)?, b)?;
            crate::ops::reduce::sum(
                &arith::mul(&r, &r)?,
                Some(&[if vector { -1 } else { -2 }]),
                false,
                None,
            )?
        } else {
            res
        };
        return Ok((x, res, rank, sv));
    }
    let (a3, b3, batch) = broadcast_batch(a, &b2)?;
    let k = b3.shape()[b3.ndim() - 1];
    let am = load(name, &a3, "A")?;
    let bm = load(name, &b3, "B")?;
    let d = a.dtype();
    let mn = m.min(n);
    let rcond = rcond.unwrap_or(eps_of(d) * m.max(n) as f64);
    // Per matrix: solution n*k, residuals k, rank 1, singular values mn.
    let per = n * k + k + 1 + mn;
    let out = per_matrix(am.count(), per, cube(m.max(n)) * 8, |i, out| {
        let (u, s, vh) = svd_one(am.get(i), m, n, false, true);
        if s.iter().any(|x| x.is_nan()) {
            out.fill(f64::NAN);
            return Ok(());
        }
        let bi = bm.get(i);
        let tol = rcond * s.first().copied().unwrap_or(0.0);
        let rank = s.iter().filter(|&&x| x > tol).count();
        let (x, rest) = out.split_at_mut(n * k);
        // x = V diag(1/s) U^T b.
        for (j, &sv) in s.iter().enumerate() {
            if sv <= tol {
                continue;
            }
            for c in 0..k {
                let proj: f64 = (0..m).map(|r| u[r * mn + j] * bi[r * k + c]).sum::<f64>() / sv;
                for r in 0..n {
                    x[r * k + c] += vh[j * n + r] * proj;
                }
            }
        }
        let ai = am.get(i);
        for c in 0..k {
            rest[c] = (0..m)
                .map(|r| {
                    let ax: f64 = (0..n).map(|p| ai[r * n + p] * x[p * k + c]).sum();
                    (ax - bi[r * k + c]).powi(2)
                })
                .sum();
        }
        rest[k] = rank as f64;
        rest[k + 1..].copy_from_slice(&s);
        Ok(())
    })?;
    let count = am.count();
    let pick = |lo: usize, hi: usize| -> Vec<f64> {
        (0..count)
            .flat_map(|i| out[i * per + lo..i * per + hi].to_vec())
            .collect()
    };
    let mut solution = store(&pick(0, n * k), &with_batch(&batch, &[n, k]), d)?;
    if vector {
        solution = crate::ops::shape::squeeze(&solution, Some(&[-1]))?;
    }
    let ranks: Vec<i64> = pick(n * k + k, n * k + k + 1)
        .iter()
        .map(|&r| r as i64)
        .collect();
    let full_rank = ranks.iter().all(|&r| r as usize == n);
    let residuals = if m > n && full_rank {
        let mut shape = batch.clone();
        if !vector {
            shape.push(k);
        }
        store(&pick(n * k, n * k + k), &shape, d)?
    } else {
        Tensor::zeros(&[0], d)?
    };
    let rank = if driver == "gels" {
        Tensor::zeros(&[0], DType::I64)?
    } else {
        Tensor::from_slice(&ranks, &batch)?
    };
    let sv = if matches!(driver, "gelsd" | "gelss") {
        store(&pick(n * k + k + 1, per), &with_batch(&batch, &[mn]), d)?
    } else {
        Tensor::zeros(&[0], d)?
    };
    Ok((solution, residuals, rank, sv))
}

// ---------------------------------------------------------------- norms

/// The orders `linalg.matrix_norm` accepts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MatrixOrd {
    Fro,
    Nuc,
    /// 1, -1, inf, -inf, 2, -2.
    Num(f64),
}

/// `matrix_norm` from tracked ops (vector_norm, svdvals, abs, sum,
/// amax/amin), for its derivative.
fn matrix_norm_composite(
    t: &Tensor,
    ord: MatrixOrd,
    d0: usize,
    d1: usize,
    keepdim: bool,
) -> Result<Tensor> {
    use crate::ops::reduce;
    let x = dims_last(t, d0, d1)?;
    let extreme = |v: &Tensor, max: bool| {
        if max {
            reduce::amax(v, Some(&[-1]), false)
        } else {
            reduce::amin(v, Some(&[-1]), false)
        }
    };
    let r = match ord {
        MatrixOrd::Fro => reduce::vector_norm(&x, 2.0, Some(&[-2, -1]), false, None)?,
        MatrixOrd::Nuc => reduce::sum(&svdvals(&x)?, Some(&[-1]), false, None)?,
        MatrixOrd::Num(p) if p.abs() == 2.0 => extreme(&svdvals(&x)?, p > 0.0)?,
        MatrixOrd::Num(p) => {
            // 1: the largest column sum; inf: the largest row sum.
            let abs = arith::un(crate::ops::unary::Unary::Abs, &x)?;
            let along = if p.abs() == 1.0 { -2 } else { -1 };
            extreme(&reduce::sum(&abs, Some(&[along]), false, None)?, p > 0.0)?
        }
    };
    if !keepdim {
        return Ok(r);
    }
    let r = unsq(&r, d0.min(d1) as i64)?;
    unsq(&r, d0.max(d1) as i64)
}

/// `a` with dims `d0`, `d1` moved last (as a view).
fn dims_last(t: &Tensor, d0: usize, d1: usize) -> Result<Tensor> {
    let mut perm: Vec<i64> = (0..t.ndim())
        .filter(|&d| d != d0 && d != d1)
        .map(|d| d as i64)
        .collect();
    perm.extend([d0 as i64, d1 as i64]);
    crate::ops::shape::permute(t, &perm)
}

/// `torch.linalg.matrix_norm(A, ord='fro', dim=(-2, -1), keepdim=False)`.
pub fn matrix_norm(t: &Tensor, ord: MatrixOrd, dim: [i64; 2], keepdim: bool) -> Result<Tensor> {
    let name = "linalg.matrix_norm";
    if t.ndim() < 2 {
        return Err(Error::Runtime(format!(
            "{name}: The input tensor A must have at least 2 dimensions."
        )));
    }
    if let MatrixOrd::Num(p) = ord {
        if ![1.0, -1.0, 2.0, -2.0, f64::INFINITY, f64::NEG_INFINITY].contains(&p) {
            return Err(Error::Runtime(format!("{name}: Order {p} not supported.")));
        }
    }
    let (d0, d1) = (wrap_dim(dim[0], t.ndim())?, wrap_dim(dim[1], t.ndim())?);
    if d0 == d1 {
        return Err(Error::Runtime(format!(
            "{name}: dims must be different. Got ({}, {})",
            dim[0], dim[1]
        )));
    }
    if crate::autograd::needs_grad(&[t]) {
        return matrix_norm_composite(t, ord, d0, d1, keepdim);
    }
    let a = load(name, &dims_last(t, d0, d1)?, "A")?;
    let (m, n) = (a.m, a.n);
    let spectral =
        matches!(ord, MatrixOrd::Nuc) || matches!(ord, MatrixOrd::Num(p) if p.abs() == 2.0);
    if (m == 0 || n == 0) && !matches!(ord, MatrixOrd::Fro) && !spectral {
        // max/min over an empty set has no identity.
        return Err(Error::Runtime(format!(
            "{name}: Expected a non-empty reduction dimension, got shape {}",
            fmt_shape(t.shape())
        )));
    }
    let out = per_matrix(
        a.count(),
        1,
        m * n * if spectral { m.min(n) * 4 } else { 1 },
        |i, out| {
            let x = a.get(i);
            out[0] = match ord {
                // `+ 0.0` turns the empty sum's -0.0 into 0.0.
                MatrixOrd::Fro => (x.iter().map(|v| v * v).sum::<f64>() + 0.0).sqrt(),
                MatrixOrd::Nuc => svd_one(x, m, n, false, false).1.iter().sum::<f64>() + 0.0,
                MatrixOrd::Num(p) if p.abs() == 2.0 => {
                    let s = svd_one(x, m, n, false, false).1;
                    if p > 0.0 {
                        s.first().copied().unwrap_or(0.0)
                    } else {
                        s.last().copied().unwrap_or(0.0)
                    }
                }
                MatrixOrd::Num(p) => {
                    // 1 / -1: column sums; inf / -inf: row sums.
                    let sums: Vec<f64> = if p.abs() == 1.0 {
                        (0..n)
                            .map(|c| (0..m).map(|r| x[r * n + c].abs()).sum())
                            .collect()
                    } else {
                        (0..m)
                            .map(|r| (0..n).map(|c| x[r * n + c].abs()).sum())
                            .collect()
                    };
                    if p > 0.0 {
                        sums.iter()
                            .fold(0.0, |a: f64, &b| if b.is_nan() { b } else { a.max(b) })
                    } else {
                        sums.iter().fold(
                            f64::INFINITY,
                            |a: f64, &b| if b.is_nan() { b } else { a.min(b) },
                        )
                    }
                }
            };
            Ok(())
        },
    )?;
    let mut shape = a.batch.clone();
    if keepdim {
        let mut full: Vec<usize> = t.shape().to_vec();
        full[d0] = 1;
        full[d1] = 1;
        shape = full;
    }
    store(&out, &shape, t.dtype())
}

// ---------------------------------------------------------------- derivatives
//
// The formulas are PyTorch's (FunctionsManual), for real inputs, written
// with tracked public ops so that they differentiate again.

fn mt(x: &Tensor) -> Result<Tensor> {
    crate::ops::shape::matrix_t(x)
}

fn mm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    crate::ops::linalg::matmul(a, b)
}

fn unsq(x: &Tensor, d: i64) -> Result<Tensor> {
    crate::ops::shape::unsqueeze(x, d)
}

/// `x[..., None, None]`: one factor per matrix of a batch.
fn as_matrix_scale(x: &Tensor) -> Result<Tensor> {
    unsq(&unsq(x, -1)?, -1)
}

/// An n x n constant of the given dtype: the identity, or ones strictly
/// below the diagonal.
fn eye_of(n: usize, dtype: DType) -> Result<Tensor> {
    crate::ops::creation::eye(n as i64, n as i64, dtype)
}

fn strictly_lower(n: usize, dtype: DType) -> Result<Tensor> {
    let ones = crate::ops::creation::full(&[n, n], crate::tensor::Scalar::Int(1), dtype)?;
    crate::ops::join::tri(&ones, -1, true)
}

/// `diag_embed(v)` for the last dim of `v`, as a product with the identity.
fn diag_of(v: &Tensor) -> Result<Tensor> {
    let n = v.shape()[v.ndim() - 1];
    arith::mul(&eye_of(n, v.dtype())?, &unsq(v, -2)?)
}

/// `X - X^T`.
fn skew(x: &Tensor) -> Result<Tensor> {
    arith::sub(x, &mt(x)?)
}

/// Cholesky `A = L L^T`: gA = L^-T Φ(L^T gL) L^-1, symmetrised, where Φ
/// keeps the lower triangle and halves the diagonal.
fn cholesky_backward(l: &Tensor, gl: &Tensor) -> Result<Tensor> {
    let n = l.shape()[l.ndim() - 1];
    let d = l.dtype();
    let phi = arith::add(&strictly_lower(n, d)?, &arith::scale(&eye_of(n, d)?, 0.5)?)?;
    let p = arith::mul(&mm(&mt(l)?, gl)?, &phi)?;
    let linv = inv(l)?;
    let ga = mm(&mm(&mt(&linv)?, &p)?, &linv)?;
    arith::scale(&arith::add(&ga, &mt(&ga)?)?, 0.5)
}

/// QR of a matrix with at least as many rows as columns (`R` square):
/// gA = (gQ + Q copyltu(M)) R^-T with M = R gR^T - gQ^T Q, where
/// copyltu mirrors the lower triangle onto the upper.
fn qr_backward_tall(
    q: &Tensor,
    r: &Tensor,
    gq: Option<&Tensor>,
    gr: Option<&Tensor>,
) -> Result<Tensor> {
    let n = r.shape()[r.ndim() - 1];
    let d = r.dtype();
    let mut m = match gr {
        Some(gr) => mm(r, &mt(gr)?)?,
        None => crate::ops::arith::zeros_like(&mm(&mt(r)?, r)?)?,
    };
    if let Some(gq) = gq {
        m = arith::sub(&m, &mm(&mt(gq)?, q)?)?;
    }
    let low = arith::mul(&m, &strictly_lower(n, d)?)?;
    let sym = arith::add(
        &arith::add(&low, &mt(&low)?)?,
        &arith::mul(&m, &eye_of(n, d)?)?,
    )?;
    let mut b = mm(q, &sym)?;
    if let Some(gq) = gq {
        b = arith::add(&b, gq)?;
    }
    // b R^-T: solve X R^T = b.
    solve(&mt(r)?, &b, false)
}

/// QR (reduced, or complete with m <= n). A wide A = [X | Y] has
/// X = Q U, Y = Q V for R = [U | V]: X follows the square formula with
/// gQ + Y gV^T, and gY = Q gV.
fn qr_backward(q: &Tensor, r: &Tensor, gq: Option<Tensor>, gr: Option<Tensor>) -> Result<Tensor> {
    let (m, n) = (q.shape()[q.ndim() - 2], r.shape()[r.ndim() - 1]);
    if m >= n {
        return qr_backward_tall(q, r, gq.as_ref(), gr.as_ref());
    }
    let nr = |x: &Tensor, s: usize, l: usize| crate::ops::shape::narrow(x, -1, s as i64, l as i64);
    let u = nr(r, 0, m)?;
    let (gu, gv) = match &gr {
        Some(g) => (Some(nr(g, 0, m)?), Some(nr(g, m, n - m)?)),
        None => (None, None),
    };
    let mut gq2 = gq;
    let gy = match &gv {
        Some(gv) => {
            let y = mm(q, &nr(r, m, n - m)?)?;
            let extra = mm(&y, &mt(gv)?)?;
            gq2 = Some(match gq2 {
                Some(g) => arith::add(&g, &extra)?,
                None => extra,
            });
            mm(q, gv)?
        }
        None => crate::ops::arith::zeros_like(&nr(r, m, n - m)?)?,
    };
    let gx = qr_backward_tall(q, &u, gq2.as_ref(), gu.as_ref())?;
    crate::ops::join::cat(&[gx, gy], -1)
}

/// SVD `A = U diag(S) Vh` (U: m x k, Vh: k x n):
/// gA = U [(skew(U^T gU) / E) S + S (skew(V^T gV) / E) + diag(gS)] Vh
///      + (I - U U^T) gU S^-1 Vh + U S^-1 gVh (I - V V^T),
/// with E_ij = s_j^2 - s_i^2 (1 on the diagonal).
fn svd_backward(
    u: &Tensor,
    s: &Tensor,
    vh: &Tensor,
    gu: Option<Tensor>,
    gs: Option<Tensor>,
    gvh: Option<Tensor>,
) -> Result<Option<Tensor>> {
    if gu.is_none() && gs.is_none() && gvh.is_none() {
        return Ok(None);
    }
    let (m, k, n) = (
        u.shape()[u.ndim() - 2],
        s.shape()[s.ndim() - 1],
        vh.shape()[vh.ndim() - 1],
    );
    let d = s.dtype();
    let mut inner = match &gs {
        Some(gs) => diag_of(gs)?,
        None => diag_of(&arith::zeros_like(s)?)?,
    };
    if gu.is_none() && gvh.is_none() {
        return Ok(Some(mm(&mm(u, &inner)?, vh)?));
    }
    let s2 = arith::mul(s, s)?;
    let e = arith::add(
        &arith::sub(&unsq(&s2, -2)?, &unsq(&s2, -1)?)?,
        &eye_of(k, d)?,
    )?;
    let (s_row, s_col) = (unsq(s, -2)?, unsq(s, -1)?);
    let mut extra = None;
    if let Some(gu) = &gu {
        let uhgu = mm(&mt(u)?, gu)?;
        inner = arith::add(
            &inner,
            &arith::mul(&arith::div(&skew(&uhgu)?, &e)?, &s_row)?,
        )?;
        if m > k {
            let p = arith::div(&arith::sub(gu, &mm(u, &uhgu)?)?, &s_row)?;
            extra = Some(mm(&p, vh)?);
        }
    }
    if let Some(gvh) = &gvh {
        let vhgv = mm(vh, &mt(gvh)?)?;
        inner = arith::add(
            &inner,
            &arith::mul(&s_col, &arith::div(&skew(&vhgv)?, &e)?)?,
        )?;
        if n > k {
            let p = arith::div(&arith::sub(gvh, &mm(&mt(&vhgv)?, vh)?)?, &s_col)?;
            let t = mm(u, &p)?;
            extra = Some(match extra {
                Some(x) => arith::add(&x, &t)?,
                None => t,
            });
        }
    }
    let ga = mm(&mm(u, &inner)?, vh)?;
    Ok(Some(match extra {
        Some(x) => arith::add(&ga, &x)?,
        None => ga,
    }))
}

/// eigh `A = V diag(w) V^T`: gA = V (diag(gw) + (V^T gV) / E) V^T with
/// E_ij = w_j - w_i off the diagonal (where the quotient is zero).
fn eigh_backward(
    w: &Tensor,
    v: &Tensor,
    gw: Option<Tensor>,
    gv: Option<Tensor>,
) -> Result<Option<Tensor>> {
    if gw.is_none() && gv.is_none() {
        return Ok(None);
    }
    let n = w.shape()[w.ndim() - 1];
    let d = w.dtype();
    let id = eye_of(n, d)?;
    let mut inner = match &gw {
        Some(gw) => diag_of(gw)?,
        None => diag_of(&arith::zeros_like(w)?)?,
    };
    if let Some(gv) = &gv {
        let e = arith::add(&arith::sub(&unsq(w, -2)?, &unsq(w, -1)?)?, &id)?;
        let off = arith::rsub_s(1.0, &id)?;
        let f = arith::mul(&arith::div(&mm(&mt(v)?, gv)?, &e)?, &off)?;
        inner = arith::add(&inner, &f)?;
    }
    Ok(Some(mm(&mm(v, &inner)?, &mt(v)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for p in 0..k {
                for j in 0..n {
                    c[i * n + j] += a[i * k + p] * b[p * n + j];
                }
            }
        }
        c
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{x} != {y}");
        }
    }

    const A: [f64; 9] = [4.0, 1.0, 2.0, 1.0, 3.0, 0.5, 2.0, 0.5, 5.0];

    #[test]
    fn lu_solve_inverts() {
        let mut lu_a = A.to_vec();
        let mut perm = [0; 3];
        let (_, zero) = lu(&mut lu_a, 3, &mut perm);
        assert_eq!(zero, None);
        let mut x = vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        lu_solve(&lu_a, &perm, 3, &mut x, 3, &mut [0.0; 9]);
        close(
            &matmul(&A, &x, 3, 3, 3),
            &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        );
    }

    #[test]
    fn lu_reports_first_zero_pivot() {
        let mut a = vec![1.0, 2.0, 2.0, 4.0];
        let (_, zero) = lu(&mut a, 2, &mut [0; 2]);
        assert_eq!(zero, Some(2));
    }

    #[test]
    fn jacobi_svd_reconstructs_wide_matrix() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.5];
        let (u, s, vh) = svd_one(&a, 2, 3, false, true);
        let us: Vec<f64> = (0..4).map(|i| u[i] * s[i % 2]).collect();
        close(&matmul(&us, &vh, 2, 2, 3), &a);
        assert!(s[0] >= s[1]);
    }

    #[test]
    fn jacobi_eigh_satisfies_eigen_equation() {
        let (w, v) = jacobi_eigh(A.to_vec(), 3, true);
        assert!(w[0] <= w[1] && w[1] <= w[2]);
        let av = matmul(&A, &v, 3, 3, 3);
        let vw: Vec<f64> = (0..9).map(|i| v[i] * w[i % 3]).collect();
        close(&av, &vw);
    }

    #[test]
    fn tridiagonal_eigh_agrees_with_jacobi() {
        // A dense matrix, a diagonal one (no reflector needed) and one
        // with a repeated eigenvalue (identity plus rank one).
        let n = 40;
        let dense: Vec<f64> = (0..n * n)
            .map(|i| {
                let (r, c) = (i / n, i % n);
                ((r * c + r + c) % 7) as f64 - 3.0 + (r == c) as u8 as f64 * r as f64 * 0.1
            })
            .collect();
        let diag: Vec<f64> = (0..n * n)
            .map(|i| if i / n == i % n { (i % 5) as f64 } else { 0.0 })
            .collect();
        let ones: Vec<f64> = (0..n * n)
            .map(|i| 1.0 + (i / n == i % n) as u8 as f64)
            .collect();
        let near = |a: &[f64], b: &[f64]| {
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-9, "{x} != {y}");
            }
        };
        for a in [dense, diag, ones] {
            let (w, v) = tridiagonal_eigh(a.clone(), n, true);
            let (wj, _) = jacobi_eigh(a.clone(), n, false);
            for (x, y) in w.iter().zip(&wj) {
                assert!((x - y).abs() < 1e-10 * (1.0 + y.abs()), "{x} vs {y}");
            }
            let av = matmul(&a, &v, n, n, n);
            let vw: Vec<f64> = (0..n * n).map(|i| v[i] * w[i % n]).collect();
            near(&av, &vw);
            let vtv = matmul(
                &(0..n * n)
                    .map(|i| v[(i % n) * n + i / n])
                    .collect::<Vec<_>>(),
                &v,
                n,
                n,
                n,
            );
            let eye: Vec<f64> = (0..n * n).map(|i| (i / n == i % n) as u8 as f64).collect();
            near(&vtv, &eye);
            assert_eq!(tridiagonal_eigh(a, n, false).0, w);
        }
    }

    #[test]
    fn householder_qr_reconstructs() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let (q, r) = householder_qr(&a, 3, 2, 2, 2);
        close(&matmul(&q, &r, 3, 2, 2), &a);
    }
}
