// SPDX-License-Identifier: GPL-2.0

//! KUnit suites for an out-of-tree Rust module on Linux 6.12.
//!
//! C header: [`include/kunit/test.h`](srctree/include/kunit/test.h)
//!
//! Linux 6.12 has no `#[kunit_tests]`, so this module provides what the C macros
//! `kunit_test_suites()` and `KUNIT_CASE()` do: a static, zero-terminated array of
//! `struct kunit_case`, a static `struct kunit_suite`, and a pointer to the suite in the
//! `.kunit_test_suites` section, which the module loader hands to KUnit. The suites of a module
//! run when it is loaded and print KTAP to the kernel log.
//!
//! A case is a plain Rust function taking a [`Test`] and returning a [`CaseResult`]. The
//! assertion macros ([`kunit_assert!`], [`kunit_assert_eq!`]) report a failure to KUnit with the
//! file, line and values, and end the case; `?` on a kernel [`Result`] ends the case too, and the
//! error is reported.
//!
//! ```ignore
//! fn copies_bytes(t: &Test) -> CaseResult {
//!     kunit_assert_eq!(t, 2 + 2, 4);
//!     Ok(())
//! }
//! kunit_suite!(my_suite, [copies_bytes]);
//! ```

use core::{cell::UnsafeCell, fmt, marker::PhantomData};
use kernel::{bindings, prelude::*, str::CString};

use super::shim;

/// The KUnit test a case runs in.
///
/// # Invariants
///
/// `raw` points to the `struct kunit` of the running case, which KUnit keeps valid until the case
/// function returns; a `Test` never outlives that call (it is only lent to the case by
/// [`run`]).
pub struct Test {
    raw: *mut bindings::kunit,
    // A `struct kunit` belongs to the thread that runs the case.
    _not_send: PhantomData<*mut ()>,
}

