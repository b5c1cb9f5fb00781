// SPDX-License-Identifier: GPL-2.0

//! Folios held in an XArray or in a folio queue, and the XARRAY and FOLIOQ iterators over them.
//!
//! C headers: [`include/linux/xarray.h`](srctree/include/linux/xarray.h),
//! [`include/linux/folio_queue.h`](srctree/include/linux/folio_queue.h),
//! [`include/linux/uio.h`](srctree/include/linux/uio.h) (`iov_iter_xarray()`,
//! `iov_iter_folio_queue()`).
//!
//! The page cache and network filesystems describe their buffers as folios in an XArray
//! (`ITER_XARRAY`) or as a queue of folio batches (`ITER_FOLIOQ`). Extraction only lists the
//! pages of such iterators, as it does for KVEC and BVEC. Both kinds rely on their container
//! being well formed: 6.12's copy through an XArray iterator (`iterate_xarray()`) skips an empty
//! index and puts the bytes that belonged there into the next folio, its extraction stops there
//! (and, at an empty first index with an offset, reports bytes it did not list), and its walk of
//! a folio queue steps past a segment's last slot only, so it would read the empty slots of a
//! segment that is not full. So the containers here are built by this module and never changed
//! afterwards: [`FolioXArray`] holds its folios at every index of a range from 0 with no hole,
//! and [`FolioQueue`] fills each segment before it starts the next. An iterator borrows its
//! container for `'data` (mutably for a destination), so neither it nor a page extracted from it
//! can outlive the folios, and the container's own `read` and `write` cannot run while a
//! destination iterator lives.
//!
//! A container holds at most [`MAX_BYTES`]; its folios are allocated with
//! `__GFP_RETRY_MAYFAIL`, so a request for more memory than there is fails with `ENOMEM` rather
//! than invoking the OOM killer.

use core::ptr::NonNull;
use kernel::{bindings, prelude::*, types::Opaque};

use super::iov::{max_rw_count, Dest, Direction, IovIter, Source};
use super::shim;
use super::task::might_sleep;

/// The largest order a folio can have (`MAX_PAGE_ORDER`).
fn max_order() -> u32 {
    // SAFETY: No preconditions.
    unsafe { shim::iovx_max_page_order() }
}

/// The most bytes a [`FolioXArray`] or a [`FolioQueue`] holds (1 GiB).
pub const MAX_BYTES: usize = 1 << 30;

/// Zeroed folios allocated here, in order, each with one reference owned by this value.
///
/// # Invariants
///
/// Every pointer is a folio returned by `folio_alloc()` whose reference is owned by this value
/// and put on drop; `starts[i]` is the byte offset of `folios[i]` (the sum of the sizes of the
/// folios before it), increasing; `len`, at most [`MAX_BYTES`], is the sum of all their sizes.
struct Folios {
    folios: KVec<NonNull<bindings::folio>>,
    starts: KVec<usize>,
    len: usize,
}

impl Folios {
    fn new() -> Self {
        Self {
            folios: KVec::new(),
            starts: KVec::new(),
            len: 0,
        }
    }

    /// Allocates a zeroed folio of `order` and keeps it. `EINVAL` for an order above
    /// `MAX_PAGE_ORDER` or past [`MAX_BYTES`] in all, `ENOMEM` if there is no memory.
    fn push(&mut self, order: u32) -> Result<NonNull<bindings::folio>> {
        if order > max_order() {
            return Err(EINVAL);
        }
        let size = kernel::page::PAGE_SIZE << order;
        if self.len + size > MAX_BYTES {
            return Err(EINVAL);
        }
        self.folios.reserve(1, GFP_KERNEL)?;
        self.starts.reserve(1, GFP_KERNEL)?;
        // SAFETY: No preconditions; process context (the callers sleep first). The shim refuses
        // orders above `MAX_PAGE_ORDER` with a null pointer instead of warning.
        let f = NonNull::new(unsafe { shim::iovx_folio_alloc(order) }).ok_or(ENOMEM)?;
        // INVARIANT: The reference `folio_alloc()` gave is now this value's, at the end; room
        // was reserved, so neither push fails. `size` is the folio's (`PAGE_SIZE << order`).
        self.folios.push(f, GFP_KERNEL)?;
        self.starts.push(self.len, GFP_KERNEL)?;
        self.len += size;
        Ok(f)
    }

