use super::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use tempfile::TempDir;

/// A temp dir with `tree/` (the bot-writable tree) and `host/` (what must never change):
/// `host/file` (0644) and `host/dir/keep` (0640) in a 0755 directory.
struct World {
    tmp: TempDir,
}

impl World {
    fn new() -> Self {
        let tmp = TempDir::new().unwrap();
        fs::create_dir(tmp.path().join("tree")).unwrap();
        fs::create_dir_all(tmp.path().join("host/dir")).unwrap();
        fs::write(tmp.path().join("host/file"), "host file\n").unwrap();
        fs::set_permissions(
            tmp.path().join("host/file"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        fs::write(tmp.path().join("host/dir/keep"), "keep\n").unwrap();
        fs::set_permissions(
            tmp.path().join("host/dir/keep"),
            fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        fs::set_permissions(
            tmp.path().join("host/dir"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        Self { tmp }
    }

    fn tree(&self) -> PathBuf {
        self.tmp.path().join("tree")
    }

    fn host(&self, rel: &str) -> PathBuf {
        self.tmp.path().join("host").join(rel)
    }

    fn root(&self) -> Dir {
        Dir::open_root(&self.tree()).unwrap().unwrap()
    }

    /// Every entry under `host/` with its kind, mode, owner and contents.
    fn host_snapshot(&self) -> Vec<String> {
        let mut out = Vec::new();
        snapshot(&self.tmp.path().join("host"), &mut out);
        out.sort();
        out
    }
}

fn snapshot(dir: &Path, out: &mut Vec<String>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = fs::symlink_metadata(&p).unwrap();
        let body = if m.is_file() {
            fs::read_to_string(&p).unwrap()
        } else {
            String::new()
        };
        out.push(format!(
            "{} {:o} {}:{} {body:?}",
            p.display(),
            m.mode(),
            m.uid(),
            m.gid()
        ));
        if m.is_dir() {
            snapshot(&p, out);
        }
    }
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

const DIRS: NewDir = NewDir {
    mode: 0o700,
    owner: None,
    planted: Planted::Replace,
};
const FILE: NewFile = NewFile {
    mode: 0o600,
    owner: None,
    planted: Planted::Replace,
};

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

#[test]
fn write_replaces_a_symlink_to_a_host_file_and_leaves_the_host_file_alone() {
    let w = World::new();
    let before = w.host_snapshot();
    symlink(w.host("file"), w.tree().join("openclaw.json")).unwrap();
    w.root()
        .write_file(os("openclaw.json"), b"{}", &FILE)
        .unwrap();
    assert_eq!(w.host_snapshot(), before);
    let p = w.tree().join("openclaw.json");
    assert!(fs::symlink_metadata(&p).unwrap().is_file());
    assert_eq!(fs::read(&p).unwrap(), b"{}");
    assert_eq!(mode(&p), 0o600);
}

#[test]
fn write_replaces_a_dangling_symlink_without_creating_its_target() {
    let w = World::new();
    let target = w.host("dir/created-by-follow");
    symlink(&target, w.tree().join("f")).unwrap();
    w.root().write_file(os("f"), b"x", &FILE).unwrap();
    assert!(!target.exists());
    assert_eq!(fs::read(w.tree().join("f")).unwrap(), b"x");
}

#[test]
fn write_through_a_symlinked_directory_replaces_the_link_with_a_real_directory() {
    let w = World::new();
    let before = w.host_snapshot();
    symlink(w.host("dir"), w.tree().join("workspace")).unwrap();
    w.root()
        .write_path(Path::new("workspace/SOUL.md"), b"soul", &DIRS, &FILE)
        .unwrap();
    assert_eq!(w.host_snapshot(), before);
    let ws = w.tree().join("workspace");
    assert!(fs::symlink_metadata(&ws).unwrap().is_dir());
    assert_eq!(mode(&ws), 0o700);
    assert_eq!(fs::read(ws.join("SOUL.md")).unwrap(), b"soul");
}

#[test]
fn refuse_policy_leaves_a_symlinked_directory_and_reports_it() {
    let w = World::new();
    symlink(w.host("dir"), w.tree().join("sub")).unwrap();
    let refuse = NewDir {
        planted: Planted::Refuse,
        ..DIRS
    };
    let err = w.root().ensure_dir(os("sub"), &refuse).unwrap_err();
    assert!(matches!(err, FsError::Symlink { .. }), "{err}");
    assert_eq!(err.code(), "UNSAFE_PATH");
    assert!(
        fs::symlink_metadata(w.tree().join("sub"))
            .unwrap()
            .is_symlink()
    );

    fs::write(w.tree().join("file"), "x").unwrap();
    let err = w.root().ensure_dir(os("file"), &refuse).unwrap_err();
    assert!(matches!(err, FsError::NotADirectory { .. }), "{err}");
}

#[test]
fn fifos_files_and_directories_in_the_way_are_replaced() {
    let w = World::new();
    let before = w.host_snapshot();
    let root = w.root();
    rustix::fs::mkfifoat(&root.fd, "fifo", Mode::from_bits_truncate(0o644)).unwrap();
    root.write_file(os("fifo"), b"1", &FILE).unwrap();
    assert_eq!(fs::read(w.tree().join("fifo")).unwrap(), b"1");

    // A directory, holding a link out, where a file goes.
    fs::create_dir_all(w.tree().join("cfg/deeper")).unwrap();
    symlink(w.host("dir"), w.tree().join("cfg/deeper/out")).unwrap();
    root.write_file(os("cfg"), b"2", &FILE).unwrap();
    assert_eq!(fs::read(w.tree().join("cfg")).unwrap(), b"2");

    // A file and a fifo where directories go.
    fs::write(w.tree().join("d1"), "x").unwrap();
    root.write_path(Path::new("d1/f"), b"3", &DIRS, &FILE)
        .unwrap();
    assert_eq!(fs::read(w.tree().join("d1/f")).unwrap(), b"3");
    let d1 = root.open_dir(Path::new("d1")).unwrap().unwrap();
    rustix::fs::mkfifoat(&d1.fd, "d2", Mode::from_bits_truncate(0o644)).unwrap();
    root.write_path(Path::new("d1/d2/f"), b"4", &DIRS, &FILE)
        .unwrap();
    assert_eq!(fs::read(w.tree().join("d1/d2/f")).unwrap(), b"4");
    assert_eq!(w.host_snapshot(), before);
}

#[test]
fn a_directory_where_a_file_goes_is_refused_under_the_refuse_policy() {
    let w = World::new();
    fs::create_dir_all(w.tree().join("TOKEN/inner")).unwrap();
    let refuse = NewFile {
        planted: Planted::Refuse,
        ..FILE
    };
    let err = w.root().write_file(os("TOKEN"), b"v", &refuse).unwrap_err();
    assert!(err.to_string().contains("rename"), "{err}");
    assert!(w.tree().join("TOKEN/inner").is_dir());
    // No temp file is left behind.
    let names: Vec<_> = w
        .root()
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, [OsString::from("TOKEN")]);
}

#[test]
fn modes_and_owners_are_set_on_descriptors_not_narrowed_by_the_umask() {
    let w = World::new();
    let me = fs::metadata(w.tree()).unwrap();
    let owner = Some((me.uid(), me.gid()));
    let dirs = NewDir {
        mode: 0o750,
        owner,
        ..DIRS
    };
    let file = NewFile {
        mode: 0o640,
        owner,
        ..FILE
    };
    w.root()
        .write_path(Path::new("a/b/c.txt"), b"c", &dirs, &file)
        .unwrap();
    assert_eq!(mode(&w.tree().join("a")), 0o750);
    assert_eq!(mode(&w.tree().join("a/b")), 0o750);
    assert_eq!(mode(&w.tree().join("a/b/c.txt")), 0o640);
    let m = fs::metadata(w.tree().join("a/b/c.txt")).unwrap();
    assert_eq!((m.uid(), m.gid()), (me.uid(), me.gid()));

    // An existing directory keeps its mode (it is the bot's); the file is rewritten.
    fs::set_permissions(w.tree().join("a"), fs::Permissions::from_mode(0o755)).unwrap();
    w.root()
        .write_path(Path::new("a/b/c.txt"), b"d", &dirs, &file)
        .unwrap();
    assert_eq!(mode(&w.tree().join("a")), 0o755);
    assert_eq!(fs::read(w.tree().join("a/b/c.txt")).unwrap(), b"d");
}

#[test]
fn a_symlinked_root_is_refused() {
    let w = World::new();
    let link = w.tmp.path().join("root-link");
    symlink(w.host("dir"), &link).unwrap();
    let err = Dir::open_root(&link).unwrap_err();
    assert!(matches!(err, FsError::Symlink { .. }), "{err}");
    let err = Dir::create_root(&link, 0o700).unwrap_err();
    assert!(matches!(err, FsError::Symlink { .. }), "{err}");
    assert_eq!(mode(&w.host("dir")), 0o755);

    let err = Dir::open_root(&w.host("file")).unwrap_err();
    assert!(matches!(err, FsError::NotADirectory { .. }), "{err}");
    assert!(
        Dir::open_root(&w.tmp.path().join("missing"))
            .unwrap()
            .is_none()
    );

    let made = Dir::create_root(&w.tmp.path().join("new/root"), 0o700).unwrap();
    assert_eq!(mode(made.path()), 0o700);
}

#[test]
fn both_resolvers_refuse_links_on_the_way() {
    let w = World::new();
    fs::create_dir_all(w.tree().join("a/b")).unwrap();
    fs::write(w.tree().join("a/b/f"), "in").unwrap();
    symlink(w.host("dir"), w.tree().join("a/out")).unwrap();
    symlink("b", w.tree().join("a/inside")).unwrap();
    let root = w.root();
    for openat2 in [true, false] {
        let open =
            |rel: &str, flags| resolve::open_with(root.fd.as_fd(), Path::new(rel), flags, openat2);
        assert!(open("a/b/f", OFlags::RDONLY).is_ok());
        assert!(open("a/b", DIR_FLAGS).is_ok());
        // A link to the host, and even a link that stays inside, is never crossed.
        for rel in ["a/out/keep", "a/inside/f", "a/out", "a/inside"] {
            let e = open(rel, OFlags::RDONLY).unwrap_err();
            assert!(
                matches!(e, Errno::LOOP | Errno::NOTDIR),
                "{rel} ({openat2}): {e}"
            );
            let e = open(rel, DIR_FLAGS).unwrap_err();
            assert!(
                matches!(e, Errno::LOOP | Errno::NOTDIR),
                "{rel} ({openat2}): {e}"
            );
        }
        assert_eq!(open("a/b/f/x", OFlags::RDONLY).unwrap_err(), Errno::NOTDIR);
        assert_eq!(open("a/missing", OFlags::RDONLY).unwrap_err(), Errno::NOENT);
    }
    let err = root.open_dir(Path::new("a/out")).unwrap_err();
    assert!(matches!(err, FsError::Symlink { .. }), "{err}");
    assert!(err.to_string().contains("a/out"), "{err}");
    let err = root.read_file(Path::new("a/out/keep")).unwrap_err();
    assert!(matches!(err, FsError::Symlink { .. }), "{err}");
}

#[test]
fn paths_that_could_leave_the_root_are_invalid() {
    let w = World::new();
    let root = w.root();
    for bad in ["../host/file", "/etc/passwd", "a/../../x", "./a", ""] {
        let err = root
            .write_path(Path::new(bad), b"x", &DIRS, &FILE)
            .unwrap_err();
        assert!(matches!(err, FsError::InvalidPath { .. }), "{bad}: {err}");
    }
    for bad in ["a/b", "..", "."] {
        let err = root.write_file(os(bad), b"x", &FILE).unwrap_err();
        assert!(matches!(err, FsError::InvalidPath { .. }), "{bad}: {err}");
        assert!(root.remove_tree(os(bad)).is_err(), "{bad}");
    }
}

#[test]
fn read_file_refuses_links_fifos_and_directories() {
    let w = World::new();
    let root = w.root();
    root.write_file(os("ok"), b"v", &FILE).unwrap();
    assert_eq!(root.read_file(Path::new("ok")).unwrap().unwrap(), b"v");
    assert!(root.read_file(Path::new("missing")).unwrap().is_none());
    symlink(w.host("file"), w.tree().join("link")).unwrap();
    let err = root.read_file(Path::new("link")).unwrap_err();
    assert!(matches!(err, FsError::Symlink { .. }), "{err}");
    rustix::fs::mkfifoat(&root.fd, "fifo", Mode::from_bits_truncate(0o644)).unwrap();
    let err = root.read_file(Path::new("fifo")).unwrap_err();
    assert!(matches!(err, FsError::NotAFile { .. }), "{err}");
    fs::create_dir(w.tree().join("dir")).unwrap();
    let err = root.read_file(Path::new("dir")).unwrap_err();
    assert!(matches!(err, FsError::NotAFile { .. }), "{err}");
}

#[test]
fn entries_report_kinds_without_following() {
    let w = World::new();
    let root = w.root();
    fs::write(w.tree().join("f"), "").unwrap();
    fs::create_dir(w.tree().join("d")).unwrap();
    symlink(w.host("dir"), w.tree().join("l")).unwrap();
    rustix::fs::mkfifoat(&root.fd, "p", Mode::from_bits_truncate(0o644)).unwrap();
    let mut got: Vec<(String, Kind)> = root
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| (e.name.into_string().unwrap(), e.kind))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            ("d".into(), Kind::Dir),
            ("f".into(), Kind::File),
            ("l".into(), Kind::Symlink),
            ("p".into(), Kind::Other)
        ]
    );
    assert_eq!(root.kind_of(os("l")).unwrap(), Some(Kind::Symlink));
    assert_eq!(root.kind_of(os("none")).unwrap(), None);
}

#[test]
fn remove_tree_never_follows_links_and_removes_deep_trees() {
    let w = World::new();
    let before = w.host_snapshot();
    // Deeper than the descriptors held at once, with links out at several depths.
    let mut p = w.tree().join("ws");
    for depth in 0..(3 * remove::MAX_HELD_DEPTH + 5) {
        p.push(format!("d{depth}"));
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("file"), "x").unwrap();
        if depth % 7 == 0 {
            symlink(w.host("dir"), p.join("out-dir")).unwrap();
            symlink(w.host("file"), p.join("out-file")).unwrap();
        }
    }
    // Many siblings at one level too.
    for i in 0..200 {
        fs::create_dir(w.tree().join(format!("ws/sib{i}"))).unwrap();
    }
    assert!(w.root().remove_tree(os("ws")).unwrap());
    assert!(!w.tree().join("ws").exists());
    assert_eq!(w.host_snapshot(), before);
    assert!(!w.root().remove_tree(os("ws")).unwrap(), "already gone");
}

#[test]
fn remove_tree_of_a_link_removes_only_the_link() {
    let w = World::new();
    let before = w.host_snapshot();
    symlink(w.host("dir"), w.tree().join("ws")).unwrap();
    assert!(w.root().remove_tree(os("ws")).unwrap());
    assert!(fs::symlink_metadata(w.tree().join("ws")).is_err());
    assert_eq!(w.host_snapshot(), before);
    fs::write(w.tree().join("plain"), "x").unwrap();
    assert!(w.root().remove_tree(os("plain")).unwrap());
    assert!(!w.tree().join("plain").exists());
}

#[test]
fn remove_file_removes_a_link_not_its_target_and_refuses_directories() {
    let w = World::new();
    let before = w.host_snapshot();
    symlink(w.host("file"), w.tree().join("l")).unwrap();
    assert!(w.root().remove_file(os("l")).unwrap());
    assert!(!w.root().remove_file(os("l")).unwrap());
    assert_eq!(w.host_snapshot(), before);
    fs::create_dir(w.tree().join("d")).unwrap();
    let err = w.root().remove_file(os("d")).unwrap_err();
    assert!(matches!(err, FsError::NotAFile { .. }), "{err}");
}
