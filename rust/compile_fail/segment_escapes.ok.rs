// SPDX-License-Identifier: GPL-2.0
//
// Twin of segment_escapes.rs: each segment is served during the walk.

use crate::abstractions::blk::{Driver, Failure, Op, Request, Segment};
use crate::abstractions::iov::Dest;
use kernel::prelude::*;

pub struct Lazy;

impl Driver for Lazy {
    fn transfer(&self, rq: &Request<'_>) -> Result<(), Failure> {
        let Op::Read(data) = rq.op() else {
            return Ok(());
        };
        data.for_each_segment(|seg: &mut Segment<'_, Dest>| {
            let n = seg.len();
            seg.zero(0, n).map_err(Failure::from)
        })
    }
}
