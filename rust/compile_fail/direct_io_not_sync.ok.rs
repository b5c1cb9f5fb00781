// SPDX-License-Identifier: GPL-2.0
//
// Twin of direct_io_not_sync.rs: the counter is atomic.

use crate::abstractions::direct_io::{DirectIo, Ended, Kiocb};
use crate::abstractions::iov::{Dest, Source};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub struct Counting {
    reads: AtomicU64,
}

impl DirectIo for Counting {
    fn size(&self) -> u64 {
        0
    }

    fn read_iter<'a>(&self, io: Kiocb<'a, Dest>) -> Ended<'a> {
        self.reads.fetch_add(1, Relaxed);
        io.done(0)
    }

    fn write_iter<'a>(&self, io: Kiocb<'a, Source>) -> Ended<'a> {
        io.done(0)
    }
}
