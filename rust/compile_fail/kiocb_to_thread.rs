// SPDX-License-Identifier: GPL-2.0
//
// Sending a direct-I/O call's kiocb to another thread (a work item, a kthread): its iterator
// holds user addresses of the calling task's mm, which the worker would resolve in its own
// (a kthread has none), and a synchronous kiocb lives on the caller's stack. A `Kiocb` is not
// `Send`.
//
// error: E0277

use crate::abstractions::direct_io::Kiocb;
use crate::abstractions::iov::Dest;

fn need_send<T: Send>(_: T) {}

pub fn misuse(io: Kiocb<'_, Dest>) {
    need_send(io);
}
