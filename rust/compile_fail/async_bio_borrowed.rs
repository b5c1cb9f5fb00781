// SPDX-License-Identifier: GPL-2.0
//
// Submitting a bio that lists borrowed kernel memory asynchronously: the function returns,
// the buffer is freed, and the device still reads it. A bio submitted without waiting must
// list only 'static memory (pinned user pages hold their own pins).
//
// error: E0597

use crate::abstractions::bio::{Bio, Completion, Target};
use crate::abstractions::iov::{IovIter, Kvec, Source};
use crate::abstractions::pages::PageSlot;
use kernel::{page::PAGE_SIZE, prelude::*, sync::Arc};

struct Quiet;

impl Completion for Quiet {
    fn bio_submitted(&self, _bytes: usize) {}
    fn bio_done(&self, _result: Result) {}
}

pub fn misuse(target: Target<'_>) -> Result {
    let buf = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
    let mut segs = [Kvec::<Source>::new(&buf)];
    let mut iter = IovIter::kvec(&mut segs)?;
    let mut slots = [PageSlot::EMPTY; 2];
    let batch = iter.extract(&mut slots, PAGE_SIZE)?;
    let mut bio = Bio::<Source>::new(target, 0, 2)?;
    if bio.add(batch).is_err() {
        return Err(ENOSPC);
    }
    bio.submit(Arc::new(Quiet, GFP_KERNEL)?);
    Ok(())
}
