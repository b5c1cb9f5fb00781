// SPDX-License-Identifier: GPL-2.0
//
// Twin of kvec_dest_aliased.rs: the buffer is read once the iterator is done with it.

use crate::abstractions::iov::{Dest, IovIter, Kvec};
use kernel::prelude::*;

pub fn misuse() -> Result<bool> {
    let mut buf = KVec::from_elem(0u8, 512, GFP_KERNEL)?;
    let mut segs = [Kvec::<Dest>::new(&mut buf)];
    let mut iter = IovIter::kvec(&mut segs)?;
    iter.copy_to_iter(b"data");
    let head: &[u8] = &buf[..4];
    Ok(head == b"data")
}
