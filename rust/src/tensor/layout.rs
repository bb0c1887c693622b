//! Shape, strides (in elements) and offset of a tensor inside its storage,
//! and the view arithmetic on them. Every layout a tensor gets is validated
//! against its storage (`Layout::check_fits`), so kernels may index freely.

use smallvec::SmallVec;

use crate::error::{wrap_dim, Error, Result};

pub type Dims = SmallVec<[usize; 6]>;
pub type Strides = SmallVec<[isize; 6]>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub shape: Dims,
    pub strides: Strides,
    pub offset: usize,
}

/// Product of `shape`, failing instead of wrapping around.
pub fn checked_numel(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize)
        .ok_or_else(|| {
            Error::Runtime(format!(
                "numel: integer multiplication overflow for shape {}",
                fmt_shape(shape)
            ))
        })
}

/// Converts user-given sizes to dims, refusing negative ones as PyTorch does.
pub fn dims_from_i64(sizes: &[i64]) -> Result<Dims> {
    sizes
        .iter()
        .map(|&s| {
            usize::try_from(s).map_err(|_| {
                Error::Runtime(format!(
                    "Trying to create tensor with negative dimension {s}: {}",
                    fmt_i64s(sizes)
                ))
            })
        })
        .collect()
}

pub fn fmt_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

pub fn fmt_i64s(v: &[i64]) -> String {
    let parts: Vec<String> = v.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

pub fn contiguous_strides(shape: &[usize]) -> Strides {
    let mut strides: Strides = SmallVec::from_elem(1, shape.len());
    let mut acc = 1isize;
    for i in (0..shape.len()).rev() {
        strides[i] = acc;
        acc = acc.saturating_mul(shape[i].max(1) as isize);
    }
    strides
}

/// `torch.broadcast_shapes` with PyTorch's error message.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Dims> {
    let n = a.len().max(b.len());
    let mut out: Dims = SmallVec::from_elem(1, n);
    for i in 0..n {
        let da = if i < n - a.len() {
            1
        } else {
            a[i - (n - a.len())]
        };
        let db = if i < n - b.len() {
            1
        } else {
            b[i - (n - b.len())]
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::Runtime(format!(
                "The size of tensor a ({da}) must match the size of tensor b ({db}) at non-singleton dimension {i}"
            )));
        };
    }
    Ok(out)
}

