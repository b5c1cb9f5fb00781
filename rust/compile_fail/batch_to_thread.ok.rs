// SPDX-License-Identifier: GPL-2.0
//
// Twin of batch_to_thread.rs: pins that another thread will release are held in a
// `HeldPages`, which owns its page array and is `Send`.

use crate::abstractions::gup::HeldPages;
use crate::abstractions::iov::{Dest, IovIter};
use crate::abstractions::pages::Mode;
use kernel::{page::PAGE_SIZE, prelude::*};

fn need_send<T: Send>(_: T) {}

pub fn misuse(addr: usize) -> Result {
    let mut held = HeldPages::new(4, Mode::Pinned)?;
    held.take(4, |slots| {
        IovIter::<Dest>::ubuf(addr, 4 * PAGE_SIZE)?.extract(slots, 4 * PAGE_SIZE)
    })?;
    need_send(held);
    Ok(())
}
