// SPDX-License-Identifier: GPL-2.0
//
// Twin of folioq_dest_aliased.rs: the folios are read once the destination iterator is gone.

use crate::abstractions::folios::FolioQueue;
use crate::abstractions::iov::IovIter;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse() -> Result<usize> {
    let mut q = FolioQueue::new(&[0, 1])?;
    let mut iter = IovIter::folioq_mut(&mut q, 0, PAGE_SIZE)?;
    let n = iter.copy_to_iter(&[1u8; 16]);
    drop(iter);
    let mut peek = [0u8; 16];
    q.read(0, &mut peek)?;
    Ok(n)
}
