//! Health-check bookkeeping shared by the drivers.
//!
//! Docker evaluates health checks itself (the driver maps the ECS `healthCheck` onto the
//! container's `Healthcheck` and reads the verdict back); the process driver runs the check command
//! itself and keeps score with [`HealthTracker`], which follows Docker's rules so both drivers agree:
//! the first check runs one interval after start, a success makes the container HEALTHY, `retries`
//! consecutive failures make it UNHEALTHY, and failures during `startPeriod` do not count.

use std::time::{Duration, Instant};

use berth_agent_protocol::{HealthCheck, HealthStatus};

/// The first element of an ECS health-check command that runs the rest as one shell string.
pub(crate) const CMD_SHELL: &str = "CMD-SHELL";
/// The first element of an ECS health-check command that runs the rest as argv.
pub(crate) const CMD: &str = "CMD";

/// The argv to run for a health-check command: `["CMD", prog, args...]` runs `prog args...`,
/// `["CMD-SHELL", "cmd"]` runs `/bin/sh -c cmd`. A command without either prefix is taken as argv
/// (lenient where ECS would reject the task definition, since the control plane validated it).
pub(crate) fn check_argv(command: &[String]) -> Result<Vec<String>, String> {
    let argv: Vec<String> = match command.split_first() {
        Some((first, rest)) if first == CMD_SHELL => {
            vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
        }
        Some((first, rest)) if first == CMD => rest.to_vec(),
        _ => command.to_vec(),
    };
    match argv.first() {
        Some(program) if !program.is_empty() => Ok(argv),
        _ => Err("health check command is empty".to_string()),
    }
}

/// The command in Docker's `Healthcheck.Test` form (`CMD`, `CMD-SHELL` or `NONE` first).
pub(crate) fn docker_test(command: &[String]) -> Vec<String> {
    match command.first().map(String::as_str) {
        Some(CMD) | Some(CMD_SHELL) | Some("NONE") => command.to_vec(),
        _ => std::iter::once(CMD.to_string())
            .chain(command.iter().cloned())
            .collect(),
    }
}

/// Seconds from the wire as a duration, never zero (a zero interval would spin).
pub(crate) fn seconds(value: u32) -> Duration {
    Duration::from_secs(u64::from(value.max(1)))
}

/// Scores health-check results into a [`HealthStatus`].
#[derive(Debug)]
pub(crate) struct HealthTracker {
    retries: u32,
    grace_until: Instant,
    failures: u32,
    status: HealthStatus,
}

impl HealthTracker {
    pub(crate) fn new(check: &HealthCheck, started: Instant) -> Self {
        Self {
            retries: check.retries.max(1),
            grace_until: started + Duration::from_secs(u64::from(check.start_period)),
            failures: 0,
            status: HealthStatus::Unknown,
        }
    }

    /// Records one check result taken at `now` and returns the status after it.
    pub(crate) fn record(&mut self, passed: bool, now: Instant) -> HealthStatus {
        if passed {
            self.failures = 0;
            self.status = HealthStatus::Healthy;
        } else if now >= self.grace_until {
            self.failures = self.failures.saturating_add(1);
            if self.failures >= self.retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        self.status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(retries: u32, start_period: u32) -> HealthCheck {
        HealthCheck {
            command: vec![CMD.into(), "true".into()],
            interval: 1,
            timeout: 1,
            retries,
            start_period,
        }
    }

    #[test]
    fn retries_consecutive_failures_make_unhealthy() {
        let start = Instant::now();
        let mut tracker = HealthTracker::new(&check(2, 0), start);
        assert_eq!(tracker.record(false, start), HealthStatus::Unknown);
        assert_eq!(tracker.record(false, start), HealthStatus::Unhealthy);
        assert_eq!(tracker.record(true, start), HealthStatus::Healthy);
        assert_eq!(tracker.record(false, start), HealthStatus::Healthy);
        assert_eq!(tracker.record(false, start), HealthStatus::Unhealthy);
    }

    #[test]
    fn failures_in_start_period_do_not_count() {
        let start = Instant::now();
        let mut tracker = HealthTracker::new(&check(1, 10), start);
        assert_eq!(tracker.record(false, start), HealthStatus::Unknown);
        assert_eq!(tracker.record(true, start), HealthStatus::Healthy);
        let later = start + Duration::from_secs(11);
        assert_eq!(tracker.record(false, later), HealthStatus::Unhealthy);
    }

    #[test]
    fn commands_map_to_argv_and_docker_form() {
        let shell = vec![CMD_SHELL.to_string(), "test -f x".to_string()];
        assert_eq!(
            check_argv(&shell).ok(),
            Some(vec!["/bin/sh".into(), "-c".into(), "test -f x".into()])
        );
        let direct = vec![CMD.to_string(), "true".to_string()];
        assert_eq!(check_argv(&direct).ok(), Some(vec!["true".to_string()]));
        assert!(check_argv(&[]).is_err());
        assert!(check_argv(&[CMD.to_string()]).is_err());
        assert_eq!(docker_test(&shell), shell);
        assert_eq!(
            docker_test(&["true".to_string()]),
            vec![CMD.to_string(), "true".into()]
        );
    }
}
