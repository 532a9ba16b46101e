//! Container stats straight from the kernel's cgroup files, for an engine on this machine.
//!
//! dockerd reads the very same files for its stats call, but answers a one-shot request only
//! at the next tick of its 1 s collector, so a sampler asking it for every bot refreshes a few
//! bots a second. Read directly, every running bot costs a handful of small file reads, all of
//! them in one pass. [`CgroupStats`] knows the host's cgroup mounts and reads one container's
//! counters into the same [`StatsSnapshot`] the Docker API path produces, with the same
//! definitions (`docker stats`' CPU formula; memory without reclaimable page cache; the host's
//! memory as the limit of an unlimited container). cgroup v1 and v2 are both read.
//!
//! It only works when the daemon runs on this host and shares its cgroup filesystem: the
//! caller ([`crate::sampler`]) uses the Docker API for a remote engine, when this module says
//! no, and for any container it cannot place.

mod locate;
mod parse;

use std::io::Read;
use std::path::{Path, PathBuf};

use bollard::models::{SystemInfoCgroupDriverEnum, SystemInfoCgroupVersionEnum};
use chrono::Utc;

pub use locate::CgroupDriver;
pub use parse::HostCpu;

use super::error::{ContainerError, Op};
use super::stats::StatsSnapshot;
use super::{DockerService, Engine};
use parse::CgroupMount;

/// Largest cgroup or proc file read; `memory.stat` is about 1 KiB.
const MAX_FILE: u64 = 64 * 1024;
/// How much of `cgroup.procs` is read to find a process for the network counters.
const MAX_PROCS: u64 = 4 * 1024;
/// Processes tried for the network counters before giving up on them for this reading.
const PROCS_TRIED: usize = 8;

/// Why cgroup files cannot be (or were not) read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgroupError {
    /// The engine is reached over TCP (or anything but a unix socket): its containers' cgroups
    /// are on another machine, as far as botmaker can know.
    #[error("the engine at {host} is not reached through a local unix socket")]
    Remote {
        /// The engine's address.
        host: String,
    },
    /// Asking the daemon how it runs cgroups failed.
    #[error("asking the engine about its cgroups: {0}")]
    Docker(#[from] ContainerError),
    /// The daemon runs without cgroups, or reports something this reader does not know.
    #[error("the engine reports cgroup version {version:?} with driver {driver:?}")]
    Unsupported {
        /// `CgroupVersion` of `GET /info`.
        version: String,
        /// `CgroupDriver` of `GET /info`.
        driver: String,
    },
    /// The hierarchy the daemon uses is not mounted where botmaker runs.
    #[error("no cgroup {0} mounted here (per /proc/self/mountinfo)")]
    NotMounted(String),
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A file did not have the expected format.
    #[error("{what}: {detail}")]
    Malformed {
        /// The file that did not parse.
        what: String,
        /// What did not parse, with a bounded excerpt.
        detail: String,
    },
}

impl CgroupError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Remote { .. } => "REMOTE_ENGINE",
            Self::Docker(_) => "DOCKER_ERROR",
            Self::Unsupported { .. } => "UNSUPPORTED_CGROUPS",
            Self::NotMounted(_) => "NOT_MOUNTED",
            Self::Io { .. } => "IO_ERROR",
            Self::Malformed { .. } => "MALFORMED",
        }
    }
}

/// Where one container's counters are, found once per container and kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupPaths {
    /// Memory counters (and `cgroup.procs`).
    pub memory: PathBuf,
    /// CPU counters.
    pub cpu: PathBuf,
    /// Process count, when the pids controller is mounted.
    pub pids: Option<PathBuf>,
}

/// One container's counters read from cgroupfs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CgroupReading {
    /// The counters, in the Docker API's units.
    pub snapshot: StatsSnapshot,
    /// Whether the network counters were read: they come from a process of the container,
    /// which may just have exited. When `false` they are zero and the caller should keep the
    /// previous ones.
    pub network: bool,
}

/// Reads container counters from this host's cgroup filesystem.
#[derive(Debug, Clone)]
pub struct CgroupStats {
    v2: bool,
    driver: CgroupDriver,
    engine: Engine,
    memory: CgroupMount,
    cpu: CgroupMount,
    pids: Option<CgroupMount>,
    proc_root: PathBuf,
    host_memory: u64,
}

