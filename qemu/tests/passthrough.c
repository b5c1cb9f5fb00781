// SPDX-License-Identifier: GPL-2.0
/*
 * passthrough: the IOVX_IOC_PT ioctl of /dev/iovxN (rust/uapi/iovx.h).
 *
 * Usage: passthrough BDEV
 *
 * Every passthrough read and write is checked byte for byte against the block device read or
 * written with O_DIRECT, for aligned, misaligned and vectored buffers, with the Rust mapping,
 * the Rust mapping forced to bounce, and the kernel's blk_rq_map_user_iov(); each bad input
 * gives the same errno (and status) with the Rust and the kernel mapping; a bounced request
 * pins no page; and the pins balance at the end.
 */
#include "common.h"
#include "../../rust/uapi/iovx.h"

static const char *bdev;
static int fd, dfd;
static struct geom g;
/* Sectors used: 16 MiB into the disk, 2 MiB of them. */
static const uint64_t base_sector = (16 * MiB) >> 9;
static uint32_t seed = 0x5eed;

static int pt(int opcode, unsigned flags, uint64_t sector, const void *addr, unsigned len,
	      struct iovx_pt_cmd *out)
{
	struct iovx_pt_cmd c = {
		.opcode = opcode,
		.flags = flags,
		.sector = sector,
		.addr = (uintptr_t)addr,
		.len = len,
		.result = 0xdeadbeef,
	};
	int r = ioctl(fd, IOVX_IOC_PT, &c);

	if (out)
		*out = c;
	return r < 0 ? -errno : 0;
}

/* The three ways of mapping a command's data. */
static const struct {
	const char *name;
	unsigned flags;
} maps[] = {
	{ "rust", 0 },
	{ "rust_bounce", IOVX_PT_F_BOUNCE },
	{ "kernel", IOVX_PT_F_KERNEL_MAP },
};

static int t_identify(void)
{
	struct iovx_pt_identify id[3];
	struct iovx_pt_cmd c;
	void *buf = map_anon(PAGE, MAP_PRIVATE);

	for (int m = 0; m < 3; m++) {
		memset(buf, 0xa5, PAGE);
		int r = pt(IOVX_PT_IDENTIFY, maps[m].flags, 0, buf, PAGE, &c);

		if (r)
			return fail("%s: identify: %s", maps[m].name, strerror(-r));
		if (c.result != sizeof(id[m]))
			return fail("%s: identify returned %u bytes", maps[m].name, c.result);
		memcpy(&id[m], buf, sizeof(id[m]));
		if (byte_diff((char *)buf + sizeof(id[m]), PAGE - sizeof(id[m]), 0) >= 0)
			return fail("%s: the rest of the page is not zeroed", maps[m].name);
		if (memcmp(id[m].magic, "IOVXDISK", 8))
			return fail("%s: bad magic", maps[m].name);
		if (id[m].capacity_sectors != g.size >> 9 || id[m].logical_block_size != g.lbs ||
		    id[m].dma_alignment + 1 != g.dma)
			return fail("%s: identify says %llu sectors, %u-byte blocks, align %u; the disk %llu, %u, %u",
				    maps[m].name, (unsigned long long)id[m].capacity_sectors,
				    id[m].logical_block_size, id[m].dma_alignment + 1,
				    (unsigned long long)g.size >> 9, g.lbs, g.dma);
		if (m && memcmp(&id[m], &id[0], sizeof(id[0])))
			return fail("%s: identify differs from the rust mapping's", maps[m].name);
	}
	diag("identify: %llu sectors, lbs %u, max_hw_sectors %u, max_segments %u, align %u",
	     (unsigned long long)id[0].capacity_sectors, id[0].logical_block_size,
	     id[0].max_hw_sectors, id[0].max_segments, id[0].dma_alignment + 1);
	munmap(buf, PAGE);
	return 0;
}

/* A buffer shape: one buffer at an offset into an anonymous mapping, or an iovec array. */
struct shape {
	const char *name;
	size_t off;		/* offset of the (first) buffer in its mapping */
	size_t len;		/* total bytes */
	int nvec;		/* 0: one buffer; else that many pieces of len/nvec bytes */
	size_t gap;		/* bytes between the pieces */
	unsigned expect_rust;	/* IOVX_PT_MAP_* of the rust mapping */
};

