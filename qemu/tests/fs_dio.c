// SPDX-License-Identifier: GPL-2.0
/*
 * fs_dio MNT FSDEV DEV BDEV
 *
 * Direct I/O from and into MAP_SHARED mappings of files on a real filesystem with writeback
 * (ext4 on FSDEV, mounted at MNT), while the file is synced, truncated or unmapped under the
 * I/O and memory pressure forces writeback; then the filesystem is unmounted and mounted
 * again and every file is read back.
 *
 * Each scenario runs twice, through the Rust path (DEV, the character device of disk 0) and
 * through the kernel's C O_DIRECT path (BDEV, the same disk's block device), on a file of its
 * own and a region of the disk of its own. The module must run with a completion delay
 * (delay_us) on disk 0 and none on the filesystem's disk (delay_mask=1): the I/O is started by
 * one thread, and another thread waits until the disk has it in flight
 * (/sys/block/NAME/inflight), acts on the file and checks that the I/O is still in flight when
 * the action (writeback included) is over, so that the data moves after it (a run in which it
 * is not is not conclusive and is tried again, up to three times):
 *
 *   read_fsync, read_sync_file_range, read_msync
 *       a read of the disk into the mapping; the file is written back (fsync, sync_file_range,
 *       msync MS_SYNC) while the read is in flight, which cleans the pinned pages (and writes
 *       their old content). The data lands after that, so it reaches the file only if the pages
 *       are dirtied again when the read ends. After the remount the file holds what was read.
 *   read_munmap
 *       the same with the mapping unmapped (then fsync) while the read is in flight: the pins
 *       keep the pages, the data still reaches the file.
 *   read_ftruncate
 *       the file is truncated to half (page-aligned) while the read is in flight, then grown
 *       back after it. The first half holds what was read; the second half reads as zeroes:
 *       what the device wrote into the truncated pages is gone with them and does not come
 *       back when the file grows.
 *   read_aio_fsync
 *       read_fsync with the read submitted by libaio (the asynchronous path: pages dirtied
 *       before submission, checked at completion and dirtied again if writeback cleaned them).
 *   write_fsync, write_munmap
 *       a write of the mapping to the disk while the file is written back, or unmapped and its
 *       page cache dropped (POSIX_FADV_DONTNEED): the disk gets the file's content, the file
 *       keeps it.
 *   write_ftruncate_partial
 *       a write of the mapping to the disk while the file is truncated to a size in the middle
 *       of a page. This is what Linux 6.12 does, asserted as such: truncation zeroes the tail
 *       of the partial page in place (truncate_inode_partial_folio()) although the page is
 *       pinned for the write in flight, and the device, which moves the data at completion,
 *       stores those zeroes; the whole pages after it leave the page cache but keep their
 *       content, which the device stores. The file keeps the content up to its new size.
 *
 * Throughout, a thread dirties page cache on the same filesystem (rewriting a scratch file
 * with buffered writes) and drops the clean page cache, and the dirty limits are lowered so
 * that the flusher writes back all the time. Each scenario prints one result line per path
 * for the I/O and one after the remount for the file; the pins balance at the end; a table
 * of both paths side by side closes the output.
 */
#include "common.h"

#include <libaio.h>
#include <pthread.h>
#include <sys/mount.h>

#define FL (256 * KiB)		/* file and I/O length */
#define HALF (FL / 2)
#define TPART (HALF + 1000)	/* partial truncation size */

static const char *mnt, *fsdev, *bname;
static int paths_fd[2] = { -1, -1 };
static const char *const path_names[2] = { "rust", "c" };

enum op { OP_FSYNC, OP_SFR, OP_MSYNC, OP_MUNMAP, OP_TRUNC_HALF, OP_TRUNC_PART };

struct scenario {
	const char *name;
	int write;	/* DIO write from the mapping (else a read into it) */
	int aio;	/* submitted with libaio */
	enum op op;
};

static const struct scenario scenarios[] = {
	{ "read_fsync", 0, 0, OP_FSYNC },
	{ "read_sync_file_range", 0, 0, OP_SFR },
	{ "read_msync", 0, 0, OP_MSYNC },
	{ "read_munmap", 0, 0, OP_MUNMAP },
	{ "read_ftruncate", 0, 0, OP_TRUNC_HALF },
	{ "read_aio_fsync", 0, 1, OP_FSYNC },
	{ "write_fsync", 1, 0, OP_FSYNC },
	{ "write_munmap", 1, 0, OP_MUNMAP },
	{ "write_ftruncate_partial", 1, 0, OP_TRUNC_PART },
};
#define NSC (sizeof(scenarios) / sizeof(scenarios[0]))

