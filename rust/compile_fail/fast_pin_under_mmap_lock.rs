// SPDX-License-Identifier: GPL-2.0
//
// Pinning with `pin_user_pages` while holding the mmap lock: its lockless walk falls back to the
// slow path, which takes the lock again. The lock is not recursive: a lockdep report, and a
// deadlock once a writer queues between the two. The guard borrows the task's `UserMm`
// exclusively; `pin_user_pages` needs it shared.
//
// error: E0502

use crate::abstractions::gup::{pin_user_pages, MmapReadGuard, Pin, UserMm};
use crate::abstractions::iov::Source;
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse(addr: usize) -> Result<usize> {
    let mut mm = UserMm::current()?;
    let guard = MmapReadGuard::lock(&mut mm)?;
    let mut slots = [PageSlot::EMPTY; 1];
    let batch = pin_user_pages::<Source>(&mm, addr, PAGE_SIZE, Pin::ShortTerm, &mut slots)?;
    let n = batch.nr_pages();
    drop(batch);
    drop(guard);
    Ok(n)
}
