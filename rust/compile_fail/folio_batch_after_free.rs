// SPDX-License-Identifier: GPL-2.0
//
// A batch listed from an XARRAY iterator, used after the folios have been freed. The listed
// pages hold no reference of their own: only the borrow of the FolioXArray keeps its folios,
// and the batch keeps that borrow ('data) after the iterator is gone.
//
// error: E0505

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
    drop(xa);
    let mut first = [0u8; 16];
    let n = batch.copy_out(&mut first);
    batch.release();
    Ok(n)
}
