//! Where a container's cgroup lives: from the container's `/proc/<pid>/cgroup` when its
//! process is visible, else from the daemon's cgroup driver and the container's cgroup parent
//! (how dockerd names it: `<parent or /docker>/<id>` with the cgroupfs driver,
//! `<parent or system.slice>/docker-<id>.scope` with systemd; how Podman names it:
//! `<parent or /libpod_parent>/libpod-<id>` and `<parent or machine.slice>/libpod-<id>.scope`).
//!
//! Every path taken from outside (the daemon's inspect, `/proc`) is checked before it is
//! joined under a mount point: absolute, no `.` or `..`, and naming the container's id, so a
//! reused pid or an odd cgroup parent can never point the reader at another container's files
//! or outside the cgroup filesystem.

use std::path::PathBuf;

use super::parse::{CgroupMount, ProcCgroup};
use crate::docker::Engine;

/// How the daemon names cgroups (`CgroupDriver` of `GET /info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupDriver {
    /// Plain directories: `/docker/<id>`.
    Cgroupfs,
    /// systemd scopes: `/system.slice/docker-<id>.scope`.
    Systemd,
}

/// Paths longer than this are not cgroups Docker made.
const MAX_PATH: usize = 1024;

/// A full container id: 64 lowercase hex digits.
pub fn is_container_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `path` if it is absolute and clean: no empty, `.` or `..` components, no NUL, bounded.
pub fn clean(path: &str) -> Option<&str> {
    let ok = path.starts_with('/')
        && path.len() <= MAX_PATH
        && !path.contains('\0')
        && (path == "/"
            || path[1..]
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".."));
    ok.then_some(path)
}

/// Whether `path` is the cgroup of container `id`: Docker puts the full id into the last
/// component with either driver.
pub fn names_container(path: &str, id: &str) -> bool {
    is_container_id(id)
        && path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(id))
}

/// systemd's slice naming: `a-b.slice` lives at `/a.slice/a-b.slice`; `-.slice` is the root.
pub fn expand_slice(slice: &str) -> Option<String> {
    if slice == "-.slice" {
        return Some("/".into());
    }
    let name = slice.strip_suffix(".slice")?;
    let valid = !name.is_empty()
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'@'));
    if !valid {
        return None;
    }
    let mut path = String::new();
    for (i, _) in name.match_indices('-') {
        path.push_str(&format!("/{}.slice", &name[..i]));
    }
    path.push_str(&format!("/{name}.slice"));
    Some(path)
}

/// The cgroup path `engine` gives container `id` under `driver` with the container's
/// `HostConfig.CgroupParent` (empty for the engine's default). `None` when the parent is not
/// something the engine would accept for that driver.
pub fn driver_path(engine: Engine, driver: CgroupDriver, parent: &str, id: &str) -> Option<String> {
    if !is_container_id(id) {
        return None;
    }
    let (default_dir, default_slice, prefix) = match engine {
        Engine::Docker => ("/docker", "system.slice", "docker"),
        Engine::Podman => ("/libpod_parent", "machine.slice", "libpod"),
    };
    let path = match driver {
        CgroupDriver::Cgroupfs => {
            let parent = if parent.is_empty() {
                default_dir
            } else {
                parent
            };
            let parent = parent.trim_end_matches('/');
            let leaf = match engine {
                Engine::Docker => id.to_string(),
                Engine::Podman => format!("{prefix}-{id}"),
            };
            if parent.starts_with('/') {
                format!("{parent}/{leaf}")
            } else {
                format!("/{parent}/{leaf}")
            }
        }
        CgroupDriver::Systemd => {
            let slice = if parent.is_empty() {
                default_slice
            } else {
                parent
            };
            let dir = expand_slice(slice)?;
            format!("{}/{prefix}-{id}.scope", dir.trim_end_matches('/'))
        }
    };
    clean(&path).map(String::from)
}

