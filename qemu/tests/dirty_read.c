// SPDX-License-Identifier: GPL-2.0
/*
 * dirty_read DEV BDEV FSDEV IMAGE pin|legacy
 *
 * An asynchronous read through DEV dirties the pages it lands in, including pages that
 * writeback cleans while the read is in flight, as seen from user space through
 * /proc/self/pagemap (the page frame) and /proc/kpageflags (KPF_DIRTY, bit 4):
 *
 *  - memfd: a libaio read into a MAP_SHARED memfd (tmpfs) mapping; after completion every page
 *    is dirty.
 *  - ext4_msync: an ext4 file system (IMAGE, written to the start of FSDEV and mounted) holds a
 *    file mapped MAP_SHARED. Its pages are cleaned (msync MS_SYNC: KPF_DIRTY clear), a libaio
 *    read through DEV (the disk of BDEV, where its data is put first) into them is submitted,
 *    and msync(MS_SYNC) runs again while the read is in flight (iov_extract's delay_us on the
 *    disk of DEV and BDEV only; FSDEV, another disk, has none, so that the file system's own
 *    I/O is not held): writeback cleans the pages the read dirtied before submission.
 *    At completion they are clean, so the data the device wrote into them would be lost to the
 *    file; the read path must dirty them again (debugfs counter redirtied moves by the pages).
 *    Then every page is dirty, and after msync, unmount and mount the file holds the read's
 *    data.
 *  - ext4_no_clean: the same without the msync in flight: nothing is re-dirtied, the pages are
 *    dirty and the data reaches the file.
 *
 * Run once with the pages pinned and once in the legacy mode (extract_legacy=Y, references):
 * both paths dirty before submission and check at completion.
 */
#include "common.h"

#include <libaio.h>
#include <sys/mount.h>

#define MNT "/tmp/dirty_read_mnt"
#define NPAGES 16
#define LEN (NPAGES * PAGE)
/* Where the reads come from on the disk of DEV and BDEV. */
#define R_OFF (32 * MiB)
#define KPF_DIRTY 4

static int dev = -1, bdev = -1, fsdev = -1, kpf = -1, pagemap = -1;
static const char *image, *fsdev_path;
static io_context_t ctx;
static uint32_t seed;

#define PM_PRESENT (1ULL << 63)
#define PM_PFN ((1ULL << 55) - 1)

/* The pagemap entries of @n pages from @addr into @e; 0 or -1. */
static int pagemap_entries(const void *addr, uint64_t *e, int n)
{
	ssize_t want = (ssize_t)n * 8;

	if (pread(pagemap, e, want, (off_t)((uintptr_t)addr / PAGE) * 8) != want) {
		diag("pagemap of %p: %s", addr, strerror(errno));
		return -1;
	}
	return 0;
}

/* KPF_DIRTY of the page of pagemap entry @e, present: 1, 0, or -1 if it cannot be told. */
static int pfn_dirty(uint64_t e)
{
	uint64_t flags;

	if (pread(kpf, &flags, 8, (off_t)(e & PM_PFN) * 8) != 8) {
		diag("kpageflags of pfn %#llx: %s", (unsigned long long)(e & PM_PFN), strerror(errno));
		return -1;
	}
	return (int)((flags >> KPF_DIRTY) & 1);
}

/*
 * KPF_DIRTY of the page mapped at @addr, whose pagemap entry was @e: 1, 0, or -1 if it cannot
 * be told. A page that was not mapped at that moment (a migration entry while compaction tries
 * to move it, or a clean page cache page that reclaim unmapped) is faulted in again by a read,
 * which leaves its dirty flag as it is, and looked at once more, up to a few times.
 */
static int page_dirty(const void *addr, uint64_t e)
{
	uint64_t first = e;
	int tries;

	for (tries = 0; !(e & PM_PRESENT) || !(e & PM_PFN); tries++) {
		if (tries == 20) {
			diag("pagemap of %p: entry %#llx, not a present page", addr,
			     (unsigned long long)e);
			return -1;
		}
		(void)*(const volatile unsigned char *)addr;
		sleep_ms(10);
		if (pagemap_entries(addr, &e, 1))
			return -1;
	}
	if (tries)
		diag("pagemap of %p: entry %#llx at first, %#llx after %d more looks", addr,
		     (unsigned long long)first, (unsigned long long)e, tries);
	return pfn_dirty(e);
}

