// SPDX-License-Identifier: GPL-2.0
//
// Twin of kvec_iter_after_free.rs: the buffer lives as long as the iterator is used.

use crate::abstractions::iov::{IovIter, Kvec, Source};
use kernel::prelude::*;

pub fn misuse() -> Result<usize> {
    let mut segs;
    let buf = KVec::from_elem(0u8, 512, GFP_KERNEL)?;
    let mut iter = {
        segs = [Kvec::<Source>::new(&buf)];
        IovIter::kvec(&mut segs)?
    };
    let mut out = [0u8; 64];
    Ok(iter.copy_from_iter(&mut out))
}
