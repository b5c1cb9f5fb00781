// SPDX-License-Identifier: GPL-2.0
//
// User pages pinned for reading only (no FOLL_WRITE: possibly the shared zero page or the
// page cache of a read-only file mapping) added to a read bio, which would write them and
// then dirty them. GUP entry points are typed by direction; a `Source` pin is a `Source`
// batch.
//
// error: E0308

use crate::abstractions::bio::{Bio, BioSlot, Target};
use crate::abstractions::gup::{pin_user_pages, Pin, UserMm};
use crate::abstractions::iov::{Dest, Source};
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*};

pub fn misuse(target: Target<'_>, addr: usize) -> Result<usize> {
    let mut slots = [PageSlot::EMPTY; 2];
    let mm = UserMm::current()?;
    let batch = pin_user_pages::<Source>(&mm, addr, PAGE_SIZE, Pin::ShortTerm, &mut slots)?;
    let mut slot = BioSlot::new();
    let mut bio = Bio::<'_, '_, Dest, _>::new_inline(&mut slot, target, 0);
    if bio.add(batch).is_err() {
        return Err(ENOSPC);
    }
    bio.submit_wait()
}
