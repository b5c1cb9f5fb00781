// SPDX-License-Identifier: GPL-2.0
//
// Twin of drop_queued.rs: the ending of `direct_io` is the call's answer.

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
        io.direct_io(self.disk.target(), pos, len)
    }

    fn write_iter<'a>(&self, mut io: Kiocb<'a, Source>) -> Ended<'a> {
        let len = io.iter().len();
        let pos = io.pos() as u64;
        io.direct_io(self.disk.target(), pos, len)
    }
}
