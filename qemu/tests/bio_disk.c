// SPDX-License-Identifier: GPL-2.0
/*
 * bio_disk BIO_BDEV MQ_BDEV: what sets a bio-based iovx disk (BIO_BDEV, bio_mask) apart from a
 * blk-mq one (MQ_BDEV), through its block device:
 *
 *   nowait_busy       with storage allocations failing (ramdisk_fail_allocs), an RWF_NOWAIT
 *                     write to never-written sectors fails with EAGAIN and writes nothing on
 *                     the bio-based disk (its driver is busy and the bio must not wait), and
 *                     completes on the blk-mq disk (the request is handed back and dispatched
 *                     again);
 *   busy_waits        the same write without RWF_NOWAIT completes on the bio-based disk (the
 *                     bio is offered again until the driver takes it) and reads back;
 *   no_passthrough    IOVX_IOC_PT is EOPNOTSUPP on the bio-based disk, which has no requests,
 *                     and works on the blk-mq one;
 *
 * and the pins balanced.
 */
#include "common.h"
#include "../../rust/uapi/iovx.h"

static const char *bio_path, *mq_path;
static int bio_fd = -1, mq_fd = -1;
static struct geom g;
static unsigned char *buf;
#define LEN (64 * KiB)
/* Sectors no other test writes: the last MiB of the disk. */
static uint64_t off_at(int i)
{
	return g.size - MiB + (uint64_t)i * LEN;
}

static uint32_t new_seed(void)
{
	static uint32_t next = 0x5a0000;

	return ++next;
}

static const char *ename(int e)
{
	const char *n = e ? strerrorname_np(e) : "no error";

	return n ? n : "?";
}

static int set_fail_allocs(unsigned n)
{
	FILE *f = fopen(IOVX_DEBUGFS "/ramdisk_fail_allocs", "w");

	if (!f)
		return -1;
	fprintf(f, "%u\n", n);
	return fclose(f);
}

static int t_nowait_busy(void)
{
	unsigned long long left = 0, busy0 = 0, busy1 = 0;
	struct iovec v = { buf, LEN };
	uint32_t s = new_seed();
	ssize_t r;
	int e;

	pat_fill(buf, off_at(0), LEN, s);
	if (debugfs_get("ramdisk_busy", &busy0) || set_fail_allocs(1))
		return fail("no " IOVX_DEBUGFS "/ramdisk_fail_allocs or ramdisk_busy");
	errno = 0;
	r = pwritev2(bio_fd, &v, 1, off_at(0), RWF_NOWAIT);
	e = errno;
	debugfs_get("ramdisk_fail_allocs", &left);
	debugfs_get("ramdisk_busy", &busy1);
	set_fail_allocs(0);
	if (r != -1 || e != EAGAIN)
		return fail("bio-based: RWF_NOWAIT write with the driver busy gave %zd (%s), not EAGAIN",
			    r, ename(e));
	if (left || busy1 == busy0)
		return fail("bio-based: the failure was not reached (%llu left, %llu busy)", left,
			    busy1 - busy0);
	/* Nothing written: never-written sectors read as zeroes. */
	memset(buf, 0xa5, LEN);
	if (pread(bio_fd, buf, LEN, off_at(0)) != LEN)
		return fail("bio-based: read back: %s", ename(errno));
	for (size_t i = 0; i < LEN; i++)
		if (buf[i])
			return fail("bio-based: byte %zu written by the refused write", i);

	/* The blk-mq disk: the request comes back and completes. */
	pat_fill(buf, off_at(0), LEN, s);
	if (set_fail_allocs(1))
		return fail("ramdisk_fail_allocs");
	r = pwritev2(mq_fd, &v, 1, off_at(0), RWF_NOWAIT);
	e = errno;
	set_fail_allocs(0);
	if (r != LEN)
		return fail("blk-mq: RWF_NOWAIT write with the driver busy gave %zd (%s)", r,
			    r < 0 ? ename(e) : "short");
	memset(buf, 0, LEN);
	if (pread(mq_fd, buf, LEN, off_at(0)) != LEN || pat_diff(buf, off_at(0), LEN, s) >= 0)
		return fail("blk-mq: other bytes read back");
	return check_vmstat_pins();
}

static int t_busy_waits(void)
{
	unsigned long long left = 0, busy0 = 0, busy1 = 0;
	uint32_t s = new_seed();
	ssize_t r;

	pat_fill(buf, off_at(1), LEN, s);
	debugfs_get("ramdisk_busy", &busy0);
	if (set_fail_allocs(3))
		return fail("ramdisk_fail_allocs");
	r = pwrite(bio_fd, buf, LEN, off_at(1));
	debugfs_get("ramdisk_fail_allocs", &left);
	debugfs_get("ramdisk_busy", &busy1);
	set_fail_allocs(0);
	if (r != LEN)
		return fail("bio-based: write with the driver busy gave %zd (%s)", r,
			    r < 0 ? ename(errno) : "short");
	diag("64 KiB written with 3 allocations failing: %llu busy", busy1 - busy0);
	if (left || busy1 - busy0 < 1)
		return fail("the failures were not reached (%llu left, %llu busy)", left,
			    busy1 - busy0);
	memset(buf, 0, LEN);
	if (pread(bio_fd, buf, LEN, off_at(1)) != LEN || pat_diff(buf, off_at(1), LEN, s) >= 0)
		return fail("bio-based: other bytes read back");
	return check_vmstat_pins();
}

static int pt_read(int fd)
{
	struct iovx_pt_cmd c = {
		.opcode = IOVX_PT_READ,
		.sector = off_at(2) / 512,
		.addr = (uintptr_t)buf,
		.len = g.lbs,
	};

	return ioctl(fd, IOVX_IOC_PT, &c) ? -errno : (int)c.result;
}

static int t_no_passthrough(void)
{
	int r = pt_read(bio_fd);

	if (r != -EOPNOTSUPP)
		return fail("bio-based: IOVX_IOC_PT gave %d, not -EOPNOTSUPP", r);
	r = pt_read(mq_fd);
	if (r != IOVX_PT_SC_SUCCESS)
		return fail("blk-mq: IOVX_IOC_PT gave %d", r);
	return check_vmstat_pins();
}

int main(int argc, char **argv)
{
	tap_begin("bio_disk");
	if (argc < 3) {
		printf("# usage: bio_disk BIO_BDEV MQ_BDEV\n");
		return 2;
	}
	bio_path = argv[1];
	mq_path = argv[2];
	bio_fd = open_direct(bio_path, O_RDWR);
	mq_fd = open_direct(mq_path, O_RDWR);
	buf = map_anon(LEN, MAP_PRIVATE);
	if (bio_fd < 0 || mq_fd < 0 || !buf || get_geom(bio_path, &g)) {
		printf("# cannot open %s and %s\n", bio_path, mq_path);
		return 2;
	}
	run("nowait_busy", t_nowait_busy);
	run("busy_waits", t_busy_waits);
	run("no_passthrough", t_no_passthrough);
	return tap_end();
}
