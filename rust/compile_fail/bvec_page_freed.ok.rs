// SPDX-License-Identifier: GPL-2.0
//
// Twin of bvec_page_freed.rs: the page is freed after the iterator's last use.

use crate::abstractions::iov::{Bvec, IovIter, Source};
use kernel::{
    page::{Page, PAGE_SIZE},
    prelude::*,
};

pub fn misuse() -> Result<usize> {
    let page = Page::alloc_page(GFP_KERNEL)?;
    let mut segs = [Bvec::<Source>::new(&page, 0, PAGE_SIZE)?];
    let mut iter = IovIter::bvec(&mut segs)?;
    let mut out = [0u8; 64];
    let n = iter.copy_from_iter(&mut out);
    drop(page);
    Ok(n)
}
