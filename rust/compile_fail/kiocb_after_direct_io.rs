// SPDX-License-Identifier: GPL-2.0
//
// Looking at the kiocb after `direct_io` has queued it: the last bio may already have completed
// it, and io_uring or aio freed or recycled it, so `is_sync` would read freed memory.
// `direct_io` consumes the kiocb.
//
// error: E0382

use crate::abstractions::blk::{Disk, Driver, Failure, Request};
use crate::abstractions::direct_io::{DirectIo, Ended, Kiocb};
use crate::abstractions::iov::{Dest, Source};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{prelude::*, sync::Arc};

pub struct Null;

impl Driver for Null {
    fn transfer(&self, _rq: &Request<'_>) -> Result<(), Failure> {
        Ok(())
    }
}

pub struct Counting {
    disk: Arc<Disk<Null>>,
    queued: AtomicU64,
}

impl DirectIo for Counting {
    fn size(&self) -> u64 {
        1 << 20
    }

    fn read_iter<'a>(&self, mut io: Kiocb<'a, Dest>) -> Ended<'a> {
        let len = io.iter().len();
        let pos = io.pos() as u64;
        let ended = io.direct_io(self.disk.target(), pos, len);
        if !io.is_sync() {
            self.queued.fetch_add(1, Relaxed);
        }
        ended
    }

    fn write_iter<'a>(&self, io: Kiocb<'a, Source>) -> Ended<'a> {
        io.done(0)
    }
}
