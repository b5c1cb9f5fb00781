// SPDX-License-Identifier: GPL-2.0

//! `/dev/iovx_gup`: the ioctl ABI of the kernel's gup_test device (`mm/gup_test.c`), served by
//! the Rust pin and reference abstractions.
//!
//! The commands, argument checks, errnos, timing fields and the dma-pinned verification are
//! those of 6.12's `mm/gup_test.c`, so that the kernel's own selftests (`gup_test`, `cow`,
//! `gup_longterm`) run against this device unchanged, bind-mounted over
//! `/sys/kernel/debug/gup_test`. Differences: only the `FOLL_*` flags that make sense from
//! outside the core mm are accepted (`FOLL_WRITE`, `FOLL_FORCE`, `FOLL_NOFAULT`, and `FOLL_GET`
//! for the reference commands; `EINVAL` for the others, such as `FOLL_TOUCH` or `FOLL_GET` with a
//! pin, where the kernel's device passes them on and GUP warns), and the long-term test pins
//! belong to this device rather than to the kernel's one.
//!
//! `FOLL_WRITE` chooses the direction of the GUP calls: with it the pages are taken for I/O
//! that writes them ([`Dest`]), without it for I/O that reads them ([`Source`]).
//!
//! A size from user space larger than the machine's RAM in pages is `ENOMEM`, as
//! `mm/gup_test.c` answers a size whose page array cannot be allocated, but without the kernel
//! warning that `kvmalloc()` prints there ([`HeldPages::new`]).

#![deny(unsafe_code)]

use crate::abstractions::gup::{gup, GupFlags, HeldPages, MmapReadGuard, UserMm, Walk};
use crate::abstractions::iov::{Dest, Direction, Source};
use crate::abstractions::miscdev::IoctlDevice;
use crate::abstractions::pages::Mode;
use crate::abstractions::task::{now_us, warn};
use crate::abstractions::uapi::{
    GupTest, PinLongtermTest, UserArg, GUP_TEST_FLAG_DUMP_PAGES_USE_PIN,
    GUP_TEST_MAX_PAGES_TO_DUMP, PIN_LONGTERM_TEST_FLAG_USE_FAST, PIN_LONGTERM_TEST_FLAG_USE_WRITE,
};
use kernel::{
    c_str,
    ioctl::{_IO, _IOW, _IOWR},
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::Mutex,
    uaccess::UserSlice,
};

const G: u32 = b'g' as u32;
const GUP_FAST_BENCHMARK: u32 = _IOWR::<GupTest>(G, 1);
const PIN_FAST_BENCHMARK: u32 = _IOWR::<GupTest>(G, 2);
const PIN_LONGTERM_BENCHMARK: u32 = _IOWR::<GupTest>(G, 3);
const GUP_BASIC_TEST: u32 = _IOWR::<GupTest>(G, 4);
const PIN_BASIC_TEST: u32 = _IOWR::<GupTest>(G, 5);
const DUMP_USER_PAGES_TEST: u32 = _IOWR::<GupTest>(G, 6);
const PIN_LONGTERM_TEST_START: u32 = _IOW::<PinLongtermTest>(G, 7);
const PIN_LONGTERM_TEST_STOP: u32 = _IO(G, 8);
const PIN_LONGTERM_TEST_READ: u32 = _IOW::<u64>(G, 9);

/// The pages of the long-term pin test, writable or not.
enum LongtermPins {
    /// Pinned with `FOLL_WRITE`.
    Write(HeldPages<Dest>),
    /// Pinned for reading.
    Read(HeldPages<Source>),
}

/// The device's state: the pages of the long-term pin test, between START and STOP.
#[pin_data]
pub(crate) struct GupDev {
    #[pin]
    longterm: Mutex<Option<LongtermPins>>,
}

