// SPDX-License-Identifier: GPL-2.0
//
// A destination KVEC made from a shared slice: a read would write memory that others may be
// reading (here a constant in read-only data). A destination segment takes `&mut [u8]`.
//
// error: E0308

use crate::abstractions::iov::{Dest, IovIter, Kvec};
use kernel::prelude::*;

static ZEROES: [u8; 512] = [0; 512];

pub fn misuse() -> Result<usize> {
    let mut segs = [Kvec::<Dest>::new(&ZEROES)];
    let mut iter = IovIter::kvec(&mut segs)?;
    Ok(iter.copy_to_iter(b"data"))
}
