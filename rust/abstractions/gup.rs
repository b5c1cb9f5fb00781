// SPDX-License-Identifier: GPL-2.0

//! Pinning and referencing user pages by address (GUP), the mmap lock, and pages held across
//! several GUP calls.
//!
//! C headers: [`include/linux/mm.h`](srctree/include/linux/mm.h) (`pin_user_pages*()`,
//! `get_user_pages*()`, `unpin_user_pages()`, `put_page()`),
//! [`include/linux/mmap_lock.h`](srctree/include/linux/mmap_lock.h).
//!
//! Every entry point is typed by the direction of the I/O the pages are for: a
//! [`Dest`](super::iov::Dest) call always asks for `FOLL_WRITE` (the pages will be written: GUP
//! breaks COW and refuses read-only mappings), a [`Source`](super::iov::Source) call never does
//! (and so may return the shared zero page or read-only page cache). The batch it returns has
//! that direction, so a source pin can never go into a read bio nor be released dirty.
//!
//! All of it runs in process context, in the task whose memory is taken, and may sleep.

use core::marker::PhantomData;
use kernel::{bindings, page::PAGE_SIZE, prelude::*};

use super::iov::Direction;
use super::pages::{note_taken, Batch, Mode, PageRef, PageSlot};
use super::shim;
use super::task::{current_has_mm, might_sleep};

/// How long a pin is meant to be held.
///
/// Short-term pins are for I/O that completes (direct I/O); long-term pins (`FOLL_LONGTERM`) are
/// for memory a device keeps (RDMA, vfio). The kernel treats them differently: a long-term pin
/// first migrates the pages out of ZONE_MOVABLE and CMA, and filesystems refuse it on file-backed
/// memory that is not safe to pin for long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pin {
    /// A pin for the duration of an I/O.
    ShortTerm,
    /// `FOLL_LONGTERM`.
    LongTerm,
}

/// The `FOLL_*` flag that the direction adds: `FOLL_WRITE` for a destination.
#[inline]
fn dir_flags<D: Direction>() -> u32 {
    if D::WRITES_MEMORY {
        bindings::FOLL_WRITE
    } else {
        0
    }
}

/// The page-aligned start and the page count of the user range `addr..addr + len`.
fn user_pages(addr: usize, len: usize, slots: usize) -> Result<(usize, usize, usize)> {
    if len == 0 || slots == 0 {
        return Err(EINVAL);
    }
    let offset = addr % PAGE_SIZE;
    let n = offset.checked_add(len).ok_or(EINVAL)?.div_ceil(PAGE_SIZE);
    if n > slots || n > i32::MAX as usize {
        return Err(EINVAL);
    }
    Ok((addr - offset, offset, n))
}

/// Checks the result of a GUP call that asked for `wanted` pages into `pages`: a partial result
/// is given back through `release` and is `EFAULT`.
fn gup_result(
    ret: i64,
    wanted: usize,
    pages: &mut [PageSlot],
    release: impl Fn(&PageSlot),
) -> Result<usize> {
    if ret < 0 {
        return Err(Error::from_errno(ret as i32));
    }
    let got = ret as usize;
    if got < wanted {
        // A partial result: give back what was taken and report the fault, as the user range
        // was asked for whole.
        for s in &pages[..got] {
            release(s);
        }
        return Err(EFAULT);
    }
    Ok(got)
}

