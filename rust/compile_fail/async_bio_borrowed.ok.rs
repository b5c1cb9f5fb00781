// SPDX-License-Identifier: GPL-2.0
//
// Twin of async_bio_borrowed.rs: the bio lists pinned user pages, which do not borrow the
// iterator's memory.

use crate::abstractions::bio::{Bio, Completion, Target};
use crate::abstractions::iov::{IovIter, Source};
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*, sync::Arc};

struct Quiet;

impl Completion for Quiet {
    fn bio_submitted(&self, _bytes: usize) {}
    fn bio_done(&self, _result: Result) {}
}

pub fn misuse(target: Target<'_>, addr: usize) -> Result {
    let mut iter = IovIter::<Source>::ubuf(addr, PAGE_SIZE)?;
    let mut slots = [PageSlot::EMPTY; 2];
    let batch = iter.extract(&mut slots, PAGE_SIZE)?;
    let mut bio = Bio::<Source>::new(target, 0, 2)?;
    if bio.add(batch).is_err() {
        return Err(ENOSPC);
    }
    bio.submit(Arc::new(Quiet, GFP_KERNEL)?);
    Ok(())
}
