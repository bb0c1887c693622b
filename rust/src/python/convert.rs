//! Python values to Rust ones: sizes, scalars, nested data, NumPy arrays
//! (through `__array_interface__`) and index expressions.

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyDict, PyEllipsis, PyFloat, PyInt, PyList, PySequence, PySlice, PyString, PyTuple,
};

use crate::ops::index::TensorIndex;
use crate::ops::{copy, creation, default_dtype, Operand};
use crate::tensor::layout::{Layout, Strides};
use crate::tensor::{DType, Scalar, Storage, Tensor};

use super::tensor::PyTensor;

/// `f(2, 3)`, `f((2, 3))`, `f([2, 3])` and `f(rtorch.Size([2, 3]))` all give `[2, 3]`.
pub fn parse_size(fname: &str, args: &Bound<'_, PyTuple>) -> PyResult<Vec<i64>> {
    if args.len() == 1 {
        let a = args.get_item(0)?;
        if !a.is_instance_of::<PyInt>() && a.cast::<PySequence>().is_ok() {
            return int_list(fname, &a);
        }
    }
    int_list(fname, args.as_any())
}

/// A sequence of ints (anything with `__index__`), with PyTorch's error.
pub fn int_list(fname: &str, obj: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
    if let Ok(tup) = obj.cast::<PyTuple>() {
        // The common case (`view(2, 3)`), without the generic sequence protocol.
        let mut out = Vec::with_capacity(tup.len());
        for (pos, item) in tup.iter().enumerate() {
            out.push(size_item(fname, &item, pos)?);
        }
        return Ok(out);
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(vec![obj.extract::<i64>()?]);
    }
    let seq = obj.cast::<PySequence>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{fname}(): argument 'size' must be tuple of ints, but found element of type {}",
            type_name(obj)
        ))
    })?;
    let mut out = Vec::with_capacity(seq.len()?);
    for (pos, item) in seq.try_iter()?.enumerate() {
        out.push(size_item(fname, &item?, pos)?);
    }
    Ok(out)
}

fn size_item(fname: &str, item: &Bound<'_, PyAny>, pos: usize) -> PyResult<i64> {
    if item.is_exact_instance_of::<PyInt>() {
        if let Ok(v) = item.extract::<i64>() {
            return Ok(v);
        }
    }
    index_int(item).map_err(|_| {
        PyTypeError::new_err(format!(
            "{fname}(): argument 'size' (position 1) must be tuple of ints, but found element of type {} at pos {pos}",
            type_name(item)
        ))
    })
}

/// An int from anything with `__index__` (Python ints, NumPy ints, 0-d int tensors).
pub fn index_int(obj: &Bound<'_, PyAny>) -> PyResult<i64> {
    if obj.is_instance_of::<PyFloat>() {
        return Err(PyTypeError::new_err("expected an integer, got float"));
    }
    if let Ok(t) = obj.cast::<PyTensor>() {
        let t = t.borrow().t.clone();
        if t.numel() == 1 && !t.dtype().is_floating_point() {
            return Ok(t.get_scalar(0).to_i64());
        }
        return Err(PyTypeError::new_err(
            "only integer tensors of a single element can be converted to an index",
        ));
    }
    obj.extract::<i64>()
}

pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}

/// A Python number as a `Scalar`; `None` for anything else.
pub fn extract_scalar(obj: &Bound<'_, PyAny>) -> PyResult<Option<Scalar>> {
    if obj.is_instance_of::<PyBool>() {
        return Ok(Some(Scalar::Bool(obj.is_truthy()?)));
    }
    if obj.is_instance_of::<PyInt>() {
        return obj
            .extract::<i64>()
            .map(|i| Some(Scalar::Int(i)))
            .map_err(|_| PyRuntimeError::new_err("Overflow when unpacking long"));
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(Some(Scalar::Float(obj.extract::<f64>()?)));
    }
    // NumPy scalars: a 0-d array interface.
    if is_array_like(obj)? && !obj.is_instance_of::<PyTensor>() {
        let t = from_array_interface(obj)?;
        if t.ndim() == 0 {
            return Ok(Some(t.get_scalar(0)));
        }
    }
    Ok(None)
}

/// Whether `obj` exports NumPy's array protocol. `__array_struct__` is
/// checked first: asking for `__array_interface__` builds a dict (~3 us).
pub fn is_array_like(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = obj.py();
    Ok(obj.hasattr(pyo3::intern!(py, "__array_struct__"))?
        || obj.hasattr(pyo3::intern!(py, "__array_interface__"))?)
}

/// A tensor or Python number argument of an op.
pub fn operand(obj: &Bound<'_, PyAny>) -> PyResult<Option<Operand>> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        return Ok(Some(Operand::Tensor(t.borrow().t.clone())));
    }
    Ok(extract_scalar(obj)?.map(Operand::Scalar))
}

