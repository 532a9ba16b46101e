//! The container botmaker itself runs in, if any, and where a path inside it lives on the
//! daemon's host. Bind-mount sources are resolved by the daemon on *its* host, so a path that
//! botmaker hands Docker as a mount source (the data directory's `secrets/` and
//! `workspaces/`) must name the same directory on both sides. This module reads only: it
//! inspects one container (ours, never a bot's) and touches nothing.

use std::path::{Path, PathBuf};

use super::{DockerService, Op};
use crate::docker::ContainerError;

/// One mount of a container as the daemon reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPoint {
    /// `bind`, `volume`, `tmpfs`, ...
    pub kind: String,
    /// Where it comes from on the daemon's host (a volume's storage directory for a volume;
    /// empty for tmpfs).
    pub source: PathBuf,
    /// Where it appears inside the container.
    pub destination: PathBuf,
}

/// Where a path inside this container is on the daemon's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPath {
    /// A bind mount (or a volume) puts it at the same path on the host: binds of it work.
    Same,
    /// It is on the host, at another path (`host`), or nowhere the daemon can bind from (a
    /// tmpfs: `host` is `None`).
    Elsewhere {
        /// The host path, if there is one.
        host: Option<PathBuf>,
        /// The mount it comes through.
        mount: MountPoint,
    },
    /// No mount covers it: it lives in the container's own writable layer.
    NotMounted,
}

/// The id of the Docker container this process runs in, from `/proc/self/mountinfo`: Docker
/// bind-mounts `/etc/hostname` from `<data-root>/containers/<id>/hostname`, Podman from
/// `<run-root>/<driver>-containers/<id>/userdata/hostname`. Unlike the hostname (which
/// `--hostname` and host networking change), this names the container whatever its settings.
/// `None` outside a container.
pub fn own_container_id() -> Option<String> {
    container_id_in_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").ok()?)
}

/// The container id in the `/etc/hostname` line of a mountinfo text (see `proc_pid_mountinfo(5)`:
/// field 4 is the mount's root within its file system, field 5 the mount point).
fn container_id_in_mountinfo(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let mut fields = line.split(' ');
        let root = fields.nth(3)?;
        if fields.next()? != "/etc/hostname" {
            return None;
        }
        let mut parts = root.rsplit('/');
        if parts.next()? != "hostname" {
            return None;
        }
        let (id, dir) = match parts.next()? {
            // Podman: `.../overlay-containers/<id>/userdata/hostname`.
            "userdata" => {
                let (id, dir) = (parts.next()?, parts.next()?);
                (id, dir.ends_with("-containers").then_some(dir)?)
            }
            id => (id, parts.next().filter(|d| *d == "containers")?),
        };
        let is_id = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
        (!dir.is_empty() && is_id).then(|| id.to_string())
    })
}

/// Where `path` (absolute, inside the container with these `mounts`) is on the daemon's host:
/// the mount whose destination is the longest prefix of `path` decides.
pub fn host_path(mounts: &[MountPoint], path: &Path) -> HostPath {
    let Some(mount) = mounts
        .iter()
        .filter(|m| path.starts_with(&m.destination))
        .max_by_key(|m| m.destination.components().count())
    else {
        return HostPath::NotMounted;
    };
    let rest = path
        .strip_prefix(&mount.destination)
        .expect("filtered on starts_with");
    let host = (!mount.source.as_os_str().is_empty() && mount.kind != "tmpfs").then(|| {
        if rest.as_os_str().is_empty() {
            mount.source.clone()
        } else {
            mount.source.join(rest)
        }
    });
    if host.as_deref() == Some(path) {
        HostPath::Same
    } else {
        HostPath::Elsewhere {
            host,
            mount: mount.clone(),
        }
    }
}

