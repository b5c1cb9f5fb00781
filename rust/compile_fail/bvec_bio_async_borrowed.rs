// SPDX-License-Identifier: GPL-2.0
//
// Submitting without waiting a bio over the segments of a BVEC iterator of borrowed pages: the
// function returns, the page and the segment array go, and the device still walks them. A bio
// submitted without waiting must borrow only 'static memory.
//
// error: E0597

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
    if let Some(bio) = Bio::new_bvec(target, 0, &mut iter, PAGE_SIZE)? {
        bio.submit(Arc::new(Quiet, GFP_KERNEL)?);
    }
    Ok(())
}
