//! Factory functions (`rtorch.tensor`, `zeros`, `arange`, `rand`, ...) and
//! random generators.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyTuple};

use super::convert::{data_to_tensor, extract_scalar, from_array_interface, parse_size, type_name};
use super::dtype::{extract_device, opt_dtype, PyDevice};
use super::tensor::{with_generator, PyTensor};
use crate::ops::binary::{binary, BinaryOp};
use crate::ops::{copy, creation, default_dtype, random as rnd, Operand};
use crate::random::{default_generator, Generator, GeneratorState, DEFAULT_SEED};
use crate::tensor::layout::dims_from_i64;
use crate::tensor::{DType, Device, Scalar, Tensor};

type R = PyResult<PyTensor>;

/// Applies the options every factory shares.
fn finish(t: Tensor, requires_grad: bool) -> R {
    if requires_grad {
        t.set_requires_grad(true)?;
    }
    Ok(t.into())
}

fn shape_of(fname: &str, size: &Bound<'_, PyTuple>) -> PyResult<Vec<usize>> {
    Ok(dims_from_i64(&parse_size(fname, size)?)?.to_vec())
}

#[pyfunction]
#[pyo3(signature = (data, *, dtype=None, device=None, requires_grad=false, pin_memory=false))]
fn tensor(
    data: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
    pin_memory: bool,
) -> R {
    let _ = pin_memory;
    extract_device(device)?;
    finish(data_to_tensor(data, opt_dtype(dtype)?)?, requires_grad)
}

#[pyfunction]
#[pyo3(signature = (data, dtype=None, device=None))]
fn as_tensor(
    data: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    extract_device(device)?;
    let dtype = opt_dtype(dtype)?;
    if let Ok(t) = data.cast::<PyTensor>() {
        let inner = t.borrow().t.clone();
        return match dtype {
            Some(d) if d != inner.dtype() => Ok(Py::new(
                data.py(),
                PyTensor::from(copy::to_dtype(&inner, d, false)?),
            )?
            .into_any()),
            _ => Ok(t.clone().into_any().unbind()),
        };
    }
    let shared = if super::convert::is_array_like(data)? && !data.is_instance_of::<PyFloat>() {
        from_array_interface(data).ok()
    } else {
        None
    };
    let t = match shared {
        Some(t) => copy::to_dtype(&t, dtype.unwrap_or(t.dtype()), false)?,
        None => data_to_tensor(data, dtype)?,
    };
    Ok(Py::new(data.py(), PyTensor::from(t))?.into_any())
}

#[pyfunction]
fn from_numpy(arr: &Bound<'_, PyAny>) -> R {
    if type_name(arr) != "ndarray" {
        return Err(PyTypeError::new_err(format!(
            "expected np.ndarray (got {})",
            type_name(arr)
        )));
    }
    Ok(from_array_interface(arr)?.into())
}

macro_rules! sized_factory {
    ($name:ident, $make:expr) => {
        #[pyfunction]
        #[pyo3(signature = (*size, out=None, dtype=None, layout=None, device=None, pin_memory=false, requires_grad=false, memory_format=None))]
        #[allow(clippy::too_many_arguments)]
        fn $name(size: &Bound<'_, PyTuple>, out: Option<&Bound<'_, PyAny>>, dtype: Option<&Bound<'_, PyAny>>, layout: Option<&Bound<'_, PyAny>>, device: Option<&Bound<'_, PyAny>>, pin_memory: bool, requires_grad: bool, memory_format: Option<&Bound<'_, PyAny>>) -> R {
            let _ = (layout, pin_memory, memory_format);
            if out.is_some_and(|o| !o.is_none()) {
                return Err(PyTypeError::new_err(concat!(stringify!($name), "(): out= is not supported")));
            }
            extract_device(device)?;
            let shape = shape_of(stringify!($name), size)?;
            let dtype = opt_dtype(dtype)?.unwrap_or_else(default_dtype);
            #[allow(clippy::redundant_closure_call)]
            let t: Tensor = ($make)(&shape, dtype)?;
            finish(t, requires_grad)
        }
    };
}

sized_factory!(empty, |s: &[usize], d| Tensor::empty(s, d));
sized_factory!(zeros, |s: &[usize], d| Tensor::zeros(s, d));
sized_factory!(ones, |s: &[usize], d| creation::full(s, Scalar::Int(1), d));

