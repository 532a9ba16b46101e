//! Safe wrappers over the three glibc malloc calls botmaker tunes its memory with.
//!
//! This crate exists so that the `botmaker` crate can keep `unsafe_code = "forbid"`: the only
//! unsafe code is here, three foreign calls that take plain integers and touch no Rust memory.
//! Why botmaker calls them, with the figures, is in `botmaker::malloc_tuning`.
//!
//! On targets without glibc (musl, macOS) every function does nothing and returns `false`:
//! their allocators have no such knobs, and the caller treats `false` as "not applied".

/// The `mallopt` parameters this crate sets (glibc's `M_*` constants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// `M_ARENA_MAX`: the most arenas glibc creates. Its default is 8 per core, and each thread
    /// that allocates while another holds an arena's lock may get an arena of its own, whose
    /// freed pages are rarely returned.
    ArenaMax,
    /// `M_TRIM_THRESHOLD`: free memory at the top of the main heap above this many bytes is
    /// given back to the kernel.
    TrimThreshold,
    /// `M_MMAP_THRESHOLD`: blocks of at least this many bytes get a mapping of their own, which
    /// is unmapped when they are freed. Setting it turns off glibc's dynamic adjustment of it.
    MmapThreshold,
}

/// Sets one `mallopt` parameter; `false` when glibc refused it or there is no glibc.
///
/// Call it before the process starts threads: glibc reads `M_ARENA_MAX` when a thread first
/// needs an arena, so a later call only bounds arenas not yet made.
pub fn set(param: Param, value: i32) -> bool {
    imp::set(param, value)
}

/// Returns free memory at the top of every arena's heap (and whole free pages inside them) to
/// the kernel (`malloc_trim(0)`); `true` when some memory was released.
pub fn trim() -> bool {
    imp::trim()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use super::Param;

    pub fn set(param: Param, value: i32) -> bool {
        let param = match param {
            Param::ArenaMax => libc::M_ARENA_MAX,
            Param::TrimThreshold => libc::M_TRIM_THRESHOLD,
            Param::MmapThreshold => libc::M_MMAP_THRESHOLD,
        };
        // SAFETY: mallopt takes two integers and changes the allocator's own settings under its
        // lock; it reads or writes no memory of the caller. It returns 1 on success, 0 on error.
        unsafe { libc::mallopt(param, value) == 1 }
    }

    pub fn trim() -> bool {
        // SAFETY: malloc_trim takes an integer (the padding to keep) and works on the
        // allocator's own structures under their locks; it returns 1 if memory was released.
        unsafe { libc::malloc_trim(0) == 1 }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    use super::Param;

    pub fn set(_param: Param, _value: i32) -> bool {
        false
    }

    pub fn trim() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test, not two: the settings are the process's, and tests run in parallel.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_takes_every_parameter_and_trims_a_freed_heap() {
        assert!(set(Param::ArenaMax, 8));
        assert!(set(Param::MmapThreshold, 128 * 1024));
        // A threshold free() never reaches, so only malloc_trim gives the memory back: many
        // small blocks (below the mmap threshold, so on the heap), all freed.
        assert!(set(Param::TrimThreshold, i32::MAX));
        let blocks: Vec<Vec<u8>> = (0..4096).map(|_| vec![1u8; 4000]).collect();
        drop(blocks);
        assert!(
            trim(),
            "16 MB freed and not given back: the trim releases it"
        );
    }
}