    /// The size of folio `i`.
    fn size(&self, i: usize) -> usize {
        self.starts.get(i + 1).copied().unwrap_or(self.len) - self.starts[i]
    }

    /// The index of the folio holding byte `pos` and the offset of `pos` in it, or `None` past
    /// the end.
    fn locate(&self, pos: usize) -> Option<(usize, usize)> {
        if pos >= self.len {
            return None;
        }
        // `starts[0]` is 0, so at least one start is at or below `pos`.
        let i = self.starts.partition_point(|&s| s <= pos).checked_sub(1)?;
        Some((i, pos - self.starts[i]))
    }

    fn check(&self, pos: usize, len: usize) -> Result {
        match pos.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(EINVAL),
        }
    }

    /// Copies `data` into the folios from byte `pos`. `EINVAL` if it does not fit.
    fn write(&mut self, pos: usize, data: &[u8]) -> Result {
        self.check(pos, data.len())?;
        let mut done = 0;
        while done < data.len() {
            let Some((i, off)) = self.locate(pos + done) else {
                return Err(EINVAL);
            };
            let n = (self.size(i) - off).min(data.len() - done);
            // SAFETY: The folio is live (type invariant) and `off + n` is within it; the source
            // range is within `data`. `&mut self` excludes every other access to the folios.
            unsafe {
                shim::iovx_memcpy_to_folio(self.folios[i].as_ptr(), off, data[done..].as_ptr(), n)
            };
            done += n;
        }
        Ok(())
    }

    /// Copies bytes from `pos` into `out`. `EINVAL` if the range does not lie within the folios.
    fn read(&self, pos: usize, out: &mut [u8]) -> Result {
        self.check(pos, out.len())?;
        let mut done = 0;
        while done < out.len() {
            let Some((i, off)) = self.locate(pos + done) else {
                return Err(EINVAL);
            };
            let n = (self.size(i) - off).min(out.len() - done);
            // SAFETY: As in `write`; the folios are only read, and no destination iterator can
            // write them while `&self` is held (it borrows the container mutably).
            unsafe {
                shim::iovx_memcpy_from_folio(
                    out[done..].as_mut_ptr(),
                    self.folios[i].as_ptr(),
                    off,
                    n,
                )
            };
            done += n;
        }
        Ok(())
    }
}

impl Drop for Folios {
    fn drop(&mut self) {
        for f in self.folios.iter() {
            // SAFETY: Each folio's reference is ours (type invariant) and is put once, here.
            unsafe { shim::iovx_folio_put(f.as_ptr()) };
        }
    }
}

/// Folios of one order held in an XArray, as the page cache holds a file's: folio `i` at the
/// indices of its pages, `i << order .. (i + 1) << order`, as one multi-index entry.
///
/// # Invariants
///
/// `xa` is an initialised XArray that never moves (it is boxed) and is only changed by
/// [`FolioXArray::new`]. Once `new` returns, every index below `folios.len / PAGE_SIZE` holds the
/// folio that covers that page (one multi-index entry per folio, all of one order, each starting
/// at an index that is a multiple of its size), and no other index holds anything. The XArray
/// holds no reference: the folios are kept by `folios` and outlive the XArray's entries (it is
/// destroyed first on drop).
pub struct FolioXArray {
    xa: KBox<Opaque<bindings::xarray>>,
    folios: Folios,
}