/// `torch.full(size, fill_value)`: the dtype follows the fill value.
#[pyfunction]
#[pyo3(signature = (size, fill_value, *, dtype=None, device=None, requires_grad=false, layout=None, pin_memory=false))]
#[allow(clippy::too_many_arguments)]
fn full(
    size: &Bound<'_, PyAny>,
    fill_value: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
    layout: Option<&Bound<'_, PyAny>>,
    pin_memory: bool,
) -> R {
    let _ = (layout, pin_memory);
    extract_device(device)?;
    let shape = dims_from_i64(&super::convert::int_list("full", size)?)?;
    let v = scalar_arg("full", fill_value)?;
    let dtype = opt_dtype(dtype)?.unwrap_or(v.default_dtype(default_dtype()));
    finish(creation::full(&shape, v, dtype)?, requires_grad)
}

fn scalar_arg(fname: &str, v: &Bound<'_, PyAny>) -> PyResult<Scalar> {
    if let Ok(t) = v.cast::<PyTensor>() {
        let t = t.borrow().t.clone();
        if t.numel() == 1 {
            return Ok(t.get_scalar(0));
        }
    }
    extract_scalar(v)?.ok_or_else(|| {
        PyTypeError::new_err(format!(
            "{fname}(): argument must be Number, not {}",
            type_name(v)
        ))
    })
}

macro_rules! like_factory {
    ($name:ident, $make:expr) => {
        #[pyfunction]
        #[pyo3(signature = (input, *, dtype=None, layout=None, device=None, requires_grad=false, memory_format=None))]
        fn $name(input: PyRef<'_, PyTensor>, dtype: Option<&Bound<'_, PyAny>>, layout: Option<&Bound<'_, PyAny>>, device: Option<&Bound<'_, PyAny>>, requires_grad: bool, memory_format: Option<&Bound<'_, PyAny>>) -> R {
            let _ = (layout, memory_format);
            extract_device(device)?;
            let dtype = opt_dtype(dtype)?.unwrap_or(input.t.dtype());
            #[allow(clippy::redundant_closure_call)]
            let t: Tensor = ($make)(input.t.shape(), dtype)?;
            finish(t, requires_grad)
        }
    };
}

like_factory!(empty_like, |s: &[usize], d| Tensor::empty(s, d));
like_factory!(zeros_like, |s: &[usize], d| Tensor::zeros(s, d));
like_factory!(ones_like, |s: &[usize], d| creation::full(
    s,
    Scalar::Int(1),
    d
));
like_factory!(rand_like, |s: &[usize], d| rand_tensor(
    s,
    d,
    default_generator()
));
like_factory!(randn_like, |s: &[usize], d| randn_tensor(
    s,
    d,
    default_generator()
));

#[pyfunction]
#[pyo3(signature = (input, fill_value, *, dtype=None, device=None, requires_grad=false, memory_format=None))]
fn full_like(
    input: PyRef<'_, PyTensor>,
    fill_value: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
    memory_format: Option<&Bound<'_, PyAny>>,
) -> R {
    let _ = memory_format;
    extract_device(device)?;
    let v = scalar_arg("full_like", fill_value)?;
    let dtype = opt_dtype(dtype)?.unwrap_or(input.t.dtype());
    finish(creation::full(input.t.shape(), v, dtype)?, requires_grad)
}

/// `arange(end)`, `arange(start, end)`, `arange(start, end, step)`.
#[pyfunction]
#[pyo3(signature = (start, end=None, step=None, *, out=None, dtype=None, layout=None, device=None, requires_grad=false, pin_memory=false))]
#[allow(clippy::too_many_arguments)]
fn arange(
    start: &Bound<'_, PyAny>,
    end: Option<&Bound<'_, PyAny>>,
    step: Option<&Bound<'_, PyAny>>,
    out: Option<&Bound<'_, PyAny>>,
    dtype: Option<&Bound<'_, PyAny>>,
    layout: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
    pin_memory: bool,
) -> R {
    let _ = (out, layout, pin_memory);
    extract_device(device)?;
    let a = scalar_arg("arange", start)?;
    let (s, e) = match end.filter(|e| !e.is_none()) {
        Some(e) => (a, scalar_arg("arange", e)?),
        None => (Scalar::Int(0), a),
    };
    let st = match step.filter(|s| !s.is_none()) {
        Some(x) => scalar_arg("arange", x)?,
        None => Scalar::Int(1),
    };
    let any_float = [s, e, st].iter().any(|v| matches!(v, Scalar::Float(_)));
    let dtype = opt_dtype(dtype)?.unwrap_or(if any_float {
        default_dtype()
    } else {
        DType::I64
    });
    finish(creation::arange(s, e, st, dtype)?, requires_grad)
}