/*
 * Pages of @buf whose KPF_DIRTY is @want; -1 if a page cannot be told. Their pagemap entries
 * are read at once: on an arm64 guest with 64 KiB pages, sharing its host with other guests,
 * sixteen reads of one entry each took 2.6 to 6.4 s (one of them up to 1.7 s) and outlasted
 * the delay of the read in flight; one read of the sixteen took less than half a second.
 */
static int count_dirty(const unsigned char *buf, int want)
{
	uint64_t e[NPAGES];
	long t0 = now_ms(), t;
	int n = 0;

	if (pagemap_entries(buf, e, NPAGES))
		return -1;
	for (int i = 0; i < NPAGES; i++) {
		int d = page_dirty(buf + i * PAGE, e[i]);

		if (d < 0)
			return -1;
		n += d == want;
	}
	t = now_ms() - t0;
	if (t >= 500)
		diag("the look at %d pages took %ld ms", NPAGES, t);
	return n;
}

static int counter(const char *name, unsigned long long *v)
{
	return debugfs_get(name, v);
}

/* Submits a libaio read of LEN bytes at R_OFF into @buf; returns 0 or fails. */
static int submit_read(unsigned char *buf)
{
	struct iocb cb, *cbs[1] = { &cb };

	io_prep_pread(&cb, dev, buf, LEN, R_OFF);
	if (io_submit(ctx, 1, cbs) != 1)
		return fail("io_submit: %s", strerror(errno));
	return 0;
}

/* Whether the read is still in flight (io_getevents with a zero timeout). */
static int reap(int wait, long *res)
{
	struct io_event ev;
	struct timespec ts = { wait ? 60 : 0, 0 };
	int r = io_getevents(ctx, wait ? 1 : 0, 1, &ev, &ts);

	if (r == 1)
		*res = (long)ev.res;
	return r;
}

/* Puts the data of the read on the disk at R_OFF. */
static int prepare_disk(void)
{
	unsigned char *v = map_anon(LEN, MAP_PRIVATE);
	int rc = 0;

	seed = (seed + 1) & 0xffffff;
	pat_fill(v, R_OFF, LEN, seed);
	if (pwrite(bdev, v, LEN, R_OFF) != (ssize_t)LEN)
		rc = fail("write through BDEV: %s", strerror(errno));
	munmap(v, LEN);
	return rc;
}

static int t_memfd(void)
{
	int fd = memfd_create("dirty_read", 0), rc = 0, n;
	unsigned char *buf;
	long res = 0;

	if (fd < 0 || ftruncate(fd, LEN))
		return fail("memfd: %s", strerror(errno));
	buf = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (buf == MAP_FAILED) {
		close(fd);
		return fail("mmap: %s", strerror(errno));
	}
	memset(buf, 0x11, LEN);
	if (prepare_disk() || submit_read(buf)) {
		rc = -1;
		goto out;
	}
	if (reap(1, &res) != 1 || res != (long)LEN) {
		rc = fail("read: %ld", res);
		goto out;
	}
	if (pat_diff(buf, R_OFF, LEN, seed) >= 0) {
		rc = fail("the read did not land");
		goto out;
	}
	n = count_dirty(buf, 1);
	if (n != NPAGES)
		rc = fail("%d of %d pages dirty after the read", n, NPAGES);
out:
	munmap(buf, LEN);
	close(fd);
	return rc;
}

static int mount_fs(void)
{
	if (mount(fsdev_path, MNT, "ext4", 0, NULL))
		return fail("mount ext4: %s", strerror(errno));
	return 0;
}

/*
 * The ext4 case: @clean says whether msync(MS_SYNC) runs while the read is in flight.
 */
