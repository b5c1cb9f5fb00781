// SPDX-License-Identifier: GPL-2.0
/*
 * splits DEV BDEV
 *
 * How the queue limits of disk BDEV shape direct I/O through its character device DEV (the
 * Rust path) and through BDEV opened O_DIRECT (the kernel's C path), and that the data stays
 * right. For each path and each length, one write and one read of that many bytes from a
 * page-aligned buffer; the disk's request count (/sys/block/NAME/stat) and the module's count
 * of split-off bio pieces (ramdisk_split_pieces in debugfs) before and after each call give
 * the requests the call took and how many of them the block layer split off a larger bio.
 *
 * The largest request the limits allow is
 *   cap = min(max_sectors_kb * 1024, max_segments * min(max_segment_size, page size))
 * (with a segment size of at most a page, every page of the buffer is a segment of its own,
 * whatever the physical layout). Each call must take exactly ceil(len / cap) requests, and
 * all but one of them must be pieces split off: both paths build ONE bio for the call (the
 * lengths fit in one bio) and leave the rest to the block layer. Every byte is read back
 * through both paths and compared. Pins balance at the end.
 *
 * SPLITS_CAP=BYTES in the environment is the largest request that the parameters the module
 * was loaded with must give: the limits in sysfs must agree (a module that ignored them would
 * split nothing and pass otherwise). SPLITS_EXPECT=none asserts instead that no call is split
 * at all (the default limits).
 */
#include "common.h"

static int dev = -1, bdev = -1;
static const char *bname;
static unsigned char *wbuf, *rbuf;
static unsigned long cap;
static int expect_none;
static uint32_t seed = 0x5b1;
#define BUF_LEN (1 * MiB)

struct counts {
	unsigned long long rd, wr, pieces;
};

static int counts_get(struct counts *c)
{
	char path[256];
	unsigned long long v[11];
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/sys/block/%s/stat", bname);
	f = fopen(path, "r");
	if (!f)
		return fail("%s: %s", path, strerror(errno));
	n = fscanf(f, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
		   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10]);
	fclose(f);
	if (n != 11)
		return fail("%s: unreadable", path);
	/* Fields 1 and 5: reads and writes completed (requests). */
	c->rd = v[0];
	c->wr = v[4];
	if (debugfs_get("ramdisk_split_pieces", &c->pieces))
		return fail("no ramdisk_split_pieces in " IOVX_DEBUGFS);
	return 0;
}

static unsigned long queue_uint(const char *name)
{
	char path[256];
	unsigned long long v = 0;

	snprintf(path, sizeof(path), "/sys/block/%s/queue/%s", bname, name);
	if (read_sysfs_uint(path, &v))
		diag("cannot read %s", path);
	return v;
}

/* One call of @len bytes at @off through @fd (@write or read); its requests and split-off
 * pieces checked against the limits. */
static int one_call(const char *path, int fd, int write, unsigned char *buf, size_t len,
		    uint64_t off)
{
	struct counts a, b;
	unsigned long long reqs, pieces, want;
	ssize_t r;

	if (counts_get(&a))
		return -1;
	r = write ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
	if (r != (ssize_t)len)
		return fail("%s %s of %zu at %" PRIu64 ": %zd (%s)", path, write ? "write" : "read",
			    len, off, r, r < 0 ? strerror(errno) : "short");
	if (counts_get(&b))
		return -1;
	reqs = write ? b.wr - a.wr : b.rd - a.rd;
	pieces = b.pieces - a.pieces;
	want = expect_none ? 1 : (len + cap - 1) / cap;
	diag("%s %s %zu KiB: %llu request(s), %llu split off, %llu bio(s) built", path,
	     write ? "write" : "read", len / KiB, reqs, pieces, reqs - pieces);
	if (reqs != want)
		return fail("%s %s of %zu: %llu requests, want %llu (cap %lu)", path,
			    write ? "write" : "read", len, reqs, want, cap);
	if (pieces != want - 1)
		return fail("%s %s of %zu: %llu pieces split off, want %llu", path,
			    write ? "write" : "read", len, pieces, want - 1);
	return 0;
}