/* Results: [scenario][path] of the I/O and of the file after the remount. */
static char res_io[NSC][2][8], res_file[NSC][2][8];

/* Seeds: the disk's data (what a read brings) and the file's old content. */
static uint32_t seed_disk(int s, int p) { return 0x100 + s * 2 + p; }
static uint32_t seed_file(int s, int p) { return 0x200 + s * 2 + p; }
static uint64_t disk_off(int s, int p) { return (uint64_t)(s * 2 + p) * MiB; }

static void file_path(char *buf, size_t len, int s, int p)
{
	snprintf(buf, len, "%s/%s_%s", mnt, path_names[p], scenarios[s].name);
}

/* ---------------------------------------------------------------- the environment */

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = write(fd, val, strlen(val));
	close(fd);
	return r == (ssize_t)strlen(val) ? 0 : -1;
}

static void read_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t r = fd < 0 ? -1 : read(fd, buf, len - 1);

	buf[r > 0 ? r : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

static const char *const sysctls[][2] = {
	{ "/proc/sys/vm/dirty_background_bytes", "65536" },
	{ "/proc/sys/vm/dirty_bytes", "1048576" },
	{ "/proc/sys/vm/dirty_writeback_centisecs", "5" },
	{ "/proc/sys/vm/dirty_expire_centisecs", "1" },
};
#define NSYSCTL (sizeof(sysctls) / sizeof(sysctls[0]))
static char saved[NSYSCTL][64];

/* Reads in flight on the DIO disk (field 1 of /sys/block/NAME/inflight), writes (field 2). */
static int inflight(int write)
{
	char path[128], buf[64];
	unsigned r = 0, w = 0;

	snprintf(path, sizeof(path), "/sys/block/%s/inflight", bname);
	read_str(path, buf, sizeof(buf));
	if (sscanf(buf, "%u %u", &r, &w) != 2)
		return -1;
	return write ? w : r;
}

/* The pressure: buffered rewrites of a scratch file on the filesystem, and clean page cache
 * dropped, until told to stop. */
static volatile int pressure_stop;
static unsigned long pressure_rounds;

static void *pressure(void *arg)
{
	char path[256];
	char *buf = malloc(MiB);
	int fd;

	snprintf(path, sizeof(path), "%s/pressure", mnt);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || !buf)
		return NULL;
	while (!pressure_stop) {
		for (int i = 0; i < 4 && !pressure_stop; i++) {
			memset(buf, (int)(pressure_rounds + i), MiB);
			if (pwrite(fd, buf, MiB, (off_t)i * MiB) != (ssize_t)MiB)
				break;
		}
		write_str("/proc/sys/vm/drop_caches", "1");
		pressure_rounds++;
		sleep_ms(20);
	}
	close(fd);
	unlink(path);
	free(buf);
	return NULL;
}

/* ---------------------------------------------------------------- one scenario */

struct ctx {
	const struct scenario *sc;
	int fd;			/* the file */
	char *map;
	int mapped;
	volatile int in_flight_seen, op_done, op_err, op_late;
	char op_why[128];
};

/* Why the last run was not conclusive. */
static char last_why[128];

