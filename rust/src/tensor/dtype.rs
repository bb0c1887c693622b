//! Element types, PyTorch's type-promotion lattice and the `Element` trait
//! that lets kernels be written once, generically.

use half::{bf16, f16};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

/// The type categories Python scalars and tensors are promoted across.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    Bool,
    Integral,
    Floating,
}

impl DType {
    pub const ALL: [DType; 10] = [
        DType::F32,
        DType::F64,
        DType::F16,
        DType::BF16,
        DType::I64,
        DType::I32,
        DType::I16,
        DType::I8,
        DType::U8,
        DType::Bool,
    ];

    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    /// The name after `torch.` (`float32`, `int64`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::I64 => "int64",
            DType::I32 => "int32",
            DType::I16 => "int16",
            DType::I8 => "int8",
            DType::U8 => "uint8",
            DType::Bool => "bool",
        }
    }

    /// PyTorch's C++ scalar type name, used in error messages ("Float", "Long").
    pub fn scalar_name(self) -> &'static str {
        match self {
            DType::F32 => "Float",
            DType::F64 => "Double",
            DType::F16 => "Half",
            DType::BF16 => "BFloat16",
            DType::I64 => "Long",
            DType::I32 => "Int",
            DType::I16 => "Short",
            DType::I8 => "Char",
            DType::U8 => "Byte",
            DType::Bool => "Bool",
        }
    }

    /// The legacy tensor type name ("torch.FloatTensor"), used in messages.
    pub fn legacy_type_name(self) -> String {
        format!("torch.{}Tensor", self.scalar_name())
    }

    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.iter().copied().find(|d| d.name() == name)
    }

    pub fn category(self) -> Category {
        match self {
            DType::Bool => Category::Bool,
            DType::F32 | DType::F64 | DType::F16 | DType::BF16 => Category::Floating,
            _ => Category::Integral,
        }
    }

    pub fn is_floating_point(self) -> bool {
        self.category() == Category::Floating
    }

    pub fn is_signed(self) -> bool {
        !matches!(self, DType::U8 | DType::Bool)
    }

    /// `torch.promote_types`: the smallest type both operands convert to safely.
    pub fn promote(self, other: DType) -> DType {
        use DType::*;
        if self == other {
            return self;
        }
        match (self, other) {
            (Bool, x) | (x, Bool) => x,
            (F16, BF16) | (BF16, F16) => F32,
            (a, b) if a.is_floating_point() && b.is_floating_point() => {
                if a.float_rank() >= b.float_rank() {
                    a
                } else {
                    b
                }
            }
            (a, _) if a.is_floating_point() => a,
            (_, b) if b.is_floating_point() => b,
            (U8, I8) | (I8, U8) => I16,
            (U8, x) | (x, U8) => x,
            (a, b) => {
                if a.size() >= b.size() {
                    a
                } else {
                    b
                }
            }
        }
    }

    fn float_rank(self) -> u8 {
        match self {
            DType::F16 | DType::BF16 => 0,
            DType::F32 => 1,
            _ => 2,
        }
    }

    /// `torch.can_cast`: casting to `to` loses no category (float->int, int->bool refused).
    pub fn can_cast(self, to: DType) -> bool {
        self.category() <= to.category()
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "torch.{}", self.name())
    }
}

/// A Python-style scalar: PyTorch's `Scalar` (bool, int or float).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl Scalar {
    pub fn category(self) -> Category {
        match self {
            Scalar::Bool(_) => Category::Bool,
            Scalar::Int(_) => Category::Integral,
            Scalar::Float(_) => Category::Floating,
        }
    }
    pub fn to_f64(self) -> f64 {
        match self {
            Scalar::Bool(b) => b as u8 as f64,
            Scalar::Int(i) => i as f64,
            Scalar::Float(f) => f,
        }
    }
    pub fn to_i64(self) -> i64 {
        match self {
            Scalar::Bool(b) => b as i64,
            Scalar::Int(i) => i,
            Scalar::Float(f) => f as i64,
        }
    }
    pub fn to_bool(self) -> bool {
        match self {
            Scalar::Bool(b) => b,
            Scalar::Int(i) => i != 0,
            Scalar::Float(f) => f != 0.0,
        }
    }
    /// Converts to a value of type `T` with PyTorch's casting rules.
    pub fn to<T: Element>(self) -> T {
        match self {
            Scalar::Bool(b) => T::from_bool(b),
            Scalar::Int(i) => T::from_i64(i),
            Scalar::Float(f) => T::from_f64(f),
        }
    }
    /// The dtype a tensor made from this scalar gets (`torch.tensor(3)` is int64).
    pub fn default_dtype(self, float_default: DType) -> DType {
        match self {
            Scalar::Bool(_) => DType::Bool,
            Scalar::Int(_) => DType::I64,
            Scalar::Float(_) => float_default,
        }
    }
}

/// A type stored in a tensor. Conversions follow C++ casts as PyTorch does:
/// float to int truncates toward zero, int to narrower int wraps.
pub trait Element:
    Copy + Send + Sync + PartialEq + PartialOrd + Default + bytemuck::Pod + 'static
{
    const DTYPE: DType;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    fn to_i64(self) -> i64;
    fn from_i64(v: i64) -> Self;
    fn to_bool(self) -> bool;
    fn from_bool(v: bool) -> Self;
    /// Converts from any other element type with PyTorch's casting rules.
    #[inline(always)]
    fn cast_from<S: Element>(v: S) -> Self {
        match S::DTYPE.category() {
            Category::Floating => Self::from_f64(v.to_f64()),
            Category::Integral => Self::from_i64(v.to_i64()),
            Category::Bool => Self::from_bool(v.to_bool()),
        }
    }
    fn to_scalar(self) -> Scalar {
        match Self::DTYPE.category() {
            Category::Floating => Scalar::Float(self.to_f64()),
            Category::Integral => Scalar::Int(self.to_i64()),
            Category::Bool => Scalar::Bool(self.to_bool()),
        }
    }
}

