// SPDX-License-Identifier: GPL-2.0

//! Suite `iovx_miscdev`: the misc device layer through the VFS, with files opened by the kernel.
//!
//! A device dropped while one of its files is open: the file keeps the data and the table, and
//! closing it afterwards runs `release` and then `fops_put()`, which reads the table's `owner`.
//! Had the table been freed with the data, KASAN would report that read here.

use crate::abstractions::kunit::{CaseResult, Test};
use crate::abstractions::miscdev::{IoctlDevice, KernelFile, MiscIoctl};
use crate::{kunit_assert, kunit_assert_eq, kunit_suite};
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::{c_str, prelude::*};

/// Files of the probe device closed so far.
static RELEASED: AtomicUsize = AtomicUsize::new(0);
/// Probe data dropped so far.
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// An ioctl device that answers `cmd + 1` and counts its releases and drops.
struct Probe;

impl IoctlDevice for Probe {
    fn ioctl(&self, cmd: u32, _arg: usize) -> Result<isize> {
        Ok(cmd as isize + 1)
    }

    fn release(&self) {
        RELEASED.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

const PATH: &CStr = c_str!("/dev/iovx_kunit_misc");

/// The file outlives the device: the data goes with the last file, after `release`.
fn file_outlives_device(t: &Test) -> CaseResult {
    let (released, dropped) = (
        RELEASED.load(Ordering::Relaxed),
        DROPPED.load(Ordering::Relaxed),
    );
    let dev = MiscIoctl::register(c_str!("iovx_kunit_misc"), Probe)?;
    let f = match KernelFile::open(PATH) {
        Ok(f) => f,
        Err(e) if e == ENOENT => {
            t.skip(c_str!("no devtmpfs on /dev"));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let g = KernelFile::open(PATH)?;
    kunit_assert_eq!(t, f.ioctl(41, 0)?, 42);
    drop(g);
    kunit_assert_eq!(t, RELEASED.load(Ordering::Relaxed), released + 1);
    drop(dev);
    // Gone from /dev, but the open file still reaches its data.
    kunit_assert!(t, KernelFile::open(PATH).is_err());
    kunit_assert_eq!(t, DROPPED.load(Ordering::Relaxed), dropped);
    kunit_assert_eq!(t, f.ioctl(7, 0)?, 8);
    // The last file: `release`, the data, then `fops_put()` on the static table.
    drop(f);
    kunit_assert_eq!(t, RELEASED.load(Ordering::Relaxed), released + 2);
    kunit_assert_eq!(t, DROPPED.load(Ordering::Relaxed), dropped + 1);
    Ok(())
}

/// With no file open, dropping the device drops the data.
fn drop_without_files(t: &Test) -> CaseResult {
    let dropped = DROPPED.load(Ordering::Relaxed);
    let dev = MiscIoctl::register(c_str!("iovx_kunit_misc"), Probe)?;
    drop(dev);
    kunit_assert_eq!(t, DROPPED.load(Ordering::Relaxed), dropped + 1);
    Ok(())
}

kunit_suite!(iovx_miscdev, [file_outlives_device, drop_without_files]);
