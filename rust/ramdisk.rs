// SPDX-License-Identifier: GPL-2.0

//! The `iovx` test block driver: a RAM disk in safe Rust.
//!
//! Storage is allocated a page at a time on first write; never-written sectors read as zeroes.
//! Discard frees whole pages and zeroes partial ones; write-zeroes does the same (a freed page
//! reads as zeroes). Flush and FUA need nothing: the data is in memory once the write completes.
//!
//! The pages are kept in chunks of [`CHUNK_PAGES`] (2 MiB of data with 4 KiB pages), each behind
//! its own spinlock, so that I/O to different parts of the disk does not contend; the table of
//! chunks is made with the disk, and a chunk's page table on its first write. Memory use is the
//! data written plus one pointer per page of a touched chunk.
//!
//! Requests are served in atomic context, so storage is allocated with `GFP_NOWAIT`. When such
//! an allocation fails, the request is handed back as busy ([`Failure::Busy`]) and blk-mq tries
//! it again later: memory pressure delays a write, it does not fail it. The `ramdisk_fail_allocs`
//! knob in debugfs makes the next allocations fail, to show that.

#![deny(unsafe_code)]

use crate::abstractions::blk::{self, zero_page_range, Data, Failure, Op, Request, Segment};
use crate::abstractions::iov::{Dest, Source};
use crate::abstractions::passthrough::Queue;

pub(crate) mod ng;
mod pt;
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering::Relaxed};
use kernel::{
    new_spinlock,
    page::{Page, PAGE_SIZE},
    prelude::*,
    sync::lock::{spinlock::SpinLockBackend, Guard},
    sync::SpinLock,
};

/// Pages of storage held by all the RAM disks of the module (shown in debugfs).
pub(crate) static STORAGE_PAGES: AtomicU64 = AtomicU64::new(0);

/// Storage allocations still to fail on purpose (a debugfs knob, for tests): while it is
/// positive, each allocation of storage takes one off and fails as if memory were short.
pub(crate) static FAIL_ALLOCS: AtomicI32 = AtomicI32::new(0);

/// Requests handed back as busy because storage could not be allocated (shown in debugfs).
pub(crate) static BUSY: AtomicU64 = AtomicU64::new(0);

/// Pieces of bios split by the block layer to fit the queue's limits that reached the disk
/// (shown in debugfs): see [`Request::split_pieces`].
pub(crate) static SPLIT_PIECES: AtomicU64 = AtomicU64::new(0);

/// Whether this storage allocation is to fail on purpose ([`FAIL_ALLOCS`]).
fn fail_on_purpose() -> bool {
    FAIL_ALLOCS
        .fetch_update(Relaxed, Relaxed, |n| (n > 0).then(|| n - 1))
        .is_ok()
}

/// A zeroed page of storage, or `Busy` when memory is short now.
fn alloc_storage_page() -> Result<Page, Failure> {
    if fail_on_purpose() {
        return Err(Failure::Busy);
    }
    let page =
        Page::alloc_page(GFP_NOWAIT | __GFP_NOWARN | __GFP_ZERO).map_err(|_| Failure::Busy)?;
    STORAGE_PAGES.fetch_add(1, Relaxed);
    Ok(page)
}

/// The page table of a chunk, all empty, or `Busy` when memory is short now.
fn alloc_chunk_table() -> Result<Pages, Failure> {
    if fail_on_purpose() {
        return Err(Failure::Busy);
    }
    let mut pages =
        KVec::with_capacity(CHUNK_PAGES, GFP_NOWAIT | __GFP_NOWARN).map_err(|_| Failure::Busy)?;
    for _ in 0..CHUNK_PAGES {
        // Within the capacity: no allocation.
        pages.push(None, GFP_NOWAIT).map_err(|_| Failure::Busy)?;
    }
    Ok(pages)
}

/// Pages per chunk.
pub(crate) const CHUNK_PAGES: usize = 512;

/// Pages a request copies under one hold of a chunk's lock before it lets go and takes it again,
/// so that a large request does not keep others waiting (and preemption off) for long.
const PAGES_PER_HOLD: usize = 16;

const SECTOR: u64 = 512;

type Pages = KVec<Option<Page>>;

type ChunkGuard<'a> = Guard<'a, Option<Pages>, SpinLockBackend>;

/// A walk over the pages of a disk that keeps the lock of the chunk it is in across pages, for
/// up to [`PAGES_PER_HOLD`] pages.
struct Cursor<'a> {
    disk: &'a RamDisk,
    chunk: usize,
    pages: usize,
    guard: Option<ChunkGuard<'a>>,
}

