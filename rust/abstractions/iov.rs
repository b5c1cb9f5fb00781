// SPDX-License-Identifier: GPL-2.0

//! I/O vector iterators.
//!
//! C header: [`include/linux/uio.h`](srctree/include/linux/uio.h)
//!
//! [`IovIter`] wraps a `struct iov_iter`. Its direction is in the type: an
//! `IovIter<'_, Source>` is read from (the data of a write), an `IovIter<'_, Dest>` is written to
//! (the buffer of a read). Iterators over kernel memory (KVEC, BVEC) borrow that memory for
//! `'data`, mutably for a destination, so neither the iterator nor anything extracted from it can
//! outlive the memory. Iterators over user memory (UBUF, IOVEC) hold user addresses, which are
//! checked by every access, and belong to the task that made them (they are not `Send`).

use core::marker::PhantomData;
use kernel::{bindings, page::Page, prelude::*, types::Opaque};

use super::shim;

/// The direction of an iterator, as a type.
pub trait Direction: private::Sealed {
    /// `ITER_SOURCE` or `ITER_DEST`.
    const RAW: u32;
    /// Whether data is written into the iterator's memory.
    const WRITES_MEMORY: bool;
}

/// An iterator that data is taken from: the buffer of a write.
pub enum Source {}

/// An iterator that data is put into: the buffer of a read.
pub enum Dest {}

impl Direction for Source {
    const RAW: u32 = bindings::ITER_SOURCE;
    const WRITES_MEMORY: bool = false;
}

impl Direction for Dest {
    const RAW: u32 = bindings::ITER_DEST;
    const WRITES_MEMORY: bool = true;
}

mod private {
    pub trait Sealed {}
    impl Sealed for super::Source {}
    impl Sealed for super::Dest {}
}

/// The kind of memory an iterator walks (`enum iter_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One user buffer (`ITER_UBUF`).
    Ubuf,
    /// An array of user buffers (`ITER_IOVEC`).
    Iovec,
    /// An array of kernel virtual buffers (`ITER_KVEC`).
    Kvec,
    /// An array of (page, offset, length) triples (`ITER_BVEC`).
    Bvec,
    /// A queue of folios (`ITER_FOLIOQ`).
    Folioq,
    /// A range of an xarray of folios (`ITER_XARRAY`).
    Xarray,
    /// A sink or a source with no memory at all (`ITER_DISCARD`).
    Discard,
}

impl Kind {
    #[inline]
    fn from_raw(t: u8) -> Kind {
        match t as u32 {
            bindings::iter_type_ITER_UBUF => Kind::Ubuf,
            bindings::iter_type_ITER_IOVEC => Kind::Iovec,
            bindings::iter_type_ITER_KVEC => Kind::Kvec,
            bindings::iter_type_ITER_BVEC => Kind::Bvec,
            bindings::iter_type_ITER_FOLIOQ => Kind::Folioq,
            bindings::iter_type_ITER_XARRAY => Kind::Xarray,
            _ => Kind::Discard,
        }
    }

    /// Whether the memory is user memory, which extraction pins.
    pub fn is_user(self) -> bool {
        matches!(self, Kind::Ubuf | Kind::Iovec)
    }
}

/// One kernel buffer of a KVEC iterator (`struct kvec`), borrowed for `'data`.
///
/// A `Kvec<'_, Dest>` is made from a mutable slice, since the iterator writes into it.
///
/// # Invariants
///
/// `raw` describes memory that is valid for reads (and for writes if `D` is [`Dest`]) for
/// `'data`, and is not otherwise accessed while the borrow lasts if `D` is [`Dest`].
#[repr(transparent)]
pub struct Kvec<'data, D: Direction> {
    raw: bindings::kvec,
    _p: PhantomData<(&'data mut [u8], D)>,
}

impl<'data> Kvec<'data, Source> {
    /// A source segment over `buf`.
    pub fn new(buf: &'data [u8]) -> Self {
        // INVARIANT: `buf` is valid for reads for `'data`.
        Self {
            raw: bindings::kvec {
                iov_base: buf.as_ptr() as *mut _,
                iov_len: buf.len(),
            },
            _p: PhantomData,
        }
    }
}