/// Pins the user pages of `addr..addr + len` of the current task (`pin_user_pages_fast()`) for
/// I/O in direction `D` (a [`Dest`](super::iov::Dest) pin is writable: `FOLL_WRITE`), for `pin`
/// long.
///
/// The whole range is pinned or nothing is: a fault part-way gives back the pins taken and fails
/// with `EFAULT`. `EINVAL` if the range is empty or needs more pages than `slots` has.
///
/// `mm` is borrowed shared: the call may take the mmap lock itself (when the lockless walk falls
/// back), so it cannot be made while an [`MmapReadGuard`] (which borrows `mm` exclusively) is
/// held.
///
/// Process context: may sleep.
pub fn pin_user_pages<'buf, D: Direction>(
    _mm: &UserMm,
    addr: usize,
    len: usize,
    pin: Pin,
    slots: &'buf mut [PageSlot],
) -> Result<Batch<'static, 'buf, D>> {
    might_sleep();
    let (start, offset, n) = user_pages(addr, len, slots.len())?;
    let mut flags = dir_flags::<D>();
    if pin == Pin::LongTerm {
        flags |= bindings::FOLL_LONGTERM;
    }
    // SAFETY: `slots` has room for `n` page pointers (`PageSlot` is transparent); the range is
    // checked by the kernel; the task has an mm (`_mm`) whose mmap lock it does not hold (an
    // `MmapReadGuard` would borrow `_mm` exclusively).
    let ret = unsafe {
        bindings::pin_user_pages_fast(start as _, n as _, flags, slots.as_mut_ptr().cast())
    };
    gup_result(ret as i64, n, slots, |s| {
        // SAFETY: The page was pinned just above and is not part of any batch.
        unsafe { bindings::unpin_user_page(s.page()) }
    })?;
    // SAFETY: The `n` slots hold pages pinned just above, one pin each, with `FOLL_WRITE` if `D`
    // writes memory; their duty passes to the batch; pinned pages do not borrow anything.
    Ok(unsafe { Batch::new(slots, offset, len, Mode::Pinned, pin == Pin::LongTerm) })
}

/// Takes a reference on the user pages of `addr..addr + len` of the current task
/// (`get_user_pages_fast()`, `FOLL_GET`), the legacy way, for I/O in direction `D`
/// (`FOLL_WRITE` for a [`Dest`](super::iov::Dest)).
///
/// A reference keeps a page allocated but, unlike a pin, does not make fork() copy it for the
/// child: use [`pin_user_pages`] for I/O into user memory. All or nothing, as there; `mm` as
/// there.
///
/// Process context: may sleep.
pub fn get_user_pages<'buf, D: Direction>(
    _mm: &UserMm,
    addr: usize,
    len: usize,
    slots: &'buf mut [PageSlot],
) -> Result<Batch<'static, 'buf, D>> {
    might_sleep();
    let (start, offset, n) = user_pages(addr, len, slots.len())?;
    // SAFETY: As in `pin_user_pages`.
    let ret = unsafe {
        bindings::get_user_pages_fast(
            start as _,
            n as _,
            dir_flags::<D>(),
            slots.as_mut_ptr().cast(),
        )
    };
    gup_result(ret as i64, n, slots, |s| {
        // SAFETY: The reference was taken just above and is not part of any batch.
        unsafe { shim::iovx_put_page(s.page()) }
    })?;
    // SAFETY: The `n` slots hold pages referenced just above, one reference each, with
    // `FOLL_WRITE` if `D` writes memory, whose duty passes to the batch.
    Ok(unsafe { Batch::new(slots, offset, len, Mode::Referenced, false) })
}

/// GUP flags a caller may choose (`FOLL_*`), checked: only those that make sense from outside
/// the core mm are accepted. `FOLL_WRITE` is not one of them: the direction of the call decides
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct GupFlags(u32);

impl GupFlags {
    /// `FOLL_WRITE`: never accepted here (a [`Dest`](super::iov::Dest) call sets it), named so
    /// callers can strip it and choose the direction by it.
    pub const WRITE: u32 = bindings::FOLL_WRITE;
    /// `FOLL_FORCE`: write even to a read-only private mapping (breaking COW), as ptrace does.
    /// A policy choice of the caller: a driver that takes it from user space grants its callers
    /// that power (no memory-safety matter: the task's own memory, through GUP's checks).
    pub const FORCE: u32 = bindings::FOLL_FORCE;
    /// `FOLL_LONGTERM`: a long-term pin (pins only).
    pub const LONGTERM: u32 = bindings::FOLL_LONGTERM;
    /// `FOLL_NOFAULT`: do not fault pages in.
    pub const NOFAULT: u32 = bindings::FOLL_NOFAULT;
    /// `FOLL_GET`: never accepted here (the mode decides), named so callers can strip it.
    pub const GET: u32 = bindings::FOLL_GET;