impl<'a> Cursor<'a> {
    fn new(disk: &'a RamDisk) -> Self {
        Self {
            disk,
            chunk: 0,
            pages: 0,
            guard: None,
        }
    }

    /// Runs `f` on the page table of the chunk holding disk page `index`, with the chunk's lock
    /// held, giving it the index within the chunk. The table is made first if `make` is set,
    /// otherwise `f` gets `None` for a chunk never written.
    #[inline]
    fn with_chunk<R>(
        &mut self,
        index: usize,
        make: bool,
        f: impl FnOnce(Option<&mut Pages>, usize) -> Result<R, Failure>,
    ) -> Result<R, Failure> {
        let c = index / CHUNK_PAGES;
        if self.chunk != c || self.pages >= PAGES_PER_HOLD {
            // One lock at a time: let go of the previous chunk first.
            self.guard = None;
        }
        let guard = match &mut self.guard {
            Some(g) => g,
            empty => {
                let chunk = self.disk.chunks.get(c).ok_or(EIO)?;
                self.chunk = c;
                self.pages = 0;
                empty.insert(chunk.lock())
            }
        };
        self.pages += 1;
        if guard.is_none() && make {
            **guard = Some(alloc_chunk_table()?);
        }
        f(guard.as_mut(), index % CHUNK_PAGES)
    }
}

/// The RAM disk's storage.
pub(crate) struct RamDisk {
    chunks: KVec<Pin<KBox<SpinLock<Option<Pages>>>>>,
    capacity: u64,
}

impl RamDisk {
    /// Storage for `capacity` bytes (a multiple of the page size), none of it allocated yet.
    pub(crate) fn new(capacity: u64) -> Result<Self> {
        let pages = (capacity / PAGE_SIZE as u64) as usize;
        let nchunks = pages.div_ceil(CHUNK_PAGES);
        let mut chunks = KVec::with_capacity(nchunks, GFP_KERNEL)?;
        for _ in 0..nchunks {
            chunks.push(KBox::pin_init(new_spinlock!(None), GFP_KERNEL)?, GFP_KERNEL)?;
        }
        Ok(Self { chunks, capacity })
    }

    /// Walks `len` bytes of the disk from byte `pos` in pieces that stay within one storage page:
    /// `f(page index, offset in page, length, offset in the walk)`.
    fn pieces(
        pos: u64,
        len: usize,
        mut f: impl FnMut(usize, usize, usize, usize) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let mut done = 0;
        while done < len {
            let at = pos + done as u64;
            let index = (at / PAGE_SIZE as u64) as usize;
            let off = (at % PAGE_SIZE as u64) as usize;
            let n = (PAGE_SIZE - off).min(len - done);
            f(index, off, n, done)?;
            done += n;
        }
        Ok(())
    }

    /// Copies `n` bytes of `seg` from byte `at` into storage page `index` at `off`, allocating
    /// the page on its first write.
    #[inline]
    fn write_piece(
        cur: &mut Cursor<'_>,
        seg: &Segment<'_, Source>,
        index: usize,
        off: usize,
        n: usize,
        at: usize,
    ) -> Result<(), Failure> {
        cur.with_chunk(index, true, |pages, i| {
            let pages = pages.ok_or(Failure::Busy)?;
            let slot = &mut pages[i];
            let page = match slot {
                Some(page) => page,
                empty => empty.insert(alloc_storage_page()?),
            };
            Ok(seg.copy_to_page(at, page, off, n)?)
        })
    }

    #[inline]
    fn write_segment(
        cur: &mut Cursor<'_>,
        pos: u64,
        seg: &Segment<'_, Source>,
    ) -> Result<(), Failure> {
        let off = (pos % PAGE_SIZE as u64) as usize;
        if off + seg.len() <= PAGE_SIZE {
            // Within one storage page (a whole page, or a block of a larger page), the usual
            // case: one piece.
            let index = (pos / PAGE_SIZE as u64) as usize;
            return Self::write_piece(cur, seg, index, off, seg.len(), 0);
        }
        Self::pieces(pos, seg.len(), |index, off, n, at| {
            Self::write_piece(cur, seg, index, off, n, at)
        })
    }

