// SPDX-License-Identifier: GPL-2.0
//
// A direct-I/O read that claims to be queued with nothing queued: a synchronous caller then
// hits the BUG_ON in fs/read_write.c, an asynchronous one waits forever. The ending of a call
// has private fields; only the kiocb's own `direct_io`, `done` and `fail` make one.
//
// error: E0451

use crate::abstractions::direct_io::{DirectIo, Ended, Kiocb};
use crate::abstractions::iov::{Dest, Source};
use core::marker::PhantomData;
use kernel::{bindings, prelude::*};

pub struct Liar;

impl DirectIo for Liar {
    fn size(&self) -> u64 {
        0
    }

    fn read_iter<'a>(&self, io: Kiocb<'a, Dest>) -> Ended<'a> {
        drop(io);
        Ended {
            ret: -(bindings::EIOCBQUEUED as isize),
            _call: PhantomData,
        }
    }

    fn write_iter<'a>(&self, io: Kiocb<'a, Source>) -> Ended<'a> {
        io.done(0)
    }
}
