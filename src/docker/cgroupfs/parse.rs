//! Parsers for the kernel files the cgroupfs reader uses, pure functions over their text.
//!
//! The files are written by the kernel, not by bots, but they are still read as untrusted:
//! a field that does not parse is an error naming the file, never a panic, a wrap-around or a
//! guess; sums saturate; unknown lines are skipped, because kernels add keys over time.

use super::CgroupError;

/// Host CPU counters from `/proc/stat`, the denominator of `docker stats`' CPU %.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCpu {
    /// user+nice+system+idle+iowait+irq+softirq of all CPUs, in ns: what dockerd reports as
    /// `system_cpu_usage`.
    pub system_ns: u64,
    /// `cpuN` lines: CPUs online.
    pub online_cpus: u32,
}

/// `USER_HZ`: the unit of `/proc/stat`. 100 on every Linux architecture Docker supports
/// (dockerd hard-codes it too); reading `sysconf(_SC_CLK_TCK)` would need `unsafe`.
const CLOCK_TICKS_PER_SEC: u64 = 100;

fn malformed(what: &str, detail: impl Into<String>) -> CgroupError {
    CgroupError::Malformed {
        what: what.to_string(),
        detail: detail.into(),
    }
}

/// A decimal `u64` with nothing else but surrounding whitespace.
pub fn number(what: &str, s: &str) -> Result<u64, CgroupError> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(what, format!("not a number: {:?}", truncate(t))));
    }
    t.parse()
        .map_err(|_| malformed(what, format!("out of range: {:?}", truncate(t))))
}

/// A v2 limit file (`memory.max`): a number, or `max` for none.
pub fn limit(what: &str, s: &str) -> Result<Option<u64>, CgroupError> {
    if s.trim() == "max" {
        Ok(None)
    } else {
        number(what, s).map(Some)
    }
}

/// The value of `key` in a flat keyed file (`memory.stat`, `cpu.stat`: `key value` lines).
/// `None` when the key is absent; an error when it is present but its value is not a number.
pub fn keyed(what: &str, text: &str, key: &str) -> Result<Option<u64>, CgroupError> {
    for line in text.lines() {
        let mut parts = line.split_ascii_whitespace();
        if parts.next() == Some(key) {
            let value = parts.next().unwrap_or_default();
            if parts.next().is_some() {
                return Err(malformed(what, format!("{key}: more than one value")));
            }
            return number(what, value).map(Some);
        }
    }
    Ok(None)
}

/// `/proc/stat`: the aggregate `cpu` line (its first seven fields, as dockerd sums them) and
/// the number of `cpuN` lines.
pub fn proc_stat(text: &str) -> Result<HostCpu, CgroupError> {
    let what = "/proc/stat";
    let mut ticks = None;
    let mut online = 0u32;
    for line in text.lines() {
        let mut parts = line.split_ascii_whitespace();
        match parts.next() {
            Some("cpu") => {
                let fields: Vec<&str> = parts.take(7).collect();
                if fields.len() < 7 {
                    return Err(malformed(what, "cpu line has fewer than 7 fields"));
                }
                let mut sum = 0u64;
                for f in fields {
                    sum = sum.saturating_add(number(what, f)?);
                }
                ticks = Some(sum);
            }
            Some(name)
                if name.len() > 3
                    && name.starts_with("cpu")
                    && name[3..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                online = online.saturating_add(1);
            }
            _ => {}
        }
    }
    let ticks = ticks.ok_or_else(|| malformed(what, "no cpu line"))?;
    Ok(HostCpu {
        system_ns: ticks.saturating_mul(1_000_000_000 / CLOCK_TICKS_PER_SEC),
        online_cpus: online.max(1),
    })
}

/// `/proc/<pid>/net/dev`: bytes received and sent over every interface but loopback, as
/// `docker stats` counts them.
pub fn net_dev(text: &str) -> Result<(u64, u64), CgroupError> {
    let what = "net/dev";
    let (mut rx, mut tx) = (0u64, 0u64);
    // Two header lines, then `name: 16 counters`. Interface names cannot contain ':'.
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            return Err(malformed(what, "line without ':'"));
        };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<&str> = counters.split_ascii_whitespace().collect();
        if fields.len() < 16 {
            return Err(malformed(what, "fewer than 16 counters"));
        }
        rx = rx.saturating_add(number(what, fields[0])?);
        tx = tx.saturating_add(number(what, fields[8])?);
    }
    Ok((rx, tx))
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
pub fn mem_total(text: &str) -> Result<u64, CgroupError> {
    let what = "/proc/meminfo";
    let line = text
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .ok_or_else(|| malformed(what, "no MemTotal"))?;
    let mut parts = line["MemTotal:".len()..].split_ascii_whitespace();
    let kb = number(what, parts.next().unwrap_or_default())?;
    match parts.next() {
        Some("kB") => Ok(kb.saturating_mul(1024)),
        _ => Err(malformed(what, "MemTotal is not in kB")),
    }
}

