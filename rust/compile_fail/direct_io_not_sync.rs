// SPDX-License-Identifier: GPL-2.0
//
// A direct-I/O device whose data is not `Sync` (a `Cell` counter): every open file shares the
// data, and two reads on two CPUs would update the counter at once, a data race. `DirectIo`
// (like `IoctlDevice`) requires `Send + Sync`.
//
// error: E0277

use crate::abstractions::direct_io::{DirectIo, Ended, Kiocb};
use crate::abstractions::iov::{Dest, Source};
use core::cell::Cell;

pub struct Counting {
    reads: Cell<u64>,
}

impl DirectIo for Counting {
    fn size(&self) -> u64 {
        0
    }

    fn read_iter<'a>(&self, io: Kiocb<'a, Dest>) -> Ended<'a> {
        self.reads.set(self.reads.get() + 1);
        io.done(0)
    }

    fn write_iter<'a>(&self, io: Kiocb<'a, Source>) -> Ended<'a> {
        io.done(0)
    }
}