impl GupDev {
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(GupDev {
            longterm <- new_mutex!(None),
        })
    }

    /// One of the `struct gup_test` commands (`__gup_test_ioctl()`).
    fn gup_test(&self, cmd: u32, g: &mut GupTest) -> Result {
        let (mode, fast, longterm) = match cmd {
            GUP_FAST_BENCHMARK => (Mode::Referenced, true, false),
            GUP_BASIC_TEST => (Mode::Referenced, false, false),
            PIN_FAST_BENCHMARK => (Mode::Pinned, true, false),
            PIN_BASIC_TEST => (Mode::Pinned, false, false),
            PIN_LONGTERM_BENCHMARK => (Mode::Pinned, false, true),
            _ => {
                // DUMP_USER_PAGES_TEST
                let pin = g.test_flags & GUP_TEST_FLAG_DUMP_PAGES_USE_PIN != 0;
                (
                    if pin { Mode::Pinned } else { Mode::Referenced },
                    false,
                    false,
                )
            }
        };
        // FOLL_GET is what the reference commands do anyway; upstream's run_vmtests.sh passes
        // it (`-F 0x3`). With a pin it would be a contradiction: EINVAL.
        let user_bits = if mode == Mode::Referenced {
            g.gup_flags & !GupFlags::GET
        } else {
            g.gup_flags
        };
        // FOLL_WRITE is the direction.
        let write = user_bits & GupFlags::WRITE != 0;
        let user_bits = user_bits & !GupFlags::WRITE;
        let bits = if longterm {
            GupFlags::new(user_bits | GupFlags::LONGTERM, true)?
        } else {
            GupFlags::new(user_bits, false)?
        };
        if write {
            self.gup_test_dir::<Dest>(cmd, g, mode, fast, longterm, bits)
        } else {
            self.gup_test_dir::<Source>(cmd, g, mode, fast, longterm, bits)
        }
    }

    /// The body of [`GupDev::gup_test`], for GUP calls of direction `D`.
    fn gup_test_dir<D: Direction>(
        &self,
        cmd: u32,
        g: &mut GupTest,
        mode: Mode,
        fast: bool,
        longterm: bool,
        bits: GupFlags,
    ) -> Result {
        let size = usize::try_from(g.size).map_err(|_| EINVAL)?;
        let per_call = g.nr_pages_per_call as usize;
        // A user size: bounded, and refused with ENOMEM without a warning (`HeldPages::new`).
        let mut held = HeldPages::<D>::new(size / PAGE_SIZE, mode)?;
        let mut mm = UserMm::current()?;
        let mut guard = None;
        let walk = walk(&mut mm, &mut guard, fast)?;

        let start_addr = g.addr as usize;
        let end = start_addr.saturating_add(size);
        let start = now_us();
        let covered = held.take_range(start_addr, end, per_call, bits, walk)?;
        let stop = now_us();
        g.get_delta_usec = (stop - start) as u64;
        g.size = covered.min(size) as u64;

        // An untimed moment to verify the pinned state, reported as the kernel's device does.
        if mode == Mode::Pinned && cmd != DUMP_USER_PAGES_TEST {
            for p in held.pages() {
                if !p.maybe_dma_pinned() {
                    warn(c_str!("iovx_gup: a page is NOT dma-pinned"));
                    p.dump(c_str!("iovx_gup failure"));
                    break;
                } else if longterm && !p.is_longterm_pinnable() {
                    warn(c_str!("iovx_gup: a page is NOT pinnable but pinned"));
                    p.dump(c_str!("iovx_gup failure"));
                    break;
                }
            }
        }
        if cmd == DUMP_USER_PAGES_TEST {
            dump_pages(g, &held);
        }

        // The pages are released in the timed part; the array is freed after it, as the
        // kernel's device frees its array after timing.
        let start = now_us();
        held.release_all();
        let stop = now_us();
        g.put_delta_usec = (stop - start) as u64;
        drop(held);
        drop(guard);
        Ok(())
    }

    fn longterm_start(&self, arg: usize) -> Result {
        let mut state = self.longterm.lock();
        if state.is_some() {
            return Err(EINVAL);
        }
        let a = *UserArg::<PinLongtermTest>::read(arg)?.get();
        if a.flags & !(PIN_LONGTERM_TEST_FLAG_USE_WRITE | PIN_LONGTERM_TEST_FLAG_USE_FAST) != 0 {
            return Err(EINVAL);
        }
        if (a.addr | a.size) % PAGE_SIZE as u64 != 0 || a.size > i64::MAX as u64 {
            return Err(EINVAL);
        }
        let nr_pages = (a.size / PAGE_SIZE as u64) as usize;
        if nr_pages == 0 {
            return Err(EINVAL);
        }
        let bits = GupFlags::new(GupFlags::LONGTERM, true)?;
        let fast = a.flags & PIN_LONGTERM_TEST_FLAG_USE_FAST != 0;
        *state = Some(if a.flags & PIN_LONGTERM_TEST_FLAG_USE_WRITE != 0 {
            LongtermPins::Write(pin_longterm::<Dest>(a.addr as usize, nr_pages, bits, fast)?)
        } else {
            LongtermPins::Read(pin_longterm::<Source>(
                a.addr as usize,
                nr_pages,
                bits,
                fast,
            )?)
        });
        Ok(())
    }

    fn longterm_read(&self, arg: usize) -> Result {
        let state = self.longterm.lock();
        let user_addr = *UserArg::<u64>::read(arg)?.get() as usize;
        match state.as_ref().ok_or(EINVAL)? {
            LongtermPins::Write(held) => read_pages(held, user_addr),
            LongtermPins::Read(held) => read_pages(held, user_addr),
        }
    }

    fn longterm_stop(&self) {
        // Dropping the pages unpins them.
        *self.longterm.lock() = None;
    }
}