    /// Checks `bits`: `EINVAL` for any flag other than `FORCE`, `NOFAULT` and (if
    /// `allow_longterm`) `LONGTERM`. `FOLL_WRITE` and internal flags (`FOLL_GET`, `FOLL_PIN`,
    /// ...) are never accepted: the direction and the mode of the call decide those.
    pub fn new(bits: u32, allow_longterm: bool) -> Result<Self> {
        let mut ok = Self::FORCE | Self::NOFAULT;
        if allow_longterm {
            ok |= Self::LONGTERM;
        }
        if bits & !ok != 0 {
            return Err(EINVAL);
        }
        Ok(Self(bits))
    }

    /// Whether `FOLL_LONGTERM` is set.
    pub fn is_long_term(self) -> bool {
        self.0 & Self::LONGTERM != 0
    }
}

/// The current task's mmap lock, held for reading, by an exclusive borrow of the task's
/// [`UserMm`] for `'m`.
///
/// The lock is not recursive: taking it again in the same task (a second guard, a fast GUP that
/// falls back to the slow path, a page fault on a user copy) is a lockdep report and a real
/// deadlock once a writer queues between the two. Every operation of this layer that may take the
/// lock itself ([`Walk::Fast`], [`pin_user_pages`], [`get_user_pages`], a second
/// [`MmapReadGuard::lock`]) borrows the `UserMm` (shared or exclusive), so it does not compile
/// while the guard lives; under the lock only [`Walk::Locked`] (the `*_user_pages()` functions
/// that expect it held) is available.
///
/// # Invariants
///
/// The current task holds `mmap_read_lock(current->mm)` while this value lives, and the value
/// stays on that task.
pub struct MmapReadGuard<'m> {
    _mm: PhantomData<&'m mut UserMm>,
    _not_send: PhantomData<*mut ()>,
}

impl<'m> MmapReadGuard<'m> {
    /// Takes the lock of `mm`, which stays borrowed until the guard goes; `EINTR` if a fatal
    /// signal arrives while waiting.
    ///
    /// Process context: may sleep.
    pub fn lock(mm: &'m mut UserMm) -> Result<Self> {
        might_sleep();
        let _ = mm;
        // SAFETY: The current task has an mm (`mm`), whose lock it does not hold: a guard would
        // borrow `mm` exclusively, as this call does.
        let r = unsafe { shim::iovx_mmap_read_lock_killable() };
        if r != 0 {
            return Err(EINTR);
        }
        // INVARIANT: The lock was taken just above.
        Ok(Self {
            _mm: PhantomData,
            _not_send: PhantomData,
        })
    }
}

impl Drop for MmapReadGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: The lock is held by this task (type invariant).
        unsafe { shim::iovx_mmap_read_unlock() };
    }
}

/// Proof that the current task has a user address space (`current->mm`), which user-memory
/// operations need, and the token that its mmap lock is taken with: [`MmapReadGuard::lock`]
/// borrows it exclusively, the GUP calls that may take the lock themselves borrow it shared.
///
/// The token is not unique: [`UserMm::current`] makes another. The borrow rule keeps a caller
/// that passes one token around from pinning with a lockless walk under its own guard; a caller
/// that makes a second token to get around it is not stopped (see `Documentation/extraction.rst`,
/// "The mmap lock", for this and the operations that do not take the token yet).
///
/// # Invariants
///
/// `current->mm` is not null while this value lives, and the value stays on that task. (A task's
/// mm changes only by `exec` or exit, which cannot happen while it runs here, or by
/// `kthread_use_mm()`/`kthread_unuse_mm()` on a kernel thread, which nothing in this layer does
/// behind a caller's back: KUnit's `kunit_vm_mmap()` attaches an mm until the test case ends.)
pub struct UserMm {
    _not_send: PhantomData<*mut ()>,
}

