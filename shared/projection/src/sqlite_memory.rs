//! SQLite's heap: mimalloc, without SQLite's memory statistics.
//!
//! By default SQLite allocates with the C library's `malloc` and counts every
//! allocation under one process-wide mutex (its memory statistics). With a read model
//! per service and a thread per connection, that showed in the control plane's profile
//! (docs/benchmarks.md, session 6): glibc's per-thread arenas giving pages back and
//! faulting them in again, and every connection's thread taking the same mutex. The
//! services already allocate with mimalloc; SQLite now does too.

#![allow(unsafe_code)]

use std::os::raw::{c_int, c_void};
use std::sync::Once;

use libmimalloc_sys as mi;
use libsqlite3_sys as ffi;

static CONFIGURE: Once = Once::new();

/// Sets SQLite's allocator, once, before the first connection opens (every read model
/// opens through [`crate::ReadModel::open`], which calls this first). If SQLite was
/// already initialized, it refuses and keeps its defaults: slower, nothing worse.
pub(crate) fn configure() {
    CONFIGURE.call_once(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(malloc),
            xFree: Some(free),
            xRealloc: Some(realloc),
            xSize: Some(size),
            xRoundup: Some(roundup),
            xInit: Some(init),
            xShutdown: Some(shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: SQLite copies `methods` before returning. `sqlite3_config` must not
        // run concurrently with other SQLite calls; the `Once` serializes it with every
        // read model's first connection, and nothing else in the process opens SQLite.
        let rc = unsafe {
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int)
                | ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods as *const _)
        };
        if rc != ffi::SQLITE_OK {
            tracing::debug!(
                rc,
                "SQLite was initialized already; it keeps its own allocator"
            );
        }
    });
}

// The allocator SQLite calls. mimalloc aligns to at least 8 bytes, as SQLite requires,
// and sizes are never negative in SQLite's calls.

unsafe extern "C" fn malloc(size: c_int) -> *mut c_void {
    // SAFETY: any size is valid for mi_malloc.
    unsafe { mi::mi_malloc(size.max(0) as usize) }
}

unsafe extern "C" fn free(pointer: *mut c_void) {
    // SAFETY: SQLite frees only what `malloc`/`realloc` returned.
    unsafe { mi::mi_free(pointer) }
}

unsafe extern "C" fn realloc(pointer: *mut c_void, size: c_int) -> *mut c_void {
    // SAFETY: as for `free`.
    unsafe { mi::mi_realloc(pointer, size.max(0) as usize) }
}

unsafe extern "C" fn size(pointer: *mut c_void) -> c_int {
    // SAFETY: as for `free`; SQLite's allocations stay far below 2 GiB.
    unsafe { mi::mi_usable_size(pointer) as c_int }
}

unsafe extern "C" fn roundup(size: c_int) -> c_int {
    // SAFETY: a pure function of its argument.
    unsafe { mi::mi_good_size(size.max(0) as usize) as c_int }
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn shutdown(_: *mut c_void) {}

#[cfg(test)]
mod tests {
    use super::ffi;

    #[tokio::test]
    async fn sqlite_runs_on_the_configured_allocator() {
        let dir = tempfile::tempdir().unwrap();
        let model = crate::ReadModel::open_sqlite_file(&dir.path().join("memory.db"))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x TEXT)")
            .execute(model.pool())
            .await
            .unwrap();
        // With SQLite's own accounting (its default), every allocation is counted;
        // configured, SQLite counts nothing.
        // SAFETY: reads a counter; safe at any time.
        let used = unsafe { ffi::sqlite3_memory_used() };
        assert_eq!(used, 0, "SQLite still counts its allocations itself");
    }
}
