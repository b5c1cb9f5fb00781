// SPDX-License-Identifier: GPL-2.0

//! The context of the running task: whether it may sleep, whether it has a user address space,
//! the clock, and kernel warnings.
//!
//! C headers: [`include/linux/kernel.h`](srctree/include/linux/kernel.h) (`might_sleep()`),
//! [`include/linux/sched.h`](srctree/include/linux/sched.h) (`current->mm`),
//! [`include/linux/ktime.h`](srctree/include/linux/ktime.h),
//! [`include/asm-generic/bug.h`](srctree/include/asm-generic/bug.h) (`WARN()`).

use kernel::prelude::*;

use super::shim;

/// Says that the caller may sleep (`might_sleep()`): the debug kernel
/// (`CONFIG_DEBUG_ATOMIC_SLEEP`) reports a call from atomic context (under a spinlock, with
/// interrupts off, in an RCU read-side section, in a bio's completion) with a backtrace, even
/// when this call happens not to sleep.
///
/// Every entry point of the layer that may sleep calls it first. It costs nothing without
/// `CONFIG_DEBUG_ATOMIC_SLEEP`, where the check does not exist: the call is left out then
/// (its other effect, a voluntary preemption point, is not what it is used for here).
#[inline]
pub fn might_sleep() {
    if shim::IOVX_DEBUG_ATOMIC_SLEEP != 0 {
        // SAFETY: `might_sleep()` only checks the context and may reschedule.
        unsafe { shim::iovx_might_sleep() };
    }
}

/// Whether the current task has a user address space: kernel threads have none (unless one is
/// attached, as KUnit does for its cases), and user-memory operations then fail with `EFAULT`.
///
/// Any context.
pub fn current_has_mm() -> bool {
    // SAFETY: Reads `current->mm`, which the task itself does not change under us.
    unsafe { shim::iovx_current_has_mm() }
}

/// Whether the current task may administer the system (`capable(CAP_SYS_ADMIN)`); a check that
/// succeeds marks the task as having used the capability (`PF_SUPERPRIV`), as in the kernel.
///
/// Process context.
pub fn capable_sys_admin() -> bool {
    // SAFETY: `capable()` checks the current task's credentials, which it holds.
    unsafe { kernel::bindings::capable(kernel::bindings::CAP_SYS_ADMIN as i32) }
}

/// Microseconds of the monotonic clock (`ktime_get()`). Any context.
pub fn now_us() -> i64 {
    // SAFETY: No preconditions.
    unsafe { shim::iovx_ktime_us() }
}

/// Reports a broken expectation the way the kernel does: `WARN()` with `msg`, with a backtrace.
/// Any context.
pub fn warn(msg: &CStr) {
    // SAFETY: `msg` is NUL-terminated.
    unsafe { shim::iovx_warn(msg.as_char_ptr()) };
}