/* The other thread: wait until the disk has the I/O in flight, then act on the file. */
static void *actor(void *arg)
{
	struct ctx *c = arg;
	int write = c->sc->write, r = 0;

	for (int i = 0; i < 10000; i++) {
		int k = inflight(write);

		if (k > 0) {
			c->in_flight_seen = 1;
			break;
		}
		sleep_ms(1);
	}
	if (!c->in_flight_seen) {
		/*
		 * Over before this thread looked (a loaded host can keep it from running for longer
		 * than the delay): not conclusive either, tried again.
		 */
		snprintf(c->op_why, sizeof(c->op_why),
			 "the I/O was never seen in flight (not conclusive: a longer delay_us?)");
		c->op_err = 1;
		c->op_late = 1;
		c->op_done = 1;
		return NULL;
	}
	switch (c->sc->op) {
	case OP_FSYNC:
		r = fsync(c->fd);
		break;
	case OP_SFR:
		r = sync_file_range(c->fd, 0, FL, SYNC_FILE_RANGE_WAIT_BEFORE |
				    SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
		break;
	case OP_MSYNC:
		r = msync(c->map, FL, MS_SYNC);
		break;
	case OP_MUNMAP:
		r = munmap(c->map, FL);
		c->mapped = 0;
		if (!r && !write)
			r = fsync(c->fd);
		/* A write's pages are clean: try to evict them (the pins keep them). */
		if (!r && write)
			r = posix_fadvise(c->fd, 0, FL, POSIX_FADV_DONTNEED) ? -1 : 0;
		break;
	case OP_TRUNC_HALF:
		r = ftruncate(c->fd, HALF);
		if (!r)
			r = fsync(c->fd);
		break;
	case OP_TRUNC_PART:
		r = ftruncate(c->fd, TPART);
		if (!r)
			r = fsync(c->fd);
		break;
	}
	if (r) {
		snprintf(c->op_why, sizeof(c->op_why), "the action failed: %s", strerror(errno));
		c->op_err = 1;
	} else if (inflight(write) <= 0) {
		/* Only an action over before the data moved shows anything. */
		snprintf(c->op_why, sizeof(c->op_why),
			 "the action ended after the I/O (not conclusive: a longer delay_us?)");
		c->op_err = 1;
		c->op_late = 1;
	}
	c->op_done = 1;
	return NULL;
}

static int do_io(struct ctx *c, int pfd, uint64_t off)
{
	ssize_t r;

	if (!c->sc->aio) {
		r = c->sc->write ? pwrite(pfd, c->map, FL, off) : pread(pfd, c->map, FL, off);
		if (r != (ssize_t)FL)
			return fail("%s of %lu: %zd (%s)", c->sc->write ? "pwrite" : "pread", FL, r,
				    r < 0 ? strerror(errno) : "short");
		return 0;
	} else {
		io_context_t ctx = 0;
		struct iocb cb, *cbs[1] = { &cb };
		struct io_event ev;
		int e;

		if ((e = io_setup(1, &ctx)))
			return fail("io_setup: %s", strerror(-e));
		if (c->sc->write)
			io_prep_pwrite(&cb, pfd, c->map, FL, off);
		else
			io_prep_pread(&cb, pfd, c->map, FL, off);
		e = io_submit(ctx, 1, cbs);
		if (e != 1) {
			io_destroy(ctx);
			return fail("io_submit: %s", e < 0 ? strerror(-e) : "0");
		}
		e = io_getevents(ctx, 1, 1, &ev, NULL);
		io_destroy(ctx);
		if (e != 1)
			return fail("io_getevents: %d", e);
		if ((long)ev.res != (long)FL)
			return fail("aio %s: res %ld", c->sc->write ? "write" : "read", (long)ev.res);
		return 0;
	}
}

/* Puts pattern @seed at @off of the disk through BDEV (C O_DIRECT, private memory). */
static int disk_put(uint64_t off, uint32_t seed, unsigned char *buf)
{
	pat_fill(buf, off, FL, seed);
	if (pwrite(paths_fd[1], buf, FL, off) != (ssize_t)FL)
		return fail("priming the disk: %s", strerror(errno));
	return 0;
}

static unsigned char *scratch;	/* FL bytes, page aligned */

/* The disk region written by a write scenario, as expected. */
static int check_disk(int s, int p)
{
	const struct scenario *sc = &scenarios[s];
	uint64_t off = disk_off(s, p);
	uint32_t fs = seed_file(s, p);
	long d;

	memset(scratch, 0xa5, FL);
	if (pread(paths_fd[1], scratch, FL, off) != (ssize_t)FL)
		return fail("reading the disk back: %s", strerror(errno));
	if (sc->op != OP_TRUNC_PART) {
		d = pat_diff(scratch, 0, FL, fs);
		if (d >= 0)
			return fail("the disk differs from the file at byte %ld", d);
		return 0;
	}
	/* 6.12: the tail of the partial page was zeroed under the pinned write. */
	{
		size_t pend = (TPART + PAGE - 1) & ~(PAGE - 1);

		d = pat_diff(scratch, 0, TPART, fs);
		if (d >= 0)
			return fail("the disk differs from the file at byte %ld (before the new size)", d);
		d = byte_diff(scratch + TPART, pend - TPART, 0);
		if (d >= 0) {
			long e = pat_diff(scratch + TPART, TPART, pend - TPART, fs);

			return fail("byte %ld of the partial page's tail is not zero (%s)", TPART + d,
				    e < 0 ? "the file's old data: truncation did not zero the pinned page" :
					    "neither zero nor the file's data");
		}
		d = pat_diff(scratch + pend, pend, FL - pend, fs);
		if (d >= 0)
			return fail("the disk differs from the file at byte %ld (after the partial page)",
				    pend + d);
	}
	return 0;
}

static int run_one(int s, int p)
{
	const struct scenario *sc = &scenarios[s];
	struct ctx c = { .sc = sc, .fd = -1 };
	uint64_t off = disk_off(s, p);
	char path[256];
	pthread_t t;
	int rc = 0;
	long d;

	file_path(path, sizeof(path), s, p);
	/* The disk's region: what a read brings. */
	if (disk_put(off, seed_disk(s, p), scratch))
		return -1;
	/* The file: its old content, on disk and clean. */
	c.fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (c.fd < 0)
		return fail("open %s: %s", path, strerror(errno));
	pat_fill(scratch, 0, FL, seed_file(s, p));
	if (pwrite(c.fd, scratch, FL, 0) != (ssize_t)FL || fsync(c.fd)) {
		close(c.fd);
		return fail("writing %s: %s", path, strerror(errno));
	}
	c.map = mmap(NULL, FL, PROT_READ | PROT_WRITE, MAP_SHARED, c.fd, 0);
	if (c.map == MAP_FAILED) {
		close(c.fd);
		return fail("mmap %s: %s", path, strerror(errno));
	}
	c.mapped = 1;
	if (pthread_create(&t, NULL, actor, &c)) {
		munmap(c.map, FL);
		close(c.fd);
		return fail("pthread_create");
	}
	rc = do_io(&c, paths_fd[p], off);
	pthread_join(t, NULL);
	if (!rc && c.op_err) {
		if (c.op_late) {
			snprintf(last_why, sizeof(last_why), "%s", c.op_why);
			rc = 2;
		} else {
			rc = fail("%s", c.op_why);
		}
	}
	/* What the mapping shows now (the part still mapped and within the file). */
	if (!rc && !sc->write && c.mapped) {
		size_t n = sc->op == OP_TRUNC_HALF ? HALF : FL;

		d = pat_diff(c.map, off, n, seed_disk(s, p));
		if (d >= 0)
			rc = fail("the mapping differs from the data read at byte %ld", d);
	}
	if (c.mapped)
		munmap(c.map, FL);
	if (rc != -1 && sc->op == OP_TRUNC_HALF && ftruncate(c.fd, FL))
		rc = fail("growing the file back: %s", strerror(errno));
	/* Wait for the pins of the I/O to go (an asynchronous read's pages are released, and
	 * dirtied again if need be, by a worker after the completion was reported). */
	if (rc != -1)
		check_vmstat_pins_quiet(1);
	if (!rc && fsync(c.fd))
		rc = fail("fsync after the I/O: %s", strerror(errno));
	close(c.fd);
	if (!rc && sc->write)
		rc = check_disk(s, p);
	return rc;
}

/* The file of a scenario after the remount. */
static int check_file(int s, int p)
{
	const struct scenario *sc = &scenarios[s];
	size_t size = sc->op == OP_TRUNC_PART ? TPART : FL;
	uint32_t want = sc->write ? seed_file(s, p) : seed_disk(s, p);
	uint64_t base = sc->write ? 0 : disk_off(s, p);
	char path[256];
	struct stat st;
	ssize_t r;
	long d;
	int fd;

	file_path(path, sizeof(path), s, p);
	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st))
		return fail("open %s: %s", path, strerror(errno));
	memset(scratch, 0xa5, FL);
	r = read(fd, scratch, FL);
	close(fd);
	if (st.st_size != (off_t)size || r != (ssize_t)size)
		return fail("%s: size %lld, read %zd, want %zu", path, (long long)st.st_size, r, size);
	if (sc->op == OP_TRUNC_HALF) {
		d = pat_diff(scratch, base, HALF, want);
		if (d >= 0)
			return fail("byte %ld of the first half is not the data read%s", d,
				    pat_diff(scratch + d, d, 8, seed_file(s, p)) < 0 ?
					    " but the file's old content: the read was lost" : "");
		d = byte_diff(scratch + HALF, HALF, 0);
		if (d >= 0)
			return fail("byte %ld of the truncated and grown half is not zero", HALF + d);
		return 0;
	}
	d = pat_diff(scratch, base, size, want);
	if (d >= 0) {
		int old = !sc->write && pat_diff(scratch + (d & ~7L), d & ~7L, 8, seed_file(s, p)) < 0;

		return fail("byte %ld differs from %s%s", d, sc->write ? "the file's content" : "the data read",
			    old ? ": the file's old content, the read was lost" : "");
	}
	return 0;
}