static int ext4_case(int clean)
{
	unsigned long long r0, r1;
	long t_sub, t0, msync_ms = -1;
	unsigned char *buf = NULL, *v = NULL;
	int fd = -1, rc = 0, n, inflight;
	long res = 0;

	if (mount_fs())
		return -1;
	fd = open(MNT "/f", O_RDWR | O_CREAT | O_TRUNC, 0600);
	v = map_anon(LEN, MAP_PRIVATE);
	if (fd < 0 || !v) {
		rc = fail("open: %s", strerror(errno));
		goto out;
	}
	memset(v, 0x11, LEN);
	if (pwrite(fd, v, LEN, 0) != (ssize_t)LEN || fsync(fd)) {
		rc = fail("write the file: %s", strerror(errno));
		goto out;
	}
	buf = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (buf == MAP_FAILED) {
		buf = NULL;
		rc = fail("mmap: %s", strerror(errno));
		goto out;
	}
	/* Map every page writable, then clean them all. */
	for (int i = 0; i < NPAGES; i++)
		buf[i * PAGE] = 0x11;
	if (msync(buf, LEN, MS_SYNC)) {
		rc = fail("msync: %s", strerror(errno));
		goto out;
	}
	n = count_dirty(buf, 0);
	if (n != NPAGES) {
		rc = fail("%d of %d pages clean after msync", n, NPAGES);
		goto out;
	}
	if (prepare_disk() || counter("redirtied", &r0)) {
		rc = rc ? rc : fail("no redirtied counter");
		goto out;
	}
	t_sub = now_ms();
	if (submit_read(buf)) {
		rc = -1;
		goto out;
	}
	t0 = now_ms();
	n = count_dirty(buf, 1);
	if (n != NPAGES) {
		rc = fail("%d of %d pages dirty after submission", n, NPAGES);
		reap(1, &res);
		goto out;
	}
	if (clean) {
		/* Writeback cleans the pages while the read is in flight. */
		int r = reap(0, &res);

		inflight = r == 0;
		if (!inflight) {
			long t = now_ms();

			diag("io_submit took %ld ms, the look at the pages %ld ms; io_getevents: %d, %s",
			     t0 - t_sub, t - t0, r, r == 1 ? "an event" : strerror(errno));
			if (r == 1 && res != (long)LEN)
				rc = fail("read: %ld", res);
			else
				rc = fail("the read completed before msync: delay_us too short");
			goto out;
		}
		t0 = now_ms();
		if (msync(buf, LEN, MS_SYNC)) {
			rc = fail("msync in flight: %s", strerror(errno));
			reap(1, &res);
			goto out;
		}
		/*
		 * msync() waits for its own writes, which go through the same delayed disk: the
		 * read may complete before it returns. What matters is that writeback cleaned the
		 * pages (at the start of msync) before the read completed.
		 */
		msync_ms = now_ms() - t0;
		diag("msync in flight took %ld ms", msync_ms);
	}
	if (reap(1, &res) != 1 || res != (long)LEN) {
		rc = fail("read: %ld", res);
		goto out;
	}
	/* The re-dirtying worker may run just after the completion. */
	for (int tries = 0; tries < 100; tries++) {
		n = count_dirty(buf, 1);
		if (n == NPAGES)
			break;
		sleep_ms(20);
	}
	if (counter("redirtied", &r1)) {
		rc = fail("no redirtied counter");
		goto out;
	}
	diag("%s: %d of %d pages dirty after the read, redirtied moved by %llu", clean ? "msync in flight" : "no msync",
	     n, NPAGES, r1 - r0);
	if (n != NPAGES) {
		rc = fail("%d of %d pages dirty after the read%s", n, NPAGES,
			  !clean ? "" : r1 == r0 ? ": none found clean at completion (cleaned after it? delay_us too short?)"
					      : ": pages cleaned in flight were not dirtied again");
		goto out;
	}
	if (clean ? r1 - r0 < NPAGES : r1 != r0) {
		rc = fail("redirtied moved by %llu, not %s%d", r1 - r0, clean ? "at least " : "", clean ? NPAGES : 0);
		goto out;
	}
	if (pat_diff(buf, R_OFF, LEN, seed) >= 0) {
		rc = fail("the read did not land in the mapping");
		goto out;
	}
	if (msync(buf, LEN, MS_SYNC)) {
		rc = fail("msync: %s", strerror(errno));
		goto out;
	}
	munmap(buf, LEN);
	buf = NULL;
	close(fd);
	fd = -1;
	if (umount(MNT)) {
		rc = fail("umount: %s", strerror(errno));
		goto out_mounted;
	}
	if (mount_fs())
		return -1;
	fd = open(MNT "/f", O_RDONLY);
	if (fd < 0 || pread(fd, v, LEN, 0) != (ssize_t)LEN) {
		rc = fail("read the file back: %s", strerror(errno));
		goto out;
	}
	if (pat_diff(v, R_OFF, LEN, seed) >= 0)
		rc = fail("the file at +%ld does not hold the read's data after remount%s",
			  pat_diff(v, R_OFF, LEN, seed), v[pat_diff(v, R_OFF, LEN, seed)] == 0x11 ? " (old bytes)" : "");
out:
	if (buf)
		munmap(buf, LEN);
	if (fd >= 0)
		close(fd);
	if (umount(MNT) && !rc)
		rc = fail("umount: %s", strerror(errno));
out_mounted:
	if (v)
		munmap(v, LEN);
	return rc;
}