/// One line of `/proc/<pid>/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroup<'a> {
    /// `memory`, `cpu,cpuacct`, ... for v1; empty for the v2 line (`0::/path`).
    pub controllers: Vec<&'a str>,
    /// The cgroup's path, relative to the root of its hierarchy.
    pub path: &'a str,
}

/// `/proc/<pid>/cgroup`. Lines that do not have three fields are skipped.
pub fn proc_cgroup(text: &str) -> Vec<ProcCgroup<'_>> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some(ProcCgroup {
                controllers: controllers.split(',').filter(|c| !c.is_empty()).collect(),
                path,
            })
        })
        .collect()
}

/// A cgroup filesystem mounted on this host, from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: String,
    /// Which cgroup of the hierarchy is at the mount point (`/` unless in a cgroup namespace).
    pub root: String,
    /// `cgroup2` (unified) rather than v1.
    pub v2: bool,
    /// v1 controllers of the hierarchy (`memory`, `cpuacct`, ...); empty for v2.
    pub controllers: Vec<String>,
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let digit = |k: usize| u32::from(b[i + k] - b'0');
            if let Ok(v) = u8::try_from(digit(1) * 64 + digit(2) * 8 + digit(3)) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup mounts of `/proc/self/mountinfo`
/// (`id parent maj:min root mount-point options [optional...] - fstype source super-options`).
pub fn cgroup_mounts(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            let (root, mount_point) = (left.get(3)?, left.get(4)?);
            let fstype = *right.first()?;
            let v2 = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            let controllers = if v2 {
                Vec::new()
            } else {
                right
                    .get(2)?
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                    .map(String::from)
                    .collect()
            };
            Some(CgroupMount {
                mount_point: unescape(mount_point),
                root: unescape(root),
                v2,
                controllers,
            })
        })
        .collect()
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `memory.stat` of a Docker 20.10 container on cgroup v1 (this machine, captured).
    const V1_MEMORY_STAT: &str = "cache 4096\nrss 147456\nrss_huge 0\nshmem 0\nmapped_file 0\n\
        dirty 4096\nwriteback 0\nswap 0\npgpgin 904\npgpgout 867\npgfault 1240\npgmajfault 0\n\
        inactive_anon 139264\nactive_anon 8192\ninactive_file 0\nactive_file 4096\n\
        unevictable 0\nhierarchical_memory_limit 67108864\nhierarchical_memsw_limit 67108864\n\
        total_cache 4096\ntotal_rss 147456\ntotal_inactive_anon 139264\ntotal_active_anon 8192\n\
        total_inactive_file 12288\ntotal_active_file 4096\ntotal_unevictable 0\n";

    /// `memory.stat` of a container on cgroup v2 (kernel 6.1 format, trimmed).
    const V2_MEMORY_STAT: &str = "anon 2531328\nfile 1220608\nkernel 352256\n\
        kernel_stack 65536\npagetables 98304\nsec_pagetables 0\npercpu 480\nsock 0\nvmalloc 0\n\
        shmem 0\nzswap 0\nzswapped 0\nfile_mapped 0\nfile_dirty 0\nfile_writeback 0\n\
        swapcached 0\nanon_thp 0\nfile_thp 0\nshmem_thp 0\ninactive_anon 2527232\n\
        active_anon 4096\ninactive_file 1097728\nactive_file 122880\nunevictable 0\n\
        slab_reclaimable 107768\nslab_unreclaimable 76112\nslab 183880\npgfault 2255\n";

    /// `cpu.stat` of a v2 cgroup (captured from this machine's unified hierarchy).
    const V2_CPU_STAT: &str = "usage_usec 29661\nuser_usec 8474\nsystem_usec 21186\n\
        nice_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n";

    #[test]
    fn v1_memory_stat_and_counters() {
        assert_eq!(
            keyed("memory.stat", V1_MEMORY_STAT, "total_inactive_file").unwrap(),
            Some(12288)
        );
        assert_eq!(keyed("memory.stat", V1_MEMORY_STAT, "nope").unwrap(), None);
        assert_eq!(number("memory.usage_in_bytes", "720896\n").unwrap(), 720896);
        // v1 "unlimited" is a huge page-aligned number, not a word.
        assert_eq!(
            number("memory.limit_in_bytes", "9223372036854771712\n").unwrap(),
            9223372036854771712
        );
        assert_eq!(number("cpuacct.usage", "29559472\n").unwrap(), 29559472);
    }

    #[test]
    fn v2_memory_and_cpu_stat() {
        assert_eq!(
            keyed("memory.stat", V2_MEMORY_STAT, "inactive_file").unwrap(),
            Some(1097728)
        );
        assert_eq!(
            keyed("cpu.stat", V2_CPU_STAT, "usage_usec").unwrap(),
            Some(29661)
        );
        assert_eq!(limit("memory.max", "max\n").unwrap(), None);
        assert_eq!(limit("memory.max", "134217728\n").unwrap(), Some(134217728));
    }

    #[test]
    fn malformed_values_are_errors_not_guesses() {
        for bad in ["", "-1", "12a", "1 2", "0x10", "99999999999999999999999"] {
            assert!(number("f", bad).is_err(), "{bad:?}");
        }
        assert!(limit("memory.max", "maximum").is_err());
        assert!(keyed("cpu.stat", "usage_usec lots\n", "usage_usec").is_err());
        assert!(keyed("cpu.stat", "usage_usec 1 2\n", "usage_usec").is_err());
        let e = number("memory.current", &"9".repeat(500))
            .unwrap_err()
            .to_string();
        assert!(e.len() < 200, "error text is bounded: {e}");
    }

    #[test]
    fn proc_stat_counts_like_dockerd() {
        let text = "cpu  94222 229 24914 37712 1161 0 245 219 0 0\n\
                    cpu0 46827 156 11596 20327 317 0 28 106 0 0\n\
                    cpu1 47395 73 13317 17384 843 0 216 113 0 0\n\
                    intr 1 2 3\nctxt 5\ncpufreq 1\n";
        let h = proc_stat(text).unwrap();
        // steal (219) and guests are not counted.
        assert_eq!(
            h.system_ns,
            (94222 + 229 + 24914 + 37712 + 1161 + 245) * 10_000_000
        );
        assert_eq!(h.online_cpus, 2);
        assert!(proc_stat("cpu 1 2 3\n").is_err());
        assert!(proc_stat("intr 1\n").is_err());
        assert!(proc_stat("cpu 1 2 3 4 5 6 x\n").is_err());
    }

    #[test]
    fn net_dev_sums_all_but_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
            face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
            lo:     900       6    0    0    0     0          0         0      900       6    0    0    0     0       0          0\n  \
            eth0:     516       6    0    0    0     0          0         0       70       1    0    0    0     0       0          0\n  \
            eth1:      10       1    0    0    0     0          0         0        5       1    0    0    0     0       0          0\n";
        assert_eq!(net_dev(text).unwrap(), (526, 75));
        assert!(net_dev("h\nh\neth0: 1 2 3\n").is_err());
    }

    #[test]
    fn meminfo_total_in_bytes() {
        assert_eq!(
            mem_total("MemTotal:       24684084 kB\nMemFree: 1 kB\n").unwrap(),
            24684084 * 1024
        );
        assert!(mem_total("MemFree: 1 kB\n").is_err());
    }

    #[test]
    fn proc_cgroup_v1_and_v2_lines() {
        let id = "7ce91dfafe5320eee18c1ed287448a01e4c85f5fb13ea0a55ff1e838a7f84a0c";
        let text = format!(
            "9:name=systemd:/docker/{id}\n4:memory:/docker/{id}\n2:cpu,cpuacct:/docker/{id}\n\
             0::/system.slice/docker-{id}.scope\ngarbage\n"
        );
        let lines = proc_cgroup(&text);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[1].controllers, ["memory"]);
        assert_eq!(lines[2].controllers, ["cpu", "cpuacct"]);
        assert!(lines[3].controllers.is_empty());
        assert_eq!(lines[3].path, format!("/system.slice/docker-{id}.scope"));
    }

    #[test]
    fn mountinfo_finds_v1_hierarchies_and_the_unified_one() {
        // This machine's (captured): v1 controllers plus an empty v2 hierarchy (hybrid).
        let text = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
            33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n\
            35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
            40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
            42 31 0:39 /sub /mnt/with\\040space rw shared:5 - cgroup cgroup rw,cpu,cpuacct\n";
        let m = cgroup_mounts(text);
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].controllers, ["cpuacct"]);
        assert_eq!(m[1].mount_point, "/sys/fs/cgroup/memory");
        assert!(m[2].controllers.is_empty(), "name= is not a controller");
        assert!(m[3].v2);
        assert_eq!(m[4].mount_point, "/mnt/with space");
        assert_eq!(m[4].root, "/sub");
        assert_eq!(m[4].controllers, ["cpu", "cpuacct"]);
    }
}
