// SPDX-License-Identifier: GPL-2.0
/*
 * devinfo BDEV [DEV]
 *
 * Prints the geometry of block device BDEV as shell assignments,
 *   size=BYTES lbs=LOGICAL_BLOCK_SIZE dma=MEMORY_ALIGNMENT odirect=0|1
 * where odirect says whether DEV (default BDEV) can be opened with O_DIRECT.
 */
#include "common.h"

int main(int argc, char **argv)
{
	struct geom g;
	const char *dev;
	int fd, odirect = 0;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s BDEV [DEV]\n", argv[0]);
		return 2;
	}
	if (get_geom(argv[1], &g))
		return 1;
	dev = argc == 3 ? argv[2] : argv[1];
	fd = open(dev, O_RDWR | O_DIRECT);
	if (fd >= 0) {
		odirect = 1;
		close(fd);
	}
	printf("size=%" PRIu64 " lbs=%u dma=%u odirect=%d\n", g.size, g.lbs, g.dma, odirect);
	return 0;
}