static int t_ext4_msync(void)
{
	return ext4_case(1);
}

static int t_ext4_no_clean(void)
{
	return ext4_case(0);
}

/* Writes the file system image to the start of FSDEV. */
static int t_ext4_image(void)
{
	int fd = open(image, O_RDONLY);
	unsigned char *b = map_anon(MiB, MAP_PRIVATE);
	off_t at = 0;
	ssize_t n;
	int rc = 0;

	if (fd < 0 || !b)
		return fail("open %s: %s", image, strerror(errno));
	while ((n = read(fd, b, MiB)) > 0) {
		if (n % 512)
			memset(b + n, 0, 512 - n % 512), n += 512 - n % 512;
		if (pwrite(fsdev, b, n, at) != n) {
			rc = fail("write the image: %s", strerror(errno));
			break;
		}
		at += n;
	}
	close(fd);
	munmap(b, MiB);
	if (!rc)
		mkdir(MNT, 0700);
	return rc;
}

int main(int argc, char **argv)
{
	char mode[64];

	if (argc != 6) {
		fprintf(stderr, "usage: %s DEV BDEV FSDEV IMAGE pin|legacy\n", argv[0]);
		return 2;
	}
	tap_begin("dirty_read");
	snprintf(mode, sizeof(mode), "dirty_read_%s_", argv[5]);
	snprintf(t_prefix, sizeof(t_prefix), "%s", mode);
	alarm(300);
	image = argv[4];
	fsdev_path = argv[3];
	dev = open_direct(argv[1], O_RDWR);
	bdev = open_direct(argv[2], O_RDWR);
	fsdev = open_direct(argv[3], O_RDWR);
	kpf = open("/proc/kpageflags", O_RDONLY);
	pagemap = open("/proc/self/pagemap", O_RDONLY);
	seed = (uint32_t)(time(NULL) ^ ((uint32_t)getpid() << 12)) & 0xffffff;
	if (dev < 0 || bdev < 0 || fsdev < 0 || kpf < 0 || pagemap < 0 || io_setup(4, &ctx) < 0) {
		printf("not ok 1 %ssetup # cannot open the devices, /proc/kpageflags or pagemap, or io_setup\n",
		       t_prefix);
		return 1;
	}
	run("memfd", t_memfd);
	run("ext4_image", t_ext4_image);
	run("ext4_no_clean", t_ext4_no_clean);
	run("ext4_msync", t_ext4_msync);
	io_destroy(ctx);
	close(dev);
	close(bdev);
	close(fsdev);
	run("debugfs_counters_balanced", t_debugfs_counters_balanced);
	run("vmstat_pins_balanced", t_vmstat_pins_balanced);
	return tap_end();
}
