//! Shorthands over the public ops for writing derivative formulas. Each
//! goes through a public op, so a derivative built from them records its
//! own graph under `create_graph=True`.

use crate::error::Result;
use crate::ops::binary::{binary, BinaryOp};
use crate::ops::ternary::where_;
use crate::ops::unary::{unary, Unary};
use crate::ops::{creation, Operand};
use crate::tensor::{Scalar, Tensor};

fn t(x: &Tensor) -> Operand {
    Operand::Tensor(x.clone())
}

fn s(v: f64) -> Operand {
    Operand::Scalar(Scalar::Float(v))
}

pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Add, &t(a), &t(b), None)
}

pub fn sub(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Sub, &t(a), &t(b), None)
}

pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Mul, &t(a), &t(b), None)
}

pub fn div(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Div, &t(a), &t(b), None)
}

/// `a * v`.
pub fn scale(a: &Tensor, v: f64) -> Result<Tensor> {
    binary(BinaryOp::Mul, &t(a), &s(v), None)
}

/// `a + v`.
pub fn add_s(a: &Tensor, v: f64) -> Result<Tensor> {
    binary(BinaryOp::Add, &t(a), &s(v), None)
}

/// `v - a`.
pub fn rsub_s(v: f64, a: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Sub, &s(v), &t(a), None)
}

/// `a ** v`.
pub fn pow_s(a: &Tensor, v: f64) -> Result<Tensor> {
    binary(BinaryOp::Pow, &t(a), &s(v), None)
}

pub fn un(op: Unary, a: &Tensor) -> Result<Tensor> {
    unary(op, a)
}

pub fn neg(a: &Tensor) -> Result<Tensor> {
    unary(Unary::Neg, a)
}

/// A bool tensor: `a <op> v` for a comparison `op`.
pub fn cmp_s(op: BinaryOp, a: &Tensor, v: f64) -> Result<Tensor> {
    binary(op, &t(a), &s(v), None)
}

pub fn cmp(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(op, &t(a), &t(b), None)
}

pub fn and(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::LogicalAnd, &t(a), &t(b), None)
}

/// `where(cond, a, v)`.
pub fn where_s(cond: &Tensor, a: &Tensor, v: f64) -> Result<Tensor> {
    where_(cond, &t(a), &s(v))
}

pub fn where_t(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    where_(cond, &t(a), &t(b))
}

pub fn zeros_like(a: &Tensor) -> Result<Tensor> {
    creation::full(a.shape(), Scalar::Int(0), a.dtype())
}
