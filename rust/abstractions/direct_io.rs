// SPDX-License-Identifier: GPL-2.0

//! Direct I/O: an iterator's bytes moved to or from a disk through bios, synchronously or
//! asynchronously, and the kiocb of a `read_iter`/`write_iter` call that does it.
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h) (`struct kiocb`,
//! `-EIOCBQUEUED`), [`include/linux/bio.h`](srctree/include/linux/bio.h),
//! [`include/linux/completion.h`](srctree/include/linux/completion.h)
//!
//! The submission shapes, after `block/fops.c`:
//!
//! - [`submit_iter_wait_inline`]: a few pages in one bio kept on the caller's stack
//!   ([`BioSlot`]), waited for (`__blkdev_direct_IO_simple()`).
//! - [`submit_iter_one`]: one bio whose completion ends an asynchronous kiocb
//!   (`__blkdev_direct_IO_async()`).
//! - [`submit_iter`]: as many bios as it takes, each reporting to one [`Completion`]
//!   (`__blkdev_direct_IO()`); [`submit_iter_wait`] waits for them with a [`Waiter`].
//!
//! The completions of several bios ([`Waiter`], and [`Queued`] for an asynchronous kiocb) count
//! them the same way, with a [`Tally`]; the kiocb ends the same way from [`Queued`] and from the
//! one-bio [`KiocbEnd`] ([`complete_kiocb`]).
//!
//! A character device's `read_iter`/`write_iter` glue hands each call to [`read_iter`] or
//! [`write_iter`], which give a [`DirectIo`] implementation the call as a [`Kiocb`]. The only
//! way for the implementation to answer is an [`Ended`] made by consuming that kiocb: done with
//! some bytes, failed, or queued by [`Kiocb::direct_io`] itself. It cannot claim "queued" for
//! nothing (a synchronous caller would hit the `BUG_ON()` of `fs/read_write.c`), nor drop a
//! queued ending and answer something else (aio would complete the kiocb a second time).
//!
//! The memory of an asynchronous kiocb's iterator stays valid until `ki_complete()` (the
//! caller's promise to the file system, which io_uring and aio keep: io_uring's fixed buffers
//! are BVEC iterators whose pages only the ring holds). That is what lets bios carry listed pages
//! past the call: the kiocb is completed only after the last bio has released its pages.

use core::marker::PhantomData;
use core::num::NonZeroUsize;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicUsize, Ordering};
use kernel::{bindings, ffi, page::PAGE_SIZE, prelude::*, sync::Arc, types::Opaque};

use super::bio::{
    Bio, BioSlot, Borrowed, Completion, DoneRef, Finished, Inline, IoPrio, Storage, Target,
    INLINE_VECS,
};
use super::extract::{ExtractFlags, UserPages};
use super::iov::{Dest, Direction, IovIter, Kind, Source};
use super::pages::{Batch, PageSlot};
use super::shim;
use super::task::might_sleep;

/// Bytes in pages of a batch that can be added whole to a bio with `room` segments left.
fn max_bytes_for(room: usize) -> usize {
    room * PAGE_SIZE
}

/// Adds pages of `iter` to `bio` until it holds `left` bytes, is full or the iterator runs out.
/// A bio that fills up before `left` ends on a block boundary of `lbs` bytes: the partial block
/// goes back to the iterator. An extraction error is returned; what was added stays. User
/// memory is taken as `how` says (pinned, or referenced in the legacy mode); pinned with the
/// bio's extraction flags (`ITER_ALLOW_P2PDMA` if its queue supports P2P DMA, as
/// `__bio_iov_iter_get_pages()`), so a batch that may hold P2P pages goes into this bio or is
/// dropped here, never anywhere else.
#[inline(always)]
fn fill<'data, S: Storage, D: Direction>(
    bio: &mut Bio<'_, 'data, D, S>,
    iter: &mut IovIter<'data, D>,
    left: usize,
    lbs: NonZeroUsize,
    slots: &mut [PageSlot],
    how: UserPages,
) -> Result {
    let flags = bio.extract_flags();
    while bio.len() < left && bio.room() > 0 {
        let room = bio.room();
        let want = (left - bio.len()).min(max_bytes_for(room));
        let nslots = room.min(slots.len());
        let batch = match extract_for(iter, &mut slots[..nslots], want, flags, how) {
            Ok(b) if b.is_empty() => break,
            Ok(b) => b,
            Err(e) => return Err(e),
        };
        if !add_batch(bio, batch, iter, left, lbs) {
            break;
        }
    }
    Ok(())
}

/// Up to `want` bytes of `iter` in `slots`, user memory taken as `how` says: pinned with the
/// bio's extraction `flags`, or referenced (`iov_iter_get_pages2()` takes no extraction flags).
#[inline(always)]
fn extract_for<'data, 'buf, D: Direction>(
    iter: &mut IovIter<'data, D>,
    slots: &'buf mut [PageSlot],
    want: usize,
    flags: ExtractFlags,
    how: UserPages,
) -> Result<Batch<'data, 'buf, D>> {
    match how {
        UserPages::Pin => iter.extract_with(slots, want, flags),
        UserPages::Reference => iter.extract_as(slots, want, how),
    }
}

/// The bytes of `n` past its last whole block of `lbs` bytes (`n % lbs`): a logical block size
/// is a power of two (the [`Target`] invariant).
#[inline(always)]
fn block_rem(n: usize, lbs: NonZeroUsize) -> usize {
    n & (lbs.get() - 1)
}

/// Adds `batch`, just extracted from `iter`, to `bio`, which is to hold `left` bytes. A batch of
/// as many pages as the bio has room for may fill it (unless some of its pages share a
/// segment), and a full bio must end on a block boundary of `lbs` bytes: the partial block goes
/// back to the iterator (the next batch takes it again if room is left). `false` if the bio
/// takes no more: nothing was left of the batch, or it did not go in (then it is released and
/// its bytes given back to the iterator).
#[inline(always)]
fn add_batch<'data, S: Storage, D: Direction>(
    bio: &mut Bio<'_, 'data, D, S>,
    mut batch: Batch<'data, '_, D>,
    iter: &mut IovIter<'data, D>,
    left: usize,
    lbs: NonZeroUsize,
) -> bool {
    let total = bio.len() + batch.len();
    if batch.nr_pages() == bio.room() && total < left && block_rem(total, lbs) != 0 {
        let keep = batch.len().saturating_sub(block_rem(total, lbs));
        let back = batch.len() - keep;
        batch.truncate(keep);
        // Cannot fail: the iterator was just advanced by more than `back`.
        let _ = iter.revert(back);
        if batch.is_empty() {
            return false;
        }
    }
    if let Err(batch) = bio.add(batch) {
        // Does not happen here: the callers give a batch of no more pages than the bio has room
        // for, of the bio's mode. Give the bytes back and stop.
        let n = batch.len();
        drop(batch);
        let _ = iter.revert(n);
        return false;
    }
    true
}

/// Entries of the page array on the stack: one extraction takes up to this many pages (512 KiB
/// of base pages), so a transfer over huge pages needs few GUP walks.
const LARGE_SLOTS: usize = 128;

