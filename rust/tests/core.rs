//! The core used from Rust alone, with no Python in the process.

#![allow(clippy::unwrap_used)]

use rtorch::ops::binary::{binary, BinaryOp};
use rtorch::ops::index::{index, index_put_, TensorIndex};
use rtorch::ops::{copy, creation, random, shape, Operand};
use rtorch::random::Generator;
use rtorch::{DType, Error, Scalar, Tensor};

fn vals(t: &Tensor) -> Vec<f64> {
    copy::to_vec::<f64>(t).unwrap()
}

#[test]
fn view_of_transpose_shares_storage_and_sees_writes() {
    let t = creation::arange(Scalar::Int(0), Scalar::Int(6), Scalar::Int(1), DType::F32).unwrap();
    let m = shape::view(&t, &[2, 3]).unwrap();
    let mt = shape::transpose(&m, 0, 1).unwrap();
    assert!(mt.same_storage(&t));
    assert_eq!(mt.strides(), &[1, 3]);
    assert_eq!(vals(&mt), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    copy::fill_(&shape::select(&m, 0, 1).unwrap(), Scalar::Float(9.0)).unwrap();
    assert_eq!(vals(&t), vec![0.0, 1.0, 2.0, 9.0, 9.0, 9.0]);
    assert_eq!(t.version(), 1);
}

#[test]
fn reshape_of_non_contiguous_copies() {
    let t = shape::transpose(&Tensor::zeros(&[2, 3], DType::F64).unwrap(), 0, 1).unwrap();
    assert!(shape::view(&t, &[6]).is_err());
    let r = shape::reshape(&t, &[-1]).unwrap();
    assert!(!r.same_storage(&t));
    assert_eq!(r.shape(), &[6]);
}

#[test]
fn broadcast_add_promotes_int_and_float() {
    let a = Tensor::from_slice(&[1i64, 2, 3], &[3, 1]).unwrap();
    let b = Tensor::from_slice(&[0.5f32, 1.5], &[2]).unwrap();
    let out = binary(
        BinaryOp::Add,
        &Operand::Tensor(a),
        &Operand::Tensor(b),
        None,
    )
    .unwrap();
    assert_eq!(out.dtype(), DType::F32);
    assert_eq!(out.shape(), &[3, 2]);
    assert_eq!(vals(&out), vec![1.5, 2.5, 2.5, 3.5, 3.5, 4.5]);
}

#[test]
fn advanced_index_gathers_and_scatters() {
    let t = creation::arange(Scalar::Int(0), Scalar::Int(12), Scalar::Int(1), DType::I64).unwrap();
    let m = shape::view(&t, &[3, 4]).unwrap();
    let rows = Tensor::from_slice(&[2i64, 0], &[2]).unwrap();
    let got = index(
        &m,
        &[
            TensorIndex::Tensor(rows.clone()),
            TensorIndex::Slice {
                start: Some(1),
                stop: None,
                step: Some(2),
            },
        ],
    )
    .unwrap();
    assert_eq!(got.shape(), &[2, 2]);
    assert_eq!(vals(&got), vec![9.0, 11.0, 1.0, 3.0]);
    let v = Tensor::scalar(-1i64).unwrap();
    index_put_(&m, &[TensorIndex::Tensor(rows)], &v).unwrap();
    assert_eq!(
        vals(&shape::select(&m, 1, 0).unwrap()),
        vec![-1.0, 4.0, -1.0]
    );
}

#[test]
fn out_of_range_index_is_an_index_error() {
    let t = Tensor::zeros(&[3], DType::F32).unwrap();
    let err = index(&t, &[TensorIndex::Int(5)]).unwrap_err();
    assert!(matches!(err, Error::Index(_)));
    assert_eq!(
        err.to_string(),
        "index 5 is out of bounds for dimension 0 with size 3"
    );
}

#[test]
fn as_strided_outside_storage_is_refused() {
    let t = Tensor::zeros(&[4], DType::F32).unwrap();
    assert!(shape::as_strided(&t, &[3], &[2], None).is_err());
    assert!(shape::as_strided(&t, &[2], &[3], Some(0)).is_ok());
}

#[test]
fn same_seed_gives_same_stream() {
    let (a, b) = (
        Tensor::empty(&[7], DType::F32).unwrap(),
        Tensor::empty(&[7], DType::F32).unwrap(),
    );
    random::normal_(&a, 0.0, 1.0, &Generator::new(5)).unwrap();
    random::normal_(&b, 0.0, 1.0, &Generator::new(5)).unwrap();
    assert_eq!(vals(&a), vals(&b));
}

#[test]
fn uniform_values_fill_the_unit_interval() {
    let t = Tensor::empty(&[10000], DType::F64).unwrap();
    random::uniform_(&t, 0.0, 1.0, &Generator::new(1)).unwrap();
    let v = vals(&t);
    assert!(v.iter().all(|&x| (0.0..1.0).contains(&x)));
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    assert!((mean - 0.5).abs() < 0.02);
}