fn read_text(path: &Path, limit: u64) -> Result<String, CgroupError> {
    let io = |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(limit)
        .read_to_string(&mut text)
        .map_err(io)?;
    Ok(text)
}

fn file_name(path: &Path) -> String {
    path.display().to_string()
}

impl CgroupStats {
    /// A reader for cgroup `v2` (else v1) hierarchies named by `driver`, found in `mountinfo`
    /// (the text of `/proc/self/mountinfo`), with processes under `proc_root` (`/proc`) and
    /// `meminfo` (the text of `/proc/meminfo`) for the limit of unlimited containers.
    pub fn new(
        v2: bool,
        driver: CgroupDriver,
        mountinfo: &str,
        meminfo: &str,
        proc_root: PathBuf,
    ) -> Result<Self, CgroupError> {
        let mounts = parse::cgroup_mounts(mountinfo);
        let find = |controller: &str| {
            mounts
                .iter()
                .find(|m| !m.v2 && m.controllers.iter().any(|c| c == controller))
                .cloned()
        };
        let (memory, cpu, pids) = if v2 {
            let unified = mounts
                .iter()
                .find(|m| m.v2)
                .cloned()
                .ok_or_else(|| CgroupError::NotMounted("v2 (cgroup2)".into()))?;
            (unified.clone(), unified.clone(), Some(unified))
        } else {
            (
                find("memory").ok_or_else(|| CgroupError::NotMounted("v1 memory".into()))?,
                find("cpuacct").ok_or_else(|| CgroupError::NotMounted("v1 cpuacct".into()))?,
                find("pids"),
            )
        };
        Ok(Self {
            v2,
            driver,
            engine: Engine::Docker,
            memory,
            cpu,
            pids,
            proc_root,
            host_memory: parse::mem_total(meminfo)?,
        })
    }

    /// Names cgroups the way `engine` does (dockerd unless told), for containers whose process
    /// is not visible from here.
    pub fn for_engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// The cgroup version read: 1 or 2.
    pub fn version(&self) -> u8 {
        if self.v2 { 2 } else { 1 }
    }

    /// Where container `id` keeps its counters: from `/proc/<pid>/cgroup` of its process when
    /// that is visible here, else from the daemon's naming scheme with its `cgroup_parent`.
    /// `None` if neither gives a directory that exists (the daemon is not on this host, or
    /// runs in another cgroup namespace). Blocking: a few small file reads.
    pub fn locate(&self, id: &str, cgroup_parent: &str, pid: u32) -> Option<CgroupPaths> {
        let from_proc = (pid > 0)
            .then(|| {
                read_text(
                    &self.proc_root.join(pid.to_string()).join("cgroup"),
                    MAX_FILE,
                )
            })
            .and_then(Result::ok)
            .and_then(|text| locate::from_proc(&parse::proc_cgroup(&text), self.v2, id));
        let from_driver = || {
            locate::driver_path(self.engine, self.driver, cgroup_parent, id)
                .map(|p| [Some(p.clone()), Some(p.clone()), Some(p)])
        };
        [from_proc, from_driver()]
            .into_iter()
            .flatten()
            .find_map(|[memory, cpu, pids]| self.host_paths(memory?, cpu?, pids))
    }

    fn host_paths(&self, memory: String, cpu: String, pids: Option<String>) -> Option<CgroupPaths> {
        let paths = CgroupPaths {
            memory: locate::host_dir(&self.memory, &memory)?,
            cpu: locate::host_dir(&self.cpu, &cpu)?,
            pids: self
                .pids
                .as_ref()
                .zip(pids)
                .and_then(|(m, p)| locate::host_dir(m, &p)),
        };
        (paths.memory.is_dir() && paths.cpu.is_dir()).then_some(paths)
    }

    /// The host's CPU counters, read once per pass and shared by every container's reading.
    pub fn host_cpu(&self) -> Result<HostCpu, CgroupError> {
        parse::proc_stat(&read_text(&self.proc_root.join("stat"), MAX_FILE)?)
    }

