// SPDX-License-Identifier: GPL-2.0

//! The direct-I/O front end: `/dev/iovx_dioN` reads and writes disk `iovxN` through the Rust
//! extraction and bio path.
//!
//! The file position is the byte offset on the disk, and the rules are those of `O_DIRECT` on
//! the block device (`block/fops.c`): the offset and the length must be multiples of the logical
//! block size and the memory aligned to the queue's DMA alignment (512 bytes), else `EINVAL`; a
//! read at or past the end returns 0 and one across it is short; a write at or past the end fails
//! with `ENOSPC` and one across it is short; zero bytes is 0.
//!
//! User memory is pinned, unless the module parameter `extract_legacy` is set (it can be changed
//! at run time, and is read at the start of each call): it is then taken with page references
//! (`FOLL_GET`), the behaviour before `iov_iter_extract_pages()`, which fork() does not protect.

#![deny(unsafe_code)]

use crate::abstractions::blk::Disk;
use crate::abstractions::direct_io::{DirectIo, Ended, Kiocb};
use crate::abstractions::extract::UserPages;
use crate::abstractions::iov::{Dest, Direction, Source};
use crate::abstractions::params;
use crate::ramdisk::RamDisk;
use core::num::NonZeroU64;
use kernel::{prelude::*, sync::Arc};

/// DMA alignment of the disk's queue (`dma_alignment + 1`).
const DMA_ALIGN: u32 = 512;

/// The direct-I/O device of one disk.
pub(crate) struct DioDev {
    disk: Arc<Disk<RamDisk>>,
    size: u64,
    /// The disk's logical block size, a divisor that cannot be zero.
    lbs: NonZeroU64,
}

impl DioDev {
    pub(crate) fn new(disk: Arc<Disk<RamDisk>>, size: u64) -> Self {
        // 512 or 4096 (`Disk::new` refuses other sizes).
        let lbs =
            NonZeroU64::new(disk.target().logical_block_size().into()).unwrap_or(NonZeroU64::MIN);
        Self { disk, size, lbs }
    }

    #[inline]
    fn rw<'a, D: Direction>(&self, mut io: Kiocb<'a, D>) -> Ended<'a> {
        let write = !D::WRITES_MEMORY;
        let Ok(pos) = u64::try_from(io.pos()) else {
            return io.fail(EINVAL);
        };
        let mut len = io.iter().len();
        if len == 0 {
            return io.done(0);
        }
        if pos >= self.size {
            return if write { io.fail(ENOSPC) } else { io.done(0) };
        }
        len = len.min((self.size - pos) as usize);
        let lbs = self.lbs;
        let len_mask = (lbs.get() - 1) as u32;
        if pos % lbs != 0 || len as u64 % lbs != 0 || !io.is_aligned(DMA_ALIGN - 1, len_mask) {
            return io.fail(EINVAL);
        }
        // The legacy mode (module parameter `extract_legacy`) takes user memory with page
        // references instead of pins, as before `iov_iter_extract_pages()`.
        let how = if params::extract_legacy() {
            UserPages::Reference
        } else {
            UserPages::Pin
        };
        io.direct_io_as(self.disk.target(), pos, len, how)
    }
}

impl DirectIo for DioDev {
    fn size(&self) -> u64 {
        self.size
    }

    #[inline]
    fn read_iter<'a>(&self, io: Kiocb<'a, Dest>) -> Ended<'a> {
        self.rw(io)
    }

    #[inline]
    fn write_iter<'a>(&self, io: Kiocb<'a, Source>) -> Ended<'a> {
        self.rw(io)
    }
}