impl<'data> Kvec<'data, Dest> {
    /// A destination segment over `buf`.
    pub fn new(buf: &'data mut [u8]) -> Self {
        // INVARIANT: `buf` is valid for reads and writes, and exclusively ours, for `'data`.
        Self {
            raw: bindings::kvec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            },
            _p: PhantomData,
        }
    }
}

/// One segment of a BVEC iterator (`struct bio_vec`): part of a page, borrowed for `'data`.
///
/// # Invariants
///
/// `raw.bv_page` is a page that stays allocated for `'data`, and `bv_offset + bv_len` does not
/// exceed the page size. If `D` is [`Dest`] the page is borrowed exclusively.
#[repr(transparent)]
pub struct Bvec<'data, D: Direction> {
    raw: bindings::bio_vec,
    _p: PhantomData<(&'data mut Page, D)>,
}

fn bvec_raw(page: &Page, offset: usize, len: usize) -> Result<bindings::bio_vec> {
    let end = offset.checked_add(len).ok_or(EINVAL)?;
    if end > kernel::page::PAGE_SIZE {
        return Err(EINVAL);
    }
    Ok(bindings::bio_vec {
        bv_page: page.as_ptr(),
        bv_len: len as u32,
        bv_offset: offset as u32,
    })
}

impl<'data> Bvec<'data, Source> {
    /// A source segment over bytes `offset..offset + len` of `page`.
    ///
    /// Fails with `EINVAL` if the range does not lie within the page.
    pub fn new(page: &'data Page, offset: usize, len: usize) -> Result<Self> {
        // INVARIANT: The range was checked; `page` is borrowed for `'data`.
        Ok(Self {
            raw: bvec_raw(page, offset, len)?,
            _p: PhantomData,
        })
    }
}

impl<'data> Bvec<'data, Dest> {
    /// A destination segment over bytes `offset..offset + len` of `page`.
    ///
    /// Fails with `EINVAL` if the range does not lie within the page.
    pub fn new(page: &'data mut Page, offset: usize, len: usize) -> Result<Self> {
        // INVARIANT: The range was checked; `page` is borrowed exclusively for `'data`.
        Ok(Self {
            raw: bvec_raw(page, offset, len)?,
            _p: PhantomData,
        })
    }
}

/// One user buffer of an IOVEC iterator (`struct iovec`).
///
/// The address is not dereferenced by Rust code: every access goes through the kernel's user
/// access or GUP paths, which check it.
#[repr(transparent)]
pub struct UserVec(bindings::iovec);

impl Clone for UserVec {
    fn clone(&self) -> Self {
        Self::new(self.addr(), self.len())
    }
}

impl UserVec {
    /// A user buffer of `len` bytes at user address `addr`.
    pub fn new(addr: usize, len: usize) -> Self {
        Self(bindings::iovec {
            iov_base: addr as *mut _,
            iov_len: len as _,
        })
    }