static const struct shape shapes[] = {
	{ "aligned_4k", 0, 4 * KiB, 0, 0, IOVX_PT_MAP_PINNED },
	{ "aligned_64k", 0, 64 * KiB, 0, 0, IOVX_PT_MAP_PINNED },
	{ "aligned_1m", 0, 1 * MiB, 0, 0, IOVX_PT_MAP_PINNED },
	{ "aligned_512_in_page", 512, 8 * KiB, 0, 0, IOVX_PT_MAP_PINNED },
	{ "misaligned_8", 8, 16 * KiB, 0, 0, IOVX_PT_MAP_BOUNCED },
	{ "misaligned_1", 1, 4 * KiB, 0, 0, IOVX_PT_MAP_BOUNCED },
	{ "vec_aligned", 0, 64 * KiB, 8, 4096 + 512, IOVX_PT_MAP_PINNED },
	{ "vec_misaligned", 3, 32 * KiB, 4, 100, IOVX_PT_MAP_BOUNCED },
};

/* Runs one command over the shape's memory in @area (the data at @data, len bytes). */
static int pt_shape(int opcode, unsigned flags, const struct shape *s, char *area,
		    struct iovx_pt_cmd *c)
{
	if (!s->nvec)
		return pt(opcode, flags, base_sector, area + s->off, s->len, c);
	struct iovec iov[16];
	size_t piece = s->len / s->nvec;

	for (int i = 0; i < s->nvec; i++) {
		iov[i].iov_base = area + s->off + i * (piece + s->gap);
		iov[i].iov_len = piece;
	}
	return pt(opcode, flags | IOVX_PT_F_VEC, base_sector, iov, s->nvec, c);
}

/* Copies between the shape's pieces in @area and the flat buffer @flat. */
static void gather(const struct shape *s, char *area, char *flat, int to_flat)
{
	int n = s->nvec ? s->nvec : 1;
	size_t piece = s->len / n;

	for (int i = 0; i < n; i++) {
		char *p = area + s->off + i * (piece + s->gap);

		if (to_flat)
			memcpy(flat + i * piece, p, piece);
		else
			memcpy(p, flat + i * piece, piece);
	}
}

static int shape_case(const struct shape *s, int m)
{
	size_t span = s->off + s->len + 16 * (s->gap + 1) + PAGE;
	char *area = map_anon(span, MAP_PRIVATE), *flat, *check;
	struct iovx_pt_cmd c;
	long long acq0 = 0, acq1 = 0;
	unsigned expect = m == 2 ? IOVX_PT_MAP_KERNEL :
			  m == 1 ? IOVX_PT_MAP_BOUNCED : s->expect_rust;
	int r;

	if (posix_memalign((void **)&flat, PAGE, s->len) ||
	    posix_memalign((void **)&check, PAGE, s->len))
		return fail("no memory");
	/* Write through the ioctl, read back with O_DIRECT. */
	seed++;
	pat_fill(flat, 0, s->len, seed);
	gather(s, area, flat, 0);
	stat_refresh();
	vmstat_get("nr_foll_pin_acquired", &acq0);
	r = pt_shape(IOVX_PT_WRITE, maps[m].flags, s, area, &c);
	stat_refresh();
	vmstat_get("nr_foll_pin_acquired", &acq1);
	if (r)
		return fail("write: %s (status %#x)", strerror(-r), c.result);
	if (c.mapping != expect)
		return fail("write mapped as %u, expected %u", c.mapping, expect);
	if (expect == IOVX_PT_MAP_BOUNCED && acq1 != acq0)
		return fail("a bounced write pinned %lld pages", acq1 - acq0);
	if (pread(dfd, check, s->len, base_sector << 9) != (ssize_t)s->len)
		return fail("pread: %s", strerror(errno));
	if (memcmp(check, flat, s->len)) {
		long d = pat_diff(check, 0, s->len, seed);
		return fail("O_DIRECT read after the passthrough write differs at byte %ld", d);
	}
	/* Write with O_DIRECT, read through the ioctl. */
	seed++;
	pat_fill(check, 0, s->len, seed);
	if (pwrite(dfd, check, s->len, base_sector << 9) != (ssize_t)s->len)
		return fail("pwrite: %s", strerror(errno));
	memset(area, 0x5a, span);
	stat_refresh();
	vmstat_get("nr_foll_pin_acquired", &acq0);
	r = pt_shape(IOVX_PT_READ, maps[m].flags, s, area, &c);
	stat_refresh();
	vmstat_get("nr_foll_pin_acquired", &acq1);
	if (r)
		return fail("read: %s (status %#x)", strerror(-r), c.result);
	if (c.mapping != expect)
		return fail("read mapped as %u, expected %u", c.mapping, expect);
	if (expect == IOVX_PT_MAP_BOUNCED && acq1 != acq0)
		return fail("a bounced read pinned %lld pages", acq1 - acq0);
	gather(s, area, flat, 1);
	if (memcmp(flat, check, s->len)) {
		long d = pat_diff(flat, 0, s->len, seed);
		return fail("passthrough read differs from the O_DIRECT write at byte %ld", d);
	}
	/* Nothing around the pieces was written. */
	if (s->off && byte_diff(area, s->off, 0x5a) >= 0)
		return fail("the read wrote before the buffer");
	if (s->nvec && s->gap && byte_diff(area + s->off + s->len / s->nvec, s->gap, 0x5a) >= 0)
		return fail("the read wrote into the gap between pieces");
	free(flat);
	free(check);
	munmap(area, span);
	return 0;
}