impl DockerService {
    /// The mounts of the container `id`. Meant for botmaker's own container (see
    /// [`own_container_id`]): it reads, so it is allowed on a container this instance does not
    /// own. `NOT_FOUND` when this daemon does not know `id` (botmaker runs in a container of
    /// another daemon).
    pub async fn container_mounts(&self, id: &str) -> Result<Vec<MountPoint>, ContainerError> {
        let info = self
            .call(
                Op::Inspect,
                "",
                self.call_timeout,
                self.docker.inspect_container(
                    id,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                ),
            )
            .await?;
        Ok(info
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                Some(MountPoint {
                    kind: m.typ.unwrap_or_else(|| "bind".into()),
                    source: PathBuf::from(m.source.unwrap_or_default()),
                    destination: PathBuf::from(m.destination?),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e1c0a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";

    #[test]
    fn the_container_id_comes_from_the_etc_hostname_mount() {
        let info = format!(
            "600 500 0:45 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/x\n\
             612 600 254:0 /var/lib/docker/containers/{ID}/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda rw\n\
             613 600 254:0 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw - ext4 /dev/vda rw\n"
        );
        assert_eq!(container_id_in_mountinfo(&info).as_deref(), Some(ID));
        // A data root on its own file system shows a shorter root.
        let own_fs =
            format!("613 600 8:1 /containers/{ID}/hostname /etc/hostname rw - ext4 /dev/sdb rw\n");
        assert_eq!(container_id_in_mountinfo(&own_fs).as_deref(), Some(ID));
        // Podman 4.3 (rootful, overlay), from a container's /proc/<pid>/mountinfo.
        let podman = format!(
            "133 121 254:0 /var/run/containers/storage/overlay-containers/{ID}/userdata/hostname \
             /etc/hostname rw,relatime - ext4 /dev/vda rw\n"
        );
        assert_eq!(container_id_in_mountinfo(&podman).as_deref(), Some(ID));
        let not_podman = format!(
            "133 121 254:0 /srv/{ID}/userdata/hostname /etc/hostname rw - ext4 /dev/vda rw\n"
        );
        assert_eq!(container_id_in_mountinfo(&not_podman), None);
    }

    #[test]
    fn a_host_has_no_container_id_even_with_containers_running() {
        // On the host (or a VM running dockerd), other containers' mounts appear in the
        // mount table, but never at /etc/hostname.
        let host = format!(
            "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
             90 27 0:50 / /var/lib/docker/containers/{ID}/mounts/shm rw - tmpfs shm rw\n"
        );
        assert_eq!(container_id_in_mountinfo(&host), None);
        let not_hex =
            "613 600 254:0 /var/lib/docker/containers/zz/hostname /etc/hostname rw - ext4 x rw\n";
        assert_eq!(container_id_in_mountinfo(not_hex), None);
        assert_eq!(container_id_in_mountinfo(""), None);
    }

    fn mount(kind: &str, source: &str, destination: &str) -> MountPoint {
        MountPoint {
            kind: kind.into(),
            source: source.into(),
            destination: destination.into(),
        }
    }

    #[test]
    fn the_longest_covering_mount_decides_where_a_path_is_on_the_host() {
        let same = [
            mount("bind", "/var/run/docker.sock", "/var/run/docker.sock"),
            mount("bind", "/srv", "/srv"),
        ];
        assert_eq!(
            host_path(&same, Path::new("/srv/botmaker/data")),
            HostPath::Same
        );
        assert_eq!(host_path(&same, Path::new("/data")), HostPath::NotMounted);
        // `/srvx` is not under `/srv`: prefixes are compared by component.
        assert_eq!(host_path(&same, Path::new("/srvx")), HostPath::NotMounted);

        let moved = [
            mount("bind", "/home/me/bm", "/data"),
            mount("bind", "/data", "/x"),
        ];
        assert_eq!(
            host_path(&moved, Path::new("/data/secrets")),
            HostPath::Elsewhere {
                host: Some("/home/me/bm/secrets".into()),
                mount: moved[0].clone(),
            }
        );

        // A mount nested under the data directory wins over the one above it.
        let nested = [
            mount("bind", "/srv/data", "/srv/data"),
            mount(
                "volume",
                "/var/lib/docker/volumes/w/_data",
                "/srv/data/workspaces",
            ),
        ];
        assert_eq!(
            host_path(&nested, Path::new("/srv/data/secrets")),
            HostPath::Same
        );
        assert!(matches!(
            host_path(&nested, Path::new("/srv/data/workspaces")),
            HostPath::Elsewhere { host: Some(h), .. } if h == Path::new("/var/lib/docker/volumes/w/_data")
        ));

        let tmpfs = [mount("tmpfs", "", "/data")];
        assert!(matches!(
            host_path(&tmpfs, Path::new("/data")),
            HostPath::Elsewhere { host: None, .. }
        ));
    }
}
