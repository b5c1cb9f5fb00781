// SPDX-License-Identifier: GPL-2.0
//
// Twin of segment_escapes.rs: each segment is served during the walk.

use crate::abstractions::blk::{Driver, Request, Segment};
use kernel::prelude::*;

pub struct Lazy;

impl Driver for Lazy {
    fn transfer(&self, rq: &Request<'_>) -> Result {
        rq.for_each_segment(|seg: &mut Segment<'_>| {
            let n = seg.len();
            seg.zero(0, n)
        })
    }
}