/// Why a case ended early.
pub enum Failure {
    /// An assertion failed and was already reported to KUnit.
    Reported,
    /// The case returned a kernel error through `?`.
    Error(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

impl From<kernel::alloc::AllocError> for Failure {
    fn from(_: kernel::alloc::AllocError) -> Self {
        Failure::Error(ENOMEM)
    }
}

/// What a case returns.
pub type CaseResult = core::result::Result<(), Failure>;

impl Test {
    /// Records a failure of the running case, with its source location.
    pub fn fail(&self, file: &str, line: u32, msg: fmt::Arguments<'_>) {
        let file = CString::try_from_fmt(kernel::fmt!("{file}"));
        let msg = CString::try_from_fmt(msg);
        let (file, msg) = match (file, msg) {
            (Ok(f), Ok(m)) => (f, m),
            // Without memory for the message, the failure itself still has to count.
            _ => match (
                CString::try_from_fmt(kernel::fmt!("?")),
                CString::try_from_fmt(kernel::fmt!("(no memory for the message)")),
            ) {
                (Ok(f), Ok(m)) => (f, m),
                _ => return self.fail_static(line),
            },
        };
        // SAFETY: `self.raw` is the running test by the type invariant; both strings are
        // NUL-terminated and live across the call, which copies them.
        unsafe {
            shim::iovx_kunit_fail(self.raw, file.as_char_ptr(), line as _, msg.as_char_ptr())
        };
    }

    fn fail_static(&self, line: u32) {
        // SAFETY: As in `fail`; the strings are static.
        unsafe {
            shim::iovx_kunit_fail(
                self.raw,
                c"?".as_ptr().cast(),
                line as _,
                c"assertion failed".as_ptr().cast(),
            )
        };
    }

    /// Marks the running case as skipped, with a reason.
    pub fn skip(&self, reason: &CStr) {
        // SAFETY: `self.raw` is the running test; `reason` is NUL-terminated.
        unsafe { shim::iovx_kunit_skip(self.raw, reason.as_char_ptr()) };
    }

    /// Whether the long cases run at their full size (the module parameter `full`, set by the
    /// guest runner's soak mode): a case may sample a long sweep otherwise.
    pub fn full(&self) -> bool {
        // SAFETY: Reads a module parameter.
        unsafe { shim::iovx_kunit_full() }
    }

    /// Makes the `n`-th fault injection point (`failslab`, `fail_page_alloc`, ...) the running
    /// task reaches fail, as `/proc/self/fail-nth` does; 0 makes none fail. Gives how many
    /// points were left before the previous setting's failure (0 if it was reached), or `None`
    /// if the kernel has no fault injection.
    pub fn fail_nth(&self, n: u32) -> Option<u32> {
        // SAFETY: Sets a counter of the current task.
        let left = unsafe { shim::iovx_kunit_fail_nth(n) };
        u32::try_from(left).ok()
    }

    /// Maps `len` bytes of anonymous, private user memory into the address space of the task
    /// running the case, readable and/or writable as asked.
    ///
    /// KUnit unmaps it when the case ends. Returns the user address.
    pub fn vm_mmap(&self, len: usize, read: bool, write: bool) -> Result<usize> {
        // SAFETY: `self.raw` is the running test by the type invariant.
        let addr = unsafe { shim::iovx_kunit_vm_mmap(self.raw, len as _, read, write) };
        // `kunit_vm_mmap()` returns an address or a negative errno cast to unsigned long.
        let signed = addr as isize;
        if (-(bindings::MAX_ERRNO as isize)..0).contains(&signed) {
            return Err(Error::from_errno(signed as i32));
        }
        if addr == 0 {
            return Err(ENOMEM);
        }
        Ok(addr as usize)
    }
}

/// Runs one case: the body of every `run_case` function generated by [`kunit_suite!`].
///
/// # Safety
///
/// `raw` must be the `struct kunit` that KUnit passed to the `run_case` callback that calls this.
#[doc(hidden)]
pub unsafe fn run(raw: *mut bindings::kunit, case: fn(&Test) -> CaseResult) {
    // INVARIANT: KUnit keeps `raw` valid while `run_case` runs; `t` is dropped before it returns.
    let t = Test {
        raw,
        _not_send: PhantomData,
    };
    match case(&t) {
        Ok(()) | Err(Failure::Reported) => {}
        Err(Failure::Error(e)) => t.fail(
            file!(),
            line!(),
            kernel::fmt!("case returned error {} ({:?})", e.to_errno(), e),
        ),
    }
}

/// The zero-terminated case array of a suite, which KUnit writes its results into.
#[doc(hidden)]
pub struct Cases<const N: usize>(UnsafeCell<[bindings::kunit_case; N]>);

// SAFETY: KUnit runs the cases of a suite one at a time, from the loading thread, and is the only
// writer; Rust code never reads or writes the array after making it.
unsafe impl<const N: usize> Sync for Cases<N> {}

impl<const N: usize> Cases<N> {
    /// Makes the array; the last element must be [`END`].
    pub const fn new(cases: [bindings::kunit_case; N]) -> Self {
        Self(UnsafeCell::new(cases))
    }

    /// The array as KUnit wants it in `kunit_suite.test_cases`.
    pub const fn as_ptr(&self) -> *mut bindings::kunit_case {
        self.0.get().cast()
    }
}

/// A case entry, as `KUNIT_CASE()` makes it.
#[doc(hidden)]
pub const fn case(
    name: &'static CStr,
    run_case: unsafe extern "C" fn(*mut bindings::kunit),
) -> bindings::kunit_case {
    bindings::kunit_case {
        run_case: Some(run_case),
        name: name.as_char_ptr(),
        // SAFETY: All-zero is the valid "unset" state of the remaining fields, as in C.
        ..unsafe { core::mem::zeroed() }
    }
}

/// The terminating entry of a case array.
#[doc(hidden)]
// SAFETY: All-zero is the terminator KUnit looks for (`run_case == NULL`).
pub const END: bindings::kunit_case = unsafe { core::mem::zeroed() };

/// A suite, which KUnit writes its state into.
#[doc(hidden)]
pub struct Suite(UnsafeCell<bindings::kunit_suite>);

// SAFETY: Only KUnit reads and writes the suite, from the loading thread, after module load.
unsafe impl Sync for Suite {}

impl Suite {
    /// Makes a suite named `name` over `cases`.
    ///
    /// # Panics
    ///
    /// At compile time (the function is used in `static` initialisers) if `name` does not fit in
    /// `kunit_suite.name`.
    pub const fn new(name: &str, cases: *mut bindings::kunit_case) -> Self {
        // SAFETY: All-zero is the valid "unset" state of every field, as for a C initialiser.
        let mut s: bindings::kunit_suite = unsafe { core::mem::zeroed() };
        let bytes = name.as_bytes();
        assert!(bytes.len() < s.name.len(), "KUnit suite name too long");
        let mut i = 0;
        while i < bytes.len() {
            s.name[i] = bytes[i] as _;
            i += 1;
        }
        s.test_cases = cases;
        Self(UnsafeCell::new(s))
    }

    /// The suite as KUnit wants it.
    pub const fn as_ptr(&self) -> *mut bindings::kunit_suite {
        self.0.get()
    }
}

/// An entry of the `.kunit_test_suites` section.
#[doc(hidden)]
#[repr(transparent)]
pub struct SuiteEntry(pub *mut bindings::kunit_suite);

// SAFETY: The pointer is only read, by the module loader.
unsafe impl Sync for SuiteEntry {}

/// Declares a KUnit suite made of the given case functions (`fn(&Test) -> CaseResult`), and
/// registers it with the module being built.
#[macro_export]
macro_rules! kunit_suite {
    ($suite:ident, [$($case:ident),+ $(,)?]) => {
        // The suite is C glue (an `unsafe extern "C"` entry point per case and a static in the
        // `.kunit_test_suites` section), generated here into the test file, which denies unsafe
        // code: the glue is allowed it, and only the glue; the case functions stay safe code.
        #[allow(unsafe_code)]
        const _: () = {
            use $crate::abstractions::kunit as __k;

            static CASES: __k::Cases<{ [$(stringify!($case)),+].len() + 1 }> = __k::Cases::new([
                $(__k::case(
                    ::kernel::c_str!(stringify!($case)),
                    {
                        /// # Safety
                        ///
                        /// Called by KUnit only, with the running test.
                        unsafe extern "C" fn run_case(test: *mut ::kernel::bindings::kunit) {
                            // SAFETY: KUnit calls `run_case` with the running test.
                            unsafe { __k::run(test, $case) }
                        }
                        run_case
                    },
                ),)+
                __k::END,
            ]);

            static SUITE: __k::Suite = __k::Suite::new(stringify!($suite), CASES.as_ptr());

            #[used]
            #[link_section = ".kunit_test_suites"]
            static ENTRY: __k::SuiteEntry = __k::SuiteEntry(SUITE.as_ptr());
        };
    };
}

/// Fails the case and ends it unless `cond` holds.
#[macro_export]
macro_rules! kunit_assert {
    ($t:expr, $cond:expr $(,)?) => {
        if !$cond {
            $t.fail(file!(), line!(), ::kernel::fmt!("assertion failed: {}", stringify!($cond)));
            return Err($crate::abstractions::kunit::Failure::Reported);
        }
    };
    ($t:expr, $cond:expr, $($arg:tt)+) => {
        if !$cond {
            $t.fail(
                file!(),
                line!(),
                ::kernel::fmt!(
                    "assertion failed: {}: {}",
                    stringify!($cond),
                    ::kernel::fmt!($($arg)+)
                ),
            );
            return Err($crate::abstractions::kunit::Failure::Reported);
        }
    };
}

/// Fails the case and ends it unless `left == right`; reports both values.
#[macro_export]
macro_rules! kunit_assert_eq {
    ($t:expr, $left:expr, $right:expr $(,)?) => {
        match (&$left, &$right) {
            (l, r) => {
                if !(*l == *r) {
                    $t.fail(
                        file!(),
                        line!(),
                        ::kernel::fmt!(
                            "{} == {} failed: left {:?}, right {:?}",
                            stringify!($left),
                            stringify!($right),
                            l,
                            r
                        ),
                    );
                    return Err($crate::abstractions::kunit::Failure::Reported);
                }
            }
        }
    };
}
