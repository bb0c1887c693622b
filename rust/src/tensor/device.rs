//! Where a tensor's storage lives.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    Cpu,
    Cuda(usize),
}

impl Device {
    /// Parses PyTorch's device strings: `cpu`, `cuda`, `cuda:1`.
    /// Returns the kind and the optional index (`cuda` alone has none).
    pub fn parse(s: &str) -> Result<(DeviceKind, Option<usize>)> {
        let bad = || {
            Error::Runtime(format!(
                "Expected one of cpu, cuda device type at start of device string: {s}"
            ))
        };
        let (kind, index) = match s.split_once(':') {
            Some((k, i)) => {
                let idx: usize = i
                    .parse()
                    .map_err(|_| Error::Runtime(format!("Invalid device string: '{s}'")))?;
                (k, Some(idx))
            }
            None => (s, None),
        };
        let kind = match kind {
            "cpu" => DeviceKind::Cpu,
            "cuda" => DeviceKind::Cuda,
            _ => return Err(bad()),
        };
        if kind == DeviceKind::Cpu && index.is_some_and(|i| i != 0) {
            return Err(Error::Runtime(format!(
                "CPU device index must be -1 or zero, got {}",
                index.unwrap_or(0)
            )));
        }
        Ok((kind, index))
    }

    pub fn kind(self) -> DeviceKind {
        match self {
            Device::Cpu => DeviceKind::Cpu,
            Device::Cuda(_) => DeviceKind::Cuda,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    Cpu,
    Cuda,
}

impl DeviceKind {
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Cuda => "cuda",
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}
