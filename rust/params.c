// SPDX-License-Identifier: GPL-2.0
/*
 * Module parameters of iov_extract.ko. Linux 6.12's Rust module! macro has no
 * parameters, so they are declared here and read from Rust through the
 * getters below (prototypes in abstractions/shim.h).
 */
#include <linux/module.h>
#include <linux/moduleparam.h>

#include "abstractions/shim.h"

static unsigned int disks = 1;
module_param(disks, uint, 0444);
MODULE_PARM_DESC(disks, "Number of iovx RAM disks (default 1)");

static unsigned int size_mb = 64;
module_param(size_mb, uint, 0444);
MODULE_PARM_DESC(size_mb, "Size of each disk in MiB (default 64)");

static unsigned int lbs = 512;
module_param(lbs, uint, 0444);
MODULE_PARM_DESC(lbs, "Logical block size: 512 or 4096 (default 512)");

static unsigned int hw_queues = 2;
module_param(hw_queues, uint, 0444);
MODULE_PARM_DESC(hw_queues, "Hardware queues per disk (default 2)");

static unsigned int queue_depth = 128;
module_param(queue_depth, uint, 0444);
MODULE_PARM_DESC(queue_depth, "Requests per hardware queue (default 128)");

static unsigned int delay_us;
module_param(delay_us, uint, 0444);
MODULE_PARM_DESC(delay_us,
		 "Complete each request this many microseconds after it is queued, transferring its data then (default 0: at once)");

/* Extraction mode: begin */
bool iovx_extract_legacy;
module_param_named(extract_legacy, iovx_extract_legacy, bool, 0644);
MODULE_PARM_DESC(extract_legacy,
		 "Take user memory of /dev/iovx_dioN I/O with page references (FOLL_GET, as iov_iter_get_pages2() does) instead of pins: the behaviour before iov_iter_extract_pages(), which fork() does not protect (default N). Read at the start of each I/O");
/* Extraction mode: end */
/* Queue limits (forced splits, 0 keeps the driver's default) and the delayed disks. */
static unsigned int max_sectors;
module_param(max_sectors, uint, 0444);
MODULE_PARM_DESC(max_sectors,
		 "Largest request in 512-byte sectors, 8 to 2048, a multiple of the block size (default 0: 2048)");

static unsigned int max_segments;
module_param(max_segments, uint, 0444);
MODULE_PARM_DESC(max_segments,
		 "Most data segments per request, 1 to 2048 (default 0: 2048)");

static unsigned int max_segment_size;
module_param(max_segment_size, uint, 0444);
MODULE_PARM_DESC(max_segment_size,
		 "Largest data segment in bytes, at least the page size (default 0: the block layer's 64 KiB)");

/* The disks that have the completion delay. */
static unsigned int delay_mask = ~0U;
module_param(delay_mask, uint, 0444);
MODULE_PARM_DESC(delay_mask,
		 "Bit N set: disk N has the completion delay of delay_us (default: every disk)");
/* End of the queue limits and the delayed disks. */

static unsigned int bio_mask;
module_param(bio_mask, uint, 0444);
MODULE_PARM_DESC(bio_mask,
		 "Bit N set: disk N is bio-based, served from submit_bio as brd is, rather than blk-mq; it has no passthrough and no completion delay (default 0: none)");

unsigned int iovx_param_disks(void) { return disks; }
unsigned int iovx_param_size_mb(void) { return size_mb; }
unsigned int iovx_param_lbs(void) { return lbs; }
unsigned int iovx_param_hw_queues(void) { return hw_queues; }
unsigned int iovx_param_queue_depth(void) { return queue_depth; }
unsigned int iovx_param_delay_us(void) { return delay_us; }
/* Extraction mode: begin */
/* Extraction mode: end */
/* Queue limits (forced splits) and the delayed disks. */
unsigned int iovx_param_max_sectors(void) { return max_sectors; }
unsigned int iovx_param_max_segments(void) { return max_segments; }
unsigned int iovx_param_max_segment_size(void) { return max_segment_size; }
unsigned int iovx_param_delay_mask(void) { return delay_mask; }
unsigned int iovx_param_bio_mask(void) { return bio_mask; }
/* End of the queue limits and the delayed disks. */
/* Attached block devices. */
static char *dio_attach;
module_param(dio_attach, charp, 0);
MODULE_PARM_DESC(dio_attach,
		 "Comma-separated block device paths to attach at load, each as /dev/iovx_dio_<basename>, held exclusively (default: none)");
const char *iovx_param_dio_attach(void) { return dio_attach; }
/* End of the attached block devices. */
