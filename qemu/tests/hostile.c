// SPDX-License-Identifier: GPL-2.0
/*
 * hostile DEV BDEV: callers that pull the memory out from under a direct I/O in flight.
 * Run with the module's completion delayed (t_hostile.sh reloads it with delay_us), so that
 * each I/O is still in flight when the buffer is unmapped, made inaccessible, or its owner is
 * killed. Each case: the call ends (its result is reported, not judged: the pages are pinned,
 * so the I/O completes into or from them), no pin is left behind, and afterwards a checked
 * write/read round trip through DEV still passes.
 */
#include "common.h"

#include <pthread.h>
#include <signal.h>
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
	return tap_end();
}