/// Runs `f` with an empty page array on the stack for a transfer of `len` bytes: a small one
/// for up to two pages, else as many entries as the transfer can span (up to [`LARGE_SLOTS`]),
/// only those cleared.
#[inline(always)]
fn with_slots<T>(len: usize, f: impl FnOnce(&mut [PageSlot]) -> T) -> T {
    let mut small = [const { PageSlot::EMPTY }; INLINE_VECS];
    let mut large = [const { core::mem::MaybeUninit::<PageSlot>::uninit() }; LARGE_SLOTS];
    let slots: &mut [PageSlot] = if len <= 2 * PAGE_SIZE {
        &mut small
    } else {
        let n = (len.div_ceil(PAGE_SIZE) + 1).min(LARGE_SLOTS);
        for s in &mut large[..n] {
            s.write(PageSlot::EMPTY);
        }
        // SAFETY: The first `n <= LARGE_SLOTS` entries were initialised just above, and
        // `MaybeUninit<PageSlot>` has the layout of `PageSlot`; the slice borrows `large`
        // mutably, as long as it is used.
        unsafe { core::slice::from_raw_parts_mut(large.as_mut_ptr().cast::<PageSlot>(), n) }
    };
    f(slots)
}

/// Fills `bio` with exactly the next `len` bytes of `iter`, a whole number of `lbs`-byte
/// blocks, and gives it back. Otherwise the bio is dropped (its pages released) and the iterator
/// reverted: the extraction error if nothing could be taken, else `None`, nothing done.
#[inline(always)]
fn fill_whole<'t, 'data, S: Storage, D: Direction>(
    mut bio: Bio<'t, 'data, D, S>,
    iter: &mut IovIter<'data, D>,
    len: usize,
    lbs: NonZeroUsize,
    slots: &mut [PageSlot],
    how: UserPages,
) -> Result<Option<Bio<'t, 'data, D, S>>> {
    let r = fill(&mut bio, iter, len, lbs, slots, how);
    let n = bio.len();
    if n == len && block_rem(n, lbs) == 0 {
        return Ok(Some(bio));
    }
    drop(bio);
    let _ = iter.revert(n);
    match r {
        Err(e) if n == 0 => Err(e),
        _ => Ok(None),
    }
}

/// As [`fill_whole`] for a transfer of at most a page (so over at most two pages) into `bio`,
/// empty with room for two segments: one extraction, no loop. The bio with exactly the next `len`
/// bytes of `iter`, a whole number of `lbs`-byte blocks; otherwise the bio is dropped and the
/// iterator reverted: the extraction error (nothing was taken), else `None`.
#[inline(always)]
fn fill_small<'t, 'data, D: Direction>(
    mut bio: Bio<'t, 'data, D>,
    iter: &mut IovIter<'data, D>,
    len: usize,
    lbs: NonZeroUsize,
    how: UserPages,
) -> Result<Option<Bio<'t, 'data, D>>> {
    let mut slots = [const { PageSlot::EMPTY }; 2];
    let batch = extract_for(iter, &mut slots, len, bio.extract_flags(), how)?;
    let n = batch.len();
    if n == len && block_rem(n, lbs) == 0 {
        match bio.add(batch) {
            Ok(()) => return Ok(Some(bio)),
            // Does not happen: two slots, two segments of room, the bio's mode (it had none).
            Err(batch) => drop(batch),
        }
    } else {
        drop(batch);
    }
    let _ = iter.revert(n);
    Ok(None)
}

/// The next `len` bytes of a BVEC iterator in one bio over the iterator's own segments
/// ([`Bio::new_bvec`], as the kernel's direct I/O takes io_uring's registered buffers), if they
/// are all there and make whole `lbs`-byte blocks, and every segment taken starts on the queue's
/// DMA alignment (512 bytes) and is a whole number of blocks long, as the block device's direct
/// I/O requires of any iterator (`blkdev_dio_invalid()`). Otherwise `None`, with nothing done
/// (the iterator reverted), for the caller to extract page by page, which reports what is wrong.
#[inline(always)]
fn bvec_bio<'t, 'data, D: Direction>(
    target: Target<'t>,
    iter: &mut IovIter<'data, D>,
    sector: u64,
    len: usize,
    lbs: NonZeroUsize,
) -> Result<Option<Bio<'t, 'data, D>>> {
    if iter.kind() != Kind::Bvec {
        return Ok(None);
    }
    // The disks of `Disk::new` have a DMA alignment of 512 bytes (`dma_alignment` 511); a block
    // is at most 4096 bytes. The segments taken are checked as they are taken.
    let len_mask = (lbs.get() - 1) as u32;
    let Some(bio) = Bio::new_bvec_aligned(target, sector, iter, len, 511, len_mask)? else {
        return Ok(None);
    };
    let n = bio.len();
    if n == len && block_rem(n, lbs) == 0 {
        return Ok(Some(bio));
    }
    drop(bio);
    let _ = iter.revert(n);
    Ok(None)
}

/// Transfers the next `len` bytes of `iter` to or from `target` at `sector` in one bio kept in
/// `slot`, and waits for it: the synchronous path for transfers that fit in [`INLINE_VECS`]
/// pages, with nothing allocated. Returns the bytes, or the bio's error, or the extraction
/// error; `None`, with nothing done, if the transfer does not fit in the slot's bio (or stops
/// in the middle of a block), for the caller to go the general way.
#[cfg(iovx_kunit)]
#[inline]
pub(crate) fn submit_iter_wait_inline<D: Direction>(
    slot: &mut BioSlot,
    target: Target<'_>,
    iter: &mut IovIter<'_, D>,
    sector: u64,
    len: usize,
) -> Result<Option<usize>> {
    submit_iter_wait_inline_as(slot, target, iter, sector, len, UserPages::Pin)
}

/// As [`submit_iter_wait_inline`], with user memory taken as `how` says.
#[inline]
pub(crate) fn submit_iter_wait_inline_as<D: Direction>(
    slot: &mut BioSlot,
    target: Target<'_>,
    iter: &mut IovIter<'_, D>,
    sector: u64,
    len: usize,
    how: UserPages,
) -> Result<Option<usize>> {
    target.check_range(sector, len, !D::WRITES_MEMORY)?;
    let mut slots = [const { PageSlot::EMPTY }; INLINE_VECS];
    let lbs = target.block_size();
    let bio = Bio::<D, Inline<'_>>::new_inline(slot, target, sector);
    match fill_whole(bio, iter, len, lbs, &mut slots, how)? {
        Some(bio) => bio.submit_wait().map(Some),
        None => Ok(None),
    }
}

