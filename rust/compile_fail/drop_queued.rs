// SPDX-License-Identifier: GPL-2.0
//
// Dropping the ending that `direct_io` returned (possibly "queued": bios in flight will
// complete the kiocb) and answering "done" instead: aio would complete the kiocb itself and
// the last bio again; io_uring would recycle the request while bios still write its pages.
// `direct_io` consumes the kiocb, so there is nothing left to answer with.
//
// error: E0382

use crate::abstractions::blk::{Disk, Driver, Failure, Request};
use crate::abstractions::direct_io::{DirectIo, Ended, Kiocb};
use crate::abstractions::iov::{Dest, Source};
use kernel::{prelude::*, sync::Arc};

pub struct Null;

impl Driver for Null {
    fn transfer(&self, _rq: &Request<'_>) -> Result<(), Failure> {
        Ok(())
    }
}

pub struct Impatient {
    disk: Arc<Disk<Null>>,
}

impl DirectIo for Impatient {
    fn size(&self) -> u64 {
        1 << 20
    }

    fn read_iter<'a>(&self, mut io: Kiocb<'a, Dest>) -> Ended<'a> {
        let len = io.iter().len();
        let pos = io.pos() as u64;
        let ended = io.direct_io(self.disk.target(), pos, len);
        drop(ended);
        io.done(len)
    }

    fn write_iter<'a>(&self, mut io: Kiocb<'a, Source>) -> Ended<'a> {
        let len = io.iter().len();
        let pos = io.pos() as u64;
        io.direct_io(self.disk.target(), pos, len)
    }
}
