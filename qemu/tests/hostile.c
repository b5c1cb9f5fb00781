// SPDX-License-Identifier: GPL-2.0
/*
 * hostile DEV BDEV: callers that pull the memory out from under a direct I/O in flight.
 * Run with the module's completion delayed (t_hostile.sh reloads it with delay_us), so that
 * each I/O is still in flight when the buffer is unmapped, made inaccessible, or its owner is
 * killed. Each case: the call ends (its result is reported, not judged: the pages are pinned,
 * so the I/O completes into or from them), no pin is left behind, and afterwards a checked
 * write/read round trip through DEV still passes.
 *
 * Then sizes from user space that no page array can hold, given to the gup_test-compatible
 * device (GUP, default /dev/iovx_gup): each ioctl fails with ENOMEM, as mm/gup_test.c's does,
 * and, unlike there, the kernel log gets no WARNING.
 */
#include "common.h"

#include <pthread.h>
#include <signal.h>
#include <sys/klog.h>
#include <sys/wait.h>

#define IO_LEN (256 * KiB)

static int dev, bdev;
static const char *dev_path;

struct io {
	int write;
	void *buf;
	ssize_t ret;
	int err;
};

static void *do_io(void *arg)
{
	struct io *io = arg;

	io->ret = io->write ? pwrite(dev, io->buf, IO_LEN, 0) : pread(dev, io->buf, IO_LEN, 0);
	io->err = errno;
	return NULL;
}

/* A write then read of a fresh pattern through DEV, compared byte for byte. */
static int round_trip(void)
{
	static uint32_t seed = 4242;
	void *w = map_anon(IO_LEN, MAP_PRIVATE), *r = map_anon(IO_LEN, MAP_PRIVATE);
	long bad;

	if (!w || !r)
		return fail("mmap failed");
	seed++;
	pat_fill(w, 2 * MiB, IO_LEN, seed);
	if (pwrite(dev, w, IO_LEN, 2 * MiB) != (ssize_t)IO_LEN)
		return fail("round trip write: %s", strerror(errno));
	if (pread(dev, r, IO_LEN, 2 * MiB) != (ssize_t)IO_LEN)
		return fail("round trip read: %s", strerror(errno));
	bad = pat_diff(r, 2 * MiB, IO_LEN, seed);
	munmap(w, IO_LEN);
	munmap(r, IO_LEN);
	if (bad >= 0)
		return fail("round trip: byte %ld differs", bad);
	return 0;
}

static int after(void)
{
	if (check_vmstat_pins_quiet(1))
		return -1;
	if (check_debugfs_counters() < 0)
		return -1;
	return round_trip();
}

/* A thread's I/O is in flight when the main thread changes the buffer's mapping. */
static int under_thread(int write, int unmap)
{
	struct io io = { .write = write };
	pthread_t th;

	io.buf = map_anon(IO_LEN, MAP_PRIVATE);
	if (!io.buf)
		return fail("mmap failed");
	memset(io.buf, 0x5a, IO_LEN);
	if (pthread_create(&th, NULL, do_io, &io))
		return fail("pthread_create failed");
	sleep_ms(40);
	if (unmap ? munmap(io.buf, IO_LEN) : mprotect(io.buf, IO_LEN, PROT_NONE))
		return fail("%s failed: %s", unmap ? "munmap" : "mprotect", strerror(errno));
	pthread_join(th, NULL);
	diag("%s during a %s in flight: %zd (%s)", unmap ? "munmap" : "mprotect(PROT_NONE)",
	     write ? "write" : "read", io.ret, io.ret < 0 ? strerror(io.err) : "bytes");
	if (io.ret != (ssize_t)IO_LEN && !(io.ret < 0 && io.err == EFAULT))
		return fail("result %zd (%s)", io.ret, strerror(io.err));
	if (!unmap)
		munmap(io.buf, IO_LEN);
	return after();
}

static int t_munmap_read(void) { return under_thread(0, 1); }
static int t_munmap_write(void) { return under_thread(1, 1); }
static int t_mprotect_read(void) { return under_thread(0, 0); }
static int t_mprotect_write(void) { return under_thread(1, 0); }

/* The ioctl ABI of mm/gup_test.h (6.12). */
#define GUP_TEST_MAX_PAGES_TO_DUMP 8
struct gup_test {
	__u64 get_delta_usec;
	__u64 put_delta_usec;
	__u64 addr;
	__u64 size;
	__u32 nr_pages_per_call;
	__u32 gup_flags;
	__u32 test_flags;
	__u32 which_pages[GUP_TEST_MAX_PAGES_TO_DUMP];
};
struct pin_longterm_test {
	__u64 addr;
	__u64 size;
	__u32 flags;
};
#define GUP_FAST_BENCHMARK _IOWR('g', 1, struct gup_test)
#define PIN_FAST_BENCHMARK _IOWR('g', 2, struct gup_test)
#define PIN_BASIC_TEST _IOWR('g', 5, struct gup_test)
#define PIN_LONGTERM_TEST_START _IOW('g', 7, struct pin_longterm_test)
#define PIN_LONGTERM_TEST_STOP _IO('g', 8)
#define FOLL_WRITE 0x01

