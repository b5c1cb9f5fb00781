// SPDX-License-Identifier: GPL-2.0
/*
 * Shared helpers of the user-space direct-I/O tests: KTAP-style result lines, device
 * geometry, data patterns, buffers of several kinds of memory and the pin accounting checks.
 *
 * Every program prints one line per sub-test, "ok N name" or "not ok N name # reason", any
 * other line starts with "# ", and it exits non-zero when a sub-test failed.
 */
#ifndef IOVX_TESTS_COMMON_H
#define IOVX_TESTS_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Helpers that a program may leave unused. */
#define HELPER static __attribute__((unused))

#define KiB (1024UL)
#define MiB (1024UL * 1024UL)
/* The page size the tests run with: 4 KiB on x86-64, 4 or 64 KiB on arm64. */
#define PAGE page_size()
/* The size of the regions advised for transparent huge pages (a PMD with 4 KiB pages). */
#define HPAGE (2 * MiB)

static inline size_t page_size(void)
{
	static size_t p;

	if (!p)
		p = (size_t)sysconf(_SC_PAGESIZE);
	return p;
}

/* ---------------------------------------------------------------- results */

/* The program's name, and the prefix of its result names: "name_". */
static const char *t_name = "";
static char t_prefix[64];
static int t_num, t_ran, t_failed;
/* The reason of the running sub-test's failure or skip. */
static char t_why[512];

HELPER void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
HELPER void diag(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* Every line of a diagnostic starts with "# ". */
	for (char *s = line, *nl; s && *s; s = nl) {
		nl = strchr(s, '\n');
		if (nl)
			*nl++ = '\0';
		printf("# %s\n", s);
	}
}

/* Sets the reason of a failure; returns -1 so that "return fail(...)" ends a sub-test. */
HELPER int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
HELPER int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t_why, sizeof(t_why), fmt, ap);
	va_end(ap);
	return -1;
}

/* Sets the reason of a skip; returns 1 so that "return skip(...)" ends a sub-test. */
HELPER int skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
HELPER int skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t_why, sizeof(t_why), fmt, ap);
	va_end(ap);
	return 1;
}

/* Prints the result line of a sub-test: rc 0 passed, 1 skipped, anything else failed. */
HELPER void report(const char *name, int rc)
{
	for (char *p = t_why; *p; p++)
		if (*p == '\n' || *p == '#')
			*p = ' ';
	t_num++;
	t_ran++;
	if (rc == 0) {
		printf("ok %d %s%s\n", t_num, t_prefix, name);
	} else if (rc == 1) {
		printf("ok %d %s%s # SKIP %s\n", t_num, t_prefix, name, t_why);
	} else {
		t_failed++;
		printf("not ok %d %s%s # %s\n", t_num, t_prefix, name,
		       t_why[0] ? t_why : "failed");
	}
	fflush(stdout);
}

HELPER void run(const char *name, int (*fn)(void))
{
	t_why[0] = '\0';
	report(name, fn());
}

/* KTAP_FIRST in the environment numbers the first result line (default 1). */
HELPER void tap_begin(const char *name)
{
	const char *first = getenv("KTAP_FIRST");

	setvbuf(stdout, NULL, _IOLBF, 0);
	t_name = name;
	snprintf(t_prefix, sizeof(t_prefix), "%s_", name);
	if (first && atoi(first) > 1)
		t_num = atoi(first) - 1;
}

HELPER int tap_end(void)
{
	diag("%s: %d of %d failed", t_name, t_failed, t_ran);
	return t_failed ? 1 : 0;
}

/* ---------------------------------------------------------------- devices */

struct geom {
	uint64_t size;	/* bytes */
	unsigned lbs;	/* logical block size */
	unsigned dma;	/* required memory alignment: dma_alignment + 1 */
};

HELPER int read_sysfs_uint(const char *path, unsigned long long *val)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%llu", val) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

/*
 * The geometry of the disk behind the block device @bdev: size and logical block size from
 * the ioctls, the DMA alignment from sysfs. IOVX_DMA_ALIGN in the environment overrides the
 * latter.
 */