impl UserMm {
    /// The current task's address space; `EFAULT` if it has none (a kernel thread).
    pub fn current() -> Result<Self> {
        if !current_has_mm() {
            return Err(EFAULT);
        }
        // INVARIANT: Checked just above; `PhantomData<*mut ()>` keeps the value on this task.
        Ok(Self {
            _not_send: PhantomData,
        })
    }
}

/// How GUP walks the page tables.
#[derive(Clone, Copy)]
pub enum Walk<'g> {
    /// Lockless first (`*_user_pages_fast()`), falling back to the slow path on its own, which
    /// takes the mmap lock: the shared borrow of the [`UserMm`] keeps an [`MmapReadGuard`] from
    /// being held meanwhile.
    Fast(&'g UserMm),
    /// The slow path, under the mmap lock the caller holds (`*_user_pages()`).
    Locked(&'g MmapReadGuard<'g>),
}

/// One of the kernel's four GUP functions, as a type: a loop of calls is then compiled once per
/// function, with a direct call, and the choice between them is made once per loop.
trait GupFn {
    /// Calls the function: up to `nr` pages from `addr` into `list`. GUP's result: the pages
    /// taken, or a negative errno.
    ///
    /// # Safety
    ///
    /// `list` has room for `nr` page pointers; `flags` has `FOLL_LONGTERM` only for a pinning
    /// function; the current task has an mm, and holds its mmap lock for reading for the
    /// functions that are not `_fast`.
    unsafe fn call(addr: usize, nr: usize, flags: u32, list: *mut *mut bindings::page) -> i64;
}

/// `pin_user_pages_fast()`.
struct PinFast;
/// `pin_user_pages()`.
struct PinLocked;
/// `get_user_pages_fast()`.
struct GetFast;
/// `get_user_pages()`.
struct GetLocked;

impl GupFn for PinFast {
    #[inline(always)]
    unsafe fn call(addr: usize, nr: usize, flags: u32, list: *mut *mut bindings::page) -> i64 {
        // SAFETY: By the safety requirements.
        unsafe { bindings::pin_user_pages_fast(addr as _, nr as _, flags, list) as i64 }
    }
}

impl GupFn for PinLocked {
    #[inline(always)]
    unsafe fn call(addr: usize, nr: usize, flags: u32, list: *mut *mut bindings::page) -> i64 {
        // SAFETY: By the safety requirements (the mmap lock is held).
        unsafe { bindings::pin_user_pages(addr as _, nr as _, flags, list) as i64 }
    }
}

impl GupFn for GetFast {
    #[inline(always)]
    unsafe fn call(addr: usize, nr: usize, flags: u32, list: *mut *mut bindings::page) -> i64 {
        // SAFETY: By the safety requirements.
        unsafe { bindings::get_user_pages_fast(addr as _, nr as _, flags, list) as i64 }
    }
}

impl GupFn for GetLocked {
    #[inline(always)]
    unsafe fn call(addr: usize, nr: usize, flags: u32, list: *mut *mut bindings::page) -> i64 {
        // SAFETY: By the safety requirements (the mmap lock is held).
        unsafe { bindings::get_user_pages(addr as _, nr as _, flags, list) as i64 }
    }
}

