// SPDX-License-Identifier: GPL-2.0
//
// A KVEC iterator used after the buffer it walks has been freed: the iterator borrows the
// buffer for 'data, so the buffer's scope cannot end while the iterator is still in use.
//
// error: E0597

use crate::abstractions::iov::{IovIter, Kvec, Source};
use kernel::prelude::*;

pub fn misuse() -> Result<usize> {
    let mut segs;
    let mut iter = {
        let buf = KVec::from_elem(0u8, 512, GFP_KERNEL)?;
        segs = [Kvec::<Source>::new(&buf)];
        IovIter::kvec(&mut segs)?
    };
    let mut out = [0u8; 64];
    Ok(iter.copy_from_iter(&mut out))
}
