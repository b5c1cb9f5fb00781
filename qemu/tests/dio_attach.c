// SPDX-License-Identifier: GPL-2.0
/*
 * Attaching block devices to direct-I/O devices (/dev/iovx_dioctl, rust/uapi/iovx.h).
 *
 *   dio_attach attach PATH          IOVX_DIO_ATTACH; prints "errno N NAME", exits 0 only on success
 *   dio_attach detach PATH          IOVX_DIO_DETACH, as attach
 *   dio_attach check BDEV DEV       the sub-tests below on an attached BDEV and its DEV
 *   dio_attach inflight BDEV DEV    the in-flight sub-test of "check" alone
 *   dio_attach gone BDEV DEV        BDEV's disk is removed (its PCI device's "remove") while
 *                                   DEV is open: I/O on DEV then fails with ENODEV, the detach
 *                                   that follows works
 *
 * "check" runs: detach refused (EBUSY) while DEV is open; detach refused while asynchronous
 * writes (RWF_DSYNC) are in flight on DEV whose file descriptor is already closed (aio holds
 * the file), and allowed once they are reaped; a second attach of BDEV refused (EBUSY, the exclusive claim,
 * or EEXIST, the name); large transfers (several bios, more than the queue's largest request
 * and most segments, so the block layer splits them) written through DEV and read back through
 * BDEV with O_DIRECT and the other way round, from page-aligned memory and from memory aligned
 * only to the queue's DMA alignment; memory misaligned by less than the DMA alignment refused
 * with EINVAL; and pins balanced after each; attach and detach refused (EPERM) without
 * CAP_SYS_ADMIN.
 */
#include "common.h"
#include "../../rust/uapi/iovx.h"
#include <libaio.h>
#include <sys/wait.h>

static const char *ctl_path = "/dev/iovx_dioctl";
static const char *bdev_path, *dev_path;
static struct geom g;

/* The ioctl CMD with PATH; returns 0 or the errno. */
static int ctl(unsigned long cmd, const char *path)
{
	char buf[IOVX_DIO_PATH_MAX] = { 0 };
	int fd, rc = 0;

	if (strlen(path) >= sizeof(buf))
		return ENAMETOOLONG;
	strcpy(buf, path);
	fd = open(ctl_path, O_RDWR);
	if (fd < 0)
		return errno;
	if (ioctl(fd, cmd, buf) < 0)
		rc = errno;
	close(fd);
	return rc;
}

/*
 * A detach expected to succeed: EBUSY is retried for up to 2 s, since the last reference to a
 * file whose asynchronous I/O completed in interrupt context is dropped by a worker, a little
 * after the completion was reaped.
 */
static int detach_settled(const char *path)
{
	int rc;

	for (int i = 0; i < 100; i++) {
		rc = ctl(IOVX_DIO_DETACH, path);
		if (rc != EBUSY)
			break;
		sleep_ms(20);
	}
	return rc;
}

static int cli(unsigned long cmd, const char *path)
{
	int rc = cmd == IOVX_DIO_DETACH ? detach_settled(path) : ctl(cmd, path);

	printf("errno %d %s\n", rc, rc ? strerror(rc) : "ok");
	return rc ? 1 : 0;
}

/* ---------------------------------------------------------------- busy */

static int t_detach_refused_open(void)
{
	int fd = open(dev_path, O_RDWR), rc;

	if (fd < 0)
		return fail("open %s: %s", dev_path, strerror(errno));
	rc = ctl(IOVX_DIO_DETACH, bdev_path);
	close(fd);
	if (rc != EBUSY) {
		if (rc == 0)
			ctl(IOVX_DIO_ATTACH, bdev_path);
		return fail("detach with %s open: errno %d, want EBUSY", dev_path, rc);
	}
	return 0;
}

#define INFLIGHT 32
#define INFLIGHT_LEN (1 * MiB)