/// Submits the next `len` bytes of `iter` to or from `target` at `sector` in one bio, which
/// `done` hears of: the asynchronous path for transfers that fit in one bio, as
/// `__blkdev_direct_IO_async()`. Returns the bytes submitted, or the extraction or allocation
/// error with nothing submitted; `None`, with nothing done, if the transfer does not fit in one
/// bio (or stops in the middle of a block), for the caller to go the general way
/// ([`submit_iter`]).
///
/// # Safety
///
/// The memory of `iter` (for listed pages) must stay valid until `done` has been told of the bio.
// Not inlined: its page array ([`with_slots`]) would stay in the caller's frame while the
// caller goes on to [`submit_iter`], which has one of its own.
#[inline(never)]
pub(crate) unsafe fn submit_iter_one<D: Direction, R: DoneRef>(
    target: Target<'_>,
    iter: &mut IovIter<'_, D>,
    sector: u64,
    len: usize,
    how: UserPages,
    done: &R,
) -> Result<Option<usize>> {
    target.check_range(sector, len, !D::WRITES_MEMORY)?;
    let lbs = target.block_size();
    if len != 0 && len <= PAGE_SIZE && iter.kind() == Kind::Ubuf {
        // The most common asynchronous transfer: a block or a page of one user buffer, which
        // spans at most two pages, taken in one extraction (`fill_small()`). If that one does
        // not take it all (a fault in the second page), nothing is kept and the general way
        // below takes it. (An extraction takes one iovec at most: several go the general way.)
        let bio = Bio::<D>::new(target, sector, 2)?;
        if let Some(bio) = fill_small(bio, iter, len, lbs, how)? {
            // SAFETY: The caller keeps the iterator's memory valid until `done` has heard of
            // the bio (user pages are pinned or referenced, not listed, anyway).
            unsafe { bio.submit_unchecked(done.clone()) };
            return Ok(Some(len));
        }
    }
    if let Some(bio) = bvec_bio(target, iter, sector, len, lbs)? {
        // SAFETY: The caller keeps the iterator's memory, segment array included, valid until
        // `done` has heard of the bio.
        unsafe { bio.submit_unchecked(done.clone()) };
        return Ok(Some(len));
    }
    let nr_vecs = (len.div_ceil(PAGE_SIZE) + 1).min(bindings::BIO_MAX_VECS as usize);
    let bio = Bio::<D>::new(target, sector, nr_vecs)?;
    let Some(bio) = with_slots(len, |slots| fill_whole(bio, iter, len, lbs, slots, how))? else {
        return Ok(None);
    };
    // SAFETY: The caller keeps the iterator's memory valid until `done` has heard of the bio.
    unsafe { bio.submit_unchecked(done.clone()) };
    Ok(Some(len))
}

/// Submits bios that carry the next `len` bytes of `iter` to `target` from `sector` on, each
/// holding a copy of `done`, and returns the bytes submitted.
///
/// Every bio's size is a multiple of the target's logical block size: a bio that fills up in the
/// middle of a block gives the tail back to the iterator. An error (a fault extracting user
/// pages, say) before anything was submitted is returned, and then no bio is in flight; after
/// that, what was submitted stands and the short count is returned.
///
/// With `one_bio` the transfer must fit in one bio: otherwise nothing is submitted and the
/// result is `EAGAIN`. `IOCB_NOWAIT` callers ask for it, as the kernel's block device direct I/O
/// does, and so do completions that can take one bio only. The bio
/// is not `REQ_NOWAIT`: the block layer would then fail it with `EAGAIN` at completion when it
/// has to split it or wait for a tag, and io_uring retries such completions for regular files and
/// block devices only, so the caller of a character device would see them. Without it, the only
/// wait left is for a free tag in a full queue, which the RAM disk (completing requests as they
/// come) has only in its delayed-completion mode.
///
/// # Safety
///
/// The memory of `iter` (for listed pages) must stay valid until `done` has been told of every
/// bio submitted here.
pub(crate) unsafe fn submit_iter<D: Direction, R: DoneRef>(
    target: Target<'_>,
    iter: &mut IovIter<'_, D>,
    sector: u64,
    len: usize,
    one_bio: bool,
    how: UserPages,
    done: &R,
) -> Result<usize> {
    // The range lies within the disk, so the sectors below do not overflow and no bio is
    // submitted past the end.
    target.check_range(sector, len, !D::WRITES_MEMORY)?;
    // A BVEC iterator's segments go into one bio as they are.
    if let Some(bio) = bvec_bio(target, iter, sector, len, target.block_size())? {
        // SAFETY: The caller keeps the iterator's memory, segment array included, valid until
        // `done` has heard of every bio.
        unsafe { bio.submit_unchecked(done.clone()) };
        return Ok(len);
    }
    // The page array is on the stack and starts empty (`with_slots()`).
    // SAFETY: As for this function.
    with_slots(len, |slots| unsafe {
        submit_loop(target, iter, sector, len, one_bio, how, done, slots, None)
    })
}

