// SPDX-License-Identifier: GPL-2.0
//
// The call's iterator swapped for a longer one: the read would then report more bytes than the
// call asked for (and copy nothing into the caller's buffer). A kiocb lends its iterator as a
// `CallIter`, which moves it but gives no `&mut IovIter` to replace it with.
//
// error: E0596

use crate::abstractions::direct_io::{DirectIo, Ended, Kiocb};
use crate::abstractions::iov::{Dest, IovIter, Source};

pub struct Zeroes;

impl DirectIo for Zeroes {
    fn size(&self) -> u64 {
        1 << 20
    }

    fn read_iter<'a>(&self, mut io: Kiocb<'a, Dest>) -> Ended<'a> {
        let mut other = IovIter::discard(1 << 30);
        core::mem::swap(&mut *io.iter(), &mut other);
        let n = io.iter().advance(1 << 30);
        io.done(n)
    }

    fn write_iter<'a>(&self, io: Kiocb<'a, Source>) -> Ended<'a> {
        io.done(0)
    }
}