static int t_detach_refused_in_flight(void)
{
	struct iocb cbs[INFLIGHT], *p[INFLIGHT];
	struct io_event ev[INFLIGHT];
	io_context_t aio = 0;
	int fd, rc, got = 0, n, ret = 0, detach;
	char *buf;

	buf = map_anon(INFLIGHT * INFLIGHT_LEN, MAP_PRIVATE);
	if (!buf)
		return fail("mmap");
	fd = open_direct(dev_path, O_RDWR);
	if (fd < 0) {
		munmap(buf, INFLIGHT * INFLIGHT_LEN);
		return fail("open %s: %s", dev_path, strerror(errno));
	}
	rc = io_setup(INFLIGHT, &aio);
	if (rc < 0) {
		close(fd);
		munmap(buf, INFLIGHT * INFLIGHT_LEN);
		return fail("io_setup: %s", strerror(-rc));
	}
	/* Writes with RWF_DSYNC (REQ_FUA: the host syncs its file for each) to 64 MiB on, so that
	 * they stay in flight for a while. */
	memset(buf, 0x5a, INFLIGHT * INFLIGHT_LEN);
	for (int i = 0; i < INFLIGHT; i++) {
		io_prep_pwrite(&cbs[i], fd, buf + i * INFLIGHT_LEN, INFLIGHT_LEN,
			       (64 * MiB + (uint64_t)i * INFLIGHT_LEN) % (g.size - INFLIGHT_LEN));
		cbs[i].aio_rw_flags = RWF_DSYNC;
		p[i] = &cbs[i];
	}
	rc = io_submit(aio, INFLIGHT, p);
	/* The writes hold the file; the descriptor goes now. */
	close(fd);
	if (rc != INFLIGHT) {
		ret = fail("io_submit: %d", rc);
		if (rc <= 0)
			goto out;
	}
	/* How many completed before the detach (not waiting): all of them on a device that
	 * completes I/O as it is submitted, and then nothing is in flight. */
	{
		struct timespec zero = { 0, 0 };

		n = io_getevents(aio, 0, rc, ev, &zero);
	}
	if (n > 0)
		got += n;
	detach = ctl(IOVX_DIO_DETACH, bdev_path);
	diag("detach with %d writes of %lu KiB submitted, %d of them reaped before it: errno %d", rc,
	     INFLIGHT_LEN / KiB, got, detach);
	if (got == rc) {
		if (detach == 0)
			ctl(IOVX_DIO_ATTACH, bdev_path);
		ret = skip("the writes completed as they were submitted: none in flight");
	} else if (detach == 0) {
		/* Either the rest completed between the poll and the detach (then they are all
		 * there to reap at once), or the detach let writes in flight go: a failure. */
		struct timespec zero = { 0, 0 };
		int late = io_getevents(aio, 0, rc - got, ev, &zero);

		ctl(IOVX_DIO_ATTACH, bdev_path);
		if (late == rc - got) {
			got = rc;
			ret = skip("the other %d writes completed before the detach", late);
		} else {
			ret = fail("detach with %d writes in flight succeeded, want EBUSY",
				   rc - got - (late > 0 ? late : 0));
		}
	} else if (detach != EBUSY) {
		ret = fail("detach with writes in flight: errno %d, want EBUSY", detach);
	}
	while (got < rc) {
		n = io_getevents(aio, 1, rc - got, ev, NULL);
		if (n <= 0) {
			ret = fail("io_getevents: %d", n);
			break;
		}
		for (int i = 0; i < n; i++)
			if ((long)ev[i].res != (long)INFLIGHT_LEN && !ret)
				ret = fail("a write returned %ld", (long)ev[i].res);
		got += n;
	}
out:
	io_destroy(aio);
	munmap(buf, INFLIGHT * INFLIGHT_LEN);
	if (ret < 0)
		return ret;
	/* All reaped: the file is closed and the device can be detached, then attached again. */
	rc = detach_settled(bdev_path);
	if (rc)
		return fail("detach after the writes were reaped: errno %d", rc);
	rc = ctl(IOVX_DIO_ATTACH, bdev_path);
	if (rc)
		return fail("attach again: errno %d", rc);
	return ret;
}