/// The loop of [`submit_iter`], with the page array `slots`: bios of at most `len` bytes from
/// `sector` on, the first of them `first` if given (a bio for `sector` holding the first bytes of
/// the transfer, which `iter` has been advanced past), until `len` bytes are submitted.
///
/// # Safety
///
/// As for [`submit_iter`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn submit_loop<'t, 'data, D: Direction, R: DoneRef>(
    target: Target<'t>,
    iter: &mut IovIter<'data, D>,
    sector: u64,
    len: usize,
    one_bio: bool,
    how: UserPages,
    done: &R,
    slots: &mut [PageSlot],
    mut first: Option<Bio<'t, 'data, D>>,
) -> Result<usize> {
    let lbs = target.block_size();
    let mut submitted = 0usize;
    let mut failed: Option<Error> = None;
    while submitted < len && failed.is_none() {
        let left = len - submitted;
        let mut bio = match first.take() {
            Some(b) => b,
            None => {
                let nr_vecs = (left.div_ceil(PAGE_SIZE) + 1).min(bindings::BIO_MAX_VECS as usize);
                // Within the disk (checked by the callers): no overflow.
                let at = sector.wrapping_add(submitted as u64 >> 9);
                match Bio::<D>::new(target, at, nr_vecs) {
                    Ok(b) => b,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
        };
        if let Err(e) = fill(&mut bio, iter, left, lbs, slots, how) {
            failed = Some(e);
        }
        if bio.is_empty() {
            break;
        }
        let n = bio.len();
        if one_bio && n < len {
            // Would take a second bio.
            drop(bio);
            let _ = iter.revert(n);
            failed = Some(EAGAIN);
            break;
        }
        if block_rem(n, lbs) != 0 {
            // The iterator ran out in the middle of a block: lengths are checked against the
            // block size before, so this is a caller error. Nothing of this bio is submitted.
            drop(bio);
            let _ = iter.revert(n);
            failed = failed.or(Some(EINVAL));
            break;
        }
        // SAFETY: The caller keeps the iterator's memory valid until `done` has heard of every
        // bio.
        unsafe { bio.submit_unchecked(done.clone()) };
        submitted += n;
    }
    match failed {
        Some(e) if submitted == 0 => Err(e),
        _ => Ok(submitted),
    }
}

/// A synchronous transfer of the next `len` bytes of `iter` to or from `target` at `sector`,
/// more than [`submit_iter_wait_inline_as`] takes, waited for; returns the bytes moved.
///
/// The first batch of pages is extracted before any bio is made. If it has few pages, or its
/// pages look like the run of one large folio (huge pages), the transfer is tried in one bio kept
/// in a [`BioSlot`] on this stack, as [`submit_iter_wait_inline_as`] does, taking batches whose
/// pages share segments ([`Bio::add_runs`]): a transfer over huge pages fits in a few segments
/// whatever its size, and then needs no allocation, no counting completion and no segment
/// array, where `__blkdev_direct_IO_simple()` allocates one entry per page. If the bytes do not
/// all fit there (more segments, an extraction error, the end of the iterator), the slot's bio is
/// dropped, its pages released and the iterator reverted, and the transfer goes the general way
/// from the start. Otherwise (many pages that are not one run: base pages) the batch goes into
/// the first bio of the general way, [`submit_loop`] with a [`Waiter`], with nothing extracted
/// twice.
///
/// Errors and short counts as for [`submit_iter`] with `one_bio` if `nowait`. Process context:
/// sleeps.
#[inline(always)]
fn submit_sync<D: Direction>(
    target: Target<'_>,
    iter: &mut IovIter<'_, D>,
    sector: u64,
    len: usize,
    nowait: bool,
    how: UserPages,
) -> Result<usize> {
    target.check_range(sector, len, !D::WRITES_MEMORY)?;
    let lbs = target.block_size();
    // As `Bio::extract_flags()` for a bio of `target`: the batches go into bios of its device.
    let flags = if target.supports_p2pdma() {
        ExtractFlags::allow_p2pdma()
    } else {
        ExtractFlags::NONE
    };
    let mut slot = BioSlot::new();
    with_slots(len, |slots| {
        let batch = match how {
            UserPages::Pin => iter.extract_with(slots, len, flags)?,
            // `iov_iter_get_pages2()` takes no extraction flags.
            UserPages::Reference => iter.extract_as(slots, len, how)?,
        };
        if batch.is_empty() {
            // Nothing to move (an empty iterator).
            return Ok(0);
        }
        let first = if batch.nr_pages() <= INLINE_VECS || batch.looks_contiguous() {
            let mut bio = Bio::<D, Inline<'_>>::new_inline(&mut slot, target, sector);
            let refused = bio.add_runs(batch).err();
            if let Some(batch) = refused {
                drop(bio);
                Some(first_bio(target, sector, len, lbs, batch, iter)?)
            } else {
                // Nothing in `refused`: its borrow of the page array ends here.
                drop(refused);
                // The rest, into the same bio if it fits in its segments.
                while bio.len() < len {
                    let got = match how {
                        UserPages::Pin => iter.extract_with(slots, len - bio.len(), flags),
                        UserPages::Reference => iter.extract_as(slots, len - bio.len(), how),
                    };
                    match got {
                        Ok(b) if !b.is_empty() => {
                            if let Err(b) = bio.add_runs(b) {
                                let n = b.len();
                                drop(b);
                                let _ = iter.revert(n);
                                break;
                            }
                        }
                        _ => break,
                    }
                }
                let n = bio.len();
                if n == len && block_rem(n, lbs) == 0 {
                    return bio.submit_wait();
                }
                // The general way, from the start.
                drop(bio);
                let _ = iter.revert(n);
                None
            }
        } else {
            Some(first_bio(target, sector, len, lbs, batch, iter)?)
        };
        kernel::stack_pin_init!(let w = Waiter::new());
        // SAFETY: The waiter stays in place on this stack frame, and the call waits below for
        // every bio to report to it; the iterator's memory is valid during the call.
        let submitted = unsafe {
            let done = Borrowed::new(w.as_ref());
            submit_loop(target, iter, sector, len, nowait, how, &done, slots, first)
        };
        let done = w.wait();
        submitted?;
        Ok(done?.bytes)
    })
}

/// The first bio of a transfer of `len` bytes to or from `target` at `sector`, holding `batch`,
/// its first pages just extracted from `iter`. If no bio can be had, the batch is released and
/// its bytes given back to the iterator.
#[inline(always)]
fn first_bio<'t, 'data, D: Direction>(
    target: Target<'t>,
    sector: u64,
    len: usize,
    lbs: NonZeroUsize,
    batch: Batch<'data, '_, D>,
    iter: &mut IovIter<'data, D>,
) -> Result<Bio<'t, 'data, D>> {
    let nr_vecs = (len.div_ceil(PAGE_SIZE) + 1).min(bindings::BIO_MAX_VECS as usize);
    let mut bio = match Bio::<D>::new(target, sector, nr_vecs) {
        Ok(b) => b,
        Err(e) => {
            let n = batch.len();
            drop(batch);
            let _ = iter.revert(n);
            return Err(e);
        }
    };
    // The batch, of the first `len` bytes, has at most `nr_pages(offset, len) <= nr_vecs` pages
    // (and at most `BIO_MAX_VECS`, the most slots there are): it goes in.
    add_batch(&mut bio, batch, iter, len, lbs);
    Ok(bio)
}

/// How the bios of one I/O are counted: those in flight, all submitted and their bytes, and the
/// first error. The one mechanism behind every completion of several bios.
///
/// # Invariants
///
/// `pending` is the bios submitted and not yet done, plus one for the submitter until it lets
/// go ([`Tally::put`]); the call that brings it to zero is the last, and is told so once.
struct Tally {
    pending: AtomicUsize,
    bios: AtomicUsize,
    bytes: AtomicUsize,
    error: AtomicI32,
}

/// What an I/O did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    /// Bytes transferred.
    pub bytes: usize,
    /// Bios submitted.
    pub bios: usize,
}

impl Tally {
    /// Nothing submitted yet; the submitter holds its count.
    const fn new() -> Self {
        Self {
            pending: AtomicUsize::new(1),
            bios: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            error: AtomicI32::new(0),
        }
    }

    /// A bio of `bytes` bytes is being submitted.
    #[inline]
    fn submitted(&self, bytes: usize) {
        // Read only after the last count is dropped (`AcqRel` there): no ordering needed here.
        self.bios.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    /// A bio is done with `result`. Returns whether it was the last count.
    #[inline]
    fn done(&self, result: Result) -> bool {
        if let Err(e) = result {
            let _ =
                self.error
                    .compare_exchange(0, e.to_errno(), Ordering::AcqRel, Ordering::Acquire);
        }
        self.put()
    }

    /// Drops one count. Returns whether it was the last.
    #[inline]
    fn put(&self) -> bool {
        self.pending.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// The outcome, once the last count is gone: the first error, or the bytes and bios.
    fn result(&self) -> Result<Done> {
        match self.error.load(Ordering::Acquire) {
            0 => Ok(Done {
                bytes: self.bytes.load(Ordering::Acquire),
                bios: self.bios.load(Ordering::Acquire),
            }),
            e => Err(Error::from_errno(e)),
        }
    }
}

/// A [`Completion`] to wait on, kept in place by the waiting submitter (on its stack, or in an
/// `Arc`): counts the bios ([`Tally`]), and takes the finished bios back to release their pages
/// once it has waited, in the submitter's context.
///
/// # Invariants
///
/// `done` is initialised (by [`Waiter::new`], before any bio is submitted) and is completed when
/// the tally's last count goes. `finished` heads a list, linked through `bi_next`, of bios given
/// up by [`Finished::into_raw`], owned by the waiter.
#[pin_data]
pub(crate) struct Waiter {
    tally: Tally,
    finished: AtomicPtr<bindings::bio>,
    #[pin]
    done: Opaque<bindings::completion>,
}

// SAFETY: `struct completion` is made to be completed and waited on from different threads; the
// list is handed over through an atomic pointer; the rest are atomics.
unsafe impl Send for Waiter {}
// SAFETY: As above.
unsafe impl Sync for Waiter {}

impl Waiter {
    /// A waiter, to be pinned where it will be waited on.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Waiter {
            tally: Tally::new(),
            finished: AtomicPtr::new(core::ptr::null_mut()),
            // SAFETY: `init_completion()` initialises the completion in place.
            done <- Opaque::ffi_init(|slot| unsafe { shim::iovx_init_completion(slot) }),
        })
    }

    fn put(&self, last: bool) {
        if last {
            // SAFETY: `done` is initialised (type invariant). Nothing of `self` is touched after
            // this: the waiter may return and take the waiter away.
            unsafe { bindings::complete(self.done.get()) };
        }
    }

    /// Gives up the submitter's count, waits for every bio to report, and releases the pages of
    /// the finished bios (dirtying those a read filled). Called once per waiter.
    ///
    /// Process context: sleeps.
    pub(crate) fn wait(&self) -> Result<Done> {
        might_sleep();
        self.put(self.tally.put());
        // SAFETY: `done` is initialised (type invariant); it is completed by the last `put`.
        unsafe { bindings::wait_for_completion_io(self.done.get()) };
        // Every bio has been pushed (before its `bio_done`): the list is complete.
        let mut p = self.finished.swap(core::ptr::null_mut(), Ordering::Acquire);
        while !p.is_null() {
            // SAFETY: `p` is a finished bio on the waiter's list (type invariant), taken off it
            // here, once; its `bi_next` links the rest of the list.
            let (fin, next) = unsafe { (Finished::from_raw(p), (*p).bi_next) };
            fin.release();
            p = next;
        }
        self.tally.result()
    }
}

