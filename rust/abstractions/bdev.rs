// SPDX-License-Identifier: GPL-2.0

//! A block device opened by path, exclusively, for reading and writing: a [`Target`] for the
//! bios of the direct-I/O path that is valid exactly as long as the device is held.
//!
//! C headers: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)
//! (`bdev_file_open_by_path()`, `bdev_fput()`, `struct blk_holder_ops`)
//!
//! # Lifetimes
//!
//! - [`Bdev::open`] opens the device with `BLK_OPEN_READ | BLK_OPEN_WRITE | BLK_OPEN_EXCL` and a
//!   holder of its own (a heap cell of the [`Bdev`]): the claim fails with `EBUSY` while another
//!   holder has it (a mounted file system, an md/dm member, another [`Bdev`], an `O_EXCL`
//!   opener). Non-exclusive openers (`dd`, `O_DIRECT` readers and writers) are not refused.
//! - The open file holds the block device, hence its gendisk and request queue, until
//!   `bdev_fput()` in `drop`: a hot-unplugged disk (`del_gendisk()`) is marked dead but not
//!   freed while it is held, so every pointer of the [`Bdev`] and of its [`Target`]s stays valid.
//!   Bios submitted after the removal are failed by the block layer (`EIO`), not sent to the
//!   driver.
//! - A [`Target`] borrows the [`Bdev`]: a bio being built on it cannot outlive it. A submitted
//!   bio holds what it needs itself (its `blkg`, which holds the queue; a blk-mq request holds a
//!   queue usage count until its bios have ended). A submitted bio may outlive the borrow
//!   ([`Bio::submit`](super::bio::Bio::submit), asynchronous direct I/O), so the [`Bdev`] counts
//!   its bios in flight: the [`Target`] carries the counter, a bio is counted before
//!   `submit_bio()` and uncounted as the very last action of its completion, and `drop` waits for
//!   the count to reach zero before releasing the device, on any kind of device (blk-mq or
//!   bio-based, dead or alive), so that no completion of a bio of this device runs the module's
//!   code after the [`Bdev`] is gone.
//! - The holder operations' `mark_dead` (a disk being removed, or a surprise removal, which
//!   includes a media change: `disk_force_media_change()` of loop and nbd, a removable medium
//!   changed) sets the holder cell; [`Bdev::is_dead`] reads it. The mark is for good: a new
//!   medium or backing file does not clear it, the device has to be opened again. `mark_dead`
//!   runs under `bd_holder_lock`, and `bdev_fput()` ends the claim (clearing the holder
//!   operations under the same lock) before the cell is freed, so it never writes to a freed
//!   cell.

use core::ptr::NonNull;
use kernel::{bindings, error::from_err_ptr, prelude::*, types::Opaque};

use super::bio::Target;
use super::shim;
use super::task::might_sleep;

/// The limits of a block device's queue, as they were when it was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BdevLimits {
    /// Logical block size in bytes: a power of two, 512 to 4096.
    pub logical_block_size: u32,
    /// DMA alignment of memory, as a mask (`queue_dma_alignment()`: 511 for 512 bytes).
    pub dma_alignment: u32,
    /// Size in 512-byte sectors (`bdev_nr_sectors()`).
    pub sectors: u64,
    /// Largest request in 512-byte sectors (`max_hw_sectors`).
    pub max_hw_sectors: u32,
    /// Most data segments per request.
    pub max_segments: u32,
    /// Largest data segment in bytes.
    pub max_segment_size: u32,
}

/// A block device held open, exclusively, for reading and writing.
///
/// # Invariants
///
/// `file` is a block device file opened by `iovx_bdev_open()` (`bdev_file_open_by_path()` with
/// `BLK_OPEN_READ | BLK_OPEN_WRITE | BLK_OPEN_EXCL`), with `holder` as its holder, whose
/// reference this value owns until `drop`; `bdev` is its block device; `holder` is an
/// initialised `atomic_t` that stays in place (boxed) until after `bdev_fput()`; `inflight` is an
/// initialised `atomic_t` counting the bios of the device's targets in flight, in place until
/// `drop` has waited for it to be zero; `limits` were
/// read from the open device, with a logical block size that is a power of two from 512 to
/// 4096.
pub struct Bdev {
    file: NonNull<bindings::file>,
    bdev: NonNull<bindings::block_device>,
    holder: Pin<KBox<Opaque<bindings::atomic_t>>>,
    inflight: Pin<KBox<Opaque<bindings::atomic_t>>>,
    limits: BdevLimits,
}

// SAFETY: The file reference may be dropped on any thread, and the block device used from any
// thread; the holder cell is an atomic.
unsafe impl Send for Bdev {}
// SAFETY: Through `&Bdev` only the limits are read, targets made (bios may be submitted to a
// block device from several threads at once) and the holder cell read atomically.
unsafe impl Sync for Bdev {}

