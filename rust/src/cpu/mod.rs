//! CPU kernels. Everything here works on raw pointers and layouts that the
//! tensor layer validated against their storages.

pub mod conv_direct;
pub mod conv_winograd;
pub mod half;
pub mod iter;
pub mod kernels;
pub mod parallel;
pub mod scratch;
pub mod simd;
