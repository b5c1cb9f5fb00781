// SPDX-License-Identifier: GPL-2.0
//
// A GUP call with `Walk::Fast` while the mmap lock is held: the fast walk may take the lock
// itself (a recursive read lock: lockdep, and a deadlock against a queued writer). Under the
// guard only `Walk::Locked` can be named: `Walk::Fast` borrows the `UserMm` the guard holds
// exclusively.
//
// error: E0502

use crate::abstractions::gup::{gup, GupFlags, MmapReadGuard, UserMm, Walk};
use crate::abstractions::iov::Dest;
use crate::abstractions::pages::{Mode, PageSlot};
use kernel::prelude::*;

pub fn misuse(addr: usize) -> Result<usize> {
    let mut mm = UserMm::current()?;
    let guard = MmapReadGuard::lock(&mut mm)?;
    let mut slots = [PageSlot::EMPTY; 4];
    let batch = gup::<Dest>(
        addr,
        GupFlags::default(),
        Mode::Pinned,
        Walk::Fast(&mm),
        &mut slots,
    )?;
    let n = batch.nr_pages();
    drop(batch);
    drop(guard);
    Ok(n)
}
