//! How botmaker bounds glibc's malloc, in the process itself so that every deployment gets it
//! (a container, a shell, a service manager), not only the systemd unit that sets the
//! environment. It owns the allocator's settings; it knows nothing of bots or Docker.
//!
//! Why: at 10,000 simulated bots the live heap is a fraction of the resident memory (heaptrack
//! at 3,000 bots: 27 MB peak heap, 70 MB RSS). The rest is glibc's: with its default of up to
//! 8 arenas per core, each of the runtime's threads that allocates while another holds an
//! arena's lock gets one of its own, and freed memory stays in those arenas. Two arenas took the
//! server from 191-204 MB to 118-122 MB at 10,000 bots with no latency cost measured
//! (docs/benchmarks.md, "Where the memory goes at 10,000 bots", issue #16).
//!
//! What two arenas still hold beyond the live data is freed memory glibc keeps: transients such
//! as the resync's list of every container and every row (every `--resync-interval`) or a
//! burst of list answers leave free chunks between live ones, which glibc returns to the kernel
//! only from the top of the heap. [`start_trimmer`] calls `malloc_trim(0)`, which also releases
//! whole free pages inside the heap, every [`TRIM_INTERVAL`]: measured by hand at 10,000
//! simulated bots (2026-12-01), 143.6 MB idle after the creates with two arenas, 112.5 MB after
//! one trim (with glibc's defaults: 315-328 MB, 218 MB after a trim); with the trimmer, 106-107 MB
//! after the bench's lists, where two arenas alone left 118-122 MB.
//!
//! An operator's own `MALLOC_ARENA_MAX` (or a `glibc.malloc.arena_max` tunable) wins: glibc has
//! already read it, and botmaker leaves it alone.

use std::ffi::OsStr;
use std::time::Duration;

use botmaker_malloc::Param;

/// How often [`start_trimmer`] gives free memory back: often enough that a resync's or a list
/// burst's transient does not stay resident for long, rare enough to cost nothing measurable
/// (a trim walks the free chunks of two arenas: 0.5-5.5 ms at 10,000 bots, measured).
pub const TRIM_INTERVAL: Duration = Duration::from_secs(2);

/// Arenas botmaker allows when the operator chose none: one for the main thread, one shared by
/// every worker. More arenas only help when many threads allocate at once for long, which a
/// server answering from an in-memory cache does not.
pub const DEFAULT_ARENA_MAX: i32 = 2;

/// What [`bound_arenas`] did, for the log line written once logging is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArenaBound {
    /// The bound was set to this many arenas.
    Set(i32),
    /// The operator set `MALLOC_ARENA_MAX` or the glibc tunable; it was left as is.
    OperatorChose,
    /// Not glibc (musl, macOS), or glibc refused the setting: the allocator's defaults stay.
    Unavailable,
}

/// Bounds glibc's arenas to [`DEFAULT_ARENA_MAX`] unless the operator chose a bound.
///
/// Call it first thing in `main`, before any thread starts: a thread that allocated already has
/// its arena, and a bound set later only stops new ones.
pub fn bound_arenas() -> ArenaBound {
    let chose = operator_chose(
        std::env::var_os("MALLOC_ARENA_MAX").as_deref(),
        std::env::var_os("GLIBC_TUNABLES").as_deref(),
    );
    if chose {
        return ArenaBound::OperatorChose;
    }
    if botmaker_malloc::set(Param::ArenaMax, DEFAULT_ARENA_MAX) {
        ArenaBound::Set(DEFAULT_ARENA_MAX)
    } else {
        ArenaBound::Unavailable
    }
}

/// Whether the environment already bounds glibc's arenas: `MALLOC_ARENA_MAX` set (to anything:
/// glibc has read it), or `GLIBC_TUNABLES` naming `glibc.malloc.arena_max`.
fn operator_chose(arena_max: Option<&OsStr>, tunables: Option<&OsStr>) -> bool {
    arena_max.is_some()
        || tunables.is_some_and(|t| {
            t.to_string_lossy()
                .split(':')
                .any(|kv| kv.split('=').next() == Some("glibc.malloc.arena_max"))
        })
}

/// Writes what [`bound_arenas`] did to the log (at debug: it is the same on every start).
pub fn log_arena_bound(bound: ArenaBound) {
    match bound {
        ArenaBound::Set(n) => tracing::debug!(arenas = n, "glibc malloc arenas bounded"),
        ArenaBound::OperatorChose => {
            tracing::debug!("glibc malloc arenas as set in MALLOC_ARENA_MAX or GLIBC_TUNABLES")
        }
        ArenaBound::Unavailable => {
            tracing::debug!("malloc arenas left at the allocator's defaults")
        }
    }
}

/// Starts a thread that calls `malloc_trim(0)` every [`TRIM_INTERVAL`] for as long as the
/// process lives, on glibc only (elsewhere it starts nothing and returns `false`).
///
/// An OS thread of its own, not a runtime task: the trim blocks for as long as it walks the
/// heap, and it holds nothing that a shutdown would need to release, so it is not joined.
pub fn start_trimmer() -> bool {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return false;
    }
    std::thread::Builder::new()
        .name("malloc-trim".into())
        .spawn(|| {
            loop {
                std::thread::sleep(TRIM_INTERVAL);
                let started = std::time::Instant::now();
                let released = botmaker_malloc::trim();
                tracing::trace!(released, took = ?started.elapsed(), "malloc_trim");
            }
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operators_arena_bound_is_left_alone() {
        let os = |s: &'static str| Some(OsStr::new(s));
        assert!(operator_chose(os("8"), None));
        assert!(
            operator_chose(os(""), None),
            "set at all: glibc has read it"
        );
        assert!(operator_chose(
            None,
            os("glibc.malloc.trim_threshold=1:glibc.malloc.arena_max=4")
        ));
        assert!(!operator_chose(None, None));
        assert!(!operator_chose(
            None,
            os("glibc.malloc.arena_test=4:glibc.malloc.tcache_count=0")
        ));
    }
}