static int t_second_attach_refused(void)
{
	int rc = ctl(IOVX_DIO_ATTACH, bdev_path);

	if (rc != EBUSY && rc != EEXIST)
		return fail("second attach of %s: errno %d, want EEXIST or EBUSY", bdev_path, rc);
	return 0;
}

static int t_detach_unknown(void)
{
	int rc = ctl(IOVX_DIO_DETACH, "/dev/iovx_no_such_device");

	if (rc != ENOENT)
		return fail("detach of a device never attached: errno %d, want ENOENT", rc);
	return 0;
}

/*
 * Without CAP_SYS_ADMIN (a child that became an unprivileged user, with the control device
 * opened before), attach and detach are refused with EPERM, and the device stays attached.
 */
static int t_unprivileged_refused(void)
{
	char buf[IOVX_DIO_PATH_MAX] = { 0 };
	int fd, status, rc;
	pid_t pid;

	if (strlen(bdev_path) >= sizeof(buf))
		return fail("path too long");
	strcpy(buf, bdev_path);
	fd = open(ctl_path, O_RDWR);
	if (fd < 0)
		return fail("open %s: %s", ctl_path, strerror(errno));
	pid = fork();
	if (pid == 0) {
		int a, d;

		if (setgid(65534) || setuid(65534))
			_exit(100);
		a = ioctl(fd, IOVX_DIO_ATTACH, buf) < 0 ? errno : 0;
		d = ioctl(fd, IOVX_DIO_DETACH, buf) < 0 ? errno : 0;
		_exit(a == EPERM && d == EPERM ? 0 : 1 + (a != EPERM) + 2 * (d != EPERM));
	}
	close(fd);
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return fail("child");
	if (WEXITSTATUS(status))
		return fail("unprivileged attach/detach not refused with EPERM (child exit %d)",
			    WEXITSTATUS(status));
	rc = ctl(IOVX_DIO_ATTACH, bdev_path);
	if (rc != EBUSY && rc != EEXIST)
		return fail("attach after the refused detach: errno %d, want EEXIST or EBUSY", rc);
	return 0;
}

/* ---------------------------------------------------------------- large transfers */

/* LEN bytes at OFF written through WFD from memory at MISALIGN bytes into a page, read back
 * through RFD into a different buffer, and compared. */
static int xfer(int wfd, int rfd, const char *wname, const char *rname, uint64_t off, size_t len,
		size_t misalign, uint32_t seed)
{
	char *wraw = map_anon(len + PAGE, MAP_PRIVATE), *rraw = map_anon(len + PAGE, MAP_PRIVATE);
	char *w = wraw + misalign, *r = rraw + misalign;
	ssize_t n;
	long d;
	int ret = 0;

	if (!wraw || !rraw)
		return fail("mmap");
	pat_fill(w, off, len, seed);
	memset(r, 0xa5, len);
	n = pwrite(wfd, w, len, off);
	if (n != (ssize_t)len) {
		ret = fail("pwrite %zu at %" PRIu64 " on %s (memory +%zu): %zd %s", len, off, wname,
			   misalign, n, n < 0 ? strerror(errno) : "");
		goto out;
	}
	n = pread(rfd, r, len, off);
	if (n != (ssize_t)len) {
		ret = fail("pread %zu at %" PRIu64 " on %s: %zd %s", len, off, rname, n,
			   n < 0 ? strerror(errno) : "");
		goto out;
	}
	d = pat_diff(r, off, len, seed);
	if (d >= 0)
		ret = fail("%zu bytes written through %s at %" PRIu64
			   " (memory +%zu) read back through %s differ at byte %ld",
			   len, wname, off, misalign, rname, d);
out:
	munmap(wraw, len + PAGE);
	munmap(rraw, len + PAGE);
	if (!ret && check_vmstat_pins_quiet(1))
		ret = fail("pins not balanced after the transfer");
	return ret;
}

