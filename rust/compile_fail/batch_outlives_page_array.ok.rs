// SPDX-License-Identifier: GPL-2.0
//
// Twin of batch_outlives_page_array.rs: the page array outlives the batch.

use crate::abstractions::iov::{Dest, IovIter};
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse(iter: &mut IovIter<'_, Dest>) -> Result<usize> {
    let mut slots = [PageSlot::EMPTY; 4];
    let batch = { iter.extract(&mut slots, 4 * PAGE_SIZE)? };
    let n = batch.len();
    batch.release_dirty();
    Ok(n)
}