impl Completion for Waiter {
    const TAKES_FINISHED: bool = true;

    fn bio_finished(&self, bio: Finished) {
        let p = bio.into_raw();
        let mut head = self.finished.load(Ordering::Relaxed);
        loop {
            // SAFETY: `p` is a finished bio, now owned by the list: the block layer is done with
            // it, so its `bi_next` is free to link the list.
            unsafe { (*p).bi_next = head };
            match self
                .finished
                .compare_exchange_weak(head, p, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(h) => head = h,
            }
        }
    }

    fn bio_submitted(&self, bytes: usize) {
        self.tally.submitted(bytes);
    }

    fn bio_done(&self, result: Result) {
        self.put(self.tally.done(result));
    }
}

/// A [`Completion`] to wait on whose bios release their pages in their own completion context,
/// as those of an asynchronous kiocb do (the pages of a read are dirtied before the I/O and
/// checked after it): for tests of that path. Kept in an `Arc` that the bios share.
///
/// # Invariants
///
/// `done` is initialised (by [`AsyncWaiter::new`]) and is completed when the tally's last count
/// goes.
#[cfg(iovx_kunit)]
#[pin_data]
pub struct AsyncWaiter {
    tally: Tally,
    #[pin]
    done: Opaque<bindings::completion>,
}

// SAFETY: `struct completion` is made to be completed and waited on from different threads; the
// rest are atomics.
#[cfg(iovx_kunit)]
unsafe impl Send for AsyncWaiter {}
// SAFETY: As above.
#[cfg(iovx_kunit)]
unsafe impl Sync for AsyncWaiter {}

#[cfg(iovx_kunit)]
impl AsyncWaiter {
    /// A waiter, to be pinned in an `Arc`.
    pub fn new() -> impl PinInit<Self> {
        pin_init!(AsyncWaiter {
            tally: Tally::new(),
            // SAFETY: `init_completion()` initialises the completion in place.
            done <- Opaque::ffi_init(|slot| unsafe { shim::iovx_init_completion(slot) }),
        })
    }

    fn put(&self, last: bool) {
        if last {
            // SAFETY: `done` is initialised (type invariant).
            unsafe { bindings::complete(self.done.get()) };
        }
    }

    /// Gives up the submitter's count and waits for every bio to report. Called once.
    ///
    /// Process context: sleeps.
    pub fn wait(&self) -> Result<Done> {
        might_sleep();
        self.put(self.tally.put());
        // SAFETY: `done` is initialised (type invariant); it is completed by the last `put`.
        unsafe { bindings::wait_for_completion_io(self.done.get()) };
        self.tally.result()
    }
}

#[cfg(iovx_kunit)]
impl Completion for AsyncWaiter {
    fn bio_submitted(&self, bytes: usize) {
        self.tally.submitted(bytes);
    }

    fn bio_done(&self, result: Result) {
        self.put(self.tally.done(result));
    }
}

/// Transfers the next `len` bytes of `iter` to or from `target` at `sector` through bios, and
/// waits for them: the synchronous iter-to-bio path, for kernel and user memory alike. The bios
/// are reads into a [`Dest`] iterator's memory, writes from a [`Source`] one's.
///
/// Returns the bytes and bios, or the first error of a bio, or the extraction error if nothing
/// could be submitted. A range that does not lie within the disk is refused first
/// ([`Target::check_range`]: `EINVAL`, or `ENOSPC` for a write starting past the end), with
/// nothing pinned or submitted. `len` should be a multiple of the target's logical block size.
///
/// Process context: sleeps.
pub fn submit_iter_wait<D: Direction>(
    target: Target<'_>,
    iter: &mut IovIter<'_, D>,
    sector: u64,
    len: usize,
) -> Result<Done> {
    submit_iter_wait_as(target, iter, sector, len, UserPages::Pin)
}

/// As [`submit_iter_wait`], with user memory taken as `how` says: pinned, or referenced
/// (the legacy mode, [`UserPages::Reference`]).
///
/// Process context: sleeps.
pub fn submit_iter_wait_as<D: Direction>(
    target: Target<'_>,
    iter: &mut IovIter<'_, D>,
    sector: u64,
    len: usize,
    how: UserPages,
) -> Result<Done> {
    might_sleep();
    kernel::stack_pin_init!(let w = Waiter::new());
    // SAFETY: The waiter stays in place (pinned on this stack frame) and the call waits below
    // for every bio to report to it; the iterator's memory is borrowed for the whole call.
    let r = unsafe {
        submit_iter(
            target,
            iter,
            sector,
            len,
            false,
            how,
            &Borrowed::new(w.as_ref()),
        )
    };
    let done = w.wait();
    r?;
    done
}

/// What a direct-I/O character device does.
///
/// Each method gets the call's [`Kiocb`] and must hand back the one [`Ended`] that consuming it
/// gives: the lifetime `'a` is the call's own, and an `Ended<'a>` is made only from the
/// `Kiocb<'a, _>` of the same call.
pub trait DirectIo: Send + Sync + Sized + 'static {
    /// Size of the device in bytes (for `SEEK_END`).
    fn size(&self) -> u64;
    /// A read (`read`, `pread`, `readv`, aio, io_uring): the call's memory is written.
    fn read_iter<'a>(&self, io: Kiocb<'a, Dest>) -> Ended<'a>;
    /// A write: the call's memory is read.
    fn write_iter<'a>(&self, io: Kiocb<'a, Source>) -> Ended<'a>;
    /// A file of the device is being opened: an error refuses the open. Every successful
    /// `open` is followed by one [`DirectIo::release`], after the file's last I/O has ended
    /// (an asynchronous kiocb holds its file until it is completed).
    ///
    /// Process context: may sleep.
    fn open(&self) -> Result {
        Ok(())
    }
    /// A file opened by a successful [`DirectIo::open`] is closed (its last reference went).
    ///
    /// Process context: may sleep.
    fn release(&self) {}
}

/// How one `read_iter`/`write_iter` call ended: the value the VFS gets back (bytes, an error, or
/// `-EIOCBQUEUED`).
///
/// Only consuming the call's [`Kiocb`] makes one ([`Kiocb::direct_io`], [`Kiocb::done`],
/// [`Kiocb::fail`]), and only [`Kiocb::direct_io`] makes a queued one, when it has queued the
/// I/O whose completion will call `ki_complete()`.
///
/// # Invariants
///
/// `ret` is the answer for the kiocb of the call of lifetime `'a`: `-EIOCBQUEUED` only if that
/// kiocb is asynchronous and will be completed by bios in flight; otherwise a byte count or an
/// errno other than `-EIOCBQUEUED`, and nothing else will complete the kiocb. `'a` is invariant,
/// so an `Ended` of one call cannot pass for one of another.
#[must_use = "a read_iter/write_iter call must return the ending of its kiocb"]
pub struct Ended<'a> {
    ret: isize,
    _call: PhantomData<fn(&'a ()) -> &'a ()>,
}

impl core::fmt::Debug for Ended<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ended").field("ret", &self.ret).finish()
    }
}

/// `-EIOCBQUEUED`, which `kernel::error` does not name.
#[inline]
fn eiocbqueued() -> isize {
    -(bindings::EIOCBQUEUED as isize)
}

