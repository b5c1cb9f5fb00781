// SPDX-License-Identifier: GPL-2.0

//! Suite `iovx_direct_io`: `DirectIo` implementations called as the VFS calls them, with a
//! synchronous kiocb: the `Ended` token each must hand back, and `Kiocb::direct_io` moving kernel
//! and user memory to and from a test disk.

#![deny(unsafe_code)]

use super::bio::{byte_at, test_disk, TestDriver};
use crate::abstractions::bio::{Bio, BioSlot, Inline};
use crate::abstractions::blk::Disk;
use crate::abstractions::counters::COUNTERS;
use crate::abstractions::direct_io::{test_sync_read, test_sync_write, DirectIo, Ended, Kiocb};
use crate::abstractions::iov::{Dest, IovIter, Kvec, Source};
use crate::abstractions::kunit::{CaseResult, Test};
use crate::{kunit_assert, kunit_assert_eq, kunit_suite};
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use kernel::{page::PAGE_SIZE, prelude::*, uaccess::UserSlice};

/// Direct I/O to the test disk at the file position, as `/dev/iovx_dioN` does (without its
/// checks).
struct TestDio {
    disk: Disk<TestDriver>,
}

impl DirectIo for TestDio {
    fn size(&self) -> u64 {
        64 << 20
    }

    fn read_iter<'a>(&self, mut io: Kiocb<'a, Dest>) -> Ended<'a> {
        let (pos, len) = (io.pos() as u64, io.iter().len());
        io.direct_io(self.disk.target(), pos, len)
    }

    fn write_iter<'a>(&self, mut io: Kiocb<'a, Source>) -> Ended<'a> {
        let (pos, len) = (io.pos() as u64, io.iter().len());
        io.direct_io(self.disk.target(), pos, len)
    }
}

/// Answers every call without I/O, as `answer` says: 0 done with more bytes than asked, 1
/// failed with `-EIOCBQUEUED`, 2 failed with `ENOSPC`.
struct Answer {
    answer: AtomicU32,
}

impl Answer {
    fn end<'a, D: crate::abstractions::iov::Direction>(&self, io: Kiocb<'a, D>) -> Ended<'a> {
        match self.answer.load(Relaxed) {
            0 => io.done(usize::MAX),
            1 => io.fail(Error::from_errno(-529)),
            _ => io.fail(ENOSPC),
        }
    }
}

impl DirectIo for Answer {
    fn size(&self) -> u64 {
        0
    }

    fn read_iter<'a>(&self, io: Kiocb<'a, Dest>) -> Ended<'a> {
        self.end(io)
    }

    fn write_iter<'a>(&self, io: Kiocb<'a, Source>) -> Ended<'a> {
        self.end(io)
    }
}

/// Kernel memory through `Kiocb::direct_io`, synchronously: a write of 2 pages (the inline bio)
/// and of 64 KiB (several bios and a waiter) carry the buffer's bytes; reads bring the disk's;
/// each call returns its bytes and moves the file position past them.
fn kvec_through_kiocb(t: &Test) -> CaseResult {
    let dev = TestDio {
        disk: test_disk(512)?,
    };
    for len in [2 * PAGE_SIZE, 64 * 1024] {
        let pos = 8192i64;
        let mut data = KVec::from_elem(0u8, len, GFP_KERNEL)?;
        for (i, b) in data.iter_mut().enumerate() {
            *b = byte_at(pos as u64 + i as u64);
        }
        let mut segs = [Kvec::<Source>::new(&data)];
        let mut it = IovIter::kvec(&mut segs)?;
        let (ret, after) = test_sync_write(&dev, &mut it, pos);
        kunit_assert_eq!(t, (ret, after), (len as isize, pos + len as i64));
        kunit_assert!(t, !dev.disk.driver().mismatch.load(Relaxed));
        let mut back = KVec::from_elem(0u8, len, GFP_KERNEL)?;
        {
            let mut segs = [Kvec::<Dest>::new(&mut back)];
            let mut it = IovIter::kvec(&mut segs)?;
            let (ret, after) = test_sync_read(&dev, &mut it, pos);
            kunit_assert_eq!(t, (ret, after), (len as isize, pos + len as i64));
        }
        kunit_assert!(t, back[..] == data[..], "a read brought other bytes");
    }
    Ok(())
}

