//! CPU time and resident memory of processes, read from /proc: the daemon (dockerd,
//! containerd, the shims of the bench's containers) and the botmaker server.

use std::collections::BTreeMap;
use std::time::Instant;

/// Clock ticks per second of /proc's CPU counters (`getconf CLK_TCK`; 100 on Linux).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// User + system CPU ticks of `pid` and of its children it has waited for.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is parenthesised and may contain spaces: fields start after ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(n(11)? + n(12)? + n(13)? + n(14)?)
}

/// Resident set size of `pid` in bytes, and its peak (`VmHWM`).
pub fn rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((kb("VmRSS:")? * 1024, kb("VmHWM:")? * 1024))
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The engine's processes: dockerd (from its pid file, else the only one running) and the
/// containerd it started.
#[derive(Debug, Clone)]
pub struct Daemon {
    pub dockerd: u32,
    pub containerd: Option<u32>,
}

impl Daemon {
    /// Finds them, or says why not.
    pub fn find() -> Result<Self, String> {
        let from_file = std::fs::read_to_string("/var/run/docker.pid")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|p| comm(*p).as_deref() == Some("dockerd"));
        let dockerd = match from_file {
            Some(p) => p,
            None => {
                let all: Vec<u32> = pids()
                    .into_iter()
                    .filter(|p| comm(*p).as_deref() == Some("dockerd"))
                    .collect();
                match all.as_slice() {
                    [one] => *one,
                    [] => return Err("no dockerd process is visible in /proc".into()),
                    _ => {
                        return Err(format!(
                            "several dockerd processes ({all:?}) and no /var/run/docker.pid: \
                         cannot tell which one is the engine"
                        ));
                    }
                }
            }
        };
        let containerd = pids()
            .into_iter()
            .find(|p| comm(*p).as_deref() == Some("containerd") && ppid(*p) == Some(dockerd));
        Ok(Self {
            dockerd,
            containerd,
        })
    }

    /// The shims of the given containers (one `containerd-shim-runc-v2 -id <id>` each).
    pub fn shims(&self, container_ids: &[String]) -> Vec<u32> {
        pids()
            .into_iter()
            .filter(|p| comm(*p).is_some_and(|c| c.starts_with("containerd-shim")))
            .filter(|p| {
                let line = cmdline(*p);
                container_ids
                    .iter()
                    .any(|id| line.contains(&format!("-id {id} ")))
            })
            .collect()
    }
}

/// A set of named process groups whose CPU time is read at the start and end of a window.
pub struct CpuWindow {
    groups: BTreeMap<&'static str, Vec<u32>>,
    start: BTreeMap<&'static str, u64>,
    at: Instant,
}

/// CPU use of each group over a window, in percent of one core.
pub type CpuUse = BTreeMap<&'static str, f64>;

impl CpuWindow {
    /// Starts counting for `groups`.
    pub fn start(groups: BTreeMap<&'static str, Vec<u32>>) -> Self {
        let start = Self::read(&groups);
        Self {
            groups,
            start,
            at: Instant::now(),
        }
    }

    fn read(groups: &BTreeMap<&'static str, Vec<u32>>) -> BTreeMap<&'static str, u64> {
        groups
            .iter()
            .map(|(name, pids)| (*name, pids.iter().filter_map(|p| cpu_ticks(*p)).sum()))
            .collect()
    }

    /// Ends the window: percent of one core per group.
    pub fn finish(self, ticks_per_sec: f64) -> CpuUse {
        let end = Self::read(&self.groups);
        let secs = self.at.elapsed().as_secs_f64();
        end.iter()
            .map(|(name, t)| {
                let delta = t.saturating_sub(self.start[name]) as f64 / ticks_per_sec;
                (*name, 100.0 * delta / secs)
            })
            .collect()
    }
}