/// How a direct I/O went, inside this module: only [`Kiocb::direct_io`] turns `Queued` into an
/// [`Ended`].
enum Outcome {
    Done(usize),
    Queued,
}

/// One `read_iter`/`write_iter` call: its kiocb and its iterator, of direction `D`.
///
/// # Invariants
///
/// `raw` is the call's kiocb, valid for `'a`; `iter` is the call's iterator, lent by the VFS and
/// never replaced (no `&mut` to it leaves this module); `count` is its length when the call
/// began, which no byte count this kiocb reports exceeds. If the
/// kiocb is asynchronous, the memory the iterator describes stays
/// valid until `ki_complete()` is called on `raw`, which only [`Kiocb::direct_io`] arranges
/// (through [`KiocbEnd`] or [`Queued`]), once, and only when it answers `-EIOCBQUEUED`.
pub struct Kiocb<'a, D: Direction> {
    raw: *mut bindings::kiocb,
    iter: IovIter<'a, D>,
    count: usize,
    _call: PhantomData<fn(&'a ()) -> &'a ()>,
}

/// The iterator of a [`Kiocb`], lent for use but not for replacement: it reads as an
/// [`IovIter`] (through [`Deref`](core::ops::Deref)) and offers the methods that move it, but
/// gives no `&mut IovIter`, so the call's iterator cannot be swapped for another
/// (`core::mem::swap`) or overwritten. The kiocb's byte counts are those of the call's own
/// iterator.
pub struct CallIter<'k, 'a, D: Direction> {
    iter: &'k mut IovIter<'a, D>,
}

impl<'a, D: Direction> core::ops::Deref for CallIter<'_, 'a, D> {
    type Target = IovIter<'a, D>;

    #[inline]
    fn deref(&self) -> &IovIter<'a, D> {
        self.iter
    }
}

impl<'a, D: Direction> CallIter<'_, 'a, D> {
    /// [`IovIter::advance`].
    #[inline]
    pub fn advance(&mut self, bytes: usize) -> usize {
        self.iter.advance(bytes)
    }

    /// [`IovIter::revert`].
    #[inline]
    pub fn revert(&mut self, bytes: usize) -> Result {
        self.iter.revert(bytes)
    }

    /// [`IovIter::extract`].
    #[inline]
    pub fn extract<'buf>(
        &mut self,
        slots: &'buf mut [PageSlot],
        max_bytes: usize,
    ) -> Result<Batch<'a, 'buf, D>> {
        self.iter.extract(slots, max_bytes)
    }
}

impl CallIter<'_, '_, Dest> {
    /// [`IovIter::copy_to_iter`].
    #[inline]
    pub fn copy_to_iter(&mut self, buf: &[u8]) -> usize {
        self.iter.copy_to_iter(buf)
    }
}

impl CallIter<'_, '_, Source> {
    /// [`IovIter::copy_from_iter`].
    #[inline]
    pub fn copy_from_iter(&mut self, buf: &mut [u8]) -> usize {
        self.iter.copy_from_iter(buf)
    }
}

impl<'a, D: Direction> Kiocb<'a, D> {
    /// The call's kiocb and iterator.
    ///
    /// # Safety
    ///
    /// `iocb` and `iter` are the arguments of a `read_iter` (if `D` is [`Dest`]) or `write_iter`
    /// (if `D` is [`Source`]) call of the VFS, valid for `'a`, the call's duration; for an
    /// asynchronous kiocb, the iterator's memory stays valid until `ki_complete()`.
    #[inline]
    unsafe fn new(iocb: *mut bindings::kiocb, iter: *mut bindings::iov_iter) -> Self {
        // SAFETY: `iter` is the call's iterator, of direction `D`, valid and used only through
        // this handle during the call, with the VFS's promise for an asynchronous kiocb's memory.
        let iter = unsafe { IovIter::<D>::from_raw(iter) };
        let count = iter.len();
        // INVARIANT: The call's kiocb and iterator, and the iterator's length as the call began.
        Self {
            raw: iocb,
            iter,
            count,
            _call: PhantomData,
        }
    }

    /// The file position of the call, in bytes.
    #[inline]
    pub fn pos(&self) -> i64 {
        // SAFETY: `raw` is valid (type invariant).
        unsafe { (*self.raw).ki_pos }
    }

    /// Whether the caller waits for the result (`read`, `pread`) rather than being told later
    /// (aio, io_uring).
    #[inline]
    pub fn is_sync(&self) -> bool {
        // SAFETY: `raw` is valid (type invariant); `is_sync_kiocb()`.
        unsafe { (*self.raw).ki_complete.is_none() }
    }

    /// The call's I/O priority (`ki_ioprio`), which the VFS checked: any context.
    #[inline]
    pub fn ioprio(&self) -> IoPrio {
        // SAFETY: `raw` is the call's kiocb, made and its priority checked by the VFS (type
        // invariant).
        unsafe { IoPrio::from_kiocb((*self.raw).ki_ioprio) }
    }

    /// The call's iterator: to read its state, copy through it, advance it or extract from it,
    /// but not to replace it (see [`CallIter`]).
    #[inline]
    pub fn iter(&mut self) -> CallIter<'_, 'a, D> {
        CallIter {
            iter: &mut self.iter,
        }
    }

    /// The call's length in bytes: the iterator's as the call began.
    #[inline]
    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether every segment of the iterator starts at an address aligned to `addr_mask + 1` and
    /// has a length that is a multiple of `len_mask + 1` (`iov_iter_is_aligned()`).
    pub fn is_aligned(&self, addr_mask: u32, len_mask: u32) -> bool {
        // SAFETY: The iterator is initialised (its invariant).
        unsafe { bindings::iov_iter_is_aligned(self.iter.as_raw(), addr_mask, len_mask as _) }
    }