/// Pins (`mode` [`Mode::Pinned`]) or references ([`Mode::Referenced`]) up to `slots.len()` pages
/// of the current task from the page containing user address `addr`, for I/O in direction `D`
/// (`FOLL_WRITE` for a [`Dest`](super::iov::Dest)), as GUP does: the result may be shorter than
/// asked (it stops at the first page it cannot take), and is an error only if not even the first
/// page could be taken.
///
/// `EINVAL` for no slots, [`Mode::Listed`], or `FOLL_LONGTERM` without pinning.
///
/// Process context: may sleep.
#[inline]
pub fn gup<'buf, D: Direction>(
    addr: usize,
    flags: GupFlags,
    mode: Mode,
    walk: Walk<'_>,
    slots: &'buf mut [PageSlot],
) -> Result<Batch<'static, 'buf, D>> {
    might_sleep();
    if slots.is_empty() || mode == Mode::Listed {
        return Err(EINVAL);
    }
    // As GUP itself does: the page containing `addr` is the first.
    let addr = addr - addr % PAGE_SIZE;
    if flags.is_long_term() && mode != Mode::Pinned {
        return Err(EINVAL);
    }
    let nr = slots.len().min(i32::MAX as usize);
    let bits = flags.0 | dir_flags::<D>();
    let list = slots.as_mut_ptr().cast();
    // SAFETY: `slots` has room for `nr` page pointers; the flags and the mode were checked; the
    // task has an mm (`walk` holds a `UserMm`, or the `MmapReadGuard` that proves the mmap lock
    // of that mm is held for the slow variants).
    let ret = unsafe {
        match (mode, walk) {
            (Mode::Pinned, Walk::Fast(_)) => PinFast::call(addr, nr, bits, list),
            (Mode::Pinned, Walk::Locked(_)) => PinLocked::call(addr, nr, bits, list),
            (_, Walk::Fast(_)) => GetFast::call(addr, nr, bits, list),
            (_, Walk::Locked(_)) => GetLocked::call(addr, nr, bits, list),
        }
    };
    if ret < 0 {
        return Err(Error::from_errno(ret as i32));
    }
    if ret == 0 {
        return Err(EFAULT);
    }
    let got = (ret as usize).min(nr);
    // SAFETY: The first `got` slots hold pages taken just above in `mode`, one pin or reference
    // each, with `FOLL_WRITE` if `D` writes memory, whose duty passes to the batch; they do not
    // borrow anything.
    Ok(unsafe {
        Batch::new(
            &mut slots[..got],
            0,
            got * PAGE_SIZE,
            mode,
            flags.is_long_term(),
        )
    })
}

/// The loop of [`HeldPages::take_range`] for one GUP function `F`: calls of up to `per_call`
/// pages from `start` on, into `base`, which has room for `free` page pointers. Returns where
/// the calls stopped and the pages they took.
///
/// # Safety
///
/// `base` has room for `free` page pointers; `flags` and the walk fit `F` as
/// [`GupFn::call`] requires.
#[inline(always)]
unsafe fn take_loop<F: GupFn>(
    start: usize,
    end: usize,
    per_call: usize,
    free: usize,
    base: *mut *mut bindings::page,
    flags: u32,
) -> (usize, usize) {
    // The arithmetic of the loop cannot overflow: `addr < end` in the loop, `nr` pages fit in
    // `end - addr` and in the `free - taken` slots left, and `taken` grows by at most `nr`; so it
    // wraps (no checks) rather than being checked on every call.
    let mut addr = start;
    let mut taken = 0usize;
    while addr < end {
        let nr = per_call
            .min(end.wrapping_sub(addr) / PAGE_SIZE)
            .min(free.wrapping_sub(taken));
        if nr == 0 {
            break;
        }
        // SAFETY: `base + taken` has room for `nr` page pointers (`nr <= free - taken`); the
        // rest by the safety requirements.
        let ret = unsafe { F::call(addr, nr, flags, base.wrapping_add(taken)) };
        if ret <= 0 {
            break;
        }
        // GUP never returns more than asked.
        taken = taken.wrapping_add((ret as usize).min(nr));
        addr = addr.wrapping_add(nr.wrapping_mul(PAGE_SIZE));
        if (ret as usize) < per_call {
            break;
        }
    }
    (addr, taken)
}

