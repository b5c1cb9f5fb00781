// SPDX-License-Identifier: GPL-2.0

//! iov-extract: page extraction from `iov_iter`s (pin, ref or just list) in safe Rust, the
//! `iovx` RAM disk, and the direct-I/O devices built on them.
//!
//! At load the module creates `disks` RAM disks `/dev/iovxN` and their direct-I/O devices
//! `/dev/iovx_dioN`, the gup_test-compatible `/dev/iovx_gup`, exposes its page counters in `/sys/kernel/debug/iov_extract/`, and shows
//! the abstractions at work on kernel memory in the kernel log.

// Public so that its API is checked as an API (unreachable_pub, missing docs).
pub mod abstractions;
mod demo;
mod dio;
mod gup_device;
mod ramdisk;

use abstractions::{
    blk::{Config, Disk, Limits},
    counters::COUNTERS,
    debugfs::Dir,
    miscdev::{MiscDevice, MiscIoctl, MiscUring},
    params,
};
use kernel::{c_str, fmt, prelude::*, str::CString, sync::Arc};

module! {
    type: IovExtract,
    name: "iov_extract",
    author: "The iov-extract developers",
    description: "Page extraction from iov_iters (pin, ref or just list) in Rust",
    license: "GPL",
}

struct Unit {
    // Dropped first: no new I/O once the devices are gone.
    _ng: MiscUring<ramdisk::ng::NgDev>,
    _dio: MiscDevice<dio::DioDev<Disk<ramdisk::RamDisk>>>,
    _disk: Arc<Disk<ramdisk::RamDisk>>,
}

struct IovExtract {
    // Block devices attached to direct-I/O devices: detached first.
    _attached: MiscIoctl<dio::Attachments>,
    _gup: MiscIoctl<gup_device::GupDev>,
    _units: KVec<Unit>,
    _debugfs: Dir,
}

impl kernel::Module for IovExtract {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let p = params::get();
        pr_info!(
            "loaded: {} disk(s) of {} MiB, {}-byte blocks, {} queue(s) of {}, delay {} us\n",
            p.disks,
            p.size_mb,
            p.lbs,
            p.hw_queues,
            p.queue_depth,
            p.delay_us
        );
        if p.disks == 0 || p.disks > 16 || p.size_mb == 0 || p.size_mb > 1 << 20 {
            return Err(EINVAL);
        }
        // Block devices attached at load (`dio_attach`), opened before anything else is made: a
        // path that cannot be attached fails the load with nothing else to undo. (A RAM disk made
        // before would leave the partition scan's deferred close of its block device to run
        // after the module's memory is freed.) Their direct-I/O devices are registered last.
        let attachments = dio::Attachments::new()?;
        let unregistered = match params::dio_attach() {
            Some(paths) => Some(attachments.attach_all(paths.as_bytes())?),
            None => None,
        };
        let debugfs = counters_dir();
        demo::run()?;
        let capacity = u64::from(p.size_mb) << 20;
        let limits = Limits {
            max_sectors: p.max_sectors,
            max_segments: p.max_segments,
            max_segment_size: p.max_segment_size,
        };
        if limits != Limits::default() {
            pr_info!("queue limits lowered: {:?}\n", limits);
        }
        let mut units = KVec::with_capacity(p.disks as usize, GFP_KERNEL)?;
        for n in 0..p.disks {
            // Disks beyond bit 31 of the masks (there are at most 16) are neither.
            let bit = |mask: u32| mask.checked_shr(n).unwrap_or(0) & 1 != 0;
            let bio_based = bit(p.bio_mask);
            let config = Config {
                capacity_sectors: capacity >> 9,
                logical_block_size: p.lbs,
                hw_queues: p.hw_queues,
                queue_depth: p.queue_depth,
                // A bio-based disk has no requests to delay.
                delay_us: if bit(p.delay_mask) && !bio_based {
                    p.delay_us.into()
                } else {
                    0
                },
                bio_based,
            };
            let name = CString::try_from_fmt(fmt!("iovx{n}"))?;
            let disk = Arc::new(
                Disk::with_limits(&name, config, limits, ramdisk::RamDisk::new(capacity)?)?,
                GFP_KERNEL,
            )?;
            let dio_name = CString::try_from_fmt(fmt!("iovx_dio{n}"))?;
            let dio = MiscDevice::register(&dio_name, dio::DioDev::new(disk.clone()))?;
            let ng_name = CString::try_from_fmt(fmt!("iovx_ng{n}"))?;
            let ng = MiscUring::register(&ng_name, ramdisk::ng::NgDev::new(disk.clone()))?;
            pr_info!(
                "/dev/{}, /dev/{} and /dev/{} ready\n",
                &*name,
                &*dio_name,
                &*ng_name
            );
            units.push(
                Unit {
                    _ng: ng,
                    _dio: dio,
                    _disk: disk,
                },
                GFP_KERNEL,
            )?;
        }
        let gup = MiscIoctl::register(c_str!("iovx_gup"), gup_device::GupDev::new())?;
        pr_info!("/dev/iovx_gup ready\n");
        let attached = MiscIoctl::register(dio::CONTROL, attachments)?;
        pr_info!("/dev/{} ready\n", dio::CONTROL);
        if let Some(u) = unregistered {
            u.register()?;
        }
        Ok(IovExtract {
            _attached: attached,
            _gup: gup,
            _units: units,
            _debugfs: debugfs,
        })
    }
}

impl Drop for IovExtract {
    fn drop(&mut self) {
        // Passthrough requests run without waiting are completed by a worker of the module
        // (first: their release may hand pages to the re-dirtying worker).
        abstractions::passthrough::drain_async();
        // Every file of the module is closed, so every bio has completed; the last of them may
        // have handed its pages to the re-dirtying worker, whose code is the module's.
        abstractions::bio::flush_redirty();
        let c = COUNTERS.snapshot();
        pr_info!(
            "unloaded; pages pinned {} unpinned {}, listed {} unlisted {} ({})\n",
            c.pinned,
            c.unpinned,
            c.listed,
            c.unlisted,
            if c.balanced() {
                "balanced"
            } else {
                "NOT balanced"
            }
        );
    }
}

/// `/sys/kernel/debug/iov_extract/`: the page counters of the module.
fn counters_dir() -> Dir {
    let dir = Dir::new(c_str!("iov_extract"));
    for (name, counter) in COUNTERS.named() {
        dir.counter(name, counter);
    }
    dir.counter(c_str!("ramdisk_pages"), &ramdisk::STORAGE_PAGES);
    dir.counter(c_str!("ramdisk_busy"), &ramdisk::BUSY);
    dir.counter(c_str!("ramdisk_split_pieces"), &ramdisk::SPLIT_PIECES);
    dir.knob(c_str!("ramdisk_fail_allocs"), &ramdisk::FAIL_ALLOCS);
    dir
}
