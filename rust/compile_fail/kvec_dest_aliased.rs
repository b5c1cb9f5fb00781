// SPDX-License-Identifier: GPL-2.0
//
// Reading a read's destination buffer while the iterator can still write it: the iterator
// borrows the buffer mutably for 'data, so the driver's own view of it waits.
//
// error: E0502

use crate::abstractions::iov::{Dest, IovIter, Kvec};
use kernel::prelude::*;

pub fn misuse() -> Result<bool> {
    let mut buf = KVec::from_elem(0u8, 512, GFP_KERNEL)?;
    let mut segs = [Kvec::<Dest>::new(&mut buf)];
    let mut iter = IovIter::kvec(&mut segs)?;
    let head: &[u8] = &buf[..4];
    iter.copy_to_iter(b"data");
    Ok(head == b"data")
}