HELPER int get_geom(const char *bdev, struct geom *g)
{
	unsigned long long v;
	char path[256];
	struct stat st;
	int fd, lbs;
	const char *env;

	fd = open(bdev, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		printf("# cannot open %s: %s\n", bdev, strerror(errno));
		return -1;
	}
	if (!S_ISBLK(st.st_mode)) {
		printf("# %s is not a block device\n", bdev);
		close(fd);
		return -1;
	}
	if (ioctl(fd, BLKGETSIZE64, &g->size) < 0 || ioctl(fd, BLKSSZGET, &lbs) < 0) {
		printf("# %s: geometry ioctls failed: %s\n", bdev, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	g->lbs = lbs;
	g->dma = 512;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/dma_alignment",
		 major(st.st_rdev), minor(st.st_rdev));
	if (read_sysfs_uint(path, &v) == 0) {
		g->dma = v + 1;
	} else {
		snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../queue/dma_alignment",
			 major(st.st_rdev), minor(st.st_rdev));
		if (read_sysfs_uint(path, &v) == 0)
			g->dma = v + 1;
		else
			printf("# no dma_alignment in sysfs for %s, assuming %u\n", bdev, g->dma);
	}
	env = getenv("IOVX_DMA_ALIGN");
	if (env && atoi(env) > 0)
		g->dma = atoi(env);
	return 0;
}

/* Opens @path for direct I/O. A character device that refuses O_DIRECT is opened without it:
 * its I/O is direct anyway. */
HELPER int open_direct(const char *path, int flags)
{
	int fd = open(path, flags | O_DIRECT);
	struct stat st;

	if (fd < 0 && errno == EINVAL && stat(path, &st) == 0 && S_ISCHR(st.st_mode)) {
		printf("# %s refuses O_DIRECT; opened without it\n", path);
		fd = open(path, flags);
	}
	if (fd < 0)
		printf("# open %s: %s\n", path, strerror(errno));
	return fd;
}

/* ---------------------------------------------------------------- patterns */

static inline uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The 8 bytes of pattern @seed at disk offset @off (a multiple of 8). */
static inline uint64_t pat_word(uint32_t seed, uint64_t off)
{
	return mix64(((uint64_t)seed << 40) ^ off);
}

/* Fills @buf with the bytes that pattern @seed has at disk offsets [off, off + len). */
HELPER void pat_fill(void *buf, uint64_t off, size_t len, uint32_t seed)
{
	unsigned char *p = buf;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t w = pat_word(seed, off + i);

		memcpy(p + i, &w, len - i < 8 ? len - i : 8);
	}
}

/* Index of the first byte of @buf that differs from pattern @seed at @off, or -1. */
HELPER long pat_diff(const void *buf, uint64_t off, size_t len, uint32_t seed)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t w = pat_word(seed, off + i);
		size_t n = len - i < 8 ? len - i : 8;

		if (memcmp(p + i, &w, n)) {
			const unsigned char *e = (const unsigned char *)&w;

			for (size_t j = 0; j < n; j++)
				if (p[i + j] != e[j])
					return i + j;
		}
	}
	return -1;
}

/* Index of the first byte of @buf that is not @c, or -1. */
HELPER long byte_diff(const void *buf, size_t len, unsigned char c)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i] != c)
			return i;
	return -1;
}

/* ---------------------------------------------------------------- memory */

/* @p, hidden from the compiler's checks of NULL and bogus buffers. */
HELPER void *opaque_ptr(void *p)
{
	__asm__ volatile("" : "+r"(p));
	return p;
}

HELPER void *map_anon(size_t len, int flags)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | flags, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * A 2 MiB-aligned anonymous region of @len bytes (a multiple of 2 MiB) advised for
 * transparent huge pages; *@raw and *@rawlen are what to munmap.
 */
HELPER void *map_thp(size_t len, void **raw, size_t *rawlen)
{
	size_t l = len + HPAGE;
	char *p = map_anon(l, MAP_PRIVATE);
	char *a;

	if (!p)
		return NULL;
	a = (char *)(((uintptr_t)p + HPAGE - 1) & ~(uintptr_t)(HPAGE - 1));
	madvise(a, len, MADV_HUGEPAGE);
	*raw = p;
	*rawlen = l;
	return a;
}

HELPER int thp_available(void)
{
	return access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0;
}

/*
 * Why a region of HPAGE bytes cannot be one PMD-mapped transparent huge page on this kernel,
 * or NULL if it can: with 64 KiB pages (arm64 PAGE=64k) a PMD maps 512 MiB, not 2 MiB.
 */
HELPER const char *thp_pmd_unfit(void)
{
	static char why[128];
	unsigned long sz = 0;
	FILE *f;

	if (!thp_available())
		return "no transparent huge pages";
	f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "r");
	if (!f)
		return "no /sys/kernel/mm/transparent_hugepage/hpage_pmd_size";
	if (fscanf(f, "%lu", &sz) != 1)
		sz = 0;
	fclose(f);
	if (sz == HPAGE)
		return NULL;
	snprintf(why, sizeof(why), "a PMD huge page is %lu KiB with %zu KiB pages, the test maps %lu KiB",
		 sz / KiB, PAGE / KiB, HPAGE / KiB);
	return why;
}

