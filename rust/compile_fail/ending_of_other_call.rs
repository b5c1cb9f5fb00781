// SPDX-License-Identifier: GPL-2.0
//
// Answering one direct-I/O call with the ending of another: a synchronous call answered with
// the "queued" of an asynchronous one hits the BUG_ON in fs/read_write.c, and the position and
// byte count of one call would be reported for the other. An `Ended<'a>` is made only from the
// `Kiocb<'a, _>` of the same call, and `'a` is invariant.
//
// error-message: lifetime may not live long enough

use crate::abstractions::direct_io::{Ended, Kiocb};
use crate::abstractions::iov::Dest;

pub fn misuse<'a, 'b>(x: Kiocb<'a, Dest>, y: Kiocb<'b, Dest>) -> Ended<'a> {
    let _ = x.done(0);
    y.done(0)
}
