// SPDX-License-Identifier: GPL-2.0

//! The direct-I/O front end: `/dev/iovx_dioN` reads and writes disk `iovxN`, and
//! `/dev/iovx_dio_<name>` an attached block device (`/dev/<name>`), through the Rust extraction
//! and bio path.
//!
//! The file position is the byte offset on the disk, and the rules are those of `O_DIRECT` on
//! the block device (`block/fops.c`): the offset and the length must be multiples of the logical
//! block size and the memory aligned to the queue's DMA alignment, else `EINVAL`; a read at or
//! past the end returns 0 and one across it is short; a write at or past the end fails with
//! `ENOSPC` and one across it is short; zero bytes is 0. The block size, the alignment and the
//! size are the device's own (its queue's limits when it was attached).
//!
//! User memory is pinned, unless the module parameter `extract_legacy` is set (it can be changed
//! at run time, and is read at the start of each call): it is then taken with page references
//! (`FOLL_GET`), the behaviour before `iov_iter_extract_pages()`, which fork() does not protect.
//!
//! Attached block devices (`dio_attach=` at load, `IOVX_DIO_ATTACH`/`IOVX_DIO_DETACH` on
//! `/dev/iovx_dioctl`) are held open exclusively while attached; a device is detached only when
//! no file of its `/dev/iovx_dio_<name>` is open (an open file holds its asynchronous I/O),
//! else `EBUSY`.

#![deny(unsafe_code)]

use crate::abstractions::bdev::Bdev;
use crate::abstractions::bio::Target;
use crate::abstractions::blk::Disk;
use crate::abstractions::direct_io::{DirectIo, Ended, Kiocb};
use crate::abstractions::extract::UserPages;
use crate::abstractions::iov::{Dest, Direction, Source};
use crate::abstractions::miscdev::{IoctlDevice, MiscDevice};
use crate::abstractions::params;
use crate::abstractions::task::capable_sys_admin;
use crate::ramdisk::RamDisk;
use core::num::NonZeroU64;
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::{
    c_str, fmt,
    ioctl::_IOW,
    new_mutex,
    prelude::*,
    str::CString,
    sync::{Arc, Mutex},
    uaccess::UserSlice,
};

/// Where a direct-I/O device sends its bios.
pub(crate) trait Backing: Send + Sync + 'static {
    /// The target of the bios.
    fn target(&self) -> Target<'_>;
    /// DMA alignment of the memory, as a mask (511 for 512 bytes).
    fn dma_mask(&self) -> u32;
    /// Whether the device is gone (new I/O fails with `ENODEV`).
    fn is_gone(&self) -> bool {
        false
    }
    /// A file of the direct-I/O device is being opened; an error refuses it.
    fn open(&self) -> Result {
        Ok(())
    }
    /// A file opened with [`Backing::open`] is closed.
    fn release(&self) {}
}

impl Backing for Disk<RamDisk> {
    fn target(&self) -> Target<'_> {
        Disk::target(self)
    }

    fn dma_mask(&self) -> u32 {
        // The RAM disk keeps the block layer's default DMA alignment.
        511
    }
}

/// The direct-I/O device of one disk or attached block device.
pub(crate) struct DioDev<B: Backing> {
    backing: Arc<B>,
    size: u64,
    /// The logical block size, a divisor that cannot be zero.
    lbs: NonZeroU64,
    dma_mask: u32,
}

impl<B: Backing> DioDev<B> {
    pub(crate) fn new(backing: Arc<B>) -> Self {
        let target = backing.target();
        let size = target.capacity() << 9;
        // 512 to 4096 (the `Target` invariant).
        let lbs = NonZeroU64::new(target.logical_block_size().into()).unwrap_or(NonZeroU64::MIN);
        let dma_mask = backing.dma_mask();
        Self {
            backing,
            size,
            lbs,
            dma_mask,
        }
    }