    /// The user address.
    pub fn addr(&self) -> usize {
        self.0.iov_base as usize
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.iov_len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where the `struct iov_iter` of an [`IovIter`] lives.
enum Storage<'a> {
    /// Made by one of the constructors and kept here.
    Own(Opaque<bindings::iov_iter>),
    /// Lent by the kernel, e.g. to `read_iter`.
    Lent(&'a Opaque<bindings::iov_iter>),
}

/// A `struct iov_iter` whose memory is borrowed for `'data`, with direction `D`.
///
/// # Invariants
///
/// - The iterator is initialised, with direction `D`, and every segment array and every piece of
///   kernel memory it describes stays valid (for writes too if `D` is [`Dest`]) for `'data`.
/// - `consumed` is at most the number of bytes this handle has advanced the iterator by; reverting
///   by up to `consumed` bytes stays within the segments.
/// - The iterator's length when the handle was made was at most `MAX_RW_COUNT` (every
///   constructor caps it; the VFS caps the iterators it lends), so `consumed` never exceeds it and
///   no revert reaches the `WARN_ON()` of `iov_iter_revert()`.
pub struct IovIter<'data, D: Direction> {
    raw: Storage<'data>,
    consumed: usize,
    // Borrows the memory; the iterator belongs to one task (user iterators address its mm).
    _p: PhantomData<(&'data mut [u8], D, *mut ())>,
}

impl<'data, D: Direction> IovIter<'data, D> {
    /// An iterator set up by `init`: the body of every constructor of the layer.
    ///
    /// # Safety
    ///
    /// `init` must initialise the iterator it is given, with direction `D`, a count of at most
    /// `MAX_RW_COUNT` bytes, and a start from which `count` bytes lie within the memory it
    /// describes. That memory, and every structure the kernel walks to reach it (segment arrays,
    /// an XArray's nodes, a folio queue's segments and links), must stay valid, unchanged and
    /// shaped as the kernel's iterator code assumes for every position between the start and
    /// the end, for `'data`; kernel memory must be valid for writes too if `D` is [`Dest`], and
    /// then accessed only through the iterator (and what is extracted from it) for `'data`.
    pub(crate) unsafe fn own(init: impl FnOnce(*mut bindings::iov_iter)) -> Self {
        let raw = Opaque::uninit();
        init(raw.get());
        // INVARIANT: By the safety requirements of this function; nothing was consumed yet.
        Self {
            raw: Storage::Own(raw),
            consumed: 0,
            _p: PhantomData,
        }
    }

    /// An iterator over kernel buffers.
    ///
    /// Covers at most `MAX_RW_COUNT` bytes, as every iterator does (the iterator ends there):
    /// the kernel's iterator code assumes no more (`iov_iter_revert()` warns past it).
    pub fn kvec(segs: &'data mut [Kvec<'data, D>]) -> Result<Self> {
        let mut count: usize = 0;
        for s in segs.iter() {
            count = count.checked_add(s.raw.iov_len).ok_or(EINVAL)?;
        }
        let count = count.min(max_rw_count());
        let init = |i| {
            // SAFETY: `i` is valid for writes; `segs` holds `segs.len()` initialised `kvec`s
            // (`Kvec` is transparent) whose lengths add up to at least `count`.
            unsafe {
                bindings::iov_iter_kvec(i, D::RAW, segs.as_ptr().cast(), segs.len() as _, count)
            }
        };
        // SAFETY: `init` makes a KVEC iterator of direction `D` and `count <= MAX_RW_COUNT` bytes
        // over `segs`, which and, by `Kvec`'s invariant, the memory they describe are valid (for
        // writes, and exclusively borrowed, for a destination) for `'data`.
        Ok(unsafe { Self::own(init) })
    }

    /// An iterator over parts of pages.
    ///
    /// Covers at most `MAX_RW_COUNT` bytes, as [`IovIter::kvec`].
    pub fn bvec(segs: &'data mut [Bvec<'data, D>]) -> Result<Self> {
        let mut count: usize = 0;
        for s in segs.iter() {
            count = count.checked_add(s.raw.bv_len as usize).ok_or(EINVAL)?;
        }
        let count = count.min(max_rw_count());
        let init = |i| {
            // SAFETY: `i` is valid for writes; `segs` holds `segs.len()` initialised `bio_vec`s
            // (`Bvec` is transparent) whose lengths add up to at least `count`.
            unsafe {
                bindings::iov_iter_bvec(i, D::RAW, segs.as_ptr().cast(), segs.len() as _, count)
            }
        };
        // SAFETY: As for `kvec`, by `Bvec`'s invariant.
        Ok(unsafe { Self::own(init) })
    }

    /// An iterator over one user buffer of the current task.
    ///
    /// As `import_ubuf()`: fails with `EFAULT` if the range is not a user address range, and
    /// covers at most `MAX_RW_COUNT` bytes (a longer buffer is truncated).
    pub fn ubuf(addr: usize, len: usize) -> Result<Self> {
        let len = len.min(max_rw_count());
        check_user_range(addr, len)?;
        let init = |i| {
            // SAFETY: `i` is valid for writes; the range was checked by `access_ok()`.
            unsafe { shim::iovx_iov_iter_ubuf(i, D::RAW, addr as *mut _, len) }
        };
        // SAFETY: `init` makes a UBUF iterator of direction `D` and `len <= MAX_RW_COUNT` bytes;
        // no kernel memory is described, and user addresses are checked at each access.
        Ok(unsafe { Self::own(init) })
    }

