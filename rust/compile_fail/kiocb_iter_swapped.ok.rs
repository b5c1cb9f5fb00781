// SPDX-License-Identifier: GPL-2.0
//
// Twin of kiocb_iter_swapped.rs: the read copies into the call's own iterator and reports what
// it copied.

use crate::abstractions::direct_io::{DirectIo, Ended, Kiocb};
use crate::abstractions::iov::{Dest, Source};

pub struct Zeroes;

impl DirectIo for Zeroes {
    fn size(&self) -> u64 {
        1 << 20
    }

    fn read_iter<'a>(&self, mut io: Kiocb<'a, Dest>) -> Ended<'a> {
        let zeroes = [0u8; 64];
        let mut n = 0;
        while n < io.count() {
            let c = io.iter().copy_to_iter(&zeroes);
            if c == 0 {
                break;
            }
            n += c;
        }
        io.done(n)
    }

    fn write_iter<'a>(&self, io: Kiocb<'a, Source>) -> Ended<'a> {
        io.done(0)
    }
}