fn dtype_from_typestr(ts: &str) -> Option<DType> {
    let little = ts.starts_with('<')
        || ts.starts_with('|')
        || (ts.starts_with('=') && cfg!(target_endian = "little"));
    if !little {
        return None;
    }
    Some(match &ts[1..] {
        "f4" => DType::F32,
        "f8" => DType::F64,
        "f2" => DType::F16,
        "i8" => DType::I64,
        "i4" => DType::I32,
        "i2" => DType::I16,
        "i1" => DType::I8,
        "u1" => DType::U8,
        "b1" => DType::Bool,
        _ => return None,
    })
}

/// Keeps the exporting Python object (a NumPy array) alive while a tensor uses its memory.
pub(crate) struct PyOwner(#[allow(dead_code)] pub(crate) Py<PyAny>);

/// A tensor sharing the memory of an object with `__array_interface__`
/// (NumPy arrays and scalars), as `torch.from_numpy` does.
pub fn from_array_interface(obj: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    if let Some(t) = super::array::import_array_struct(obj)? {
        return Ok(t);
    }
    let iface = obj.getattr("__array_interface__")?;
    let iface = iface.cast::<PyDict>()?;
    let get = |k: &str| -> PyResult<Bound<'_, PyAny>> {
        iface
            .get_item(k)?
            .ok_or_else(|| PyValueError::new_err(format!("__array_interface__ lacks '{k}'")))
    };
    let typestr: String = get("typestr")?.extract()?;
    let dtype = dtype_from_typestr(&typestr).ok_or_else(|| {
        let name = obj
            .getattr("dtype")
            .and_then(|d| d.getattr("type"))
            .and_then(|t| t.getattr("__name__"))
            .and_then(|n| n.extract::<String>())
            .unwrap_or(typestr.clone());
        PyTypeError::new_err(format!(
            "can't convert np.ndarray of type numpy.{name}. The only supported types are: float64, float32, float16, int64, int32, int16, int8, uint8, and bool."
        ))
    })?;
    let shape: Vec<usize> = get("shape")?.extract()?;
    let (ptr, _readonly): (usize, bool) = get("data")?.extract()?;
    let item = dtype.size() as isize;
    let strides: Strides = match iface.get_item("strides")? {
        Some(s) if !s.is_none() => {
            let bytes: Vec<isize> = s.extract()?;
            if bytes.iter().any(|&b| b < 0) {
                return Err(PyValueError::new_err(
                    "At least one stride in the given numpy array is negative, and tensors with negative strides are not currently supported. (You can probably work around this by making a copy of your array  with array.copy().) ",
                ));
            }
            if bytes.iter().any(|&b| b % item != 0) {
                return Err(PyValueError::new_err(
                    "given numpy array strides not a multiple of the element byte size. Copy the numpy array to reallocate the memory.",
                ));
            }
            bytes.iter().map(|&b| b / item).collect()
        }
        _ => crate::tensor::layout::contiguous_strides(&shape),
    };
    let layout = Layout {
        shape: shape.into(),
        strides,
        offset: 0,
    };
    let nbytes = layout.required_elems() * dtype.size();
    let owner = Box::new(PyOwner(obj.clone().unbind()));
    // SAFETY: the array interface promises `nbytes` readable and writable
    // bytes at `ptr` (the span of its shape and non-negative strides) while
    // the exporting object, kept alive by `owner`, lives.
    let storage = unsafe { Storage::from_external(ptr as *mut u8, nbytes, owner) };
    Ok(Tensor::from_parts(
        std::sync::Arc::new(storage),
        layout,
        dtype,
    )?)
}

/// `rtorch.tensor(data)`: a fresh tensor from nested sequences, scalars,
/// tensors or arrays, with PyTorch's dtype inference.
pub fn data_to_tensor(obj: &Bound<'_, PyAny>, dtype: Option<DType>) -> PyResult<Tensor> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        let t = t.borrow().t.clone();
        return Ok(copy::to_dtype(&t, dtype.unwrap_or(t.dtype()), true)?);
    }
    if !obj.is_instance_of::<PyList>() && !obj.is_instance_of::<PyTuple>() && is_array_like(obj)? {
        let arr = match from_array_interface(obj) {
            Err(e) if e.is_instance_of::<PyValueError>(obj.py()) => {
                from_array_interface(&obj.call_method0("copy")?)?
            }
            r => r?,
        };
        return Ok(copy::to_dtype(&arr, dtype.unwrap_or(arr.dtype()), true)?);
    }
    let mut shape = Vec::new();
    infer_shape(obj, &mut shape)?;
    let numel = crate::tensor::layout::checked_numel(&shape)?;
    let mut scalars = crate::error::try_vec(numel)?;
    let mut inferred = None;
    fill(obj, 0, &shape, &mut scalars, &mut inferred)?;
    let dtype = dtype.or(inferred).unwrap_or_else(default_dtype);
    let shape: Vec<usize> = shape;
    Ok(creation::from_scalars(&scalars, &shape, dtype)?)
}

fn as_sequence<'py>(obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PySequence>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyTensor>() {
        return None;
    }
    obj.cast::<PySequence>().ok().cloned()
}

