//! CPU time and disk writes of processes, from `/proc`: on two cores, CPU per event or
//! per task is what bounds a load generator's figure, and it is steadier than the figure
//! itself; bytes written per task say what the read models cost the disk.

/// CPU seconds (user + system) the process `pid` (or `"self"`) has used so far; 0 when
/// it cannot be read.
pub fn seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and
    // 13th of them, in clock ticks (100 per second on Linux).
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds the whole machine has been busy so far, summed over its cores (user, nice,
/// system, irq and softirq of `/proc/stat`): what a figure costs with the processes it
/// drives that are not this one's children, a PostgreSQL server say. 0 when unreadable.
pub fn machine_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().next().and_then(|l| l.strip_prefix("cpu ")) else {
        return 0.0;
    };
    let ticks: Vec<f64> = cpu
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq ...
    [0, 1, 2, 5, 6]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum::<f64>()
        / 100.0
}

/// Bytes the process `pid` (or `"self"`) has caused to be written to storage so far
/// (`write_bytes` of `/proc/<pid>/io`); 0 when it cannot be read.
pub fn bytes_written(pid: &str) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    io.lines()
        .find_map(|line| line.strip_prefix("write_bytes:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// The pid of a child of this process whose command is `name` (as `berth up` starts
/// nats-server), if there is one.
pub fn child_named(name: &str) -> Option<String> {
    let threads = std::fs::read_dir("/proc/self/task").ok()?;
    threads
        .flatten()
        .filter_map(|thread| std::fs::read_to_string(thread.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == name)
        })
}

/// Milliseconds one core takes for a fixed piece of integer arithmetic, measured now: this
/// machine's cores run at different speeds at different times (a shared host), so a
/// throughput figure is read next to this one. It does not catch every slowdown: in
/// session 12 the tasks bench lost a third with the same reading (docs/benchmarks.md).
/// Arithmetic only: a large copy would time the kernel's page faults (and whether it
/// found huge pages) instead.
pub fn reference_work_ms() -> f64 {
    let started = std::time::Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..200_000_000u32 {
        // xorshift64: a dependent chain the compiler cannot shorten.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x);
    started.elapsed().as_secs_f64() * 1e3
}