/// Pages taken by several GUP calls for I/O in direction `D` and held together, in an array the
/// value owns.
///
/// # Invariants
///
/// The first `n` slots hold pages that each carry one pin (if `mode` is [`Mode::Pinned`]) or one
/// reference ([`Mode::Referenced`]) owned by this value, taken with `FOLL_WRITE` if `D` writes
/// memory, long-term pins if `longterm`; released once on drop.
pub struct HeldPages<D: Direction> {
    slots: KVVec<PageSlot>,
    n: usize,
    mode: Mode,
    longterm: bool,
    _d: PhantomData<D>,
}

// SAFETY: Held pins and references may be dropped from any task: unpinning and putting pages
// do not depend on the task that took them.
unsafe impl<D: Direction> Send for HeldPages<D> {}

impl<D: Direction> HeldPages<D> {
    /// The most pages a [`HeldPages`] may have room for: as many as the machine has pages of
    /// RAM. A larger array could not be filled with distinct pages, and its allocation (8 bytes a
    /// page) would either fail or drive the machine into reclaim for a request that cannot be
    /// served; `mm/gup_test.c` fails such a size with `ENOMEM` (after a warning from
    /// `kvmalloc()` past `INT_MAX` bytes, which this bound and `__GFP_NOWARN` avoid).
    pub fn max_capacity() -> usize {
        // SAFETY: Reads a counter.
        unsafe { shim::iovx_totalram_pages() as usize }
    }

    /// Room for `capacity` pages that will be taken in `mode` (pinned or referenced).
    ///
    /// `capacity` may come from user space: above [`HeldPages::max_capacity`] it is `ENOMEM`
    /// at once, and the array is allocated without a warning on failure (`KVVec`,
    /// `__GFP_NOWARN`), which is `ENOMEM` too. `EINVAL` for [`Mode::Listed`].
    ///
    /// Process context: may sleep (allocates with `GFP_KERNEL`).
    pub fn new(capacity: usize, mode: Mode) -> Result<Self> {
        might_sleep();
        if mode == Mode::Listed {
            return Err(EINVAL);
        }
        if capacity > Self::max_capacity() {
            return Err(ENOMEM);
        }
        let flags = GFP_KERNEL | __GFP_NOWARN;
        let mut slots = KVVec::with_capacity(capacity, flags)?;
        for s in &mut slots.spare_capacity_mut()[..capacity] {
            s.write(PageSlot::EMPTY);
        }
        // SAFETY: The capacity is at least `capacity`, and that many elements were initialised
        // just above.
        unsafe { slots.set_len(capacity) };
        // INVARIANT: No page is held yet.
        Ok(Self {
            slots,
            n: 0,
            mode,
            longterm: false,
            _d: PhantomData,
        })
    }

