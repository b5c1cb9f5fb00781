// SPDX-License-Identifier: GPL-2.0
//
// Twin of kiocb_to_thread.rs: what goes to the other thread is a value read from the kiocb, and
// the call is ended here.

use crate::abstractions::direct_io::Kiocb;
use crate::abstractions::iov::Dest;

fn need_send<T: Send>(_: T) {}

pub fn misuse(io: Kiocb<'_, Dest>) {
    need_send(io.pos());
    let _ = io.done(0);
}