impl Layout {
    pub fn contiguous(shape: &[usize]) -> Layout {
        Layout {
            shape: shape.into(),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Row-major contiguous, ignoring strides of size-1 dims as PyTorch does.
    pub fn is_contiguous(&self) -> bool {
        // An empty tensor is contiguous whatever its strides (PyTorch's rule;
        // NumPy hands empty arrays over with zero strides).
        if self.shape.contains(&0) {
            return true;
        }
        let mut expected = 1isize;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 {
                if s != expected {
                    return false;
                }
                expected *= d as isize;
            }
        }
        true
    }

    /// The smallest storage, in elements, that holds this layout.
    /// Saturates instead of overflowing, so absurd layouts fail `check_fits`.
    pub fn required_elems(&self) -> usize {
        if self.shape.contains(&0) {
            return 0;
        }
        let span: i128 = self
            .shape
            .iter()
            .zip(&self.strides)
            .map(|(&d, &s)| (d as i128 - 1) * s as i128)
            .sum();
        let need = self.offset as i128 + span + 1;
        usize::try_from(need).unwrap_or(usize::MAX)
    }

    /// Fails unless every element addressed lies within a storage of
    /// `storage_nbytes` bytes holding elements of `itemsize` bytes.
    pub fn check_fits(&self, storage_nbytes: usize, itemsize: usize) -> Result<()> {
        if self.strides.iter().any(|&s| s < 0) {
            return Err(Error::Runtime(format!(
                "as_strided: Negative strides are not supported at the moment, got strides: {:?}",
                self.strides.as_slice()
            )));
        }
        let need = self.required_elems().saturating_mul(itemsize);
        if need > storage_nbytes {
            return Err(Error::Runtime(format!(
                "setStorage: sizes {}, strides {:?}, storage offset {}, and itemsize {itemsize} requiring a storage size of {need} are out of bounds for storage of size {storage_nbytes}",
                fmt_shape(&self.shape),
                self.strides.as_slice(),
                self.offset,
            )));
        }
        Ok(())
    }

    pub fn permute(&self, dims: &[i64]) -> Result<Layout> {
        let n = self.ndim();
        if dims.len() != n {
            return Err(Error::Runtime(format!(
                "permute(sparse_coo): number of dimensions in the tensor input does not match the length of the desired ordering of dimensions i.e. input.dim() = {n} is not equal to len(dims) = {}",
                dims.len()
            )));
        }
        let mut seen = vec![false; n];
        let mut out = self.clone();
        for (i, &d) in dims.iter().enumerate() {
            let d = wrap_dim(d, n)?;
            if seen[d] {
                return Err(Error::Runtime(
                    "permute(): duplicate dims are not allowed.".into(),
                ));
            }
            seen[d] = true;
            out.shape[i] = self.shape[d];
            out.strides[i] = self.strides[d];
        }
        Ok(out)
    }

    pub fn transpose(&self, d0: i64, d1: i64) -> Result<Layout> {
        let n = self.ndim();
        let (a, b) = (wrap_dim(d0, n)?, wrap_dim(d1, n)?);
        let mut out = self.clone();
        if n > 0 {
            out.shape.swap(a, b);
            out.strides.swap(a, b);
        }
        Ok(out)
    }

    /// `expand`: size -1 keeps a dim; new leading dims and size-1 dims broadcast with stride 0.
    pub fn expand(&self, sizes: &[i64]) -> Result<Layout> {
        let n = sizes.len();
        if n < self.ndim() {
            return Err(Error::Runtime(format!(
                "expand({}{{{}}}, size={}): the number of sizes provided ({}) must be greater or equal to the number of dimensions in the tensor ({})",
                "Tensor", fmt_shape(&self.shape).trim_matches(['[', ']']), fmt_i64s(sizes), n, self.ndim()
            )));
        }
        let lead = n - self.ndim();
        let mut shape: Dims = SmallVec::with_capacity(n);
        let mut strides: Strides = SmallVec::with_capacity(n);
        for (i, &s) in sizes.iter().enumerate() {
            if i < lead {
                if s < 0 {
                    return Err(Error::Runtime(format!(
                        "The expanded size of the tensor ({s}) isn't allowed in a leading, non-existing dimension {i}"
                    )));
                }
                shape.push(s as usize);
                strides.push(0);
                continue;
            }
            let (d, st) = (self.shape[i - lead], self.strides[i - lead]);
            if s == -1 || s as usize == d && s >= 0 {
                shape.push(d);
                strides.push(st);
            } else if d == 1 && s >= 0 {
                shape.push(s as usize);
                strides.push(0);
            } else {
                return Err(Error::Runtime(format!(
                    "The expanded size of the tensor ({s}) must match the existing size ({d}) at non-singleton dimension {i}.  Target sizes: {}.  Tensor sizes: {}",
                    fmt_i64s(sizes),
                    fmt_shape(&self.shape)
                )));
            }
        }
        Ok(Layout {
            shape,
            strides,
            offset: self.offset,
        })
    }

    /// `expand` to a shape of known sizes; the hot path of every
    /// broadcasting op, so it avoids the i64 conversion when it can.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Layout> {
        if self.shape.as_slice() == shape {
            return Ok(self.clone());
        }
        let lead = shape.len().wrapping_sub(self.ndim());
        if shape.len() >= self.ndim()
            && (0..self.ndim()).all(|i| self.shape[i] == shape[lead + i] || self.shape[i] == 1)
        {
            let mut strides: Strides = SmallVec::from_elem(0, shape.len());
            for i in 0..self.ndim() {
                if self.shape[i] == shape[lead + i] {
                    strides[lead + i] = self.strides[i];
                }
            }
            return Ok(Layout {
                shape: shape.into(),
                strides,
                offset: self.offset,
            });
        }
        let sizes: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        self.expand(&sizes)
    }

    pub fn squeeze_dims(&self, dims: Option<&[usize]>) -> Layout {
        let mut out = Layout {
            shape: Dims::new(),
            strides: Strides::new(),
            offset: self.offset,
        };
        for i in 0..self.ndim() {
            let listed = dims.is_none_or(|ds| ds.contains(&i));
            if !(listed && self.shape[i] == 1) {
                out.shape.push(self.shape[i]);
                out.strides.push(self.strides[i]);
            }
        }
        out
    }

