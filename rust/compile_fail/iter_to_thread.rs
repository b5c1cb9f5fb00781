// SPDX-License-Identifier: GPL-2.0
//
// Sending an iterator to another thread (a work item, a kthread). A user iterator holds
// addresses of the current task's mm, which another task would resolve in its own; a kernel
// iterator borrows memory that the sending task may free. Iterators are not `Send`.
//
// error: E0277

use crate::abstractions::iov::{Dest, IovIter};
use kernel::prelude::*;

fn need_send<T: Send>(_: T) {}

pub fn misuse(addr: usize, len: usize) -> Result {
    let iter = IovIter::<Dest>::ubuf(addr, len)?;
    need_send(iter);
    Ok(())
}