/* Write through @wfd, read back through @rfd and through the other path. */
static int round_trip(const char *wname, int wfd, const char *rname, int rfd, size_t len,
		      uint64_t off)
{
	long d;

	seed++;
	pat_fill(wbuf, off, len, seed);
	if (one_call(wname, wfd, 1, wbuf, len, off))
		return -1;
	memset(rbuf, 0xa5, len);
	if (one_call(rname, rfd, 0, rbuf, len, off))
		return -1;
	d = pat_diff(rbuf, off, len, seed);
	if (d >= 0)
		return fail("%s read back of %zu at %" PRIu64 " differs at byte %ld", rname, len,
			    off, d);
	memset(rbuf, 0x5a, len);
	if (one_call(wname, wfd, 0, rbuf, len, off))
		return -1;
	d = pat_diff(rbuf, off, len, seed);
	if (d >= 0)
		return fail("%s read back of %zu at %" PRIu64 " differs at byte %ld", wname, len,
			    off, d);
	return 0;
}

static size_t cur_len;

static int t_queue_limits(void)
{
	const char *e = getenv("SPLITS_CAP");

	if (!e)
		return skip("no SPLITS_CAP given");
	if (strtoul(e, NULL, 0) != cap)
		return fail("the queue allows %lu bytes a request, the parameters %s", cap, e);
	return 0;
}

static int t_rust_path(void)
{
	return round_trip("rust", dev, "c", bdev, cur_len, 3 * MiB);
}

static int t_c_path(void)
{
	return round_trip("c", bdev, "rust", dev, cur_len, 5 * MiB);
}

int main(int argc, char **argv)
{
	static const size_t lens[] = { 64 * KiB, 256 * KiB };
	unsigned long sectors_kb, segs, seg_size;
	const char *e = getenv("SPLITS_EXPECT");
	char name[64];

	tap_begin("splits");
	if (argc != 3) {
		fprintf(stderr, "usage: %s DEV BDEV\n", argv[0]);
		return 2;
	}
	bname = strrchr(argv[2], '/') ? strrchr(argv[2], '/') + 1 : argv[2];
	expect_none = e && !strcmp(e, "none");
	dev = open_direct(argv[1], O_RDWR);
	bdev = open(argv[2], O_RDWR | O_DIRECT);
	wbuf = map_anon(BUF_LEN, MAP_PRIVATE);
	rbuf = map_anon(BUF_LEN, MAP_PRIVATE);
	if (dev < 0 || bdev < 0 || !wbuf || !rbuf) {
		printf("not ok 1 splits_setup # cannot open the devices or map buffers\n");
		return 1;
	}
	sectors_kb = queue_uint("max_sectors_kb");
	segs = queue_uint("max_segments");
	seg_size = queue_uint("max_segment_size");
	cap = sectors_kb * KiB;
	if (segs * (seg_size < PAGE ? seg_size : PAGE) < cap && seg_size <= PAGE)
		cap = segs * seg_size;
	diag("%s: max_sectors_kb %lu max_segments %lu max_segment_size %lu: at most %lu bytes a request%s",
	     bname, sectors_kb, segs, seg_size, cap, expect_none ? " (no split expected)" : "");
	if (!cap) {
		printf("not ok 1 splits_setup # no queue limits\n");
		return 1;
	}
	run("queue_limits", t_queue_limits);
	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		cur_len = lens[i];
		snprintf(name, sizeof(name), "rust_%zuk", cur_len / KiB);
		run(name, t_rust_path);
		snprintf(name, sizeof(name), "c_%zuk", cur_len / KiB);
		run(name, t_c_path);
	}
	run("vmstat_pins_balanced", t_vmstat_pins_balanced);
	run("debugfs_counters_balanced", t_debugfs_counters_balanced);
	return tap_end();
}