#[pyfunction]
#[pyo3(signature = (start, end, steps, *, out=None, dtype=None, layout=None, device=None, requires_grad=false))]
#[allow(clippy::too_many_arguments)]
fn linspace(
    start: &Bound<'_, PyAny>,
    end: &Bound<'_, PyAny>,
    steps: i64,
    out: Option<&Bound<'_, PyAny>>,
    dtype: Option<&Bound<'_, PyAny>>,
    layout: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> R {
    let _ = (out, layout);
    extract_device(device)?;
    let (s, e) = (
        scalar_arg("linspace", start)?.to_f64(),
        scalar_arg("linspace", end)?.to_f64(),
    );
    let dtype = opt_dtype(dtype)?.unwrap_or_else(default_dtype);
    finish(creation::linspace(s, e, steps, dtype)?, requires_grad)
}

#[pyfunction]
#[pyo3(signature = (start, end, steps, base=10.0, *, out=None, dtype=None, layout=None, device=None, requires_grad=false))]
#[allow(clippy::too_many_arguments)]
fn logspace(
    start: &Bound<'_, PyAny>,
    end: &Bound<'_, PyAny>,
    steps: i64,
    base: f64,
    out: Option<&Bound<'_, PyAny>>,
    dtype: Option<&Bound<'_, PyAny>>,
    layout: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> R {
    let _ = (out, layout);
    extract_device(device)?;
    let (s, e) = (
        scalar_arg("logspace", start)?.to_f64(),
        scalar_arg("logspace", end)?.to_f64(),
    );
    let dtype = opt_dtype(dtype)?.unwrap_or_else(default_dtype);
    finish(creation::logspace(s, e, steps, base, dtype)?, requires_grad)
}

#[pyfunction]
#[pyo3(signature = (n, m=None, *, out=None, dtype=None, layout=None, device=None, requires_grad=false))]
#[allow(clippy::too_many_arguments)]
fn eye(
    n: i64,
    m: Option<i64>,
    out: Option<&Bound<'_, PyAny>>,
    dtype: Option<&Bound<'_, PyAny>>,
    layout: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> R {
    let _ = (out, layout);
    extract_device(device)?;
    let dtype = opt_dtype(dtype)?.unwrap_or_else(default_dtype);
    finish(creation::eye(n, m.unwrap_or(n), dtype)?, requires_grad)
}

fn rand_tensor(shape: &[usize], dtype: DType, g: &Generator) -> crate::Result<Tensor> {
    let t = Tensor::empty(shape, dtype)?;
    rnd::uniform_(&t, 0.0, 1.0, g)?;
    Ok(t)
}

fn randn_tensor(shape: &[usize], dtype: DType, g: &Generator) -> crate::Result<Tensor> {
    let t = Tensor::empty(shape, dtype)?;
    rnd::normal_(&t, 0.0, 1.0, g)?;
    Ok(t)
}

macro_rules! random_factory {
    ($name:ident, $make:ident) => {
        #[pyfunction]
        #[pyo3(signature = (*size, generator=None, out=None, dtype=None, layout=None, device=None, pin_memory=false, requires_grad=false))]
        #[allow(clippy::too_many_arguments)]
        fn $name(size: &Bound<'_, PyTuple>, generator: Option<&Bound<'_, PyAny>>, out: Option<&Bound<'_, PyAny>>, dtype: Option<&Bound<'_, PyAny>>, layout: Option<&Bound<'_, PyAny>>, device: Option<&Bound<'_, PyAny>>, pin_memory: bool, requires_grad: bool) -> R {
            let _ = (out, layout, pin_memory);
            extract_device(device)?;
            let shape = shape_of(stringify!($name), size)?;
            let dtype = opt_dtype(dtype)?.unwrap_or_else(default_dtype);
            let t = with_generator(generator, |g| $make(&shape, dtype, g))??;
            finish(t, requires_grad)
        }
    };
}

random_factory!(rand, rand_tensor);
random_factory!(randn, randn_tensor);

/// `randint(high, size)` or `randint(low, high, size)`.
#[pyfunction]
#[pyo3(signature = (*args, generator=None, out=None, dtype=None, layout=None, device=None, requires_grad=false, size=None))]
#[allow(clippy::too_many_arguments)]
fn randint(
    args: &Bound<'_, PyTuple>,
    generator: Option<&Bound<'_, PyAny>>,
    out: Option<&Bound<'_, PyAny>>,
    dtype: Option<&Bound<'_, PyAny>>,
    layout: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
    size: Option<&Bound<'_, PyAny>>,
) -> R {
    let _ = (out, layout);
    extract_device(device)?;
    let mut pos: Vec<Bound<'_, PyAny>> = args.iter().collect();
    if let Some(s) = size {
        pos.push(s.clone());
    }
    let (low, high, size) = match pos.as_slice() {
        [h, s] => (0, h.extract::<i64>()?, s),
        [l, h, s] => (l.extract::<i64>()?, h.extract::<i64>()?, s),
        _ => {
            return Err(PyTypeError::new_err(
                "randint() received an invalid combination of arguments - expected (int high, tuple of ints size) or (int low, int high, tuple of ints size)",
            ))
        }
    };
    let shape = dims_from_i64(&super::convert::int_list("randint", size)?)?;
    let dtype = opt_dtype(dtype)?.unwrap_or(DType::I64);
    let t = Tensor::empty(&shape, dtype)?;
    with_generator(generator, |g| rnd::random_(&t, low, Some(high), g))??;
    finish(t, requires_grad)
}

#[pyfunction]
#[pyo3(signature = (n, *, generator=None, out=None, dtype=None, layout=None, device=None, requires_grad=false, pin_memory=false))]
#[allow(clippy::too_many_arguments)]
fn randperm(
    n: i64,
    generator: Option<&Bound<'_, PyAny>>,
    out: Option<&Bound<'_, PyAny>>,
    dtype: Option<&Bound<'_, PyAny>>,
    layout: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
    pin_memory: bool,
) -> R {
    let _ = (out, layout, pin_memory);
    extract_device(device)?;
    let dtype = opt_dtype(dtype)?.unwrap_or(DType::I64);
    let t = with_generator(generator, |g| rnd::randperm(n, dtype, g))??;
    finish(t, requires_grad)
}

/// `normal(mean, std, size)` with floats, or with tensor mean and/or std.
#[pyfunction]
#[pyo3(signature = (mean=None, std=None, size=None, *, generator=None, out=None, dtype=None, layout=None, device=None, requires_grad=false))]
#[allow(clippy::too_many_arguments)]
fn normal(
    mean: Option<&Bound<'_, PyAny>>,
    std: Option<&Bound<'_, PyAny>>,
    size: Option<&Bound<'_, PyAny>>,
    generator: Option<&Bound<'_, PyAny>>,
    out: Option<&Bound<'_, PyAny>>,
    dtype: Option<&Bound<'_, PyAny>>,
    layout: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> R {
    let _ = (out, layout);
    extract_device(device)?;
    let operand = |o: Option<&Bound<'_, PyAny>>, default: f64| -> PyResult<Operand> {
        match o {
            None => Ok(Operand::Scalar(Scalar::Float(default))),
            Some(v) => super::convert::operand(v)?.ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "normal(): expected a Tensor or float, got {}",
                    type_name(v)
                ))
            }),
        }
    };
    let (m, s) = (operand(mean, 0.0)?, operand(std, 1.0)?);
    let shape: Vec<usize> = match (&m, &s, size) {
        (Operand::Scalar(_), Operand::Scalar(_), Some(sz)) => {
            dims_from_i64(&super::convert::int_list("normal", sz)?)?.to_vec()
        }
        (Operand::Scalar(_), Operand::Scalar(_), None) => {
            return Err(PyTypeError::new_err("normal() received an invalid combination of arguments - got (float, float), but expected one of: (Tensor mean, Tensor std), (float mean, float std, tuple of ints size)"));
        }
        _ => crate::tensor::layout::broadcast_shapes(m.shape(), s.shape())?.to_vec(),
    };
    let dtype = opt_dtype(dtype)?.unwrap_or_else(|| match (&m, &s) {
        (Operand::Tensor(t), _) | (_, Operand::Tensor(t)) => t.dtype(),
        _ => default_dtype(),
    });
    if let Operand::Tensor(st) = &s {
        if copy::to_vec::<f64>(st)?.iter().any(|&x| x < 0.0) {
            return Err(PyRuntimeError::new_err(
                "normal expects all elements of std >= 0.0",
            ));
        }
    }
    let z = with_generator(generator, |g| randn_tensor(&shape, dtype, g))??;
    let scaled = binary(BinaryOp::Mul, &Operand::Tensor(z), &s, None)?;
    let out = binary(BinaryOp::Add, &Operand::Tensor(scaled), &m, None)?;
    finish(copy::to_dtype(&out, dtype, false)?, requires_grad)
}