impl FolioXArray {
    /// Allocates `nr` zeroed folios of `order` (`PAGE_SIZE << order` bytes each) and stores them
    /// in a new XArray.
    ///
    /// Errors: `EINVAL` for no folio, an order above `MAX_PAGE_ORDER`, more than [`MAX_BYTES`],
    /// or an order above 0 in a kernel without multi-index XArray entries
    /// (`CONFIG_XARRAY_MULTI`); `ENOMEM` if memory runs out. Nothing is kept on an error.
    ///
    /// Context: process context; sleeps.
    pub fn new(nr: usize, order: u32) -> Result<Self> {
        might_sleep();
        if nr == 0 || order > max_order() {
            return Err(EINVAL);
        }
        let per_folio = 1usize << order;
        let fits = nr
            .checked_mul(kernel::page::PAGE_SIZE << order)
            .is_some_and(|len| len <= MAX_BYTES);
        if !fits {
            return Err(EINVAL);
        }
        let xa = KBox::new(Opaque::<bindings::xarray>::uninit(), GFP_KERNEL)?;
        // SAFETY: `xa` points to writable memory for an XArray, which is initialised here before
        // any other use and never moves (it stays in the box).
        unsafe { shim::iovx_xa_init(xa.get()) };
        // INVARIANT: The XArray is initialised and empty; the loop stores each folio at the
        // indices of its pages, in order, so no hole is left when it ends. On an error the
        // value is dropped and the XArray destroyed before the folios are put.
        let mut this = Self {
            xa,
            folios: Folios::new(),
        };
        for i in 0..nr {
            let f = this.folios.push(order)?;
            // SAFETY: The XArray is initialised; `f` is a folio that outlives the entry (the
            // XArray is destroyed before the folios are put); `i * per_folio` is a multiple of
            // its size. Process context.
            let r = unsafe {
                shim::iovx_xa_store_folio(this.xa.get(), (i * per_folio) as _, f.as_ptr())
            };
            if r != 0 {
                return Err(Error::from_errno(r));
            }
        }
        Ok(this)
    }

    /// The size in bytes.
    pub fn len(&self) -> usize {
        self.folios.len
    }

    /// Always false: there is at least one folio.
    pub fn is_empty(&self) -> bool {
        self.folios.len == 0
    }

    /// Copies `data` in from byte `pos`. `EINVAL` if it does not fit.
    pub fn write(&mut self, pos: usize, data: &[u8]) -> Result {
        self.folios.write(pos, data)
    }

    /// Copies bytes from `pos` out into `out`. `EINVAL` if the range does not lie within.
    pub fn read(&self, pos: usize, out: &mut [u8]) -> Result {
        self.folios.read(pos, out)
    }

    /// The arguments of `iov_iter_xarray()` for bytes `start..start + len`: the start and the
    /// count (capped at `MAX_RW_COUNT`). `EINVAL` if the range does not lie within the folios.
    fn args(&self, start: usize, len: usize) -> Result<(i64, usize)> {
        self.folios.check(start, len)?;
        let start = i64::try_from(start).map_err(|_| EINVAL)?;
        Ok((start, len.min(max_rw_count())))
    }
}

impl Drop for FolioXArray {
    fn drop(&mut self) {
        // SAFETY: The XArray is initialised (type invariant) and nothing uses it any more; its
        // entries are plain pointers, so destroying it frees only its nodes. The folios are put
        // afterwards, when the fields drop.
        unsafe { bindings::xa_destroy(self.xa.get()) };
    }
}

/// Folios in a queue of folio batches (`struct folio_queue`), as netfs keeps its buffers.
///
/// # Invariants
///
/// `segs` are the queue's segments in order, each allocated (zeroed) by the shim, chained both
/// ways (`next`, `prev`) and only changed by [`FolioQueue::new`]. Every segment but the last is
/// full (`folioq_full()`) and the last holds at least one folio; `firsts[k]` is the index in
/// `folios` of the first folio of `segs[k]`. The folios, in queue order, are those of `folios`,
/// which owns their references and outlives the segments' entries.
pub struct FolioQueue {
    segs: KVec<NonNull<bindings::folio_queue>>,
    firsts: KVec<usize>,
    folios: Folios,
}