    /// One container's counters. Blocking: five to seven small file reads.
    pub fn read(&self, paths: &CgroupPaths, host: &HostCpu) -> Result<CgroupReading, CgroupError> {
        let file = |dir: &Path, name: &str| {
            let p = dir.join(name);
            read_text(&p, MAX_FILE).map(|t| (file_name(&p), t))
        };
        let (usage, limit, stat_key, cpu_ns) = if self.v2 {
            let (w, t) = file(&paths.memory, "memory.current")?;
            let usage = parse::number(&w, &t)?;
            let (w, t) = file(&paths.memory, "memory.max")?;
            let limit = parse::limit(&w, &t)?;
            let (w, t) = file(&paths.cpu, "cpu.stat")?;
            let usec =
                parse::keyed(&w, &t, "usage_usec")?.ok_or_else(|| CgroupError::Malformed {
                    what: w.clone(),
                    detail: "no usage_usec".into(),
                })?;
            (usage, limit, "inactive_file", usec.saturating_mul(1000))
        } else {
            let (w, t) = file(&paths.memory, "memory.usage_in_bytes")?;
            let usage = parse::number(&w, &t)?;
            let (w, t) = file(&paths.memory, "memory.limit_in_bytes")?;
            let limit = Some(parse::number(&w, &t)?);
            let (w, t) = file(&paths.cpu, "cpuacct.usage")?;
            (usage, limit, "total_inactive_file", parse::number(&w, &t)?)
        };
        // Page cache the kernel would reclaim is not what a bot needs (as `docker stats`).
        let (w, t) = file(&paths.memory, "memory.stat")?;
        let cache = parse::keyed(&w, &t, stat_key)?.unwrap_or(0);
        let pids = match &paths.pids {
            Some(dir) => {
                let (w, t) = file(dir, "pids.current")?;
                parse::number(&w, &t)?
            }
            None => 0,
        };
        let network = self.network(&paths.memory);
        let (rx, tx) = network.unwrap_or((0, 0));
        Ok(CgroupReading {
            snapshot: StatsSnapshot {
                read: Some(Utc::now()),
                cpu_total_ns: cpu_ns,
                system_cpu_ns: host.system_ns,
                online_cpus: host.online_cpus,
                memory_bytes: usage.saturating_sub(cache),
                // v1 says "unlimited" with a huge number, v2 with "max": both are the host's
                // memory, as dockerd reports it.
                memory_limit_bytes: limit.map_or(self.host_memory, |l| l.min(self.host_memory)),
                network_rx_bytes: rx,
                network_tx_bytes: tx,
                pids,
            },
            network: network.is_some(),
        })
    }

    /// Network bytes from the namespace of one of the container's processes: cgroups do not
    /// count network traffic.
    fn network(&self, cgroup_dir: &Path) -> Option<(u64, u64)> {
        let procs = read_text(&cgroup_dir.join("cgroup.procs"), MAX_PROCS).ok()?;
        procs
            .lines()
            .filter_map(|l| l.trim().parse::<u32>().ok())
            // 0: a process of another pid namespace, invisible from here.
            .filter(|pid| *pid > 0)
            .take(PROCS_TRIED)
            .find_map(|pid| {
                let dev = self.proc_root.join(pid.to_string()).join("net/dev");
                parse::net_dev(&read_text(&dev, MAX_FILE).ok()?).ok()
            })
    }
}

/// What the daemon says about a container's process and cgroup: enough to locate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupHint {
    /// Host pid of its init process; 0 when not running.
    pub pid: u32,
    /// `HostConfig.CgroupParent`; empty for the daemon's default.
    pub cgroup_parent: String,
}

