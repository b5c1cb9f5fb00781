// SPDX-License-Identifier: GPL-2.0
//
// Twin of bvec_bio_outlives_segments.rs: the segment array outlives the bio.

use crate::abstractions::bio::{Bio, Target};
use crate::abstractions::iov::{Bvec, IovIter, Source};
use kernel::{
    page::{Page, PAGE_SIZE},
    prelude::*,
};

pub fn misuse(target: Target<'_>, page: &Page) -> Result<usize> {
    let mut segs = [Bvec::<Source>::new(page, 0, PAGE_SIZE)?];
    let bio = {
        let mut iter = IovIter::bvec(&mut segs)?;
        Bio::new_bvec(target, 0, &mut iter, PAGE_SIZE)?
    };
    Ok(bio.map_or(0, |b| b.len()))
}