/// The shape implied by following the first element at each depth.
fn infer_shape(obj: &Bound<'_, PyAny>, shape: &mut Vec<usize>) -> PyResult<()> {
    let mut cur = obj.clone();
    while let Some(seq) = as_sequence(&cur) {
        let n = seq.len()?;
        shape.push(n);
        if n == 0 {
            break;
        }
        cur = seq.get_item(0)?;
    }
    Ok(())
}

/// Stores the scalars of `obj` row-major and promotes `dtype` over their
/// types, as PyTorch's `infer_scalar_type`: Python floats give the default
/// dtype, ints int64, bools bool; NumPy scalars and tensors keep their dtype.
fn fill(
    obj: &Bound<'_, PyAny>,
    depth: usize,
    shape: &[usize],
    out: &mut Vec<Scalar>,
    dtype: &mut Option<DType>,
) -> PyResult<()> {
    if depth == shape.len() {
        let (s, dt) = leaf_scalar(obj)?;
        *dtype = Some(dtype.map_or(dt, |d| d.promote(dt)));
        out.push(s);
        return Ok(());
    }
    let seq = as_sequence(obj).ok_or_else(|| {
        PyValueError::new_err(format!(
            "expected sequence of length {} at dim {} (got {})",
            shape[depth],
            depth,
            type_name(obj)
        ))
    })?;
    let n = seq.len()?;
    if n != shape[depth] {
        return Err(PyValueError::new_err(format!(
            "expected sequence of length {} at dim {depth} (got {n})",
            shape[depth]
        )));
    }
    for item in seq.try_iter()? {
        fill(&item?, depth + 1, shape, out, dtype)?;
    }
    Ok(())
}

fn leaf_scalar(obj: &Bound<'_, PyAny>) -> PyResult<(Scalar, DType)> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        let t = t.borrow().t.clone();
        if t.numel() != 1 {
            return Err(PyValueError::new_err(
                "only one element tensors can be converted to Python scalars",
            ));
        }
        return Ok((t.get_scalar(0), t.dtype()));
    }
    let is_python_number = obj.is_instance_of::<PyBool>()
        || obj.is_exact_instance_of::<PyInt>()
        || obj.is_exact_instance_of::<PyFloat>();
    if !is_python_number && is_array_like(obj)? {
        let t = from_array_interface(obj)?;
        if t.ndim() == 0 {
            return Ok((t.get_scalar(0), t.dtype()));
        }
    }
    let s = extract_scalar(obj)?.ok_or_else(|| {
        PyTypeError::new_err(format!("new(): invalid data type '{}'", type_name(obj)))
    })?;
    Ok((s, s.default_dtype(default_dtype())))
}

/// Parses `tensor[obj]` into index items.
pub fn parse_index(obj: &Bound<'_, PyAny>) -> PyResult<Vec<TensorIndex>> {
    if let Ok(tup) = obj.cast::<PyTuple>() {
        return tup.iter().map(|it| index_item(&it)).collect();
    }
    Ok(vec![index_item(obj)?])
}

fn index_item(obj: &Bound<'_, PyAny>) -> PyResult<TensorIndex> {
    if obj.is_none() {
        return Ok(TensorIndex::None);
    }
    if obj.is_instance_of::<PyBool>() {
        return Ok(TensorIndex::Bool(obj.is_truthy()?));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(TensorIndex::Int(obj.extract::<i64>()?));
    }
    if let Ok(s) = obj.cast::<PySlice>() {
        let (mut start, mut stop, mut step) = (0isize, 0isize, 0isize);
        // SAFETY: `s` is a live slice object; the out-pointers are valid
        // locals. Unpack maps None to the extreme values the clamping in
        // `ops::index` expects, and calls `__index__` on the bounds.
        let rc = unsafe { pyo3::ffi::PySlice_Unpack(s.as_ptr(), &mut start, &mut stop, &mut step) };
        if rc < 0 {
            return Err(PyErr::fetch(obj.py()));
        }
        return Ok(TensorIndex::Slice {
            start: Some(start as i64),
            stop: Some(stop as i64),
            step: Some(step as i64),
        });
    }
    if obj.is_instance_of::<PyEllipsis>() {
        return Ok(TensorIndex::Ellipsis);
    }
    if let Ok(t) = obj.cast::<PyTensor>() {
        return Ok(TensorIndex::Tensor(t.borrow().t.clone()));
    }
    if obj.is_instance_of::<PyFloat>() {
        return Err(pyo3::exceptions::PyIndexError::new_err(
            "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are valid indices (got float)",
        ));
    }
    if obj.is_instance_of::<PyList>() || is_array_like(obj)? || as_sequence(obj).is_some() {
        let t = data_to_tensor(obj, None)?;
        // An empty list indexes nothing, as an empty int64 index.
        let t = if t.numel() == 0 && t.dtype().is_floating_point() {
            copy::to_dtype(&t, DType::I64, false)?
        } else {
            t
        };
        return Ok(TensorIndex::Tensor(t));
    }
    if let Ok(i) = obj.extract::<i64>() {
        return Ok(TensorIndex::Int(i));
    }
    Err(pyo3::exceptions::PyIndexError::new_err(format!(
        "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are valid indices (got {})",
        type_name(obj)
    )))
}
