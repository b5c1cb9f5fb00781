// SPDX-License-Identifier: GPL-2.0
//
// A passthrough request used after unmap: `unmap` released its pages and freed the request, so
// executing it again would run a freed request over released pages. `unmap` takes the request.
//
// error: E0382

use crate::abstractions::iov::{IovIter, Source};
use crate::abstractions::passthrough::{Bounce, Command, PtRequest, Queue};
use kernel::prelude::*;

pub fn misuse(queue: Queue<'_>, addr: usize) -> Result<u32> {
    let mut it = IovIter::<Source>::ubuf(addr, 4096)?;
    let mut rq = PtRequest::<Source>::new(queue, Command::default())?;
    rq.map(&mut it, Bounce::IfNeeded)?;
    rq.execute()?;
    rq.unmap()?;
    rq.execute()
}
