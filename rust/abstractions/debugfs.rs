// SPDX-License-Identifier: GPL-2.0

//! Counters and knobs in debugfs.
//!
//! C header: [`include/linux/debugfs.h`](srctree/include/linux/debugfs.h)

use core::sync::atomic::{AtomicI32, AtomicU64};
use kernel::{bindings, prelude::*};

use super::shim;

/// A debugfs directory at the top of debugfs, removed with everything in it on drop.
///
/// # Invariants
///
/// `raw` is what `debugfs_create_dir()` returned: a directory or an error pointer, both of which
/// the other debugfs functions accept (an error pointer makes them do nothing).
pub struct Dir {
    raw: *mut bindings::dentry,
}

// SAFETY: The pointer is only passed to debugfs functions, which may be called from any thread.
unsafe impl Send for Dir {}
// SAFETY: `Dir` has no methods that mutate through a shared reference other than creating
// files, which debugfs serialises itself.
unsafe impl Sync for Dir {}

impl Dir {
    /// Creates `/sys/kernel/debug/<name>`. Debugfs being absent or failing is not an error: the
    /// files are a convenience and the module works without them.
    pub fn new(name: &CStr) -> Self {
        // SAFETY: `name` is NUL-terminated; debugfs copies it.
        let raw = unsafe { shim::iovx_debugfs_create_dir(name.as_char_ptr()) };
        // INVARIANT: Whatever `debugfs_create_dir()` returns is kept as is.
        Self { raw }
    }

    /// Adds a read-only file showing `value` in decimal.
    pub fn counter(&self, name: &CStr, value: &'static AtomicU64) {
        // SAFETY: `self.raw` is a directory or an error pointer (type invariant); `value` lives
        // forever, so debugfs may read it for as long as the file exists. Debugfs reads it with a
        // plain aligned 64-bit load, which is atomic on the architectures the kernel supports.
        unsafe { shim::iovx_debugfs_create_u64(name.as_char_ptr(), self.raw, value.as_ptr()) };
    }

    /// Adds a file, read and written by root, showing and setting `value` in decimal: a knob
    /// for tests.
    pub fn knob(&self, name: &CStr, value: &'static AtomicI32) {
        // SAFETY: `self.raw` is a directory or an error pointer (type invariant); `value` lives
        // forever, so debugfs may use it for as long as the file exists. `AtomicI32` has the
        // layout of `atomic_t` (one `int`), and debugfs accesses it with `atomic_read()` and
        // `atomic_set()` only, which are atomic accesses as Rust's are.
        unsafe {
            shim::iovx_debugfs_create_atomic(name.as_char_ptr(), self.raw, value.as_ptr().cast())
        };
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: `self.raw` is a directory or an error pointer (type invariant); removal waits
        // for open files to be closed.
        unsafe { shim::iovx_debugfs_remove(self.raw) };
    }
}