    /// Ends the call with `n` bytes done (at most the call's length; more is cut to it), moving
    /// the file position by as many. For a call whose bytes were moved without
    /// [`Kiocb::direct_io`] (copied through the iterator, or none).
    pub fn done(self, n: usize) -> Ended<'a> {
        // The call's length, recorded when the call began (at most `MAX_RW_COUNT`, which the VFS
        // caps every call at, so it fits in `isize`).
        let n = n.min(self.count).min(isize::MAX as usize);
        // SAFETY: `raw` is the call's kiocb, valid during the call, and not completed by
        // anything (nothing was queued).
        unsafe { (*self.raw).ki_pos = (*self.raw).ki_pos.wrapping_add(n as i64) };
        // INVARIANT: A byte count; nothing was queued.
        Ended {
            ret: n as isize,
            _call: PhantomData,
        }
    }

    /// Ends the call with the error `err`. `-EIOCBQUEUED` is not an error a call may return
    /// without queueing anything: it becomes `EIO`.
    pub fn fail(self, err: Error) -> Ended<'a> {
        let mut ret = err.to_errno() as isize;
        if ret == eiocbqueued() {
            ret = EIO.to_errno() as isize;
        }
        // INVARIANT: An errno other than `-EIOCBQUEUED`; nothing was queued.
        Ended {
            ret,
            _call: PhantomData,
        }
    }

    /// Transfers the next `len` bytes of the iterator to or from `target` at byte `offset`,
    /// which must be a multiple of 512, through bios whose pages are pinned (user memory) or
    /// listed (kernel memory): reads for a [`Dest`] call, writes for a [`Source`] one.
    ///
    /// A synchronous call waits and ends with the bytes; an asynchronous one is queued and the
    /// kiocb is completed with the result when the last bio completes. The file position
    /// advances by the bytes transferred. An error before any bio was submitted ends the call
    /// with it (nothing was queued); one from a bio is the call's result.
    ///
    /// Process context: may sleep (always, for a synchronous call).
    #[inline]
    pub fn direct_io(self, target: Target<'_>, offset: u64, len: usize) -> Ended<'a> {
        self.direct_io_as(target, offset, len, UserPages::Pin)
    }

    /// As [`Kiocb::direct_io`], with user memory taken as `how` says: pinned, or with page
    /// references ([`UserPages::Reference`], the legacy mode, which fork() does not protect).
    /// Memory that the caller's kiocb lends as kernel pages (io_uring's fixed buffers, a BVEC
    /// iterator of pages the ring pinned) is listed either way.
    // Inlined into the caller's `read_iter`/`write_iter`: the kiocb and its iterator stay where
    // the caller has them, not copied into another frame.
    #[inline(always)]
    pub fn direct_io_as(
        self,
        target: Target<'_>,
        offset: u64,
        len: usize,
        how: UserPages,
    ) -> Ended<'a> {
        // No more than the call asked for.
        let len = len.min(self.count);
        let ret = match self.transfer(target, offset, len, how) {
            Ok(Outcome::Done(n)) => n as isize,
            Ok(Outcome::Queued) => eiocbqueued(),
            Err(e) => e.to_errno() as isize,
        };
        // INVARIANT: `-EIOCBQUEUED` only if `transfer` queued bios that will complete the
        // kiocb; otherwise the bytes moved or an error from the paths below, which never make
        // `-EIOCBQUEUED`.
        Ended {
            ret,
            _call: PhantomData,
        }
    }

    #[inline(always)]
    fn transfer(
        mut self,
        target: Target<'_>,
        offset: u64,
        len: usize,
        how: UserPages,
    ) -> Result<Outcome> {
        might_sleep();
        if offset % 512 != 0 || offset > i64::MAX as u64 {
            return Err(EINVAL);
        }
        let sync = self.is_sync();
        let raw = self.raw;
        // The bios carry the call's I/O priority, as the block device's own direct I/O does.
        let target = target.with_ioprio(self.ioprio());
        // Used in place: moving the iterator (some 56 bytes) out of the kiocb costs a copy.
        let iter = &mut self.iter;
        if sync {
            if len <= INLINE_BYTES {
                // Most synchronous transfers fit in one bio of a few segments, kept on this
                // stack as `__blkdev_direct_IO_simple()` keeps its own: no allocation, no
                // counting completion.
                let mut slot = BioSlot::new();
                if let Some(n) =
                    submit_iter_wait_inline_as(&mut slot, target, iter, offset >> 9, len, how)?
                {
                    // SAFETY: `raw` is the call's kiocb, valid during the call.
                    unsafe { (*raw).ki_pos = (offset as i64).wrapping_add(n as i64) };
                    return Ok(Outcome::Done(n));
                }
                // More pages than the slot holds: below.
            }
            // SAFETY: `raw` is the call's kiocb, valid during the call.
            let nowait = unsafe { kiocb_nowait(raw) };
            let n = if iter.kind() == Kind::Bvec {
                // A BVEC iterator's segments go into one bio as they are (`submit_iter()`).
                kernel::stack_pin_init!(let w = Waiter::new());
                // SAFETY: The waiter stays in place on this stack frame, and the call waits
                // below for every bio to report to it; the iterator's memory is valid during the
                // call.
                let submitted = unsafe {
                    let done = Borrowed::new(w.as_ref());
                    submit_iter(target, iter, offset >> 9, len, nowait, how, &done)
                };
                let done = w.wait();
                submitted?;
                done?.bytes
            } else {
                submit_sync(target, iter, offset >> 9, len, nowait, how)?
            };
            // SAFETY: `raw` is the call's kiocb, valid during the call.
            unsafe { (*raw).ki_pos = (offset as i64).wrapping_add(n as i64) };
            return Ok(Outcome::Done(n));
        }
        // SAFETY: `raw` is the call's kiocb, valid during the call.
        let nowait = unsafe { kiocb_nowait(raw) };
        // The position is set to the offset now, and the completion adds the bytes
        // (`complete_kiocb()`). Until the kiocb is completed, it is this call's.
        // SAFETY: `raw` is the call's kiocb.
        unsafe { (*raw).ki_pos = offset as i64 };
        if len <= ONE_BIO_BYTES {
            // Most asynchronous transfers fit in one bio, which then completes the kiocb itself:
            // no state of its own, as `__blkdev_direct_IO_async()`.
            // SAFETY: `raw` is the call's asynchronous kiocb, completed only by the one bio
            // submitted with it (`submit_iter_one()`), or not at all if nothing is submitted.
            let done = unsafe { KiocbEnd::new(raw) };
            // SAFETY: The iterator's memory of an asynchronous kiocb is valid until
            // `ki_complete()`, which the bio calls after releasing its pages.
            if unsafe { submit_iter_one(target, iter, offset >> 9, len, how, &done) }?.is_some() {
                return Ok(Outcome::Queued);
            }
            // Needs more than one bio: below, unless the caller may not wait.
            if nowait {
                return Err(EAGAIN);
            }
        }
        // INVARIANT: The kiocb goes to `state` only, which completes it when its last count
        // goes, if anything was submitted.
        let state = Arc::new(
            Queued {
                tally: Tally::new(),
                iocb: raw,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: The iterator's memory of an asynchronous kiocb is valid until `ki_complete()`,
        // which `state` calls only after the last bio has reported.
        match unsafe { submit_iter(target, iter, offset >> 9, len, nowait, how, &state) } {
            Err(e) => {
                // Nothing in flight (`submit_iter` fails only then): the submitter's count goes
                // without completing anything, and `state` is dropped.
                let _ = state.tally.put();
                Err(e)
            }
            Ok(_) => {
                // The kiocb now belongs to `state`; the last count completes it (here, with 0
                // bytes, if the iterator had nothing left and no bio was submitted).
                state.put_submitter();
                Ok(Outcome::Queued)
            }
        }
    }
}

/// Whether the caller of the kiocb `raw` may not wait (`IOCB_NOWAIT`).
///
/// # Safety
///
/// `raw` is a valid kiocb.
#[inline(always)]
unsafe fn kiocb_nowait(raw: *mut bindings::kiocb) -> bool {
    // SAFETY: By the safety requirements.
    unsafe { (*raw).ki_flags & shim::IOVX_IOCB_NOWAIT as ffi::c_int != 0 }
}

/// Synchronous transfers up to this size are tried in a bio on the stack first (an unaligned
/// buffer of this size spans [`INLINE_VECS`] pages).
const INLINE_BYTES: usize = (INLINE_VECS - 1) * PAGE_SIZE;

/// Transfers up to this size are tried in one bio first (an unaligned buffer of this size spans
/// `BIO_MAX_VECS` pages).
const ONE_BIO_BYTES: usize = (bindings::BIO_MAX_VECS as usize - 1) * PAGE_SIZE;

/// Completes an asynchronous kiocb whose `ki_pos` holds the offset of its transfer: with the
/// bytes (moving `ki_pos` past them) or the error.
///
/// # Safety
///
/// `iocb` is an asynchronous kiocb, valid until this call, which completes it; nothing else
/// completes it, and nothing touches it afterwards.
#[inline]
unsafe fn complete_kiocb(iocb: *mut bindings::kiocb, result: Result<usize>) {
    // SAFETY: By the safety requirements: valid until completed just below, once.
    unsafe {
        let ret = match result {
            Ok(n) => {
                (*iocb).ki_pos = (*iocb).ki_pos.wrapping_add(n as i64);
                n as ffi::c_long
            }
            Err(e) => e.to_errno() as ffi::c_long,
        };
        // An asynchronous kiocb has its completion (`is_sync_kiocb()` is false).
        let complete = (*iocb).ki_complete;
        debug_assert!(complete.is_some());
        if let Some(complete) = complete {
            complete(iocb, ret);
        }
    }
}

/// An asynchronous kiocb as the completion of the one bio that carries its whole transfer.
///
/// # Invariants
///
/// Lives inside a kiocb of an asynchronous call, valid until `ki_complete()` is called on it,
/// which only [`KiocbEnd`]'s `bio_done` does, once; its `ki_pos` holds the transfer's offset.
#[repr(transparent)]
struct KiocbEnd(Opaque<bindings::kiocb>);

// SAFETY: A kiocb may be completed from any thread; the one bio is its only user meanwhile.
unsafe impl Send for KiocbEnd {}
// SAFETY: As above.
unsafe impl Sync for KiocbEnd {}

impl KiocbEnd {
    /// The kiocb `iocb` as the completion of one bio.
    ///
    /// # Safety
    ///
    /// `iocb` is the kiocb of an asynchronous call, valid until completed, whose `ki_pos` holds
    /// the offset of the transfer; the handle must go to one bio only (`submit_iter_one()`), or
    /// to none.
    unsafe fn new(iocb: *mut bindings::kiocb) -> Borrowed<KiocbEnd> {
        // SAFETY: `KiocbEnd` is a transparent wrapper of the kiocb; by the safety requirements it
        // stays valid, in place, until the one bio has reported, and is then done with.
        unsafe { Borrowed::new(core::pin::Pin::new_unchecked(&*iocb.cast::<KiocbEnd>())) }
    }
}

impl Completion for KiocbEnd {
    #[inline]
    fn bio_submitted(&self, bytes: usize) {
        // The one bio's byte count waits in `private`, which is the file's to use (this device
        // does not poll); nothing else touches the kiocb until it is completed. One bio needs
        // no tally.
        // SAFETY: The kiocb is valid and this bio's (type invariant).
        unsafe { (*self.0.get()).private = bytes as *mut ffi::c_void };
    }

    #[inline]
    fn bio_done(&self, result: Result) {
        let iocb = self.0.get();
        // SAFETY: The kiocb is valid until completed here, once (type invariant); `private`
        // holds the bytes of its one bio.
        unsafe { complete_kiocb(iocb, result.map(|()| (*iocb).private as usize)) };
    }
}

/// The state of one asynchronous direct I/O of several bios in flight.
///
/// # Invariants
///
/// `iocb` is an asynchronous kiocb whose `ki_pos` holds the transfer's offset; when the tally's
/// last count goes after the submission succeeded (with one bio or more, or none if the iterator
/// had nothing left), the I/O is over and `iocb` is completed, once.
struct Queued {
    tally: Tally,
    iocb: *mut bindings::kiocb,
}

// SAFETY: The kiocb pointer is used once, by whichever thread ends the I/O; the rest are atomics.
unsafe impl Send for Queued {}
// SAFETY: As above.
unsafe impl Sync for Queued {}

impl Queued {
    /// Completes the kiocb if `last`.
    fn end(&self, last: bool) {
        if last {
            // SAFETY: The last count (type invariant): the kiocb is completed here, once.
            unsafe { complete_kiocb(self.iocb, self.tally.result().map(|d| d.bytes)) };
        }
    }

    /// The submitter lets go after a successful submission (of one bio or more, or of none if
    /// the iterator had nothing left).
    fn put_submitter(&self) {
        self.end(self.tally.put());
    }
}

impl Completion for Queued {
    fn bio_submitted(&self, bytes: usize) {
        self.tally.submitted(bytes);
    }

    fn bio_done(&self, result: Result) {
        self.end(self.tally.done(result));
    }
}

/// The body of a character device's `read_iter`: hands the call to `data` as a [`Kiocb`] and
/// returns its [`Ended`] to the VFS.
///
/// # Safety
///
/// `iocb`/`iter` are the arguments of a `read_iter` call of the VFS, valid for the call (and for
/// an asynchronous kiocb, the iterator's memory until `ki_complete()`).
#[inline]
pub(crate) unsafe fn read_iter<T: DirectIo>(
    data: &T,
    iocb: *mut bindings::kiocb,
    iter: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: By the safety requirements; a `read_iter` iterator is a destination.
    let io = unsafe { Kiocb::<Dest>::new(iocb, iter) };
    data.read_iter(io).ret
}

/// The body of a character device's `write_iter`, as [`read_iter`].
///
/// # Safety
///
/// `iocb`/`iter` are the arguments of a `write_iter` call of the VFS, valid for the call (and for
/// an asynchronous kiocb, the iterator's memory until `ki_complete()`).
#[inline]
pub(crate) unsafe fn write_iter<T: DirectIo>(
    data: &T,
    iocb: *mut bindings::kiocb,
    iter: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: By the safety requirements; a `write_iter` iterator is a source.
    let io = unsafe { Kiocb::<Source>::new(iocb, iter) };
    data.write_iter(io).ret
}

/// Runs one synchronous `read_iter` call of `data` over `iter` at file position `pos`, as the VFS
/// makes it (`init_sync_kiocb()`, through [`read_iter`]): for tests of [`DirectIo`]
/// implementations. Returns what the call returned and the file position after it.
///
/// Process context: may sleep.
#[cfg(iovx_kunit)]
pub fn test_sync_read<T: DirectIo>(
    data: &T,
    iter: &mut IovIter<'_, Dest>,
    pos: i64,
) -> (isize, i64) {
    // SAFETY: `sync_call` passes a synchronous kiocb and the destination iterator `iter`, both
    // valid during the call, as a `read_iter` call of the VFS has them.
    sync_call(iter, pos, |k, i| unsafe { read_iter(data, k, i) })
}

/// As [`test_sync_read`], for `write_iter`.
///
/// Process context: may sleep.
#[cfg(iovx_kunit)]
pub fn test_sync_write<T: DirectIo>(
    data: &T,
    iter: &mut IovIter<'_, Source>,
    pos: i64,
) -> (isize, i64) {
    // SAFETY: As in `test_sync_read`, with a source iterator.
    sync_call(iter, pos, |k, i| unsafe { write_iter(data, k, i) })
}

/// A synchronous kiocb at `pos` on this stack frame, and `iter`, lent to `call`.
#[cfg(iovx_kunit)]
fn sync_call<D: Direction>(
    iter: &mut IovIter<'_, D>,
    pos: i64,
    call: impl FnOnce(*mut bindings::kiocb, *mut bindings::iov_iter) -> isize,
) -> (isize, i64) {
    // SAFETY: All-zero is a valid `struct kiocb` (null pointers, no completion: synchronous, no
    // flags), as `init_sync_kiocb()` leaves one without a file.
    let mut kiocb: bindings::kiocb = unsafe { core::mem::zeroed() };
    kiocb.ki_pos = pos;
    // The iterator is lent for the call: `iter` is not used meanwhile (it is borrowed here), and
    // the call ends before this returns; a synchronous kiocb is completed by no one later.
    let ret = call(&mut kiocb, iter.as_raw());
    (ret, kiocb.ki_pos)
}
