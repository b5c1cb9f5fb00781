// SPDX-License-Identifier: GPL-2.0
//
// Reaching a device's data through its registration (`MiscDevice::data()`, removed). Not
// unsound with the registration's reference alive, but the data belongs to the open files as
// much as to the registration and is reached in their file operations only; state a driver
// needs elsewhere it shares through an `Arc` of its own. This keeps the accessor from returning.
//
// error: E0599

use crate::abstractions::direct_io::{DirectIo, Ended, Kiocb};
use crate::abstractions::iov::{Dest, Source};
use crate::abstractions::miscdev::MiscDevice;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{prelude::*, sync::Arc};

pub struct Counting {
    reads: Arc<AtomicU64>,
}

impl DirectIo for Counting {
    fn size(&self) -> u64 {
        0
    }

    fn read_iter<'a>(&self, io: Kiocb<'a, Dest>) -> Ended<'a> {
        self.reads.fetch_add(1, Relaxed);
        io.done(0)
    }

    fn write_iter<'a>(&self, io: Kiocb<'a, Source>) -> Ended<'a> {
        io.done(0)
    }
}

pub fn misuse(name: &CStr) -> Result<(MiscDevice<Counting>, Arc<AtomicU64>)> {
    let reads = Arc::new(AtomicU64::new(0), GFP_KERNEL)?;
    let dev = MiscDevice::register(name, Counting { reads })?;
    let reads = dev.data().reads.clone();
    Ok((dev, reads))
}
