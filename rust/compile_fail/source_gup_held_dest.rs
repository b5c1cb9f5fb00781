// SPDX-License-Identifier: GPL-2.0
//
// User pages taken without FOLL_WRITE (possibly the shared zero page, or the page cache of a
// read-only file mapping) kept among pages held for writing: whatever fills the held pages
// would write memory the task may only read. `HeldPages<Dest>::take` takes `Dest` batches only.
//
// error: E0308

use crate::abstractions::gup::{gup, GupFlags, HeldPages, UserMm, Walk};
use crate::abstractions::iov::{Dest, Source};
use crate::abstractions::pages::Mode;
use kernel::prelude::*;

pub fn misuse(addr: usize) -> Result<HeldPages<Dest>> {
    let mm = UserMm::current()?;
    let mut held = HeldPages::<Dest>::new(4, Mode::Pinned)?;
    held.take(4, |slots| {
        gup::<Source>(
            addr,
            GupFlags::default(),
            Mode::Pinned,
            Walk::Fast(&mm),
            slots,
        )
    })?;
    Ok(held)
}