impl DockerService {
    /// A cgroupfs reader for this engine's containers, if the engine is on this machine:
    /// reached through a unix socket, with its cgroup hierarchy (per `GET /info`) mounted here.
    pub async fn cgroup_stats(&self) -> Result<CgroupStats, CgroupError> {
        if !self.host.starts_with("unix://") {
            return Err(CgroupError::Remote {
                host: self.host.clone(),
            });
        }
        let info = self
            .call(Op::Info, "", self.call_timeout, self.docker.info())
            .await?;
        let (version, driver) = (info.cgroup_version, info.cgroup_driver);
        let unsupported = || CgroupError::Unsupported {
            version: version.map(|v| v.to_string()).unwrap_or_default(),
            driver: driver.map(|d| d.to_string()).unwrap_or_default(),
        };
        let v2 = match version {
            Some(SystemInfoCgroupVersionEnum::_2) => true,
            // API 1.41 daemons on v1 may leave the field out; v1 is what they mean.
            Some(SystemInfoCgroupVersionEnum::_1 | SystemInfoCgroupVersionEnum::EMPTY) | None => {
                false
            }
        };
        let driver = match driver {
            Some(SystemInfoCgroupDriverEnum::CGROUPFS) => CgroupDriver::Cgroupfs,
            Some(SystemInfoCgroupDriverEnum::SYSTEMD) => CgroupDriver::Systemd,
            _ => return Err(unsupported()),
        };
        let engine = self.engine;
        tokio::task::spawn_blocking(move || {
            let mountinfo = read_text(Path::new("/proc/self/mountinfo"), 1 << 20)?;
            let meminfo = read_text(Path::new("/proc/meminfo"), MAX_FILE)?;
            CgroupStats::new(v2, driver, &mountinfo, &meminfo, PathBuf::from("/proc"))
                .map(|s| s.for_engine(engine))
        })
        .await
        .map_err(|e| CgroupError::Malformed {
            what: "cgroup detection".into(),
            detail: e.to_string(),
        })?
    }

