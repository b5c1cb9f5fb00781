// SPDX-License-Identifier: GPL-2.0
//
// Twin of iter_to_thread.rs: what goes to the other thread is the data, not the iterator.

use crate::abstractions::iov::{IovIter, Source};
use kernel::prelude::*;

fn need_send<T: Send>(_: T) {}

pub fn misuse(addr: usize, len: usize) -> Result {
    let mut iter = IovIter::<Source>::ubuf(addr, len)?;
    let mut data = [0u8; 64];
    let n = iter.copy_from_iter(&mut data);
    need_send((data, n));
    Ok(())
}
