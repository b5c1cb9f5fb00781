// SPDX-License-Identifier: GPL-2.0
//
// Twin of pt_read_into_source.rs: a passthrough read maps a destination iterator.

use crate::abstractions::iov::{Dest, IovIter};
use crate::abstractions::passthrough::{Bounce, Command, PtRequest, Queue};
use kernel::prelude::*;

pub fn misuse(queue: Queue<'_>, addr: usize) -> Result<u32> {
    let mut it = IovIter::<Dest>::ubuf(addr, 4096)?;
    let mut rq = PtRequest::<Dest>::new(queue, Command::default())?;
    rq.map(&mut it, Bounce::IfNeeded)?;
    rq.execute()
}
