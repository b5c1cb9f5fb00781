// SPDX-License-Identifier: GPL-2.0
//
// Twin of pt_iter_while_mapped.rs: the iterator is used again once the request is unmapped.

use crate::abstractions::iov::{Dest, IovIter};
use crate::abstractions::passthrough::{Bounce, Command, PtRequest, Queue};
use kernel::prelude::*;

pub fn misuse(queue: Queue<'_>, addr: usize) -> Result<u32> {
    let mut it = IovIter::<Dest>::ubuf(addr, 4096)?;
    let mut rq = PtRequest::<Dest>::new(queue, Command::default())?;
    rq.map(&mut it, Bounce::Always)?;
    let r = rq.execute()?;
    rq.unmap()?;
    it.advance(512);
    Ok(r)
}
