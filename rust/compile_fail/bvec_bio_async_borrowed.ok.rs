// SPDX-License-Identifier: GPL-2.0
//
// Twin of bvec_bio_async_borrowed.rs: a bio over borrowed segments is dropped, not submitted
// without waiting.

use crate::abstractions::bio::{Bio, Completion, Target};
use crate::abstractions::iov::{Bvec, IovIter, Source};
use kernel::{
    page::{Page, PAGE_SIZE},
    prelude::*,
    sync::Arc,
};

struct Quiet;

impl Completion for Quiet {
    fn bio_submitted(&self, _bytes: usize) {}
    fn bio_done(&self, _result: Result) {}
}

pub fn misuse(target: Target<'_>) -> Result {
    let page = Page::alloc_page(GFP_KERNEL)?;
    let mut segs = [Bvec::<Source>::new(&page, 0, PAGE_SIZE)?];
    let mut iter = IovIter::bvec(&mut segs)?;
    let _done = Arc::new(Quiet, GFP_KERNEL)?;
    if let Some(bio) = Bio::new_bvec(target, 0, &mut iter, PAGE_SIZE)? {
        drop(bio);
    }
    Ok(())
}