    /// The pid and cgroup parent of container `container_id` (one inspect), or `None` if it
    /// no longer exists.
    pub async fn cgroup_hint(
        &self,
        container_id: &str,
    ) -> Result<Option<CgroupHint>, ContainerError> {
        match self
            .call(
                Op::Inspect,
                "",
                self.call_timeout,
                super::lenient::tolerant(self.docker.inspect_container(container_id, None)),
            )
            .await
        {
            Ok(r) => Ok(Some(CgroupHint {
                pid: r
                    .state
                    .and_then(|s| s.pid)
                    .and_then(|p| u32::try_from(p).ok())
                    .unwrap_or(0),
                cgroup_parent: r
                    .host_config
                    .and_then(|h| h.cgroup_parent)
                    .unwrap_or_default(),
            })),
            Err(ContainerError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "7ce91dfafe5320eee18c1ed287448a01e4c85f5fb13ea0a55ff1e838a7f84a0c";
    const MEMINFO: &str = "MemTotal:       1000 kB\n";

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }

    /// A fake host: cgroup mounts under a temp dir, a /proc with one container process.
    fn host(v2: bool) -> (tempfile::TempDir, CgroupStats) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let mountinfo = if v2 {
            format!(
                "41 31 0:38 / {}/unified rw - cgroup2 cgroup2 rw\n",
                root.display()
            )
        } else {
            format!(
                "33 31 0:30 / {r}/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                 35 31 0:32 / {r}/memory rw - cgroup cgroup rw,memory\n\
                 39 31 0:36 / {r}/pids rw - cgroup cgroup rw,pids\n",
                r = root.display()
            )
        };
        let proc = root.join("proc");
        write(
            &proc,
            "stat",
            "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1\ncpu1 1\n",
        );
        let cg = if v2 {
            format!("0::/system.slice/docker-{ID}.scope\n")
        } else {
            format!("4:memory:/docker/{ID}\n2:cpu,cpuacct:/docker/{ID}\n8:pids:/docker/{ID}\n")
        };
        write(&proc.join("4242"), "cgroup", &cg);
        write(
            &proc.join("4242/net"),
            "dev",
            "h\nh\n    lo: 9 0 0 0 0 0 0 0 9 0 0 0 0 0 0 0\n  eth0: 500 0 0 0 0 0 0 0 70 0 0 0 0 0 0 0\n",
        );
        let driver = if v2 {
            CgroupDriver::Systemd
        } else {
            CgroupDriver::Cgroupfs
        };
        let s = CgroupStats::new(v2, driver, &mountinfo, MEMINFO, proc).unwrap();
        (t, s)
    }

    #[test]
    fn v1_reading_matches_docker_definitions() {
        let (t, s) = host(false);
        let r = t.path();
        let mem = r.join(format!("memory/docker/{ID}"));
        write(&mem, "memory.usage_in_bytes", "720896\n");
        write(&mem, "memory.limit_in_bytes", "9223372036854771712\n");
        write(
            &mem,
            "memory.stat",
            "inactive_file 4096\ntotal_inactive_file 20480\n",
        );
        write(&mem, "cgroup.procs", "0\n4242\n");
        write(
            &r.join(format!("cpu,cpuacct/docker/{ID}")),
            "cpuacct.usage",
            "29559472\n",
        );
        write(&r.join(format!("pids/docker/{ID}")), "pids.current", "3\n");

        // Found from the process's /proc/<pid>/cgroup...
        let paths = s.locate(ID, "", 4242).expect("located");
        assert_eq!(paths.memory, mem);
        // ...and, without a visible process, from the driver's naming scheme.
        assert_eq!(s.locate(ID, "", 0), Some(paths.clone()));
        assert_eq!(s.locate(ID, "/elsewhere", 0), None, "no such directory");

        let host = s.host_cpu().unwrap();
        assert_eq!(host.online_cpus, 2);
        let got = s.read(&paths, &host).unwrap();
        assert!(got.network);
        let snap = got.snapshot;
        assert_eq!(snap.cpu_total_ns, 29559472);
        assert_eq!(snap.system_cpu_ns, 1000 * 10_000_000);
        // v1 uses the hierarchical total, as `docker stats` does.
        assert_eq!(snap.memory_bytes, 720896 - 20480);
        assert_eq!(
            snap.memory_limit_bytes,
            1000 * 1024,
            "unlimited is the host's memory"
        );
        assert_eq!(snap.pids, 3);
        assert_eq!((snap.network_rx_bytes, snap.network_tx_bytes), (500, 70));
        assert!(snap.read.is_some());
    }

    #[test]
    fn v2_reading_and_a_limit() {
        let (t, s) = host(true);
        let dir = t
            .path()
            .join(format!("unified/system.slice/docker-{ID}.scope"));
        write(&dir, "memory.current", "3751936\n");
        write(&dir, "memory.max", "524288\n");
        write(
            &dir,
            "memory.stat",
            "anon 1\ninactive_file 1097728\nactive_file 2\n",
        );
        write(&dir, "cpu.stat", "usage_usec 29661\nuser_usec 8474\n");
        write(&dir, "pids.current", "2\n");
        write(&dir, "cgroup.procs", "");
        let paths = s.locate(ID, "", 4242).expect("located");
        assert_eq!(paths.cpu, dir);
        let got = s.read(&paths, &s.host_cpu().unwrap()).unwrap();
        assert!(!got.network, "no process to read the network from");
        assert_eq!(got.snapshot.cpu_total_ns, 29_661_000);
        assert_eq!(got.snapshot.memory_bytes, 3751936 - 1097728);
        assert_eq!(got.snapshot.memory_limit_bytes, 524288);
        assert_eq!(got.snapshot.pids, 2);

        // A malformed file is an error naming it; so is a vanished cgroup.
        write(&dir, "memory.current", "lots\n");
        let e = s.read(&paths, &s.host_cpu().unwrap()).unwrap_err();
        assert_eq!(e.code(), "MALFORMED");
        assert!(e.to_string().contains("memory.current"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        let e = s.read(&paths, &s.host_cpu().unwrap()).unwrap_err();
        assert_eq!(e.code(), "IO_ERROR", "{e}");
    }

    #[test]
    fn a_missing_hierarchy_is_reported() {
        let e = CgroupStats::new(true, CgroupDriver::Systemd, "", MEMINFO, "/proc".into());
        assert_eq!(e.unwrap_err().code(), "NOT_MOUNTED");
        let hybrid = "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        let e = CgroupStats::new(
            false,
            CgroupDriver::Cgroupfs,
            hybrid,
            MEMINFO,
            "/proc".into(),
        );
        assert_eq!(e.unwrap_err().code(), "NOT_MOUNTED");
    }
}
