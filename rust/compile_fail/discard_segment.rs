// SPDX-License-Identifier: GPL-2.0
//
// Walking the data segments of a discard request: a discard carries a range, not data, and
// its bio has no segment array (`bi_io_vec` is NULL), so a walk would dereference NULL. Only
// read and write requests give segments.
//
// error: E0599

use crate::abstractions::blk::{Driver, Failure, Op, Request};
use kernel::prelude::*;

pub struct Zeroing;

impl Driver for Zeroing {
    fn transfer(&self, rq: &Request<'_>) -> Result<(), Failure> {
        match rq.op() {
            Op::Discard(range) => range.for_each_segment(|seg| {
                let n = seg.len();
                seg.zero(0, n)
            }),
            _ => Ok(()),
        }
    }
}