impl FolioQueue {
    /// Allocates one zeroed folio for each entry of `orders`, of that order, and queues them in
    /// that order.
    ///
    /// Errors: `EINVAL` for no folio, an order above `MAX_PAGE_ORDER` or more than
    /// [`MAX_BYTES`]; `ENOMEM` if memory runs out. Nothing is kept on an error.
    ///
    /// Context: process context; sleeps.
    pub fn new(orders: &[u32]) -> Result<Self> {
        might_sleep();
        if orders.is_empty() {
            return Err(EINVAL);
        }
        // INVARIANT: Segments are added only when the last one is full, and each new folio is
        // appended to the last segment, so all but the last are full; on an error the value is
        // dropped, freeing the segments and putting the folios.
        let mut this = Self {
            segs: KVec::new(),
            firsts: KVec::new(),
            folios: Folios::new(),
        };
        for &order in orders {
            let f = this.folios.push(order)?;
            let index = this.folios.folios.len() - 1;
            let mut r = match this.segs.last() {
                // SAFETY: The segment is live and ours; `f` outlives its entry.
                Some(seg) => unsafe { shim::iovx_folioq_append(seg.as_ptr(), f.as_ptr()) },
                None => -(bindings::ENOSPC as i32),
            };
            if r == -(bindings::ENOSPC as i32) {
                this.segs.reserve(1, GFP_KERNEL)?;
                this.firsts.reserve(1, GFP_KERNEL)?;
                // SAFETY: No preconditions; process context.
                let seg = NonNull::new(unsafe { shim::iovx_folioq_alloc() }).ok_or(ENOMEM)?;
                // Room was reserved: neither push fails.
                this.segs.push(seg, GFP_KERNEL)?;
                this.firsts.push(index, GFP_KERNEL)?;
                if let [.., prev, seg] = &this.segs[..] {
                    // SAFETY: Both segments are live and ours.
                    unsafe { shim::iovx_folioq_chain(prev.as_ptr(), seg.as_ptr()) };
                }
                // SAFETY: `seg` is live, ours and empty; `f` outlives its entry.
                r = unsafe { shim::iovx_folioq_append(seg.as_ptr(), f.as_ptr()) };
            }
            if r < 0 {
                return Err(Error::from_errno(r));
            }
        }
        Ok(this)
    }

    /// The size in bytes.
    pub fn len(&self) -> usize {
        self.folios.len
    }

    /// Always false: there is at least one folio.
    pub fn is_empty(&self) -> bool {
        self.folios.len == 0
    }

    /// Copies `data` in from byte `pos`. `EINVAL` if it does not fit.
    pub fn write(&mut self, pos: usize, data: &[u8]) -> Result {
        self.folios.write(pos, data)
    }

    /// Copies bytes from `pos` out into `out`. `EINVAL` if the range does not lie within.
    pub fn read(&self, pos: usize, out: &mut [u8]) -> Result {
        self.folios.read(pos, out)
    }

    /// The arguments of `iov_iter_folio_queue()` for bytes `start..start + len`: the segment
    /// holding the first byte, its slot there, the offset in that folio and the count (capped at
    /// `MAX_RW_COUNT`). An empty range starts at the first slot, which is never looked at.
    /// `EINVAL` if the range does not lie within the folios.
    fn args(
        &self,
        start: usize,
        len: usize,
    ) -> Result<(*const bindings::folio_queue, u32, u32, usize)> {
        self.folios.check(start, len)?;
        let count = len.min(max_rw_count());
        let (index, offset) = if count == 0 {
            (0, 0)
        } else {
            self.folios.locate(start).ok_or(EINVAL)?
        };
        let k = self.firsts.partition_point(|&f| f <= index).checked_sub(1);
        let k = k.ok_or(EINVAL)?;
        let slot = u32::try_from(index - self.firsts[k]).map_err(|_| EINVAL)?;
        let offset = u32::try_from(offset).map_err(|_| EINVAL)?;
        Ok((self.segs[k].as_ptr(), slot, offset, count))
    }
}

impl Drop for FolioQueue {
    fn drop(&mut self) {
        for seg in self.segs.iter() {
            // SAFETY: Each segment was allocated by the shim, is ours and is freed once, here;
            // its entries hold no references. The folios are put afterwards.
            unsafe { shim::iovx_folioq_free(seg.as_ptr()) };
        }
    }
}