#[pyfunction]
#[pyo3(signature = (input, p=None, *, generator=None))]
fn bernoulli(
    input: PyRef<'_, PyTensor>,
    p: Option<f64>,
    generator: Option<&Bound<'_, PyAny>>,
) -> R {
    let probs = match p {
        Some(p) => creation::full(input.t.shape(), Scalar::Float(p), input.t.dtype())?,
        None => input.t.clone(),
    };
    Ok(with_generator(generator, |g| rnd::bernoulli(&probs, g))??.into())
}

/// A fresh seed from the OS's hash randomness.
fn entropy_seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}

fn seed_value(seed: &Bound<'_, PyAny>) -> PyResult<u64> {
    let v: i128 = seed.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "manual_seed expected an int, got {}",
            type_name(seed)
        ))
    })?;
    if v < i64::MIN as i128 || v > u64::MAX as i128 {
        return Err(PyRuntimeError::new_err(format!(
            "Overflow when unpacking long: seed must be within the range [-0x8000_0000_0000_0000, 0xffff_ffff_ffff_ffff], got {v}"
        )));
    }
    // Negative seeds wrap to their two's-complement value, as in PyTorch.
    Ok(v as u64)
}

/// `rtorch.Generator`: an independent random stream.
#[pyclass(name = "Generator", module = "rtorch", frozen)]
pub struct PyGenerator {
    pub gen: Arc<Generator>,
}