macro_rules! impl_float {
    ($t:ty, $dt:expr, $to:expr, $from:expr) => {
        impl Element for $t {
            const DTYPE: DType = $dt;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                #[allow(clippy::redundant_closure_call)]
                ($to)(self)
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                #[allow(clippy::redundant_closure_call)]
                ($from)(v)
            }
            #[inline(always)]
            fn to_i64(self) -> i64 {
                self.to_f64() as i64
            }
            #[inline(always)]
            fn from_i64(v: i64) -> Self {
                Self::from_f64(v as f64)
            }
            #[inline(always)]
            fn to_bool(self) -> bool {
                self.to_f64() != 0.0
            }
            #[inline(always)]
            fn from_bool(v: bool) -> Self {
                Self::from_f64(v as u8 as f64)
            }
        }
    };
}

impl_float!(f32, DType::F32, |x: f32| x as f64, |v: f64| v as f32);
impl_float!(f64, DType::F64, |x: f64| x, |v: f64| v);
// Doubles reach the half types through f32, as c10::Half / BFloat16 take
// them (and `half`'s direct f64 conversions drop the low mantissa bits
// before rounding, so values just above a midpoint rounded down).
impl_float!(
    f16,
    DType::F16,
    |x: f16| x.to_f64(),
    |v: f64| f16::from_f32(v as f32)
);
impl_float!(bf16, DType::BF16, |x: bf16| x.to_f64(), |v: f64| {
    bf16::from_f32(v as f32)
});

macro_rules! impl_int {
    ($t:ty, $dt:expr) => {
        impl Element for $t {
            const DTYPE: DType = $dt;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                // Through i64 so that -1.0 -> uint8 wraps to 255 as in PyTorch.
                (v as i64) as $t
            }
            #[inline(always)]
            fn to_i64(self) -> i64 {
                self as i64
            }
            #[inline(always)]
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_bool(self) -> bool {
                self != 0
            }
            #[inline(always)]
            fn from_bool(v: bool) -> Self {
                v as $t
            }
        }
    };
}

impl_int!(i64, DType::I64);
impl_int!(i32, DType::I32);
impl_int!(i16, DType::I16);
impl_int!(i8, DType::I8);
impl_int!(u8, DType::U8);

/// `bool` is not `Pod`, so booleans are stored as this one-byte wrapper.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Bool(pub u8);

// SAFETY: `Bool` is a transparent `u8`; every bit pattern is a valid value
// (non-zero reads as true, as PyTorch treats a non-canonical bool byte).
unsafe impl bytemuck::Zeroable for Bool {}
// SAFETY: see above; no padding, no invalid bit patterns.
unsafe impl bytemuck::Pod for Bool {}

impl Element for Bool {
    const DTYPE: DType = DType::Bool;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        (self.0 != 0) as u8 as f64
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        Bool((v != 0.0) as u8)
    }
    #[inline(always)]
    fn to_i64(self) -> i64 {
        (self.0 != 0) as i64
    }
    #[inline(always)]
    fn from_i64(v: i64) -> Self {
        Bool((v != 0) as u8)
    }
    #[inline(always)]
    fn to_bool(self) -> bool {
        self.0 != 0
    }
    #[inline(always)]
    fn from_bool(v: bool) -> Self {
        Bool(v as u8)
    }
}

/// Runs `$body` with `$T` bound to the Rust element type of `$dtype`.
#[macro_export]
macro_rules! dispatch {
    ($dtype:expr, $T:ident => $body:expr) => {{
        use $crate::tensor::dtype::DType as __D;
        match $dtype {
            __D::F32 => {
                type $T = f32;
                $body
            }
            __D::F64 => {
                type $T = f64;
                $body
            }
            __D::F16 => {
                type $T = half::f16;
                $body
            }
            __D::BF16 => {
                type $T = half::bf16;
                $body
            }
            __D::I64 => {
                type $T = i64;
                $body
            }
            __D::I32 => {
                type $T = i32;
                $body
            }
            __D::I16 => {
                type $T = i16;
                $body
            }
            __D::I8 => {
                type $T = i8;
                $body
            }
            __D::U8 => {
                type $T = u8;
                $body
            }
            __D::Bool => {
                type $T = $crate::tensor::dtype::Bool;
                $body
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::DType::*;

    #[test]
    fn promotion_matches_pytorch_table() {
        assert_eq!(U8.promote(I8), I16);
        assert_eq!(U8.promote(I32), I32);
        assert_eq!(F16.promote(BF16), F32);
        assert_eq!(I64.promote(F16), F16);
        assert_eq!(Bool.promote(U8), U8);
        assert_eq!(F32.promote(F64), F64);
        assert_eq!(I16.promote(I32), I32);
    }

    #[test]
    fn can_cast_refuses_category_narrowing() {
        assert!(I64.can_cast(F32));
        assert!(!F32.can_cast(I64));
        assert!(!I64.can_cast(Bool));
    }
}