/* How many times the kernel log holds "WARNING:", or -1. */
static long kernel_warnings(void)
{
	int len = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf, *p;
	long n = 0;

	if (len <= 0)
		return -1;
	buf = malloc(len + 1);
	if (!buf)
		return -1;
	len = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, len);
	if (len < 0) {
		free(buf);
		return -1;
	}
	buf[len] = 0;
	for (p = buf; (p = strstr(p, "WARNING:")); p++)
		n++;
	free(buf);
	return n;
}

/*
 * Sizes no page array can hold, as a hostile caller would give them: every ioctl is ENOMEM at
 * once (no pages taken, nothing allocated), no WARNING reaches the log, and a small request
 * still works afterwards.
 */
static int t_gup_huge_sizes(void)
{
	const char *path = getenv("GUP") ? getenv("GUP") : "/dev/iovx_gup";
	uint64_t page = sysconf(_SC_PAGESIZE);
	uint64_t ram_pages = sysconf(_SC_PHYS_PAGES);
	struct {
		const char *what;
		unsigned long cmd;
		uint64_t size;
		uint32_t flags;
	} cases[] = {
		{ "pin, 2^62 bytes", PIN_FAST_BENCHMARK, 1ULL << 62, 0 },
		{ "gup, all pages of the address width", GUP_FAST_BENCHMARK, ~0ULL & ~(page - 1), 0 },
		{ "pin, write, RAM + 1 page", PIN_BASIC_TEST, (ram_pages + 1) * page, FOLL_WRITE },
		{ "pin, 2^31 pages", PIN_FAST_BENCHMARK, (1ULL << 31) * page, FOLL_WRITE },
	};
	long warnings = kernel_warnings();
	struct pin_longterm_test lt = { 0 };
	struct gup_test g;
	void *buf = map_anon(4 * page, MAP_PRIVATE);
	int fd = open(path, O_RDWR);
	unsigned int i;

	if (fd < 0)
		return fail("open %s: %s", path, strerror(errno));
	if (!buf)
		return fail("mmap failed");
	memset(buf, 1, 4 * page);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&g, 0, sizeof(g));
		g.addr = (uintptr_t)buf;
		g.size = cases[i].size;
		g.nr_pages_per_call = 1;
		g.gup_flags = cases[i].flags;
		errno = 0;
		if (ioctl(fd, cases[i].cmd, &g) != -1 || errno != ENOMEM)
			return fail("%s: %s, not ENOMEM", cases[i].what, strerror(errno));
		diag("%s: ENOMEM", cases[i].what);
	}
	lt.addr = (uintptr_t)buf;
	lt.size = 1ULL << 50;
	lt.flags = 1 /* PIN_LONGTERM_TEST_FLAG_USE_WRITE */;
	errno = 0;
	if (ioctl(fd, PIN_LONGTERM_TEST_START, &lt) != -1 || errno != ENOMEM)
		return fail("long-term pin of 2^50 bytes: %s, not ENOMEM", strerror(errno));
	diag("long-term pin of 2^50 bytes: ENOMEM");
	/* The device still works: four pages, pinned and released. */
	memset(&g, 0, sizeof(g));
	g.addr = (uintptr_t)buf;
	g.size = 4 * page;
	g.nr_pages_per_call = 2;
	if (ioctl(fd, PIN_FAST_BENCHMARK, &g))
		return fail("pin of 4 pages: %s", strerror(errno));
	if (g.size != 4 * page)
		return fail("pin of 4 pages covered %llu bytes", (unsigned long long)g.size);
	close(fd);
	munmap(buf, 4 * page);
	if (warnings >= 0 && kernel_warnings() != warnings)
		return fail("the kernel log has a new WARNING");
	return after();
}

/* A process killed (SIGKILL) while its direct read is in flight. */
static int t_sigkill_during_io(void)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return fail("fork failed");
	if (pid == 0) {
		void *buf = map_anon(4 * MiB, MAP_PRIVATE);
		int fd = open(dev_path, O_RDWR | O_DIRECT);

		if (!buf || fd < 0)
			_exit(2);
		for (;;)
			if (pread(fd, buf, 4 * MiB, 0) < 0)
				_exit(3);
	}
	sleep_ms(150);
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) != pid)
		return fail("waitpid failed");
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		return fail("child status %#x, not killed", status);
	return after();
}

int main(int argc, char **argv)
{
	tap_begin("hostile");
	alarm(300);
	if (argc != 3) {
		fprintf(stderr, "usage: %s DEV BDEV\n", argv[0]);
		return 2;
	}
	dev_path = argv[1];
	dev = open_direct(argv[1], O_RDWR);
	bdev = open_direct(argv[2], O_RDWR);
	if (dev < 0 || bdev < 0) {
		printf("not ok 1 hostile_setup # cannot open %s or %s\n", argv[1], argv[2]);
		return 1;
	}
	run("munmap_during_read", t_munmap_read);
	run("munmap_during_write", t_munmap_write);
	run("mprotect_during_read", t_mprotect_read);
	run("mprotect_during_write", t_mprotect_write);
	run("sigkill_during_io", t_sigkill_during_io);
	run("gup_huge_sizes_enomem", t_gup_huge_sizes);
	return tap_end();
}