static int large(size_t misalign)
{
	/* 4 MiB and 3 MiB + 3 blocks: more than one bio (1 MiB each at most) and, on virtio, more
	 * than one request's segments; at an odd block offset. */
	size_t lens[] = { 4 * MiB, 3 * MiB + 3 * g.lbs };
	int dev = open_direct(dev_path, O_RDWR), bdev = open_direct(bdev_path, O_RDWR);
	int ret = 0;

	if (dev < 0 || bdev < 0) {
		ret = fail("open: %s", strerror(errno));
		goto out;
	}
	for (int i = 0; i < 2 && !ret; i++) {
		uint64_t off = 8 * MiB + (uint64_t)i * 16 * MiB + 7 * g.lbs;

		ret = xfer(dev, bdev, dev_path, bdev_path, off, lens[i], misalign, 11 + i);
		if (!ret)
			ret = xfer(bdev, dev, bdev_path, dev_path, off + lens[i], lens[i], misalign,
				   23 + i);
	}
out:
	if (dev >= 0)
		close(dev);
	if (bdev >= 0)
		close(bdev);
	return ret;
}

static int t_large_page_aligned(void)
{
	return large(0);
}

static int t_large_dma_aligned(void)
{
	/* Aligned to the DMA alignment only: every page-sized piece spans two pages. */
	if (g.dma >= PAGE)
		return skip("DMA alignment %u is a page or more", g.dma);
	return large(g.dma);
}

/* Memory misaligned by half the DMA alignment: EINVAL, as O_DIRECT on BDEV. */
static int t_misaligned_refused(void)
{
	size_t len = 64 * KiB, mis = g.dma / 2;
	char *raw = map_anon(len + PAGE, MAP_PRIVATE);
	int dev = open_direct(dev_path, O_RDWR), bdev = open_direct(bdev_path, O_RDWR);
	ssize_t a, b, c;
	int ea, eb, ec, ret = 0;

	if (!raw || dev < 0 || bdev < 0) {
		ret = fail("setup: %s", strerror(errno));
		goto out;
	}
	if (mis == 0) {
		ret = skip("DMA alignment %u", g.dma);
		goto out;
	}
	errno = 0;
	a = pread(dev, raw + mis, len, 0);
	ea = errno;
	errno = 0;
	b = pwrite(dev, raw + mis, len, 0);
	eb = errno;
	errno = 0;
	c = pread(bdev, raw + mis, len, 0);
	ec = errno;
	diag("memory +%zu (DMA alignment %u): read %zd/%d, write %zd/%d on %s; read %zd/%d on %s",
	     mis, g.dma, a, ea, b, eb, dev_path, c, ec, bdev_path);
	if (a != -1 || ea != EINVAL || b != -1 || eb != EINVAL)
		ret = fail("misaligned memory on %s: read %zd errno %d, write %zd errno %d; want EINVAL",
			   dev_path, a, ea, b, eb);
	else if (c != -1 || ec != EINVAL)
		ret = fail("O_DIRECT on %s took memory misaligned by %zu (errno %d): the DMA alignment "
			   "read from sysfs is wrong", bdev_path, mis, ec);
out:
	if (raw)
		munmap(raw, len + PAGE);
	if (dev >= 0)
		close(dev);
	if (bdev >= 0)
		close(bdev);
	if (!ret && check_vmstat_pins_quiet(1))
		ret = fail("pins not balanced");
	return ret;
}

/* ---------------------------------------------------------------- the disk removed */

/* The PCI device's "remove" file of BDEV's disk (/sys/block/NAME/device/../remove). */
static int remove_path(char *out, size_t n)
{
	const char *name = strrchr(bdev_path, '/');
	char link[512], real[PATH_MAX];

	name = name ? name + 1 : bdev_path;
	snprintf(link, sizeof(link), "/sys/block/%s/device/..", name);
	if (!realpath(link, real))
		return -1;
	snprintf(out, n, "%s/remove", real);
	return access(out, W_OK);
}

