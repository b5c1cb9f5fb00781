// SPDX-License-Identifier: GPL-2.0
//
// The iterator of a mapped passthrough request used meanwhile: a bounced read copies back into
// it at unmap, and a mapped one's memory is the request's until then. The request borrows the
// iterator mutably until it is unmapped or dropped.
//
// error: E0499

use crate::abstractions::iov::{Dest, IovIter};
use crate::abstractions::passthrough::{Bounce, Command, PtRequest, Queue};
use kernel::prelude::*;

pub fn misuse(queue: Queue<'_>, addr: usize) -> Result<u32> {
    let mut it = IovIter::<Dest>::ubuf(addr, 4096)?;
    let mut rq = PtRequest::<Dest>::new(queue, Command::default())?;
    rq.map(&mut it, Bounce::Always)?;
    it.advance(512);
    rq.execute()
}