    #[inline]
    fn rw<'a, D: Direction>(&self, mut io: Kiocb<'a, D>) -> Ended<'a> {
        let write = !D::WRITES_MEMORY;
        let Ok(pos) = u64::try_from(io.pos()) else {
            return io.fail(EINVAL);
        };
        let mut len = io.iter().len();
        if len == 0 {
            return io.done(0);
        }
        if self.backing.is_gone() {
            return io.fail(ENODEV);
        }
        if pos >= self.size {
            return if write { io.fail(ENOSPC) } else { io.done(0) };
        }
        len = len.min((self.size - pos) as usize);
        let lbs = self.lbs;
        let len_mask = (lbs.get() - 1) as u32;
        if pos % lbs != 0 || len as u64 % lbs != 0 || !io.is_aligned(self.dma_mask, len_mask) {
            return io.fail(EINVAL);
        }
        // The legacy mode (module parameter `extract_legacy`) takes user memory with page
        // references instead of pins, as before `iov_iter_extract_pages()`.
        let how = if params::extract_legacy() {
            UserPages::Reference
        } else {
            UserPages::Pin
        };
        io.direct_io_as(self.backing.target(), pos, len, how)
    }
}

impl<B: Backing> DirectIo for DioDev<B> {
    fn size(&self) -> u64 {
        self.size
    }

    #[inline]
    fn read_iter<'a>(&self, io: Kiocb<'a, Dest>) -> Ended<'a> {
        self.rw(io)
    }

    #[inline]
    fn write_iter<'a>(&self, io: Kiocb<'a, Source>) -> Ended<'a> {
        self.rw(io)
    }

    fn open(&self) -> Result {
        self.backing.open()
    }

    fn release(&self) {
        self.backing.release()
    }
}

/// Set in [`Attached::users`] once the device is being detached: no file opens any more.
const DETACHED: u32 = 1 << 31;

/// A block device attached to a direct-I/O device.
///
/// `users` counts the open files of the direct-I/O device; [`DETACHED`] is set in it only while
/// there are none, and then no file opens again.
pub(crate) struct Attached {
    bdev: Bdev,
    users: AtomicU32,
}

