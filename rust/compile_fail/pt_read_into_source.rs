// SPDX-License-Identifier: GPL-2.0
//
// A passthrough read (REQ_OP_DRV_IN: the device writes the memory) mapped over memory lent for
// reading (a source iterator: a write's buffer, perhaps read-only). `map` of a
// `PtRequest<Dest>` takes only destination iterators.
//
// error: E0308

use crate::abstractions::iov::{Dest, IovIter, Source};
use crate::abstractions::passthrough::{Bounce, Command, PtRequest, Queue};
use kernel::prelude::*;

pub fn misuse(queue: Queue<'_>, addr: usize) -> Result<u32> {
    let mut it = IovIter::<Source>::ubuf(addr, 4096)?;
    let mut rq = PtRequest::<Dest>::new(queue, Command::default())?;
    rq.map(&mut it, Bounce::IfNeeded)?;
    rq.execute()
}
