//! The Fargate task sizes: the cpu/memory table from the `memory` member docs of
//! RegisterTaskDefinition.

/// True when `(cpu units, memory MiB)` is a task size Fargate offers.
pub fn is_valid_fargate_size(cpu: u32, memory: u32) -> bool {
    const GIB: u32 = 1024;
    let in_steps = |min: u32, max: u32, step: u32| {
        (min..=max).contains(&memory) && (memory - min).is_multiple_of(step)
    };
    match cpu {
        256 => matches!(memory, 512 | 1024 | 2048),
        512 => in_steps(GIB, 4 * GIB, GIB),
        1024 => in_steps(2 * GIB, 8 * GIB, GIB),
        2048 => in_steps(4 * GIB, 16 * GIB, GIB),
        4096 => in_steps(8 * GIB, 30 * GIB, GIB),
        8192 => in_steps(16 * GIB, 60 * GIB, 4 * GIB),
        16384 => in_steps(32 * GIB, 120 * GIB, 8 * GIB),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows() {
        assert!(is_valid_fargate_size(256, 512));
        assert!(is_valid_fargate_size(256, 2048));
        assert!(!is_valid_fargate_size(256, 1536));
        assert!(!is_valid_fargate_size(256, 4096));
        assert!(is_valid_fargate_size(512, 3072));
        assert!(!is_valid_fargate_size(512, 512));
        assert!(is_valid_fargate_size(1024, 8192));
        assert!(!is_valid_fargate_size(1024, 9216));
        assert!(is_valid_fargate_size(2048, 4096));
        assert!(is_valid_fargate_size(2048, 16384));
        assert!(is_valid_fargate_size(4096, 30720));
        assert!(!is_valid_fargate_size(4096, 31744));
        assert!(is_valid_fargate_size(8192, 20480));
        assert!(!is_valid_fargate_size(8192, 17408));
        assert!(is_valid_fargate_size(16384, 122_880));
        assert!(is_valid_fargate_size(16384, 40960));
        assert!(!is_valid_fargate_size(16384, 36864));
        assert!(!is_valid_fargate_size(128, 512));
    }
}
