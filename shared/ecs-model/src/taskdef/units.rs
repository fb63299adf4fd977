//! Task-level `cpu` and `memory` strings.
//!
//! ECS accepts `"1024"` or `"1 vCPU"` / `"0.25 vcpu"` for cpu and `"2048"`, `"2GB"`, `"2 GiB"` or
//! `"512 MiB"` for memory, and stores the integer (CPU units, MiB) as a string: that string is
//! what DescribeTaskDefinition returns. A value that is not a whole number of units once
//! converted is rejected, with ECS's "Invalid 'cpu' setting for task." wording.

use crate::error::ValidationError;

/// Smallest task-level cpu ECS supports (0.125 vCPU), per the `cpu` member docs.
pub const MIN_TASK_CPU: u32 = 128;
/// Largest task-level cpu ECS supports (192 vCPU), per the `cpu` member docs.
pub const MAX_TASK_CPU: u32 = 196_608;
/// Largest task-level memory Berth accepts: the `Integer` range.
pub const MAX_TASK_MEMORY: u32 = i32::MAX as u32;

/// Parses a task-level cpu string into CPU units.
pub fn parse_task_cpu(text: &str) -> Result<u32, ValidationError> {
    let invalid = || ValidationError::client("Invalid 'cpu' setting for task.");
    let units = parse_scaled(text, |unit| match unit {
        "" => Some(1),
        "vcpu" | "vcpus" => Some(1024),
        _ => None,
    })
    .ok_or_else(invalid)?;
    u32::try_from(units)
        .ok()
        .filter(|u| (MIN_TASK_CPU..=MAX_TASK_CPU).contains(u))
        .ok_or_else(invalid)
}

/// Parses a task-level memory string into MiB.
pub fn parse_task_memory(text: &str) -> Result<u32, ValidationError> {
    let invalid = || ValidationError::client("Invalid 'memory' setting for task.");
    let mib = parse_scaled(text, |unit| match unit {
        "" | "mb" | "mib" => Some(1),
        "gb" | "gib" => Some(1024),
        _ => None,
    })
    .ok_or_else(invalid)?;
    u32::try_from(mib)
        .ok()
        .filter(|m| (1..=MAX_TASK_MEMORY).contains(m))
        .ok_or_else(invalid)
}

/// `<decimal>[ ]<unit>` → decimal × scale(unit), when that is a whole number. A bare number (no
/// unit) must be an integer: ECS only converts fractions together with a unit.
fn parse_scaled(text: &str, scale_of: impl Fn(&str) -> Option<u128>) -> Option<u128> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim_start().to_ascii_lowercase();
    let scale = scale_of(&unit)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if number.contains('.') && unit.is_empty() {
        return None;
    }
    // Bounded lengths keep the arithmetic far from overflow; such values are out of range anyway.
    if whole.len() > 12 || fraction.len() > 12 || fraction.contains('.') {
        return None;
    }
    let digits = |s: &str| -> Option<u128> {
        if s.is_empty() {
            Some(0)
        } else {
            s.parse().ok()
        }
    };
    let denominator = 10u128.pow(u32::try_from(fraction.len()).ok()?);
    let numerator = (digits(whole)? * denominator + digits(fraction)?) * scale;
    (numerator % denominator == 0).then_some(numerator / denominator)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cpu_forms() {
        assert_eq!(parse_task_cpu("256").unwrap(), 256);
        assert_eq!(parse_task_cpu("1 vCPU").unwrap(), 1024);
        assert_eq!(parse_task_cpu("1 vcpu").unwrap(), 1024);
        assert_eq!(parse_task_cpu("0.25 vCPU").unwrap(), 256);
        assert_eq!(parse_task_cpu(".5vcpu").unwrap(), 512);
        assert_eq!(parse_task_cpu(" 2 vCPUs ").unwrap(), 2048);
        assert_eq!(parse_task_cpu("192 vCPU").unwrap(), MAX_TASK_CPU);
        for bad in [
            "",
            "abc",
            "1.5",
            "0.1 vCPU",
            "64",
            "193 vCPU",
            "1 core",
            "-256",
            "1..2 vCPU",
            ".",
            "256 256",
        ] {
            let err = parse_task_cpu(bad).unwrap_err();
            assert_eq!(err.message, "Invalid 'cpu' setting for task.", "{bad:?}");
        }
    }

    #[test]
    fn memory_forms() {
        assert_eq!(parse_task_memory("512").unwrap(), 512);
        assert_eq!(parse_task_memory("0.5GB").unwrap(), 512);
        assert_eq!(parse_task_memory("1 GB").unwrap(), 1024);
        assert_eq!(parse_task_memory("2 GiB").unwrap(), 2048);
        assert_eq!(parse_task_memory("512 MiB").unwrap(), 512);
        assert_eq!(parse_task_memory("300mb").unwrap(), 300);
        for bad in ["", "0", "1.5", "0.001GB", "1 TB", "GB", "99999999999"] {
            let err = parse_task_memory(bad).unwrap_err();
            assert_eq!(err.message, "Invalid 'memory' setting for task.", "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn cpu_units_round_trip(units in MIN_TASK_CPU..=MAX_TASK_CPU) {
            prop_assert_eq!(parse_task_cpu(&units.to_string()).unwrap(), units);
        }

        #[test]
        fn vcpus_convert_exactly(quarters in 1u32..=768, spaced in any::<bool>()) {
            // Quarter vCPUs are always whole CPU units (256 each).
            let vcpus = format!("{}", f64::from(quarters) / 4.0);
            let sep = if spaced { " " } else { "" };
            let text = format!("{vcpus}{sep}vCPU");
            prop_assert_eq!(parse_task_cpu(&text).unwrap(), quarters * 256);
        }

        #[test]
        fn memory_mib_and_gb_agree(gb in 1u32..=512) {
            let from_gb = parse_task_memory(&format!("{gb}GB")).unwrap();
            let from_mib = parse_task_memory(&format!("{} MiB", gb * 1024)).unwrap();
            prop_assert_eq!(from_gb, from_mib);
            prop_assert_eq!(parse_task_memory(&from_gb.to_string()).unwrap(), from_gb);
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,40}") {
            let _ = parse_task_cpu(&text);
            let _ = parse_task_memory(&text);
        }
    }
}