    /// Runs `take` on up to `max` free slots and keeps the pages of the batch it returns, which
    /// must be of this value's mode (`EINVAL` otherwise, and the batch is released). Returns how
    /// many pages were added.
    ///
    /// The context is that of `take` (a GUP call: process context).
    #[inline]
    pub fn take(
        &mut self,
        max: usize,
        take: impl for<'b> FnOnce(&'b mut [PageSlot]) -> Result<Batch<'static, 'b, D>>,
    ) -> Result<usize> {
        let end = self.n.saturating_add(max).min(self.slots.len());
        let expected = self.slots[self.n..end].as_ptr();
        let batch = take(&mut self.slots[self.n..end])?;
        // The batch must be of this mode and start at the first free slot (a closure could make
        // it over a later part of the slots); otherwise it is released as it is.
        if batch.mode() != self.mode || (!batch.is_empty() && batch.slots_ptr() != expected) {
            return Err(EINVAL);
        }
        let (pages, _, _, _, longterm) = batch.into_raw();
        let got = pages.len();
        // INVARIANT: The batch's pages are the slots right after the held ones (the batch was
        // made over them), of this direction, and their duty moved here.
        self.n += got;
        self.longterm |= longterm;
        Ok(got)
    }

    /// Takes the pages of the user range `start..end` in GUP calls of `per_call` pages each, in
    /// this value's mode and direction, with `flags` and `walk` as for [`gup`]: the way the
    /// kernel's callers (and `mm/gup_test.c`) pin a buffer a chunk at a time. A call asks for
    /// `per_call` pages, or for the whole pages left before `end`, or for the free slots left,
    /// whichever is fewest; the calls stop when nothing is left to ask for, when one fails or
    /// takes no page, or after one that took fewer pages than it asked for. Returns the bytes
    /// from `start` that the calls asked for (the last one may have taken fewer pages).
    ///
    /// The same as calling [`HeldPages::take`] with [`gup`] in a loop, with the checks made once
    /// rather than per call, which is what a benchmark of one page per call measures.
    ///
    /// Process context: may sleep.
    pub fn take_range(
        &mut self,
        start: usize,
        end: usize,
        per_call: usize,
        flags: GupFlags,
        walk: Walk<'_>,
    ) -> Result<usize> {
        might_sleep();
        if per_call == 0 || self.mode == Mode::Listed {
            return Err(EINVAL);
        }
        if flags.is_long_term() && self.mode != Mode::Pinned {
            return Err(EINVAL);
        }
        let per_call = per_call.min(i32::MAX as usize);
        let free = self.slots.len() - self.n;
        let bits = flags.0 | dir_flags::<D>();
        // SAFETY: The slots after the held ones are free; the array has `free` of them.
        let base = unsafe { self.slots.as_mut_ptr().add(self.n) }.cast::<*mut bindings::page>();
        // One loop per GUP function, so that the choice is made once, not per call.
        // SAFETY: `base` has room for `free` page pointers; the flags and the mode were checked;
        // the task has an mm (`walk` holds a `UserMm`, or the `MmapReadGuard` that proves the mmap
        // lock is held for the slow variants).
        let (addr, taken) = unsafe {
            match (self.mode, walk) {
                (Mode::Pinned, Walk::Fast(_)) => {
                    take_loop::<PinFast>(start, end, per_call, free, base, bits)
                }
                (Mode::Pinned, Walk::Locked(_)) => {
                    take_loop::<PinLocked>(start, end, per_call, free, base, bits)
                }
                (_, Walk::Fast(_)) => take_loop::<GetFast>(start, end, per_call, free, base, bits),
                (_, Walk::Locked(_)) => {
                    take_loop::<GetLocked>(start, end, per_call, free, base, bits)
                }
            }
        };
        note_taken(self.mode, taken, flags.is_long_term());
        // INVARIANT: The `taken` slots after the held ones hold pages taken above in this value's
        // mode and direction, one pin or reference each, now owned here.
        self.n += taken;
        self.longterm |= flags.is_long_term() && taken > 0;
        Ok(addr - start)
    }

    /// Pages held.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether no page is held.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The held pages, for inspection.
    pub fn pages(&self) -> impl Iterator<Item = PageRef<'_>> + '_ {
        self.slots[..self.n].iter().map(|s| {
            // SAFETY: Each of the first `n` slots is a page held by `self`, which the borrow
            // keeps.
            unsafe { PageRef::new(s.page()) }
        })
    }

    /// Releases every page now (as dropping does). Any context.
    pub fn release(self) {
        drop(self)
    }

    /// Releases every page now and keeps the array, empty, for more. Any context.
    pub fn release_all(&mut self) {
        let n = core::mem::replace(&mut self.n, 0);
        let longterm = core::mem::replace(&mut self.longterm, false);
        // SAFETY: The `n` held pages, of this mode and direction, go to a batch, which releases
        // them once as it is dropped here; nothing is held here any more.
        drop(unsafe {
            Batch::<'static, '_, D>::from_parts(
                &mut self.slots[..n],
                0,
                n * PAGE_SIZE,
                self.mode,
                longterm,
            )
        });
    }
}

impl<D: Direction> Drop for HeldPages<D> {
    fn drop(&mut self) {
        // Release through a batch over the held slots: same duty, same code path.
        self.release_all();
    }
}