    /// An iterator over several user buffers of the current task, as `readv()`/`writev()` take
    /// them.
    ///
    /// With the checks of `import_iovec()`: more than `UIO_MAXIOV` segments or a segment length
    /// that is negative as an `ssize_t` is `EINVAL`, a segment outside the user address range is
    /// `EFAULT`, and the total is capped at `MAX_RW_COUNT` (the iterator ends there). Empty
    /// segments are allowed. An empty array gives an iterator over one static empty segment,
    /// since the kernel's walkers (`iov_iter_alignment()`, `iov_iter_gap_alignment()`) read the
    /// first segment of an IOVEC iterator even when it covers nothing.
    pub fn iovec(segs: &'data [UserVec]) -> Result<Self> {
        /// The segment an empty array stands for: no bytes at user address 0.
        const EMPTY: &[UserVec] = &[UserVec(bindings::iovec {
            iov_base: core::ptr::null_mut(),
            iov_len: 0,
        })];
        let segs = if segs.is_empty() { EMPTY } else { segs };
        if segs.len() > bindings::UIO_MAXIOV as usize {
            return Err(EINVAL);
        }
        let max = max_rw_count();
        let mut count: usize = 0;
        for s in segs {
            if s.len() > isize::MAX as usize {
                return Err(EINVAL);
            }
            let len = s.len().min(max - count);
            check_user_range(s.addr(), len)?;
            count += len;
        }
        let init = |i| {
            // SAFETY: `i` is valid for writes; `segs` holds `segs.len()` initialised `iovec`s
            // (`UserVec` is transparent), and `count` does not exceed their total length.
            unsafe {
                bindings::iov_iter_init(i, D::RAW, segs.as_ptr().cast(), segs.len() as _, count)
            }
        };
        // SAFETY: `init` makes an IOVEC iterator of direction `D` and `count <= MAX_RW_COUNT`
        // bytes over `segs`, borrowed for `'data`; user addresses are checked at each access. The
        // count may be less than the sum of the segments; the iterator then ends early.
        Ok(unsafe { Self::own(init) })
    }

    /// Wraps an iterator that the kernel lends, e.g. to `read_iter` or `write_iter`.
    ///
    /// # Safety
    ///
    /// `ptr` must point to an initialised `struct iov_iter` with direction `D` and at most
    /// `MAX_RW_COUNT` bytes left (as the VFS caps every read and write), which is valid, and
    /// accessed only through the returned handle, for `'data`; and so must every segment array
    /// and piece of kernel memory it describes.
    pub unsafe fn from_raw(ptr: *mut bindings::iov_iter) -> Self {
        // INVARIANT: By the safety requirements of this function.
        Self {
            // SAFETY: `Opaque<T>` is transparent over `T`; `ptr` is valid for `'data`.
            raw: Storage::Lent(unsafe { &*ptr.cast::<Opaque<bindings::iov_iter>>() }),
            consumed: 0,
            _p: PhantomData,
        }
    }

    /// The raw iterator, for the abstraction layer.
    pub(crate) fn as_raw(&self) -> *mut bindings::iov_iter {
        match &self.raw {
            Storage::Own(o) => o.get(),
            Storage::Lent(o) => o.get(),
        }
    }

    /// Bytes left in the iterator.
    pub fn len(&self) -> usize {
        // SAFETY: The iterator is initialised (type invariant); `count` is the field every kind
        // keeps its remaining bytes in (`iov_iter_count()`).
        unsafe {
            (*self.as_raw())
                .__bindgen_anon_1
                .__bindgen_anon_1
                .as_ref()
                .count
        }
    }

    /// Whether no bytes are left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kind of memory the iterator walks.
    #[inline]
    pub fn kind(&self) -> Kind {
        // SAFETY: The iterator is initialised (type invariant); `iov_iter_type()`.
        Kind::from_raw(unsafe { (*self.as_raw()).iter_type })
    }

    /// Segments left (1 for UBUF, 0 for kinds without segments).
    pub fn nr_segs(&self) -> usize {
        // SAFETY: The iterator is initialised (type invariant).
        unsafe { shim::iovx_iov_iter_nr_segs(self.as_raw()) as usize }
    }