/* A bad input: its errno (and status, if it reaches the device) must be the same for all. */
struct bad {
	const char *name;
	int opcode;
	int want;		/* -errno */
	int status;		/* expected result, or -1 if not checked */
};

static char *ro_page, *none_page, *rw;

static int bad_call(const char *name, unsigned flags, struct iovx_pt_cmd *c)
{
	static struct iovec many[UIO_MAXIOV + 1];

	if (!strcmp(name, "bad_address_read"))
		return pt(IOVX_PT_READ, flags, base_sector, none_page, PAGE, c);
	if (!strcmp(name, "bad_address_write"))
		return pt(IOVX_PT_WRITE, flags, base_sector, none_page, PAGE, c);
	if (!strcmp(name, "bad_address_misaligned_write"))
		return pt(IOVX_PT_WRITE, flags, base_sector, none_page + 8, 512, c);
	if (!strcmp(name, "readonly_buffer_read"))
		return pt(IOVX_PT_READ, flags, base_sector, ro_page, PAGE, c);
	if (!strcmp(name, "readonly_misaligned_read"))
		return pt(IOVX_PT_READ, flags, base_sector, ro_page + 8, 512, c);
	if (!strcmp(name, "too_many_segments")) {
		for (int i = 0; i <= UIO_MAXIOV; i++) {
			many[i].iov_base = rw + (i % 64) * 512;
			many[i].iov_len = 512;
		}
		return pt(IOVX_PT_READ, flags | IOVX_PT_F_VEC, base_sector, many, UIO_MAXIOV + 1, c);
	}
	if (!strcmp(name, "too_many_bytes"))
		return pt(IOVX_PT_READ, flags, base_sector, rw, 2 * MiB, c);
	if (!strcmp(name, "zero_length"))
		return pt(IOVX_PT_READ, flags, base_sector, rw, 0, c);
	if (!strcmp(name, "zero_length_vec"))
		return pt(IOVX_PT_WRITE, flags | IOVX_PT_F_VEC, base_sector, many, 0, c);
	if (!strcmp(name, "not_block_multiple"))
		return pt(IOVX_PT_READ, flags, base_sector, rw, 1000, c);
	if (!strcmp(name, "not_block_multiple_write"))
		return pt(IOVX_PT_WRITE, flags, base_sector, rw, 4096 + 100, c);
	if (!strcmp(name, "beyond_the_end"))
		return pt(IOVX_PT_READ, flags, (g.size >> 9) - 1, rw, 4096, c);
	if (!strcmp(name, "beyond_the_end_write"))
		return pt(IOVX_PT_WRITE, flags, g.size >> 9, rw, 4096, c);
	if (!strcmp(name, "unknown_opcode"))
		return pt(0x7f, flags, 0, rw, 4096, c);
	if (!strcmp(name, "unknown_flag"))
		return pt(IOVX_PT_IDENTIFY, flags | 0x100, 0, rw, 4096, c);
	return -ENOSYS;
}

