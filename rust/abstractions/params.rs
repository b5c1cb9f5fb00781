// SPDX-License-Identifier: GPL-2.0

//! The module parameters of iov_extract.ko, declared in C (`rust/params.c`) because 6.12's
//! `module!` macro has none.

use super::shim;

/// The parameters as loaded.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Number of disks.
    pub disks: u32,
    /// Size of each disk in MiB.
    pub size_mb: u32,
    /// Logical block size.
    pub lbs: u32,
    /// Hardware queues per disk.
    pub hw_queues: u32,
    /// Requests per hardware queue.
    pub queue_depth: u32,
    /// Delayed completion, in microseconds (0: at once).
    pub delay_us: u32,
    // Queue limits (forced splits) and the delayed disks.
    /// Largest request in 512-byte sectors (0: the driver's default).
    pub max_sectors: u32,
    /// Most data segments per request (0: the driver's default).
    pub max_segments: u32,
    /// Largest data segment in bytes (0: the block layer's default).
    pub max_segment_size: u32,
    /// Bit N set: disk N has the completion delay of `delay_us`.
    pub delay_mask: u32,
    /// Bit N set: disk N is bio-based.
    pub bio_mask: u32,
    // End of the queue limits and the delayed disks.
}

/// Reads the parameters.
pub fn get() -> Params {
    // SAFETY: The getters only read `unsigned int`s that the module loader set before init.
    unsafe {
        Params {
            disks: shim::iovx_param_disks(),
            size_mb: shim::iovx_param_size_mb(),
            lbs: shim::iovx_param_lbs(),
            hw_queues: shim::iovx_param_hw_queues(),
            queue_depth: shim::iovx_param_queue_depth(),
            delay_us: shim::iovx_param_delay_us(),
            // Queue limits (forced splits) and the delayed disks.
            max_sectors: shim::iovx_param_max_sectors(),
            max_segments: shim::iovx_param_max_segments(),
            max_segment_size: shim::iovx_param_max_segment_size(),
            delay_mask: shim::iovx_param_delay_mask(),
            bio_mask: shim::iovx_param_bio_mask(),
            // End of the queue limits and the delayed disks.
        }
    }
}

// Extraction mode: begin
/// Whether `extract_legacy` is set: user memory of direct I/O is then taken with page
/// references (`FOLL_GET`) rather than pins. Writable at run time
/// (`/sys/module/iov_extract/parameters/extract_legacy`); read once per I/O.
#[inline]
pub fn extract_legacy() -> bool {
    // SAFETY: A `bool` parameter of this module, live while it is loaded, read once as C's
    // `READ_ONCE()` does; writes to it through sysfs are single stores (of 0 or 1) under the
    // parameter lock.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!(shim::iovx_extract_legacy)) }
}
// Extraction mode: end

// Attached block devices: begin
/// The comma-separated block device paths of `dio_attach`, if it was given (read-only after
/// load).
pub fn dio_attach() -> Option<&'static kernel::str::CStr> {
    // SAFETY: The getter returns the parameter's string, set by the module loader before init
    // and never changed after (mode 0: not in sysfs), or null.
    let p = unsafe { shim::iovx_param_dio_attach() };
    if p.is_null() {
        return None;
    }
    // SAFETY: A NUL-terminated string that lives as long as the module (freed at unload, after
    // the module's code has stopped running).
    Some(unsafe { kernel::str::CStr::from_char_ptr(p) })
}
// Attached block devices: end