    #[inline]
    fn read_segment(
        cur: &mut Cursor<'_>,
        pos: u64,
        seg: &mut Segment<'_, Dest>,
    ) -> Result<(), Failure> {
        let off = (pos % PAGE_SIZE as u64) as usize;
        let len = seg.len();
        if off + len <= PAGE_SIZE {
            // Within one storage page (a whole page, or a block of a larger page), the usual
            // case: one piece.
            let index = (pos / PAGE_SIZE as u64) as usize;
            return cur.with_chunk(index, false, |pages, i| {
                Ok(match pages.and_then(|p| p[i].as_ref()) {
                    Some(page) => seg.copy_from_page(0, page, off, len),
                    None => seg.zero(0, len),
                }?)
            });
        }
        Self::pieces(pos, seg.len(), |index, off, n, at| {
            cur.with_chunk(index, false, |pages, i| {
                Ok(match pages.and_then(|p| p[i].as_ref()) {
                    Some(page) => seg.copy_from_page(at, page, off, n),
                    None => seg.zero(at, n),
                }?)
            })
        })
    }

    /// The byte position of `len` bytes from `sector`, if they lie within the disk.
    fn span(&self, sector: u64, len: usize) -> Result<u64> {
        let pos = sector.checked_mul(SECTOR).ok_or(EIO)?;
        match pos.checked_add(len as u64) {
            Some(end) if end <= self.capacity => Ok(pos),
            _ => Err(EIO),
        }
    }

    fn read(&self, data: &Data<'_, Dest>) -> Result<(), Failure> {
        self.read_at(data.sector(), data)
    }

    /// Reads into `data` from `sector` on (a read, or a passthrough read of [`pt`]).
    fn read_at(&self, sector: u64, data: &Data<'_, Dest>) -> Result<(), Failure> {
        let mut at = self.span(sector, data.len())?;
        let mut cur = Cursor::new(self);
        data.for_each_segment(|seg| {
            Self::read_segment(&mut cur, at, seg)?;
            at += seg.len() as u64;
            Ok(())
        })
    }

    fn write(&self, data: &Data<'_, Source>) -> Result<(), Failure> {
        self.write_at(data.sector(), data)
    }

    /// Writes `data` to `sector` on (a write, or a passthrough write of [`pt`]).
    fn write_at(&self, sector: u64, data: &Data<'_, Source>) -> Result<(), Failure> {
        let mut at = self.span(sector, data.len())?;
        let mut cur = Cursor::new(self);
        data.for_each_segment(|seg| {
            Self::write_segment(&mut cur, at, seg)?;
            at += seg.len() as u64;
            Ok(())
        })
    }

    /// Discard and write-zeroes: whole pages are freed, partial ones zeroed.
    fn zero_range(&self, range: blk::Range) -> Result<(), Failure> {
        let pos = self.span(range.sector, range.len)?;
        let len = range.len;
        let mut cur = Cursor::new(self);
        Self::pieces(pos, len, |index, off, n, _| {
            cur.with_chunk(index, false, |pages, i| {
                let Some(pages) = pages else { return Ok(()) };
                if n == PAGE_SIZE {
                    if pages[i].take().is_some() {
                        STORAGE_PAGES.fetch_sub(1, Relaxed);
                    }
                } else if let Some(page) = pages[i].as_mut() {
                    zero_page_range(page, off, n)?;
                }
                Ok(())
            })
        })
    }
}

impl Drop for RamDisk {
    fn drop(&mut self) {
        let held: usize = self
            .chunks
            .iter()
            .map(|c| {
                c.lock()
                    .as_ref()
                    .map_or(0, |p| p.iter().filter(|x| x.is_some()).count())
            })
            .sum();
        STORAGE_PAGES.fetch_sub(held as u64, Relaxed);
    }
}

impl blk::Driver for RamDisk {
    #[inline]
    fn transfer(&self, rq: &Request<'_>) -> Result<(), Failure> {
        let r = match rq.op() {
            Op::Read(data) => self.read(&data),
            Op::Write(data) => self.write(&data),
            // Flush and FUA need nothing: the data is in memory once the write completes.
            Op::Flush => Ok(()),
            Op::Discard(range) | Op::WriteZeroes(range) => self.zero_range(range),
            // Passthrough commands (the ioctl of `pt`).
            Op::DrvIn(pt) => self.pt_in(&pt),
            Op::DrvOut(pt) => self.pt_out(&pt),
            Op::Other => Err(blk::not_supported().into()),
        };
        match r {
            Err(Failure::Busy) => {
                BUSY.fetch_add(1, Relaxed);
            }
            // Counted once, when served (a busy request comes back).
            _ => {
                let pieces = rq.split_pieces();
                if pieces != 0 {
                    SPLIT_PIECES.fetch_add(pieces as u64, Relaxed);
                }
            }
        }
        r
    }

    fn ioctl(&self, queue: Queue<'_>, writable: bool, cmd: u32, arg: usize) -> Result<isize> {
        pt::ioctl(queue, writable, cmd, arg)
    }
}
