// SPDX-License-Identifier: GPL-2.0
//
// A destination FOLIOQ iterator and a read of the same folios while it lives: the device could
// be writing the folios while safe code reads them. The destination borrows the queue
// exclusively.
//
// error: E0502

use crate::abstractions::folios::FolioQueue;
use crate::abstractions::iov::IovIter;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse() -> Result<usize> {
    let mut q = FolioQueue::new(&[0, 1])?;
    let mut iter = IovIter::folioq_mut(&mut q, 0, PAGE_SIZE)?;
    let mut peek = [0u8; 16];
    q.read(0, &mut peek)?;
    let n = iter.copy_to_iter(&[1u8; 16]);
    Ok(n)
}