static int t_gone(void)
{
	char rm[PATH_MAX + 16], *buf = map_anon(PAGE, MAP_PRIVATE);
	int fd = open_direct(dev_path, O_RDWR), wfd, rc, ret = 0;
	ssize_t a, b;
	int ea, eb;

	if (fd < 0 || !buf)
		return fail("open %s: %s", dev_path, strerror(errno));
	if (remove_path(rm, sizeof(rm))) {
		ret = skip("no PCI remove file for %s", bdev_path);
		goto out;
	}
	if (pread(fd, buf, PAGE, 0) != PAGE) {
		ret = fail("read before the removal: %s", strerror(errno));
		goto out;
	}
	diag("removing %s", rm);
	wfd = open(rm, O_WRONLY);
	if (wfd < 0 || write(wfd, "1", 1) != 1) {
		ret = fail("%s: %s", rm, strerror(errno));
		if (wfd >= 0)
			close(wfd);
		goto out;
	}
	close(wfd);
	errno = 0;
	a = pread(fd, buf, PAGE, 0);
	ea = errno;
	errno = 0;
	b = pwrite(fd, buf, PAGE, PAGE);
	eb = errno;
	diag("after the removal: read %zd errno %d, write %zd errno %d", a, ea, b, eb);
	if (a != -1 || ea != ENODEV || b != -1 || eb != ENODEV)
		ret = fail("I/O on %s after its disk was removed: read %zd errno %d, write %zd errno %d,"
			   " want ENODEV", dev_path, a, ea, b, eb);
out:
	close(fd);
	munmap(buf, PAGE);
	rc = detach_settled(bdev_path);
	if (rc && !ret)
		ret = fail("detach after the removal: errno %d", rc);
	if (!ret && check_vmstat_pins_quiet(1))
		ret = fail("pins not balanced");
	return ret;
}

/*
 * read DEV: reads the first 16 KiB of DEV into a page-aligned buffer (direct I/O needs memory
 * aligned to the disk's DMA alignment, which a malloc()ed buffer, as dd's, need not be).
 */
static int read_head(const char *path)
{
	const size_t len = 16 * 1024;
	void *buf;
	ssize_t n;
	int fd;

	if (posix_memalign(&buf, getpagesize(), len)) {
		fprintf(stderr, "no memory\n");
		return 1;
	}
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "open %s: %s\n", path, strerror(errno));
		free(buf);
		return 1;
	}
	n = pread(fd, buf, len, 0);
	if (n != (ssize_t)len)
		fprintf(stderr, "read %s: %zd of %zu bytes: %s\n", path, n, len,
			n < 0 ? strerror(errno) : "short");
	close(fd);
	free(buf);
	return n == (ssize_t)len ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "read"))
		return read_head(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "attach"))
		return cli(IOVX_DIO_ATTACH, argv[2]);
	if (argc == 3 && !strcmp(argv[1], "detach"))
		return cli(IOVX_DIO_DETACH, argv[2]);
	if (argc != 4 || (strcmp(argv[1], "check") && strcmp(argv[1], "gone") &&
			  strcmp(argv[1], "inflight"))) {
		fprintf(stderr,
			"usage: %s attach|detach|read PATH | check|gone|inflight BDEV DEV\n",
			argv[0]);
		return 2;
	}
	bdev_path = argv[2];
	dev_path = argv[3];
	tap_begin("dio_attach");
	if (get_geom(bdev_path, &g)) {
		printf("not ok 1 dio_attach_setup # cannot get the geometry of %s\n", bdev_path);
		return 1;
	}
	diag("%s: %" PRIu64 " bytes, blocks of %u, DMA alignment %u", bdev_path, g.size, g.lbs,
	     g.dma);
	if (!strcmp(argv[1], "gone")) {
		run("gone", t_gone);
		return tap_end();
	}
	if (!strcmp(argv[1], "inflight")) {
		run("detach_refused_in_flight", t_detach_refused_in_flight);
		return tap_end();
	}
	run("detach_refused_open", t_detach_refused_open);
	run("detach_refused_in_flight", t_detach_refused_in_flight);
	run("second_attach_refused", t_second_attach_refused);
	run("detach_unknown", t_detach_unknown);
	run("unprivileged_refused", t_unprivileged_refused);
	run("large_page_aligned", t_large_page_aligned);
	run("large_dma_aligned", t_large_dma_aligned);
	run("misaligned_refused", t_misaligned_refused);
	return tap_end();
}
