// SPDX-License-Identifier: GPL-2.0
//
// Twin of pt_after_unmap.rs: the result is read from what unmap gives back.

use crate::abstractions::iov::{IovIter, Source};
use crate::abstractions::passthrough::{Bounce, Command, PtRequest, Queue};
use kernel::prelude::*;

pub fn misuse(queue: Queue<'_>, addr: usize) -> Result<u32> {
    let mut it = IovIter::<Source>::ubuf(addr, 4096)?;
    let mut rq = PtRequest::<Source>::new(queue, Command::default())?;
    rq.map(&mut it, Bounce::IfNeeded)?;
    rq.execute()?;
    Ok(rq.unmap()?.result)
}
