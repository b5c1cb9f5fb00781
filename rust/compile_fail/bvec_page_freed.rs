// SPDX-License-Identifier: GPL-2.0
//
// A BVEC iterator over a page that is freed while the iterator lives: the segment borrows
// the page for 'data, so the page cannot be dropped before the iterator's last use.
//
// error: E0505

use crate::abstractions::iov::{Bvec, IovIter, Source};
use kernel::{
    page::{Page, PAGE_SIZE},
    prelude::*,
};

pub fn misuse() -> Result<usize> {
    let page = Page::alloc_page(GFP_KERNEL)?;
    let mut segs = [Bvec::<Source>::new(&page, 0, PAGE_SIZE)?];
    let mut iter = IovIter::bvec(&mut segs)?;
    drop(page);
    let mut out = [0u8; 64];
    Ok(iter.copy_from_iter(&mut out))
}