    pub fn unsqueeze(&self, dim: i64) -> Result<Layout> {
        let d = wrap_dim(dim, self.ndim() + 1)?;
        let mut out = self.clone();
        let st = if d < self.ndim() {
            self.strides[d] * self.shape[d] as isize
        } else {
            1
        };
        out.shape.insert(d, 1);
        out.strides.insert(d, st);
        Ok(out)
    }

    pub fn narrow(&self, dim: i64, start: i64, length: i64) -> Result<Layout> {
        if self.ndim() == 0 {
            return Err(Error::Runtime(
                "narrow() cannot be applied to a 0-dim tensor.".into(),
            ));
        }
        let d = wrap_dim(dim, self.ndim())?;
        let size = self.shape[d] as i64;
        let start = if start < 0 { start + size } else { start };
        if length < 0 {
            return Err(Error::Runtime(
                "narrow(): length must be non-negative.".into(),
            ));
        }
        if start < 0 || start > size || start.checked_add(length).is_none_or(|e| e > size) {
            return Err(Error::Runtime(format!(
                "start ({start}) + length ({length}) exceeds dimension size ({size})."
            )));
        }
        let mut out = self.clone();
        out.shape[d] = length as usize;
        out.offset = (self.offset as isize + start as isize * self.strides[d]) as usize;
        Ok(out)
    }

    pub fn select(&self, dim: i64, index: i64) -> Result<Layout> {
        if self.ndim() == 0 {
            return Err(Error::Index(
                "select() cannot be applied to a 0-dim tensor.".into(),
            ));
        }
        let d = wrap_dim(dim, self.ndim())?;
        let size = self.shape[d] as i64;
        if index < -size || index >= size {
            return Err(Error::Index(format!(
                "select(): index {index} out of range for tensor of size {} at dimension {d}",
                fmt_shape(&self.shape)
            )));
        }
        let i = if index < 0 { index + size } else { index };
        let mut out = self.clone();
        out.offset = (self.offset as isize + i as isize * self.strides[d]) as usize;
        out.shape.remove(d);
        out.strides.remove(d);
        Ok(out)
    }

    /// Basic slicing `start:stop:step` on one dim (bounds already clamped).
    pub fn slice(&self, d: usize, start: usize, len: usize, step: usize) -> Layout {
        let mut out = self.clone();
        out.offset = (self.offset as isize + start as isize * self.strides[d]) as usize;
        out.shape[d] = len;
        out.strides[d] = self.strides[d] * step as isize;
        out
    }

    /// `Tensor.unfold(dim, size, step)`: a sliding window as a new last dim.
    pub fn unfold(&self, dim: i64, size: i64, step: i64) -> Result<Layout> {
        let d = wrap_dim(dim, self.ndim())?;
        let dim_size = if self.ndim() == 0 {
            1
        } else {
            self.shape[d] as i64
        };
        if size > dim_size || size < 0 {
            return Err(Error::Runtime(format!(
                "maximum size for tensor at dimension {d} is {dim_size} but size is {size}"
            )));
        }
        if step <= 0 {
            return Err(Error::Runtime(format!("step is {step} but must be > 0")));
        }
        let mut out = self.clone();
        if self.ndim() == 0 {
            out.shape.push(size as usize);
            out.strides.push(1);
            return Ok(out);
        }
        out.shape[d] = ((dim_size - size) / step + 1) as usize;
        out.strides[d] = self.strides[d] * step as isize;
        out.shape.push(size as usize);
        out.strides.push(self.strides[d]);
        Ok(out)
    }

    /// The strides of a fresh tensor laid out in memory like this one
    /// (PyTorch's `preserve_format`): this layout's strides when it is
    /// dense and non-overlapping, else row-major.
    pub fn preserved_strides(&self) -> Strides {
        if self.is_contiguous() {
            return contiguous_strides(&self.shape);
        }
        let mut order: Vec<usize> = (0..self.ndim()).collect();
        order.sort_by_key(|&d| (self.strides[d], std::cmp::Reverse(d)));
        let mut expected = 1isize;
        let dense = order.iter().all(|&d| {
            let ok = self.shape[d] == 1 || self.strides[d] == expected;
            expected *= self.shape[d] as isize;
            ok
        });
        if !dense || self.shape.contains(&0) {
            return contiguous_strides(&self.shape);
        }
        let mut out = contiguous_strides(&self.shape);
        let mut acc = 1isize;
        for &d in &order {
            out[d] = acc;
            acc *= self.shape[d] as isize;
        }
        out
    }