    /// Whether extracting pages from this iterator pins them (`iov_iter_extract_will_pin()`);
    /// otherwise they are only listed.
    pub fn extract_will_pin(&self) -> bool {
        // SAFETY: The iterator is initialised (type invariant).
        unsafe { shim::iovx_iov_iter_extract_will_pin(self.as_raw()) }
    }

    /// Skips `bytes` bytes (at most what is left). Returns how many were skipped.
    pub fn advance(&mut self, bytes: usize) -> usize {
        let bytes = bytes.min(self.len());
        // SAFETY: The iterator is initialised and `bytes` is within what is left.
        unsafe { bindings::iov_iter_advance(self.as_raw(), bytes) };
        self.note_advanced(bytes);
        bytes
    }

    /// Steps back by `bytes` bytes that this handle has advanced over.
    ///
    /// Fails with `EINVAL`, changing nothing, if `bytes` is more than that.
    pub fn revert(&mut self, bytes: usize) -> Result {
        if bytes > self.consumed {
            return Err(EINVAL);
        }
        // SAFETY: The iterator is initialised, and `bytes` is at most what this handle advanced
        // it by, so the kernel steps back within the segments (type invariant).
        unsafe { bindings::iov_iter_revert(self.as_raw(), bytes) };
        // INVARIANT: `consumed` tracks the net advance.
        self.consumed -= bytes;
        Ok(())
    }

    /// Records that the kernel advanced the iterator by `bytes`.
    pub(crate) fn note_advanced(&mut self, bytes: usize) {
        // INVARIANT: `consumed` tracks the net advance of this handle.
        self.consumed += bytes;
    }
}

impl<'data> IovIter<'data, Source> {
    /// Copies from the iterator into `buf`, advancing it. Returns the bytes copied, which is less
    /// than asked at the end of the iterator or at a user address that faults.
    pub fn copy_from_iter(&mut self, buf: &mut [u8]) -> usize {
        let len = buf.len().min(MAX_COPY);
        // SAFETY: `buf` is valid for writes of `len <= buf.len()` bytes; the iterator is
        // initialised.
        let n = unsafe { shim::iovx_copy_from_iter(buf.as_mut_ptr().cast(), len, self.as_raw()) };
        self.note_advanced(n);
        n
    }
}

impl<'data> IovIter<'data, Dest> {
    /// An iterator with no memory: data copied into it is dropped.
    /// The kernel only has destination DISCARD iterators. Covers at most `MAX_RW_COUNT` bytes,
    /// as [`IovIter::kvec`].
    pub fn discard(len: usize) -> Self {
        let len = len.min(max_rw_count());
        let init = |i| {
            // SAFETY: `i` is valid for writes.
            unsafe { bindings::iov_iter_discard(i, Dest::RAW, len) }
        };
        // SAFETY: `init` makes a DISCARD iterator of `len <= MAX_RW_COUNT` bytes: no memory.
        unsafe { Self::own(init) }
    }

    /// Copies `buf` into the iterator, advancing it. Returns the bytes copied, which is less than
    /// asked at the end of the iterator or at a user address that faults.
    pub fn copy_to_iter(&mut self, buf: &[u8]) -> usize {
        let len = buf.len().min(MAX_COPY);
        // SAFETY: `buf` is valid for reads of `len <= buf.len()` bytes; the iterator is
        // initialised.
        let n = unsafe { shim::iovx_copy_to_iter(buf.as_ptr().cast(), len, self.as_raw()) };
        self.note_advanced(n);
        n
    }
}

/// The most one copy through an iterator may ask for: `check_copy_size()` warns
/// (`WARN_ON_ONCE`) and copies nothing past `INT_MAX`. A longer buffer is copied in part, as at
/// the end of the iterator (which, at most `MAX_RW_COUNT` long, ends before it anyway).
const MAX_COPY: usize = i32::MAX as usize;

/// The most one I/O may transfer (`MAX_RW_COUNT`).
pub fn max_rw_count() -> usize {
    // SAFETY: No preconditions.
    unsafe { shim::iovx_max_rw_count() }
}

fn check_user_range(addr: usize, len: usize) -> Result {
    // SAFETY: `access_ok()` only compares the range with the user address limit.
    if !unsafe { shim::iovx_access_ok(addr as _, len) } {
        return Err(EFAULT);
    }
    Ok(())
}
