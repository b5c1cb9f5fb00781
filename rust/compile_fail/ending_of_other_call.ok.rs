// SPDX-License-Identifier: GPL-2.0
//
// Twin of ending_of_other_call.rs: each call's ending comes from its own kiocb.

use crate::abstractions::direct_io::{Ended, Kiocb};
use crate::abstractions::iov::Dest;

pub fn misuse<'a, 'b>(x: Kiocb<'a, Dest>, y: Kiocb<'b, Dest>) -> Ended<'a> {
    let _ = y.done(0);
    x.done(0)
}