/// The XARRAY iterator of direction `D` over `xa` (the body of [`IovIter::xarray`] and
/// [`IovIter::xarray_mut`]).
///
/// # Safety
///
/// `xa` must be borrowed for `'data`, exclusively if `D` is [`Dest`].
unsafe fn xarray_iter<'data, D: Direction>(
    xa: &FolioXArray,
    start: usize,
    len: usize,
) -> Result<IovIter<'data, D>> {
    let (start, count) = xa.args(start, len)?;
    let raw = xa.xa.get();
    let init = |i| {
        // SAFETY: `i` is valid for writes; `raw` is an initialised XArray.
        unsafe { bindings::iov_iter_xarray(i, D::RAW, raw, start, count) }
    };
    // SAFETY: `count <= MAX_RW_COUNT` bytes from `start` lie within the folios, which the XArray
    // holds at every index from 0 without a hole as multi-index entries and which neither
    // change nor go away while `xa` is borrowed, for `'data` (the caller's promise), exclusively
    // for a destination.
    Ok(unsafe { IovIter::own(init) })
}

/// The FOLIOQ iterator of direction `D` over `q` (the body of [`IovIter::folioq`] and
/// [`IovIter::folioq_mut`]).
///
/// # Safety
///
/// `q` must be borrowed for `'data`, exclusively if `D` is [`Dest`].
unsafe fn folioq_iter<'data, D: Direction>(
    q: &FolioQueue,
    start: usize,
    len: usize,
) -> Result<IovIter<'data, D>> {
    let (seg, slot, offset, count) = q.args(start, len)?;
    let init = |i| {
        // SAFETY: `i` is valid for writes; `seg` is a live segment of the queue.
        unsafe { bindings::iov_iter_folio_queue(i, D::RAW, seg, slot, offset, count) }
    };
    // SAFETY: `seg` holds the folio at `slot`, `offset` lies within that folio, and `count <=
    // MAX_RW_COUNT` bytes from there lie within the queue, whose segments are chained both ways
    // and full but the last; none of it changes or goes away while `q` is borrowed, for `'data`
    // (the caller's promise), exclusively for a destination.
    Ok(unsafe { IovIter::own(init) })
}

impl<'data> IovIter<'data, Source> {
    /// A source iterator over bytes `start..start + len` of the folios in `xa`
    /// (`iov_iter_xarray()`); extraction lists their pages.
    ///
    /// `EINVAL` if the range does not lie within `xa`. Covers at most `MAX_RW_COUNT` bytes, as
    /// [`IovIter::kvec`].
    pub fn xarray(xa: &'data FolioXArray, start: usize, len: usize) -> Result<Self> {
        // SAFETY: `xa` is borrowed for `'data`.
        unsafe { xarray_iter(xa, start, len) }
    }

    /// A source iterator over bytes `start..start + len` of the folios queued in `q`
    /// (`iov_iter_folio_queue()`); extraction lists their pages.
    ///
    /// `EINVAL` if the range does not lie within `q`. Covers at most `MAX_RW_COUNT` bytes, as
    /// [`IovIter::kvec`].
    pub fn folioq(q: &'data FolioQueue, start: usize, len: usize) -> Result<Self> {
        // SAFETY: `q` is borrowed for `'data`.
        unsafe { folioq_iter(q, start, len) }
    }
}

impl<'data> IovIter<'data, Dest> {
    /// A destination iterator over bytes `start..start + len` of the folios in `xa`, which it
    /// borrows exclusively. As [`IovIter::xarray`] otherwise.
    pub fn xarray_mut(xa: &'data mut FolioXArray, start: usize, len: usize) -> Result<Self> {
        // SAFETY: `xa` is borrowed exclusively for `'data`.
        unsafe { xarray_iter(xa, start, len) }
    }

    /// A destination iterator over bytes `start..start + len` of the folios queued in `q`,
    /// which it borrows exclusively. As [`IovIter::folioq`] otherwise.
    pub fn folioq_mut(q: &'data mut FolioQueue, start: usize, len: usize) -> Result<Self> {
        // SAFETY: `q` is borrowed exclusively for `'data`.
        unsafe { folioq_iter(q, start, len) }
    }
}
