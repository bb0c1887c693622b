//! Every op is defined once here: argument checks, output shape and dtype,
//! and dispatch to the device kernel. Bindings call these functions only.

pub mod arith;
pub mod binary;
pub mod conv;
pub mod copy;
pub mod creation;
pub mod einsum;
pub mod gather;
pub mod index;
pub mod join;
pub mod linalg;
pub mod loss;
pub mod norm;
pub mod optim;
pub mod pool;
pub mod random;
pub mod reduce;
pub mod rnn;
pub mod rnn_graph;
pub mod shape;
pub mod softmax;
pub mod sort;
pub mod special;
pub mod ternary;
pub mod unary;

use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::{Error, Result};
use crate::tensor::dtype::Category;
use crate::tensor::{DType, Scalar, Tensor};

static DEFAULT_DTYPE: AtomicU8 = AtomicU8::new(0);

/// The dtype Python floats become (`torch.get_default_dtype`).
pub fn default_dtype() -> DType {
    DType::ALL[DEFAULT_DTYPE.load(Ordering::Relaxed) as usize]
}

pub fn set_default_dtype(dtype: DType) -> Result<()> {
    if !dtype.is_floating_point() {
        return Err(Error::Type(format!(
            "only floating-point types are supported as the default type, got {dtype}"
        )));
    }
    let idx = DType::ALL.iter().position(|&d| d == dtype).unwrap_or(0);
    DEFAULT_DTYPE.store(idx as u8, Ordering::Relaxed);
    Ok(())
}

/// An op argument that is a tensor or a Python number.
#[derive(Clone, Debug)]
pub enum Operand {
    Tensor(Tensor),
    Scalar(Scalar),
}

/// `torch.result_type`: dimensioned tensors decide the dtype; 0-d tensors
/// and then Python numbers only promote when they are of a higher category.
pub fn result_type(operands: &[&Operand]) -> DType {
    let mut dim: Option<DType> = None;
    let mut zero: Option<DType> = None;
    let mut wrapped: Option<Category> = None;
    for op in operands {
        match op {
            Operand::Tensor(t) if t.ndim() > 0 => {
                dim = Some(dim.map_or(t.dtype(), |d| d.promote(t.dtype())))
            }
            Operand::Tensor(t) => zero = Some(zero.map_or(t.dtype(), |d| d.promote(t.dtype()))),
            Operand::Scalar(s) => {
                wrapped = Some(wrapped.map_or(s.category(), |c| c.max(s.category())))
            }
        }
    }
    let mut out = match (dim, zero) {
        (Some(d), Some(z)) if z.category() > d.category() => d.promote(z),
        (Some(d), _) => d,
        (None, Some(z)) => z,
        (None, None) => match wrapped {
            Some(Category::Floating) => default_dtype(),
            Some(Category::Integral) => DType::I64,
            _ => DType::Bool,
        },
    };
    if let Some(c) = wrapped {
        if c > out.category() {
            out = match c {
                Category::Floating => default_dtype(),
                _ => out.promote(DType::I64),
            };
        }
    }
    out
}

impl Operand {
    /// The operand as a tensor of `dtype`: scalars become 0-d tensors.
    pub fn to_tensor(&self, dtype: DType) -> Result<Tensor> {
        match self {
            Operand::Tensor(t) => copy::to_dtype(t, dtype, false),
            Operand::Scalar(s) => creation::full(&[], *s, dtype),
        }
    }
    pub fn shape(&self) -> &[usize] {
        match self {
            Operand::Tensor(t) => t.shape(),
            Operand::Scalar(_) => &[],
        }
    }
}