impl Backing for Attached {
    fn target(&self) -> Target<'_> {
        self.bdev.target()
    }

    fn dma_mask(&self) -> u32 {
        self.bdev.limits().dma_alignment
    }

    fn is_gone(&self) -> bool {
        self.bdev.is_dead()
    }

    fn open(&self) -> Result {
        self.users
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                if u & DETACHED != 0 || u + 1 >= DETACHED {
                    None
                } else {
                    Some(u + 1)
                }
            })
            .map(|_| ())
            .map_err(|u| if u & DETACHED != 0 { ENXIO } else { EMFILE })
    }

    fn release(&self) {
        self.users.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One attached device: its `/dev/iovx_dio_<name>` and the block device.
struct Attachment {
    name: CString,
    // Dropped first: no new file once the device is gone; then the block device goes with the
    // last reference (this one: the files are closed, see `Attached`). `None` until registered:
    // at load, the devices are registered last, once nothing else can fail.
    dev: Option<MiscDevice<DioDev<Attached>>>,
    attached: Arc<Attached>,
}

/// Longest block device path the attach and detach ioctls take, with its NUL.
pub(crate) const PATH_MAX: usize = 256;

/// `IOVX_DIO_ATTACH`: `_IOW('X', 0x50, char[IOVX_DIO_PATH_MAX])`.
pub(crate) const IOVX_DIO_ATTACH: u32 = _IOW::<[u8; PATH_MAX]>(b'X' as u32, 0x50);
/// `IOVX_DIO_DETACH`: `_IOW('X', 0x51, char[IOVX_DIO_PATH_MAX])`.
pub(crate) const IOVX_DIO_DETACH: u32 = _IOW::<[u8; PATH_MAX]>(b'X' as u32, 0x51);

/// The attached block devices, and the control device's ioctls that attach and detach them.
pub(crate) struct Attachments {
    /// The attachments; a detached one leaves an empty slot for the next.
    list: Arc<Mutex<KVec<Option<Attachment>>>>,
}

/// The last component of `path`: the name of its direct-I/O device. `EINVAL` if it is empty,
/// `.` or `..`, longer than 32 bytes, or has a byte other than a letter, a digit, `.`, `_` or
/// `-`.
fn device_name(path: &[u8]) -> Result<&[u8]> {
    let name = path.rsplit(|&c| c == b'/').next().unwrap_or(path);
    if name.is_empty()
        || name == b"."
        || name == b".."
        || name.len() > 32
        || !name
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    {
        return Err(EINVAL);
    }
    Ok(name)
}

/// `bytes` with a NUL added: `EINVAL` if they hold one.
fn to_cstring(bytes: &[u8]) -> Result<CString> {
    let mut v = KVec::with_capacity(bytes.len() + 1, GFP_KERNEL)?;
    v.extend_from_slice(bytes, GFP_KERNEL)?;
    v.push(0, GFP_KERNEL)?;
    let s = CStr::from_bytes_with_nul(&v).map_err(|_| EINVAL)?;
    CString::try_from(s).map_err(|_| ENOMEM)
}

impl Attachments {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            list: Arc::pin_init(new_mutex!(KVec::new()), GFP_KERNEL)?,
        })
    }

    /// Attaches the block device at `path` (without its NUL): `/dev/iovx_dio_<basename>`.
    ///
    /// Process context: may sleep.
    pub(crate) fn attach(&self, path: &[u8]) -> Result {
        let mut list = self.list.lock();
        let i = Self::open(&mut list, path)?;
        register(&mut list[i])
    }

    /// Opens the block device at `path` and puts it in `list`, without its direct-I/O device;
    /// returns its index.
    fn open(list: &mut KVec<Option<Attachment>>, path: &[u8]) -> Result<usize> {
        let name = device_name(path)?;
        let path_c = to_cstring(path)?;
        let dev_name = CString::try_from_fmt(fmt!("iovx_dio_{}", BStrDisplay(name)))?;
        if list
            .iter()
            .flatten()
            .any(|a| a.name.as_bytes() == dev_name.as_bytes())
        {
            return Err(EEXIST);
        }
        let bdev = Bdev::open(&path_c)?;
        let l = bdev.limits();
        let attached = Arc::new(
            Attached {
                bdev,
                users: AtomicU32::new(0),
            },
            GFP_KERNEL,
        )?;
        pr_info!(
            "/dev/{} on {}: {} MiB, {}-byte blocks, dma alignment {}, max {} KiB/request, {} segments of up to {} bytes\n",
            &*dev_name,
            &*path_c,
            l.sectors >> 11,
            l.logical_block_size,
            l.dma_alignment + 1,
            l.max_hw_sectors >> 1,
            l.max_segments,
            l.max_segment_size
        );
        // Not registered yet: if this fails, the block device goes with it, with no file open.
        let a = Attachment {
            name: dev_name,
            dev: None,
            attached,
        };
        match list.iter().position(|slot| slot.is_none()) {
            Some(i) => {
                list[i] = Some(a);
                Ok(i)
            }
            None => {
                list.push(Some(a), GFP_KERNEL)?;
                Ok(list.len() - 1)
            }
        }
    }

    /// Detaches the block device attached from a path whose last component is that of `path`:
    /// `ENOENT` if there is none, `EBUSY` while a file of its direct-I/O device is open.
    ///
    /// Process context: may sleep.
    pub(crate) fn detach(&self, path: &[u8]) -> Result {
        let name = device_name(path)?;
        let dev_name = CString::try_from_fmt(fmt!("iovx_dio_{}", BStrDisplay(name)))?;
        let mut list = self.list.lock();
        let slot = list
            .iter_mut()
            .find(|a| {
                a.as_ref()
                    .is_some_and(|a| a.name.as_bytes() == dev_name.as_bytes())
            })
            .ok_or(ENOENT)?;
        if let Some(a) = slot {
            a.attached
                .users
                .compare_exchange(0, DETACHED, Ordering::AcqRel, Ordering::Acquire)
                .map_err(|_| EBUSY)?;
        }
        // Deregistered, then the block device released with the last reference: here, or in
        // the release of a file being closed, which gave up its count of users just before.
        *slot = None;
        pr_info!("/dev/{} detached\n", &*dev_name);
        Ok(())
    }

    /// Attaches every path of the comma-separated `paths`, without their direct-I/O devices
    /// (registered by [`Unregistered::register`]); the first failure is returned (what was
    /// attached stays, for the caller to drop).
    pub(crate) fn attach_all(&self, paths: &[u8]) -> Result<Unregistered> {
        let mut list = self.list.lock();
        for p in paths.split(|&c| c == b',').filter(|p| !p.is_empty()) {
            if let Err(e) = Self::open(&mut list, p) {
                pr_err!(
                    "dio_attach: cannot attach {}: error {}\n",
                    BStrDisplay(p),
                    e.to_errno()
                );
                return Err(e);
            }
        }
        Ok(Unregistered(self.list.clone()))
    }
}

