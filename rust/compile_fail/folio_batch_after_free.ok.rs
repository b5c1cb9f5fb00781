// SPDX-License-Identifier: GPL-2.0
//
// Twin of folio_batch_after_free.rs: the batch is released before the folios are freed.

use crate::abstractions::folios::FolioXArray;
use crate::abstractions::iov::IovIter;
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse() -> Result<usize> {
    let xa = FolioXArray::new(2, 0)?;
    let mut slots = [PageSlot::EMPTY; 4];
    let mut iter = IovIter::xarray(&xa, 0, 2 * PAGE_SIZE)?;
    let batch = iter.extract(&mut slots, 2 * PAGE_SIZE)?;
    drop(iter);
    let mut first = [0u8; 16];
    let n = batch.copy_out(&mut first);
    batch.release();
    drop(xa);
    Ok(n)
}