impl Bdev {
    /// Opens the block device at `path` exclusively for reading and writing.
    ///
    /// Errors as `bdev_file_open_by_path()`: `ENOENT` (no such path), `ENOTBLK` (not a block
    /// device), `EBUSY` (mounted, or held exclusively by another holder), `EACCES` (read-only),
    /// `ENXIO`/`ENOMEDIUM` (no disk); `EINVAL` for a logical block size other than 512 to 4096.
    ///
    /// Process context: may sleep.
    pub fn open(path: &CStr) -> Result<Self> {
        might_sleep();
        let holder = KBox::pin(Opaque::<bindings::atomic_t>::uninit(), GFP_KERNEL)?;
        let inflight = KBox::pin(Opaque::<bindings::atomic_t>::uninit(), GFP_KERNEL)?;
        // SAFETY: The cells are allocated and pinned; nothing else has them yet.
        unsafe {
            shim::iovx_atomic_init(holder.get());
            shim::iovx_atomic_init(inflight.get());
        }
        // SAFETY: `path` is NUL-terminated and lives across the call; the holder is a unique
        // pointer that stays in place until after `bdev_fput()` (in `drop`, or below).
        let file = from_err_ptr(unsafe { shim::iovx_bdev_open(path.as_char_ptr(), holder.get()) })?;
        // SAFETY: `file` was just opened (not an error pointer), so not null.
        let file = unsafe { NonNull::new_unchecked(file) };
        // SAFETY: `file` is an open block device file.
        let bdev = unsafe { shim::iovx_bdev_of(file.as_ptr()) };
        let mut limits = BdevLimits {
            logical_block_size: 0,
            dma_alignment: 0,
            sectors: 0,
            max_hw_sectors: 0,
            max_segments: 0,
            max_segment_size: 0,
        };
        // SAFETY: `bdev` is held open by `file`; the outputs are valid for writes.
        unsafe {
            shim::iovx_bdev_limits(
                bdev,
                &mut limits.logical_block_size,
                &mut limits.dma_alignment,
                &mut limits.sectors,
                &mut limits.max_hw_sectors,
                &mut limits.max_segments,
                &mut limits.max_segment_size,
            )
        };
        let lbs = limits.logical_block_size;
        if !lbs.is_power_of_two() || !(512..=4096).contains(&lbs) {
            // SAFETY: The file reference was just taken with the holder, which is still in place.
            unsafe { shim::iovx_bdev_close(file.as_ptr()) };
            return Err(EINVAL);
        }
        // INVARIANT: Opened as required above, with `holder` kept in the value; the logical block
        // size was checked.
        Ok(Self {
            file,
            // SAFETY: `file_bdev()` of an open block device file is its block device.
            bdev: unsafe { NonNull::new_unchecked(bdev) },
            holder,
            inflight,
            limits,
        })
    }

    /// The limits of the device's queue, and its size, as they were when it was opened.
    pub fn limits(&self) -> BdevLimits {
        self.limits
    }

    /// The device as a target for bios, covering the size it had when it was opened (a bio past
    /// a shrunk device's end is failed by the block layer, `bio_check_eod()`).
    pub fn target(&self) -> Target<'_> {
        // SAFETY: The device is held open while `self` is borrowed (type invariant), and the
        // logical block size is its own, checked a power of two from 512 to 4096 by `open`;
        // `drop` waits for the bios counted in `inflight`, which stays in place until then,
        // before releasing the device.
        unsafe {
            Target::from_bdev(
                self.bdev.as_ptr(),
                self.limits.logical_block_size,
                self.limits.sectors,
                self.inflight.get(),
            )
        }
    }

    /// Whether the device was marked dead (its disk removed, or its medium changed) while held;
    /// once set, for good. Any context.
    pub fn is_dead(&self) -> bool {
        // SAFETY: The holder cell is initialised and in place (type invariant).
        unsafe { shim::iovx_atomic_read(self.holder.get()) != 0 }
    }
}

impl Drop for Bdev {
    fn drop(&mut self) {
        might_sleep();
        // SAFETY: The device is held open (type invariant). No target borrows `self` any more,
        // so no bio is counted from now on; the wait returns once every counted bio has left its
        // completion. The file reference, with its claim, then goes, before the cells are freed
        // (fields are dropped after this body).
        unsafe {
            shim::iovx_bdev_wait_idle(self.inflight.get());
            shim::iovx_bdev_close(self.file.as_ptr());
        }
        // Read bios of the device handed to the worker that dirties their pages again are
        // released before the device goes, as a disk's are.
        super::bio::flush_redirty();
    }
}