/// User memory through `Kiocb::direct_io`: a read pins each page for writing, fills it,
/// dirties and unpins it once; a failing disk's error is the call's result, with every pin
/// dropped.
fn ubuf_through_kiocb(t: &Test) -> CaseResult {
    let dev = TestDio {
        disk: test_disk(512)?,
    };
    let len = 8 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    let before = COUNTERS.snapshot();
    let mut it = IovIter::<Dest>::ubuf(addr, len)?;
    let (ret, after) = test_sync_read(&dev, &mut it, 4096);
    kunit_assert_eq!(t, (ret, after), (len as isize, 4096 + len as i64));
    let mut back = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    UserSlice::new(addr, len).reader().read_slice(&mut back)?;
    kunit_assert!(
        t,
        back.iter()
            .enumerate()
            .all(|(i, b)| *b == byte_at(4096 + i as u64))
    );
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned, d.dirtied), (8, 8, 8));
    dev.disk.driver().fail.store(true, Relaxed);
    let mut it = IovIter::<Source>::ubuf(addr, len)?;
    let (ret, _) = test_sync_write(&dev, &mut it, 0);
    kunit_assert_eq!(t, ret, EIO.to_errno() as isize);
    kunit_assert!(t, COUNTERS.snapshot().since(&before).balanced());
    Ok(())
}

/// `ITER_ALLOW_P2PDMA` is passed by the bio path only for a target whose queue supports P2P
/// DMA: not for the RAM disk's, whose bios (pooled and inline) then extract with no flag, and
/// a read of user memory through the kiocb pins, fills, dirties and unpins as usual.
fn p2p_flag_only_for_p2p_target(t: &Test) -> CaseResult {
    let dev = TestDio {
        disk: test_disk(512)?,
    };
    let target = dev.disk.target();
    kunit_assert!(t, !target.supports_p2pdma());
    let bio = Bio::<Dest>::new(target, 0, 4)?;
    kunit_assert!(
        t,
        !bio.allows_p2pdma(),
        "a RAM disk bio extracts with ITER_ALLOW_P2PDMA"
    );
    drop(bio);
    let mut slot = BioSlot::new();
    let bio = Bio::<Source, Inline<'_>>::new_inline(&mut slot, target, 0);
    kunit_assert!(
        t,
        !bio.allows_p2pdma(),
        "an inline bio extracts with ITER_ALLOW_P2PDMA"
    );
    drop(bio);
    let len = 40 * PAGE_SIZE;
    let addr = t.vm_mmap(len, true, true)?;
    let before = COUNTERS.snapshot();
    let mut it = IovIter::<Dest>::ubuf(addr, len)?;
    let (ret, _) = test_sync_read(&dev, &mut it, 0);
    kunit_assert_eq!(t, ret, len as isize);
    let mut back = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    UserSlice::new(addr, len).reader().read_slice(&mut back)?;
    kunit_assert!(
        t,
        back.iter()
            .enumerate()
            .all(|(i, b)| *b == byte_at(i as u64))
    );
    let d = COUNTERS.snapshot().since(&before);
    kunit_assert_eq!(t, (d.pinned, d.unpinned, d.dirtied), (40, 40, 40));
    Ok(())
}

/// The endings an implementation can make without I/O: `done()` is cut to the call's length
/// (and moves the position by it), `fail()` gives the errno, and `-EIOCBQUEUED`, which only a
/// queued I/O may answer, becomes `EIO`.
fn endings_without_io(t: &Test) -> CaseResult {
    let dev = Answer {
        answer: AtomicU32::new(0),
    };
    let mut buf = [0u8; 100];
    let mut segs = [Kvec::<Dest>::new(&mut buf)];
    let mut it = IovIter::kvec(&mut segs)?;
    kunit_assert_eq!(t, test_sync_read(&dev, &mut it, 10), (100, 110));
    dev.answer.store(1, Relaxed);
    let data = [0u8; 100];
    let mut segs = [Kvec::<Source>::new(&data)];
    let mut it = IovIter::kvec(&mut segs)?;
    kunit_assert_eq!(
        t,
        test_sync_write(&dev, &mut it, 10),
        (EIO.to_errno() as isize, 10)
    );
    dev.answer.store(2, Relaxed);
    let mut segs = [Kvec::<Source>::new(&data)];
    let mut it = IovIter::kvec(&mut segs)?;
    kunit_assert_eq!(
        t,
        test_sync_write(&dev, &mut it, 10),
        (ENOSPC.to_errno() as isize, 10)
    );
    Ok(())
}

kunit_suite!(
    iovx_direct_io,
    [
        kvec_through_kiocb,
        ubuf_through_kiocb,
        p2p_flag_only_for_p2p_target,
        endings_without_io
    ]
);
