// SPDX-License-Identifier: GPL-2.0
//
// Twin of fast_pin_under_mmap_lock.rs: the pages are pinned before the lock is taken.

use crate::abstractions::gup::{pin_user_pages, MmapReadGuard, Pin, UserMm};
use crate::abstractions::iov::Source;
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse(addr: usize) -> Result<usize> {
    let mut mm = UserMm::current()?;
    let mut slots = [PageSlot::EMPTY; 1];
    let batch = pin_user_pages::<Source>(&mm, addr, PAGE_SIZE, Pin::ShortTerm, &mut slots)?;
    let n = batch.nr_pages();
    drop(batch);
    let guard = MmapReadGuard::lock(&mut mm)?;
    drop(guard);
    Ok(n)
}
