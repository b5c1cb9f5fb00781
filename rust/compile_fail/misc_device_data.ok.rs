// SPDX-License-Identifier: GPL-2.0
//
// Twin of misc_device_data.rs: the driver keeps its own reference to the shared counter.

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
    let dev = MiscDevice::register(
        name,
        Counting {
            reads: reads.clone(),
        },
    )?;
    Ok((dev, reads))
}