/// The cgroup paths a process's `/proc/<pid>/cgroup` names for what the reader needs:
/// `[memory, cpuacct, pids]` on v1 (pids optional), the unified path three times on v2.
/// `None` unless every path needed is clean and names container `id` (the pid may have been
/// reused by another process since the daemon reported it).
pub fn from_proc(lines: &[ProcCgroup<'_>], v2: bool, id: &str) -> Option<[Option<String>; 3]> {
    let ok = |p: &str| {
        clean(p)
            .filter(|p| names_container(p, id))
            .map(String::from)
    };
    if v2 {
        let p = lines
            .iter()
            .find(|l| l.controllers.is_empty())
            .and_then(|l| ok(l.path))?;
        return Some([Some(p.clone()), Some(p.clone()), Some(p)]);
    }
    let of = |controller: &str| {
        lines
            .iter()
            .find(|l| l.controllers.contains(&controller))
            .and_then(|l| ok(l.path))
    };
    Some([Some(of("memory")?), Some(of("cpuacct")?), of("pids")])
}

/// The host directory of cgroup `path` in the hierarchy mounted by `mount`: the part of
/// the path below the mount's root, under its mount point. `None` if the cgroup is outside
/// what this mount shows (a cgroup namespace can hide it).
pub fn host_dir(mount: &CgroupMount, path: &str) -> Option<PathBuf> {
    let path = clean(path)?;
    let root = mount.root.trim_end_matches('/');
    let rest = path.strip_prefix(root)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    Some(PathBuf::from(format!(
        "{}{}",
        mount.mount_point.trim_end_matches('/'),
        rest
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "7ce91dfafe5320eee18c1ed287448a01e4c85f5fb13ea0a55ff1e838a7f84a0c";

    #[test]
    fn dockerd_names_cgroups_by_driver_and_parent() {
        use CgroupDriver::*;
        let driver_path = |d, p: &str, id: &str| driver_path(Engine::Docker, d, p, id);
        assert_eq!(
            driver_path(Cgroupfs, "", ID).unwrap(),
            format!("/docker/{ID}")
        );
        assert_eq!(
            driver_path(Cgroupfs, "/bots/", ID).unwrap(),
            format!("/bots/{ID}")
        );
        assert_eq!(
            driver_path(Cgroupfs, "bots", ID).unwrap(),
            format!("/bots/{ID}")
        );
        assert_eq!(
            driver_path(Systemd, "", ID).unwrap(),
            format!("/system.slice/docker-{ID}.scope")
        );
        assert_eq!(
            driver_path(Systemd, "bots-fleet.slice", ID).unwrap(),
            format!("/bots.slice/bots-fleet.slice/docker-{ID}.scope")
        );
        // Escapes and nonsense are refused, not joined.
        assert_eq!(driver_path(Cgroupfs, "/../../etc", ID), None);
        assert_eq!(driver_path(Cgroupfs, "/a//b", ID), None);
        assert_eq!(driver_path(Systemd, "bots", ID), None);
        assert_eq!(driver_path(Systemd, "a--b.slice", ID), None);
        assert_eq!(driver_path(Systemd, "../x.slice", ID), None);
        assert_eq!(driver_path(Cgroupfs, "", "../../etc"), None);
        assert_eq!(driver_path(Cgroupfs, "", &ID[..12]), None);
    }

    #[test]
    fn podman_names_cgroups_libpod() {
        use CgroupDriver::*;
        let driver_path = |d, p: &str, id: &str| driver_path(Engine::Podman, d, p, id);
        // As podman 4.3 made them on Debian 12 (cgroup v1, cgroupfs manager).
        assert_eq!(
            driver_path(Cgroupfs, "", ID).unwrap(),
            format!("/libpod_parent/libpod-{ID}")
        );
        assert_eq!(
            driver_path(Cgroupfs, "/bots", ID).unwrap(),
            format!("/bots/libpod-{ID}")
        );
        assert_eq!(
            driver_path(Systemd, "", ID).unwrap(),
            format!("/machine.slice/libpod-{ID}.scope")
        );
        assert_eq!(
            driver_path(Systemd, "bots-fleet.slice", ID).unwrap(),
            format!("/bots.slice/bots-fleet.slice/libpod-{ID}.scope")
        );
        // The same refusals as for dockerd.
        assert_eq!(driver_path(Cgroupfs, "/../../etc", ID), None);
        assert_eq!(driver_path(Systemd, "bots", ID), None);
        assert_eq!(driver_path(Cgroupfs, "", &ID[..12]), None);
        // And the process's own view names the container as well.
        let v1 = format!(
            "4:memory:/libpod_parent/libpod-{ID}\n2:cpu,cpuacct:/libpod_parent/libpod-{ID}\n"
        );
        let lines = super::super::parse::proc_cgroup(&v1);
        let [m, ..] = from_proc(&lines, false, ID).unwrap();
        assert_eq!(m.unwrap(), format!("/libpod_parent/libpod-{ID}"));
    }

    #[test]
    fn slices_expand_like_systemd() {
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        for bad in ["a", "-a.slice", "a-.slice", ".slice", "a/b.slice"] {
            assert_eq!(expand_slice(bad), None, "{bad}");
        }
    }

    #[test]
    fn proc_paths_must_name_the_container() {
        let v1 =
            format!("4:memory:/docker/{ID}\n2:cpu,cpuacct:/docker/{ID}\n8:pids:/docker/{ID}\n");
        let lines = super::super::parse::proc_cgroup(&v1);
        let [m, c, p] = from_proc(&lines, false, ID).unwrap();
        assert_eq!(m.unwrap(), format!("/docker/{ID}"));
        assert_eq!(c.unwrap(), format!("/docker/{ID}"));
        assert_eq!(p.unwrap(), format!("/docker/{ID}"));
        // A pid reused by a process outside the container: refused.
        let other = "4:memory:/user.slice\n2:cpuacct:/user.slice\n";
        assert_eq!(
            from_proc(&super::super::parse::proc_cgroup(other), false, ID),
            None
        );
        let v2 = format!("0::/system.slice/docker-{ID}.scope\n");
        let [m, ..] = from_proc(&super::super::parse::proc_cgroup(&v2), true, ID).unwrap();
        assert_eq!(m.unwrap(), format!("/system.slice/docker-{ID}.scope"));
        let sneaky = format!("0::/docker/../../{ID}\n");
        assert_eq!(
            from_proc(&super::super::parse::proc_cgroup(&sneaky), true, ID),
            None
        );
    }

    #[test]
    fn host_dirs_respect_the_mount_root() {
        let m = CgroupMount {
            mount_point: "/sys/fs/cgroup/memory".into(),
            root: "/".into(),
            v2: false,
            controllers: vec!["memory".into()],
        };
        assert_eq!(
            host_dir(&m, &format!("/docker/{ID}")).unwrap(),
            PathBuf::from(format!("/sys/fs/cgroup/memory/docker/{ID}"))
        );
        let ns = CgroupMount {
            root: "/docker".into(),
            ..m.clone()
        };
        assert_eq!(
            host_dir(&ns, &format!("/docker/{ID}")).unwrap(),
            PathBuf::from(format!("/sys/fs/cgroup/memory/{ID}"))
        );
        assert_eq!(host_dir(&ns, "/dockerx/1"), None);
        assert_eq!(host_dir(&ns, "/other/1"), None);
        assert_eq!(host_dir(&m, "/docker/../etc"), None);
    }
}
