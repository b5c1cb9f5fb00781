// SPDX-License-Identifier: GPL-2.0
//
// Writing into the pages of a write request: they are lent only for reading (a read-only
// page-cache page pinned without FOLL_WRITE, the shared zero page), so the driver would
// change memory it may not. A write's segments can only be copied from.
//
// error: E0599

use crate::abstractions::blk::{Driver, Failure, Op, Request};
use kernel::prelude::*;

pub struct Scribbler;

impl Driver for Scribbler {
    fn transfer(&self, rq: &Request<'_>) -> Result<(), Failure> {
        match rq.op() {
            Op::Write(data) => {
                data.for_each_segment(|seg| seg.copy_from_slice(0, b"owned").map_err(Failure::from))
            }
            _ => Ok(()),
        }
    }
}
