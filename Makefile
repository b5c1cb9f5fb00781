# SPDX-License-Identifier: GPL-2.0
#
# iov-extract: an out-of-tree Rust-for-Linux module.
#
#   make run       boot the lean kernel, load iov_extract.ko, show what it did
#   make check     every test, in the debug kernel (KASAN, DEBUG_VM, lockdep, ...)
#   make shell     a guest shell with the module loaded
#   make bench     Rust vs the kernel's C paths, one boot of the lean kernel (logs/bench-<date>/)
#   make profile   perf profiles of the Rust paths and their C peers (logs/profile-<date>/)
#   make trace     exact instructions per function and per I/O of the same (logs/trace-<date>/)
#   make modules   build the modules against KDIR (default: the cached lean kernel)
#   make compile-fail  misuse of the safe API must not compile (rust/compile_fail/, debug kernel)
#   make soak      the seeded random workload with fault injection for SOAK_SECS (default 1800),
#                  debug kernel; prints operations, faults injected, errors, leaks, pin balance
#
# KDIR=<dir> builds against an already built kernel tree; KSRC=<dir> provisions the
# cached kernels from another source tree instead of Debian's linux-source-6.12.
# ARCH=arm64 does all of the above but profile for arm64 (qemu-system-aarch64
# -M virt, TCG) instead of x86-64, PAGE=64k with 64 KiB pages instead of 4 KiB
# (Documentation/building-and-testing.rst).
# BENCH_ARGS go to scripts/bench (e.g. --reps 9 --only 'randread-4k'; see scripts/bench -h).
# Everything that is missing is installed or built first (scripts/setup, scripts/kernel).

FLAVOUR ?= lean
LOGS ?= $(CURDIR)/logs
QEMU_ARGS ?=
BENCH_ARGS ?=
SOAK_SECS ?= 1800

# Resolved when a recipe runs, so that `make help` and `make clean` build no kernel.
kdir = $(shell $(CURDIR)/scripts/kernel $(1) | tail -n 1)

# ARCH and PAGE (scripts/arch) reach the scripts through the environment, and the module
# builds through make's own variables.
ifneq ($(ARCH)$(PAGE),)
export ARCH PAGE
endif

.PHONY: all modules setup kernel run check soak compile-fail bench profile trace shell clean rustfmt rustfmtcheck rust-analyzer help

all: modules

help:
	@sed -n '3,22p' Makefile | sed 's/^# \{0,1\}//'

setup:
	@$(CURDIR)/scripts/setup

kernel: setup
	@$(CURDIR)/scripts/kernel $(FLAVOUR) >/dev/null

modules: setup
	@k=$$($(CURDIR)/scripts/kernel $(FLAVOUR) | tail -n 1) && \
	$(MAKE) -C "$$k" M=$(CURDIR) LLVM=1 modules

run: setup
	@k=$$($(CURDIR)/scripts/kernel lean | tail -n 1) && \
	$(MAKE) -s -C "$$k" M=$(CURDIR) LLVM=1 modules && \
	d=$(LOGS)/run-$$(date +%Y%m%d-%H%M%S) && \
	$(CURDIR)/qemu/run --kdir "$$k" --mode run --log "$$d" $(QEMU_ARGS) && \
	echo "--- kernel log lines of iov_extract ($$d/console.log):" && \
	grep -a 'iov_extract' "$$d/console.log" | tr -d '\r' && \
	$(CURDIR)/scripts/results "$$d"

shell: setup
	@k=$$($(CURDIR)/scripts/kernel $(FLAVOUR) | tail -n 1) && \
	$(MAKE) -s -C "$$k" M=$(CURDIR) LLVM=1 modules && \
	$(CURDIR)/qemu/run --kdir "$$k" --mode shell $(QEMU_ARGS)

check: setup
	@$(CURDIR)/scripts/check $(QEMU_ARGS)

soak: setup
	@$(CURDIR)/scripts/soak --secs $(SOAK_SECS) $(QEMU_ARGS)

compile-fail: setup
	@k=$$($(CURDIR)/scripts/kernel debug | tail -n 1) && \
	$(CURDIR)/scripts/compile-fail "$$k"

bench: setup
	@$(CURDIR)/scripts/bench $(BENCH_ARGS) $(QEMU_ARGS)

profile: setup
	@$(CURDIR)/scripts/bench --profile $(BENCH_ARGS) $(QEMU_ARGS)

trace: setup
	@$(CURDIR)/scripts/bench --trace $(BENCH_ARGS) $(QEMU_ARGS)

# The compile-fail snippets are not part of a crate: they are formatted one by one.
rustfmt_files = rust/iov_extract.rs rust/iov_extract_kunit.rs \
	$(wildcard rust/compile_fail/*.rs rust/compile_fail/*/*.rs)

rustfmt:
	@rustfmt --edition 2021 --config-path $(CURDIR)/.rustfmt.toml $(rustfmt_files)

rustfmtcheck:
	@rustfmt --check --edition 2021 --config-path $(CURDIR)/.rustfmt.toml $(rustfmt_files)

rust-analyzer:
	@k=$$($(CURDIR)/scripts/kernel $(FLAVOUR) | tail -n 1) && \
	$(MAKE) -C "$$k" M=$(CURDIR) LLVM=1 rust-analyzer

clean:
	@k=$$($(CURDIR)/scripts/kernel $(FLAVOUR) 2>/dev/null | tail -n 1); \
	if [ -n "$$k" ] && [ -d "$$k" ]; then $(MAKE) -s -C "$$k" M=$(CURDIR) LLVM=1 clean; fi; \
	rm -rf rust/abstractions/generated qemu/build