static const struct bad bads[] = {
	{ "bad_address_read", IOVX_PT_READ, -EFAULT, -1 },
	{ "bad_address_write", IOVX_PT_WRITE, -EFAULT, -1 },
	{ "bad_address_misaligned_write", IOVX_PT_WRITE, -EFAULT, -1 },
	{ "readonly_buffer_read", IOVX_PT_READ, -EFAULT, -1 },
	{ "readonly_misaligned_read", IOVX_PT_READ, -EFAULT, IOVX_PT_SC_SUCCESS },
	{ "too_many_segments", IOVX_PT_READ, -EINVAL, -1 },
	{ "too_many_bytes", IOVX_PT_READ, -EINVAL, -1 },
	{ "zero_length", IOVX_PT_READ, -EINVAL, -1 },
	{ "zero_length_vec", IOVX_PT_WRITE, -EINVAL, -1 },
	{ "not_block_multiple", IOVX_PT_READ, -EINVAL, IOVX_PT_SC_INVALID_FIELD },
	{ "not_block_multiple_write", IOVX_PT_WRITE, -EINVAL, -1 },
	{ "beyond_the_end", IOVX_PT_READ, -EINVAL, IOVX_PT_SC_LBA_RANGE },
	{ "beyond_the_end_write", IOVX_PT_WRITE, -EINVAL, IOVX_PT_SC_LBA_RANGE },
	{ "unknown_opcode", 0x7f, -EOPNOTSUPP, IOVX_PT_SC_INVALID_OPCODE },
	{ "unknown_flag", IOVX_PT_IDENTIFY, -EINVAL, -1 },
};

static int bad_case(const struct bad *b)
{
	int got[3];
	unsigned status[3];

	for (int m = 0; m < 3; m++) {
		struct iovx_pt_cmd c = { 0 };

		got[m] = bad_call(b->name, maps[m].flags, &c);
		status[m] = c.result;
		if (got[m] != b->want)
			return fail("%s mapping: %s, expected %s", maps[m].name,
				    got[m] ? strerror(-got[m]) : "success", strerror(-b->want));
		if (b->status >= 0 && c.result != (unsigned)b->status)
			return fail("%s mapping: status %#x, expected %#x", maps[m].name, c.result,
				    b->status);
	}
	if (b->status >= 0 && (status[0] != status[2] || status[1] != status[2]))
		return fail("statuses differ: %#x %#x %#x", status[0], status[1], status[2]);
	return 0;
}

static int t_readonly_open(void)
{
	int ro = open(bdev, O_RDONLY);
	struct iovx_pt_cmd c = { .opcode = IOVX_PT_WRITE, .sector = base_sector,
				 .addr = (uintptr_t)rw, .len = 4096 };

	if (ro < 0)
		return fail("open: %s", strerror(errno));
	if (ioctl(ro, IOVX_IOC_PT, &c) == 0 || errno != EBADF)
		return fail("a write on a read-only open: %s, expected EBADF",
			    strerror(errno));
	c.opcode = IOVX_PT_READ;
	if (ioctl(ro, IOVX_IOC_PT, &c))
		return fail("a read on a read-only open: %s", strerror(errno));
	close(ro);
	return 0;
}

int main(int argc, char **argv)
{
	char name[128];

	tap_begin("passthrough");
	bdev = argc > 1 ? argv[1] : "/dev/iovx0";
	if (get_geom(bdev, &g))
		return 1;
	fd = open(bdev, O_RDWR);
	dfd = open_direct(bdev, O_RDWR);
	if (fd < 0 || dfd < 0)
		return 1;
	ro_page = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	none_page = mmap(NULL, 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rw = map_anon(2 * MiB + PAGE, MAP_PRIVATE);

	run("identify", t_identify);
	for (unsigned s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		for (int m = 0; m < 3; m++) {
			snprintf(name, sizeof(name), "%s_%s", shapes[s].name, maps[m].name);
			t_why[0] = '\0';
			report(name, shape_case(&shapes[s], m));
		}
	}
	for (unsigned b = 0; b < sizeof(bads) / sizeof(bads[0]); b++) {
		snprintf(name, sizeof(name), "errno_%s", bads[b].name);
		t_why[0] = '\0';
		report(name, bad_case(&bads[b]));
	}
	run("readonly_open", t_readonly_open);
	run("vmstat_pins_balanced", t_vmstat_pins_balanced);
	run("debugfs_counters_balanced", t_debugfs_counters_balanced);
	return tap_end();
}
