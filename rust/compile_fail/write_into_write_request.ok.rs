// SPDX-License-Identifier: GPL-2.0
//
// Twin of write_into_write_request.rs: a write's segments are read, a read's are written.

use crate::abstractions::blk::{Driver, Failure, Op, Request};
use kernel::prelude::*;

pub struct Copier;

impl Driver for Copier {
    fn transfer(&self, rq: &Request<'_>) -> Result<(), Failure> {
        let mut buf = [0u8; 5];
        match rq.op() {
            Op::Write(data) => {
                data.for_each_segment(|seg| seg.copy_to_slice(0, &mut buf).map_err(Failure::from))
            }
            Op::Read(data) => {
                data.for_each_segment(|seg| seg.copy_from_slice(0, b"owned").map_err(Failure::from))
            }
            _ => Ok(()),
        }
    }
}