/// Registers the direct-I/O device of the attachment in `slot`; on failure, the attachment
/// (whose block device no file uses) goes.
fn register(slot: &mut Option<Attachment>) -> Result {
    let Some(a) = slot else { return Ok(()) };
    if a.dev.is_some() {
        return Ok(());
    }
    match MiscDevice::register(&a.name, DioDev::new(a.attached.clone())) {
        Ok(dev) => {
            a.dev = Some(dev);
            Ok(())
        }
        Err(e) => {
            *slot = None;
            Err(e)
        }
    }
}

/// The block devices attached at load, whose direct-I/O devices are registered by
/// [`Unregistered::register`] as the last step of the load: a file of one could otherwise be
/// opened before a later step failed, and outlive the module.
pub(crate) struct Unregistered(Arc<Mutex<KVec<Option<Attachment>>>>);

impl Unregistered {
    /// Registers the direct-I/O devices of the attachments that have none.
    ///
    /// Process context: may sleep.
    pub(crate) fn register(self) -> Result {
        let mut list = self.0.lock();
        for slot in list.iter_mut() {
            register(slot)?;
        }
        Ok(())
    }
}

/// Reads the NUL-terminated path of an attach or detach ioctl at user address `arg`.
fn user_path(arg: usize, buf: &mut [u8; PATH_MAX]) -> Result<&[u8]> {
    UserSlice::new(arg, PATH_MAX).reader().read_slice(buf)?;
    let n = buf.iter().position(|&c| c == 0).ok_or(EINVAL)?;
    Ok(&buf[..n])
}

impl IoctlDevice for Attachments {
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        let mut buf = [0u8; PATH_MAX];
        if matches!(cmd, IOVX_DIO_ATTACH | IOVX_DIO_DETACH) && !capable_sys_admin() {
            return Err(EPERM);
        }
        match cmd {
            IOVX_DIO_ATTACH => self.attach(user_path(arg, &mut buf)?).map(|()| 0),
            IOVX_DIO_DETACH => self.detach(user_path(arg, &mut buf)?).map(|()| 0),
            _ => Err(ENOTTY),
        }
    }
}

/// Bytes shown as text (a path from user space or a parameter; not NUL-terminated).
struct BStrDisplay<'a>(&'a [u8]);

impl core::fmt::Display for BStrDisplay<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for &c in self.0 {
            if c.is_ascii_graphic() || c == b' ' {
                core::fmt::Write::write_char(f, c as char)?;
            } else {
                write!(f, "\\x{c:02x}")?;
            }
        }
        Ok(())
    }
}

/// The control device's name.
pub(crate) const CONTROL: &CStr = c_str!("iovx_dioctl");
