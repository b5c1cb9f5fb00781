// SPDX-License-Identifier: GPL-2.0
//
// Twin of kvec_dest_shared.rs: the destination is a buffer of our own, borrowed mutably.

use crate::abstractions::iov::{Dest, IovIter, Kvec};
use kernel::prelude::*;

pub fn misuse() -> Result<usize> {
    let mut buf = [0u8; 512];
    let mut segs = [Kvec::<Dest>::new(&mut buf)];
    let mut iter = IovIter::kvec(&mut segs)?;
    Ok(iter.copy_to_iter(b"data"))
}