/// Pins `nr_pages` pages from `addr` long-term for I/O in direction `D`, all of them or none
/// (`pin_longterm_test_start()`).
fn pin_longterm<D: Direction>(
    addr: usize,
    nr_pages: usize,
    bits: GupFlags,
    fast: bool,
) -> Result<HeldPages<D>> {
    let mut held = HeldPages::<D>::new(nr_pages, Mode::Pinned)?;
    let mut mm = UserMm::current()?;
    let mut guard = None;
    let walk = walk(&mut mm, &mut guard, fast)?;
    while held.len() < nr_pages {
        let at = addr + held.len() * PAGE_SIZE;
        // On failure `held` is dropped, unpinning what was pinned, as the kernel's
        // pin_longterm_test_stop() does.
        held.take(nr_pages - held.len(), |s| {
            gup(at, bits, Mode::Pinned, walk, s)
        })?;
    }
    drop(guard);
    Ok(held)
}

/// Copies the held pages, a page each, to user memory from `user_addr` on
/// (`pin_longterm_test_read()`).
fn read_pages<D: Direction>(held: &HeldPages<D>, mut user_addr: usize) -> Result {
    let mut buf = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
    for p in held.pages() {
        p.read(0, &mut buf)?;
        UserSlice::new(user_addr, PAGE_SIZE)
            .writer()
            .write_slice(&buf)?;
        user_addr += PAGE_SIZE;
    }
    Ok(())
}

/// The walk for the fast GUP paths (lockless, with `mm` borrowed shared), or for the slow ones:
/// the mmap lock is taken into `guard` (borrowing `mm` exclusively until `guard` goes), as
/// `mm/gup_test.c` takes it for its slow commands.
fn walk<'g, 'm: 'g>(
    mm: &'m mut UserMm,
    guard: &'g mut Option<MmapReadGuard<'m>>,
    fast: bool,
) -> Result<Walk<'g>> {
    if fast {
        Ok(Walk::Fast(mm))
    } else {
        Ok(Walk::Locked(guard.insert(MmapReadGuard::lock(mm)?)))
    }
}

/// `dump_pages_test()`: out-of-range page numbers are zeroed, the others dumped.
fn dump_pages<D: Direction>(g: &mut GupTest, held: &HeldPages<D>) {
    let n = held.len();
    for i in 0..GUP_TEST_MAX_PAGES_TO_DUMP {
        if g.which_pages[i] as usize > n {
            pr_warn!(
                "ZEROING due to out of range: .which_pages[{}]: {}\n",
                i,
                g.which_pages[i]
            );
            g.which_pages[i] = 0;
        }
    }
    for i in 0..GUP_TEST_MAX_PAGES_TO_DUMP {
        let index = g.which_pages[i] as usize;
        if index == 0 {
            continue;
        }
        pr_info!(
            "---- page #{}, starting from user virt addr: 0x{:x}\n",
            index - 1,
            g.addr
        );
        if let Some(p) = held.pages().nth(index - 1) {
            p.dump(c_str!("iovx_gup: dump_pages() test"));
        }
    }
}

impl IoctlDevice for GupDev {
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            GUP_FAST_BENCHMARK
            | PIN_FAST_BENCHMARK
            | PIN_LONGTERM_BENCHMARK
            | GUP_BASIC_TEST
            | PIN_BASIC_TEST
            | DUMP_USER_PAGES_TEST => {
                let mut g = UserArg::<GupTest>::read(arg)?;
                self.gup_test(cmd, g.get_mut())?;
                g.write(arg)?;
                Ok(0)
            }
            PIN_LONGTERM_TEST_START => self.longterm_start(arg).map(|()| 0),
            PIN_LONGTERM_TEST_STOP => {
                self.longterm_stop();
                Ok(0)
            }
            PIN_LONGTERM_TEST_READ => self.longterm_read(arg).map(|()| 0),
            _ => Err(EINVAL),
        }
    }

    fn release(&self) {
        self.longterm_stop();
    }
}
