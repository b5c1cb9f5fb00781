// SPDX-License-Identifier: GPL-2.0

//! Module-wide counts of pages taken and released, per release mode.
//!
//! Each module that links the layer has its own [`COUNTERS`]. The list of counters is written
//! once, in the `counters!` invocation below, which makes the atomic counters, their
//! [`Snapshot`], [`Counters::snapshot`], [`Snapshot::since`] and the names under which
//! [`Counters::named`] lists them (for debugfs).

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{c_str, str::CStr};

macro_rules! counters {
    ($($(#[doc = $doc:literal])+ $name:ident,)+) => {
        /// Module-wide counts of pages taken and released, per mode.
        pub struct Counters {
            $($(#[doc = $doc])+ pub $name: AtomicU64,)+
        }

        /// The counters of this module.
        pub static COUNTERS: Counters = Counters {
            $($name: AtomicU64::new(0),)+
        };

        /// A copy of the counters at one moment (each field as in [`Counters`]).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Snapshot {
            $($(#[doc = $doc])+ pub $name: u64,)+
        }

        /// How many counters there are.
        const NR_COUNTERS: usize = [$(stringify!($name)),+].len();

        impl Counters {
            /// Reads every counter.
            pub fn snapshot(&self) -> Snapshot {
                Snapshot {
                    $($name: self.$name.load(Relaxed),)+
                }
            }

            /// Every counter with its name (the field's), for debugfs.
            pub fn named(&self) -> [(&'static CStr, &AtomicU64); NR_COUNTERS] {
                [$((c_str!(stringify!($name)), &self.$name)),+]
            }
        }

        impl Snapshot {
            /// The change from `earlier` to `self`.
            pub fn since(&self, earlier: &Snapshot) -> Snapshot {
                Snapshot {
                    $($name: self.$name.wrapping_sub(earlier.$name),)+
                }
            }
        }
    };
}

counters! {
    /// Pages pinned (short- and long-term).
    pinned,
    /// Pinned pages released.
    unpinned,
    /// Pages pinned long-term (a subset of `pinned`).
    pinned_longterm,
    /// Pages referenced.
    referenced,
    /// Referenced pages released.
    unreferenced,
    /// Pages listed.
    listed,
    /// Listed pages whose batch ended (nothing to release for them).
    unlisted,
    /// Pages marked dirty on release.
    dirtied,
    /// Folios of asynchronous reads found clean at completion (cleaned while the read was in
    /// flight) and handed to the worker that dirties them again before releasing them.
    redirtied,
}

impl Snapshot {
    /// Whether every page taken has been released.
    pub fn balanced(&self) -> bool {
        self.pinned == self.unpinned
            && self.referenced == self.unreferenced
            && self.listed == self.unlisted
    }
}
