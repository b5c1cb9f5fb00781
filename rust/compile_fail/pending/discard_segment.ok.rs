// SPDX-License-Identifier: GPL-2.0
//
// Twin of discard_segment.rs: segments are walked for a write, a discard is served by range.

use crate::abstractions::blk::{Command, Driver, Request};
use kernel::prelude::*;

pub struct Zeroing;

impl Driver for Zeroing {
    fn transfer(&self, rq: &Request<'_>) -> Result {
        match rq.command() {
            Command::Write(data) => data.for_each_segment(|seg| {
                let n = seg.len();
                if n == 0 {
                    return Err(EINVAL);
                }
                Ok(())
            }),
            Command::Discard(range) => {
                let _ = (range.sector(), range.len());
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