/* AnonHugePages of the mapping that contains @addr, in KiB, or -1. */
HELPER long anon_huge_kib(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[256];
	int in = 0;
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %ld kB", &kib) == 1)
			break;
	}
	fclose(f);
	return kib;
}

/* ---------------------------------------------------------------- accounting */

HELPER int vmstat_get(const char *key, long long *val)
{
	FILE *f = fopen("/proc/vmstat", "r");
	char k[128];
	long long v;
	int found = 0;

	if (!f)
		return -1;
	while (fscanf(f, "%127s %lld", k, &v) == 2) {
		if (!strcmp(k, key)) {
			*val = v;
			found = 1;
			break;
		}
	}
	fclose(f);
	return found ? 0 : -1;
}

HELPER void stat_refresh(void)
{
	int fd = open("/proc/sys/vm/stat_refresh", O_WRONLY);

	if (fd >= 0) {
		if (write(fd, "1\n", 2) < 0) {
			/* A negative per-CPU delta makes it fail; the counters are still folded. */
		}
		close(fd);
	}
}

/* CLOCK_MONOTONIC in milliseconds. */
HELPER long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

HELPER void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * The kernel's own FOLL_PIN accounting: nr_foll_pin_acquired == nr_foll_pin_released once the
 * I/O is over. Releases can trail the completion a little (a ring torn down by a worker), so
 * it is sampled for up to 5 s. Returns 0, 1 (no such counters) or -1.
 */
HELPER int check_vmstat_pins_quiet(int quiet)
{
	long long acq = 0, rel = 0;

	for (int i = 0; i < 50; i++) {
		stat_refresh();
		if (vmstat_get("nr_foll_pin_acquired", &acq) || vmstat_get("nr_foll_pin_released", &rel))
			return skip("no nr_foll_pin_* in /proc/vmstat");
		if (acq == rel)
			break;
		sleep_ms(100);
	}
	if (!quiet)
		diag("nr_foll_pin_acquired %lld nr_foll_pin_released %lld", acq, rel);
	if (acq != rel)
		return fail("nr_foll_pin_acquired %lld != nr_foll_pin_released %lld", acq, rel);
	return 0;
}

HELPER int check_vmstat_pins(void)
{
	return check_vmstat_pins_quiet(0);
}

#define IOVX_DEBUGFS "/sys/kernel/debug/iov_extract"

HELPER int debugfs_get(const char *name, unsigned long long *v)
{
	char path[256];

	snprintf(path, sizeof(path), IOVX_DEBUGFS "/%s", name);
	return read_sysfs_uint(path, v);
}

/*
 * The module's counters: every page pinned is unpinned, every page referenced unreferenced,
 * every page listed unlisted. Sampled for up to 5 s like the vmstat counters.
 */
HELPER int check_debugfs_counters(void)
{
	static const char *const pairs[][2] = {
		{ "pinned", "unpinned" },
		{ "referenced", "unreferenced" },
		{ "listed", "unlisted" },
	};
	static const char *const extra[] = { "dirtied", "pinned_longterm" };
	unsigned long long a[3], b[3], v;
	int bad = 0, have = 0;

	if (access(IOVX_DEBUGFS, F_OK))
		return skip("no " IOVX_DEBUGFS);
	for (int tries = 0; tries < 50; tries++) {
		bad = have = 0;
		for (int i = 0; i < 3; i++) {
			if (debugfs_get(pairs[i][0], &a[i]) || debugfs_get(pairs[i][1], &b[i]))
				continue;
			have++;
			if (a[i] != b[i])
				bad = 1;
		}
		if (!bad)
			break;
		sleep_ms(100);
	}
	if (!have)
		return skip("no counter pairs in " IOVX_DEBUGFS);
	for (int i = 0; i < 3; i++) {
		if (debugfs_get(pairs[i][0], &a[i]) || debugfs_get(pairs[i][1], &b[i]))
			continue;
		diag("%s %llu %s %llu", pairs[i][0], a[i], pairs[i][1], b[i]);
	}
	for (unsigned i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
		if (!debugfs_get(extra[i], &v))
			diag("%s %llu", extra[i], v);
	if (bad) {
		for (int i = 0; i < 3; i++)
			if (!debugfs_get(pairs[i][0], &a[i]) && !debugfs_get(pairs[i][1], &b[i]) &&
			    a[i] != b[i])
				return fail("%s %llu != %s %llu", pairs[i][0], a[i], pairs[i][1], b[i]);
	}
	return 0;
}

HELPER int t_vmstat_pins_balanced(void)
{
	return check_vmstat_pins();
}

HELPER int t_debugfs_counters_balanced(void)
{
	return check_debugfs_counters();
}

#endif /* IOVX_TESTS_COMMON_H */