    /// Whether no two elements share a memory location: with the dims of
    /// size > 1 ordered by stride, each stride clears the extent of the
    /// smaller ones. Conservative (false means "may overlap").
    pub fn is_non_overlapping(&self) -> bool {
        let mut dims: Vec<(usize, usize)> = self
            .shape
            .iter()
            .zip(&self.strides)
            .filter(|(&n, _)| n > 1)
            .map(|(&n, &s)| (s.unsigned_abs(), n))
            .collect();
        dims.sort_unstable();
        let mut extent = 0usize;
        for (stride, n) in dims {
            if stride <= extent {
                return false;
            }
            extent = match stride
                .checked_mul(n - 1)
                .and_then(|e| e.checked_add(extent))
            {
                Some(e) => e,
                None => return false,
            };
        }
        true
    }

    /// Strides for viewing this layout with `shape` without copying, or None
    /// when the memory is not arranged compatibly (PyTorch's `computeStride`).
    pub fn view_strides(&self, shape: &[usize]) -> Option<Strides> {
        let numel = self.numel();
        if numel == 0 || self.ndim() == 0 {
            return Some(contiguous_strides(shape));
        }
        let mut new_strides: Strides = SmallVec::from_elem(0, shape.len());
        let mut view_d = shape.len() as isize - 1;
        let mut chunk_base_stride = *self.strides.last()?;
        let mut tensor_numel = 1usize;
        let mut view_numel = 1usize;
        for td in (0..self.ndim()).rev() {
            tensor_numel *= self.shape[td];
            let chunk_end = td == 0
                || (self.shape[td - 1] != 1
                    && self.strides[td - 1] != tensor_numel as isize * chunk_base_stride);
            if chunk_end {
                while view_d >= 0 && (view_numel < tensor_numel || shape[view_d as usize] == 1) {
                    new_strides[view_d as usize] = view_numel as isize * chunk_base_stride;
                    view_numel *= shape[view_d as usize];
                    view_d -= 1;
                }
                if view_numel != tensor_numel {
                    return None;
                }
                if td > 0 {
                    chunk_base_stride = self.strides[td - 1];
                    tensor_numel = 1;
                    view_numel = 1;
                }
            }
        }
        if view_d != -1 {
            return None;
        }
        Some(new_strides)
    }
}

/// Resolves a `view`/`reshape` size list with at most one -1 against `numel`.
pub fn infer_size(sizes: &[i64], numel: usize) -> Result<Dims> {
    let mut infer = None;
    let mut prod = 1usize;
    for (i, &s) in sizes.iter().enumerate() {
        if s == -1 {
            if infer.is_some() {
                return Err(Error::Runtime("only one dimension can be inferred".into()));
            }
            infer = Some(i);
        } else if s < 0 {
            return Err(Error::Runtime(format!("invalid shape dimension {s}")));
        } else {
            prod = prod.saturating_mul(s as usize);
        }
    }
    let bad = || {
        Error::Runtime(format!(
            "shape '{}' is invalid for input of size {numel}",
            fmt_i64s(sizes)
        ))
    };
    let mut out: Dims = sizes.iter().map(|&s| s.max(0) as usize).collect();
    match infer {
        Some(i) => {
            if prod == 0 || !numel.is_multiple_of(prod) {
                return Err(bad());
            }
            out[i] = numel / prod;
        }
        None if prod != numel => return Err(bad()),
        None => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_of_transpose_needs_copy() {
        let l = Layout::contiguous(&[2, 3]).transpose(0, 1).unwrap();
        assert!(l.view_strides(&[6]).is_none());
        assert!(l.view_strides(&[3, 2, 1]).is_some());
    }

    #[test]
    fn view_splits_contiguous_dims() {
        let l = Layout::contiguous(&[4, 6]);
        assert_eq!(l.view_strides(&[2, 2, 6]).unwrap().as_slice(), &[12, 6, 1]);
    }

    #[test]
    fn broadcast_error_names_dimension() {
        let e = broadcast_shapes(&[2, 3], &[2, 4]).unwrap_err();
        assert!(e.to_string().contains("at non-singleton dimension 1"));
    }

    #[test]
    fn infer_size_fills_minus_one() {
        assert_eq!(infer_size(&[-1, 4], 12).unwrap().as_slice(), &[3, 4]);
        assert!(infer_size(&[-1, 5], 12).is_err());
    }
}
