// SPDX-License-Identifier: GPL-2.0
//
// Twin of kiocb_after_direct_io.rs: the kiocb is looked at before `direct_io` takes it.

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
        if !io.is_sync() {
            self.queued.fetch_add(1, Relaxed);
        }
        io.direct_io(self.disk.target(), pos, len)
    }

    fn write_iter<'a>(&self, io: Kiocb<'a, Source>) -> Ended<'a> {
        io.done(0)
    }
}