#[pymethods]
impl PyGenerator {
    #[new]
    #[pyo3(signature = (device=None))]
    fn new(device: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        extract_device(device)?;
        Ok(PyGenerator {
            gen: Arc::new(Generator::new(DEFAULT_SEED)),
        })
    }
    fn manual_seed<'py>(
        slf: PyRef<'py, Self>,
        seed: &Bound<'py, PyAny>,
    ) -> PyResult<PyRef<'py, Self>> {
        slf.gen.manual_seed(seed_value(seed)?);
        Ok(slf)
    }
    fn seed(&self) -> u64 {
        let s = entropy_seed();
        self.gen.manual_seed(s);
        s
    }
    fn initial_seed(&self) -> u64 {
        self.gen.state().seed
    }
    fn get_state(&self) -> R {
        state_tensor(self.gen.state())
    }
    fn set_state(&self, state: PyRef<'_, PyTensor>) -> PyResult<()> {
        self.gen.set_state(parse_state(&state.t)?);
        Ok(())
    }
    #[getter]
    fn device(&self) -> PyDevice {
        PyDevice::of(Device::Cpu)
    }
}

/// The state as 16 bytes: seed then offset, little-endian (a uint8 tensor, as PyTorch's).
fn state_tensor(s: GeneratorState) -> R {
    let mut bytes = s.seed.to_le_bytes().to_vec();
    bytes.extend_from_slice(&s.offset.to_le_bytes());
    Ok(Tensor::from_slice(&bytes, &[16])?.into())
}

fn parse_state(t: &Tensor) -> PyResult<GeneratorState> {
    if t.dtype() != DType::U8 || t.numel() != 16 {
        return Err(PyRuntimeError::new_err(format!(
            "Expected a torch.ByteTensor of 16 elements as the generator state, got {} elements of {}",
            t.numel(),
            t.dtype()
        )));
    }
    let b = copy::to_vec::<u8>(t)?;
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(w)
    };
    Ok(GeneratorState {
        seed: word(0),
        offset: word(8),
    })
}

#[pyfunction]
fn manual_seed(seed: &Bound<'_, PyAny>) -> PyResult<()> {
    default_generator().manual_seed(seed_value(seed)?);
    Ok(())
}

#[pyfunction]
fn seed() -> u64 {
    let s = entropy_seed();
    default_generator().manual_seed(s);
    s
}

#[pyfunction]
fn initial_seed() -> u64 {
    default_generator().state().seed
}

#[pyfunction]
fn get_rng_state() -> R {
    state_tensor(default_generator().state())
}

#[pyfunction]
fn set_rng_state(state: PyRef<'_, PyTensor>) -> PyResult<()> {
    default_generator().set_state(parse_state(&state.t)?);
    Ok(())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGenerator>()?;
    m.add(
        "default_generator",
        PyGenerator {
            gen: default_generator().clone(),
        },
    )?;
    macro_rules! add {
        ($($f:ident),*) => { $( m.add_function(wrap_pyfunction!($f, m)?)?; )* };
    }
    add!(
        tensor, as_tensor, from_numpy, empty, zeros, ones, full, empty_like, zeros_like, ones_like,
        full_like, rand_like, randn_like
    );
    add!(arange, linspace, logspace, eye, rand, randn, randint, randperm, normal, bernoulli);
    add!(
        manual_seed,
        seed,
        initial_seed,
        get_rng_state,
        set_rng_state
    );
    Ok(())
}
