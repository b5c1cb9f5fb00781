// SPDX-License-Identifier: GPL-2.0
//
// Twin of discard_segment.rs: a discard is served from its range; only a read's data is
// walked.

use crate::abstractions::blk::{Driver, Failure, Op, Request};
use kernel::prelude::*;

pub struct Zeroing;

impl Driver for Zeroing {
    fn transfer(&self, rq: &Request<'_>) -> Result<(), Failure> {
        match rq.op() {
            Op::Discard(range) => {
                let _ = (range.sector, range.len);
                Ok(())
            }
            Op::Read(data) => data.for_each_segment(|seg| {
                let n = seg.len();
                seg.zero(0, n).map_err(Failure::from)
            }),
            _ => Ok(()),
        }
    }
}
