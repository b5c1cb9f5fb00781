// SPDX-License-Identifier: GPL-2.0
//
// Keeping a segment of a request beyond the walk: once the request has ended its pages go
// back to whoever issued the I/O. A segment is lent to the closure for one call only.
//
// error: E0521

use crate::abstractions::blk::{Driver, Request, Segment};
use kernel::prelude::*;

pub struct Lazy;

impl Driver for Lazy {
    fn transfer(&self, rq: &Request<'_>) -> Result {
        let mut last: Option<&mut Segment<'_>> = None;
        rq.for_each_segment(|seg| {
            last = Some(seg);
            Ok(())
        })?;
        if let Some(seg) = last {
            let n = seg.len();
            seg.zero(0, n)?;
        }
        Ok(())
    }
}
