// SPDX-License-Identifier: GPL-2.0
//
// A batch that outlives the page array it was extracted into. The array holds the page
// pointers the batch releases; with the array gone, the release would read freed memory.
//
// error: E0597

use crate::abstractions::iov::{Dest, IovIter};
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse(iter: &mut IovIter<'_, Dest>) -> Result<usize> {
    let batch = {
        let mut slots = [PageSlot::EMPTY; 4];
        iter.extract(&mut slots, 4 * PAGE_SIZE)?
    };
    let n = batch.len();
    batch.release_dirty();
    Ok(n)
}
