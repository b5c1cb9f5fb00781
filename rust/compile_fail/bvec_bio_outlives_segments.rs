// SPDX-License-Identifier: GPL-2.0
//
// A bio that takes a BVEC iterator's segments as they are, kept past the segment array: the
// bio's segments are that array (the block layer walks it), so the device would read freed
// stack. The bio carries the iterator's borrow ('data) and cannot outlive it.
//
// error: E0597

use crate::abstractions::bio::{Bio, Target};
use crate::abstractions::iov::{Bvec, IovIter, Source};
use kernel::{
    page::{Page, PAGE_SIZE},
    prelude::*,
};

pub fn misuse(target: Target<'_>, page: &Page) -> Result<usize> {
    let bio = {
        let mut segs = [Bvec::<Source>::new(page, 0, PAGE_SIZE)?];
        let mut iter = IovIter::bvec(&mut segs)?;
        Bio::new_bvec(target, 0, &mut iter, PAGE_SIZE)?
    };
    Ok(bio.map_or(0, |b| b.len()))
}