static int remount(void)
{
	if (umount2(mnt, 0))
		return fail("umount %s: %s", mnt, strerror(errno));
	if (mount(fsdev, mnt, "ext4", 0, NULL))
		return fail("mount %s on %s: %s", fsdev, mnt, strerror(errno));
	return 0;
}

static int sc_idx, path_idx;

/* A run whose action ended after the I/O, or that never saw the I/O in flight, shows nothing
 * (a loaded host): tried again, up to TRIES times in all, each time on a new file. */
#define TRIES 5

static int t_io(void)
{
	int rc = 2;

	for (int i = 0; i < TRIES && rc == 2; i++) {
		rc = run_one(sc_idx, path_idx);
		if (rc == 2)
			diag("%s %s: %s (try %d of %d)", path_names[path_idx],
			     scenarios[sc_idx].name, last_why, i + 1, TRIES);
	}
	if (rc == 2)
		rc = fail("not conclusive in %d tries, the last: %s", TRIES, last_why);
	return rc;
}
static int t_file(void) { return check_file(sc_idx, path_idx); }
static int t_remount(void) { return remount(); }

int main(int argc, char **argv)
{
	pthread_t pt;
	char name[128];
	int have_pressure;

	tap_begin("fs_dio");
	if (argc != 5) {
		fprintf(stderr, "usage: %s MNT FSDEV DEV BDEV\n", argv[0]);
		return 2;
	}
	mnt = argv[1];
	fsdev = argv[2];
	bname = strrchr(argv[4], '/') ? strrchr(argv[4], '/') + 1 : argv[4];
	paths_fd[0] = open_direct(argv[3], O_RDWR);
	paths_fd[1] = open(argv[4], O_RDWR | O_DIRECT);
	scratch = map_anon(FL, MAP_PRIVATE);
	if (paths_fd[0] < 0 || paths_fd[1] < 0 || !scratch) {
		printf("not ok 1 fs_dio_setup # cannot open %s or %s\n", argv[3], argv[4]);
		return 1;
	}
	for (unsigned i = 0; i < NSYSCTL; i++) {
		read_str(sysctls[i][0], saved[i], sizeof(saved[i]));
		if (write_str(sysctls[i][0], sysctls[i][1]))
			diag("cannot set %s", sysctls[i][0]);
	}
	have_pressure = !pthread_create(&pt, NULL, pressure, NULL);
	for (unsigned s = 0; s < NSC; s++) {
		for (int p = 0; p < 2; p++) {
			sc_idx = s;
			path_idx = p;
			snprintf(name, sizeof(name), "%s_%s", path_names[p], scenarios[s].name);
			t_why[0] = '\0';
			{
				int rc = t_io();

				report(name, rc);
				snprintf(res_io[s][p], sizeof(res_io[s][p]), "%s", rc ? "FAIL" : "ok");
			}
		}
	}
	pressure_stop = 1;
	if (have_pressure)
		pthread_join(pt, NULL);
	diag("memory pressure: %lu rounds of 4 MiB rewritten and page cache dropped", pressure_rounds);
	for (unsigned i = 0; i < NSYSCTL; i++)
		if (saved[i][0])
			write_str(sysctls[i][0], saved[i]);
	run("remount", t_remount);
	for (unsigned s = 0; s < NSC; s++) {
		for (int p = 0; p < 2; p++) {
			int rc;

			sc_idx = s;
			path_idx = p;
			snprintf(name, sizeof(name), "%s_%s_after_remount", path_names[p], scenarios[s].name);
			t_why[0] = '\0';
			rc = t_file();
			report(name, rc);
			snprintf(res_file[s][p], sizeof(res_file[s][p]), "%s", rc ? "FAIL" : "ok");
		}
	}
	run("vmstat_pins_balanced", t_vmstat_pins_balanced);
	run("debugfs_counters_balanced", t_debugfs_counters_balanced);
	diag("%-26s %-14s %-14s", "scenario", "rust io/file", "c io/file");
	for (unsigned s = 0; s < NSC; s++) {
		char a[40], b[40];

		snprintf(a, sizeof(a), "%.8s/%.8s", res_io[s][0], res_file[s][0]);
		snprintf(b, sizeof(b), "%.8s/%.8s", res_io[s][1], res_file[s][1]);
		diag("%-26s %-14s %-14s", scenarios[s].name, a, b);
	}
	return tap_end();
}
