//! Who a bot's container runs as, in numbers: the owner its secret files are handed to.
//!
//! A bot's secrets are bind-mounted read-only at `/run/secrets`, files 0600 in a 0700
//! directory, so only their owner can read them. That owner must be the uid the container
//! runs as: the `user` field of the bot when set, else the template's user, else the image's
//! `USER`. Numbers are taken as they are; a name (`USER node`) is looked up in the image's
//! `/etc/passwd`. Pure parsing here; the service does the Docker calls.

/// What a `USER` line (or the `user` field) says, before any look-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunAs {
    /// Root (empty, `root`, `0`): botmaker's own ownership applies.
    Root,
    /// Numeric ids; the gid is the uid's own number when not given.
    Ids(u32, u32),
    /// A user name, to resolve in the image's `/etc/passwd` (the group part, if any, is
    /// numeric or ignored: the file mode only lets the owner read).
    Named(String),
}

impl RunAs {
    /// The owner for the secrets store: `None` for root.
    pub fn owner(&self) -> Option<(u32, u32)> {
        match self {
            Self::Ids(0, _) | Self::Root | Self::Named(_) => None,
            Self::Ids(uid, gid) => Some((*uid, *gid)),
        }
    }
}

/// Largest id accepted: ids above `i32::MAX` are refused by most tools and kernels' overflow
/// uid handling makes them meaningless.
const MAX_ID: u32 = i32::MAX as u32;

fn id(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 10 {
        return None;
    }
    s.parse::<u32>().ok().filter(|n| *n <= MAX_ID)
}

/// `uid` or `uid:gid`, numeric, as `(uid, gid)` (gid = uid when absent); `None` otherwise.
pub fn parse_ids(s: &str) -> Option<(u32, u32)> {
    match s.split_once(':') {
        Some((u, g)) => Some((id(u)?, id(g)?)),
        None => id(s).map(|u| (u, u)),
    }
}

/// Reads an image's `Config.User` (or the `user` field): `""`, `root`, `0`, `1000`,
/// `1000:1000`, `node`, `node:node`...
pub fn parse_user(s: &str) -> RunAs {
    let s = s.trim();
    let user = s.split_once(':').map_or(s, |(u, _)| u);
    if user.is_empty() || user == "root" {
        return RunAs::Root;
    }
    if let Some(uid) = id(user) {
        let gid = s.split_once(':').and_then(|(_, g)| id(g)).unwrap_or(uid);
        return RunAs::Ids(uid, gid);
    }
    RunAs::Named(user.to_string())
}

/// `name`'s uid and primary gid in the text of an `/etc/passwd`, if listed.
pub fn lookup_passwd(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != name {
            return None;
        }
        let _password = f.next()?;
        Some((id(f.next()?)?, id(f.next()?)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_shape_of_user() {
        assert_eq!(parse_user(""), RunAs::Root);
        assert_eq!(parse_user("root"), RunAs::Root);
        assert_eq!(parse_user("0"), RunAs::Ids(0, 0));
        assert_eq!(parse_user("0").owner(), None);
        assert_eq!(parse_user("1000"), RunAs::Ids(1000, 1000));
        assert_eq!(parse_user("1000:50"), RunAs::Ids(1000, 50));
        assert_eq!(parse_user("node:node"), RunAs::Named("node".into()));
        assert_eq!(parse_user("1000").owner(), Some((1000, 1000)));
    }

    #[test]
    fn the_user_field_takes_numbers_only() {
        assert_eq!(parse_ids("1000"), Some((1000, 1000)));
        assert_eq!(parse_ids("1000:2000"), Some((1000, 2000)));
        for bad in [
            "",
            "node",
            "1000:",
            ":1",
            "-1",
            "1 000",
            "4294967295",
            "+5",
            "1:2:3",
        ] {
            assert_eq!(parse_ids(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_resolve_from_passwd() {
        let passwd =
            "root:x:0:0:root:/root:/bin/sh\n# comment\nnode:x:1000:1001::/home/node:/bin/sh\n";
        assert_eq!(lookup_passwd(passwd, "node"), Some((1000, 1001)));
        assert_eq!(lookup_passwd(passwd, "nobody"), None);
        assert_eq!(lookup_passwd("bad:x:y:z", "bad"), None);
    }
}
