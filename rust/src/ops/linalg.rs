//! Linear algebra: matrix products (`matmul`) and decompositions (`decomp`).

pub mod decomp;
pub mod matmul;

pub use decomp::*;
pub use matmul::*;
