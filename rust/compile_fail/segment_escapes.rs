// SPDX-License-Identifier: GPL-2.0
//
// Keeping a segment of a request beyond the walk: once the request has ended its pages go
// back to whoever issued the I/O. A segment is lent to the closure for one call only.
//
// error: E0521

use crate::abstractions::blk::{Driver, Failure, Op, Request, Segment};
use crate::abstractions::iov::Dest;
use kernel::prelude::*;

pub struct Lazy;

impl Driver for Lazy {
    fn transfer(&self, rq: &Request<'_>) -> Result<(), Failure> {
        let Op::Read(data) = rq.op() else {
            return Ok(());
        };
        let mut last: Option<&mut Segment<'_, Dest>> = None;
        data.for_each_segment(|seg| {
            last = Some(seg);
            Ok::<(), Failure>(())
        })?;
        if let Some(seg) = last {
            let n = seg.len();
            seg.zero(0, n).map_err(Failure::from)?;
        }
        Ok(())
    }
}
