/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The passthrough ioctl of the iovx RAM disks (/dev/iovxN).
 *
 * IOVX_IOC_PT carries one command to the disk as a passthrough request (REQ_OP_DRV_IN for
 * IOVX_PT_READ and IOVX_PT_IDENTIFY, REQ_OP_DRV_OUT for IOVX_PT_WRITE) with the user memory
 * described by addr and len mapped into it, and waits for it. See
 * Documentation/passthrough.rst.
 */
#ifndef _UAPI_LINUX_IOVX_H
#define _UAPI_LINUX_IOVX_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* Opcodes. */
#define IOVX_PT_READ		0x01	/* len bytes from sector into the buffer */
#define IOVX_PT_WRITE		0x02	/* len bytes of the buffer to sector */
#define IOVX_PT_IDENTIFY	0x06	/* a struct iovx_pt_identify into the buffer */

/* Flags. */
#define IOVX_PT_F_VEC		(1U << 0)	/* addr is an array of len struct iovec */
#define IOVX_PT_F_KERNEL_MAP	(1U << 1)	/* map with the kernel's blk_rq_map_user_iov() */
#define IOVX_PT_F_BOUNCE	(1U << 2)	/* always bounce (the Rust mapping) */
#define IOVX_PT_F_ALL		(IOVX_PT_F_VEC | IOVX_PT_F_KERNEL_MAP | IOVX_PT_F_BOUNCE)

/* The status in result when the command failed on the device. */
#define IOVX_PT_SC_SUCCESS		0x00
#define IOVX_PT_SC_INVALID_OPCODE	0x01	/* errno EOPNOTSUPP */
#define IOVX_PT_SC_INVALID_FIELD	0x02	/* errno EINVAL: length, direction */
#define IOVX_PT_SC_LBA_RANGE		0x80	/* errno EINVAL: beyond the end */

/* How the data was mapped, in mapping. */
#define IOVX_PT_MAP_NONE	0
#define IOVX_PT_MAP_PINNED	1
#define IOVX_PT_MAP_LISTED	2
#define IOVX_PT_MAP_BOUNCED	3
#define IOVX_PT_MAP_KERNEL	4

struct iovx_pt_cmd {
	__u32 opcode;
	__u32 flags;
	__u64 sector;		/* in 512-byte sectors */
	__u64 addr;		/* buffer, or array of struct iovec with IOVX_PT_F_VEC */
	__u32 len;		/* bytes, or iovec count with IOVX_PT_F_VEC */
	__u32 result;		/* out: status (IOVX_PT_SC_*) or, for IDENTIFY, bytes */
	__u32 mapping;		/* out: IOVX_PT_MAP_* */
	__u32 segments;		/* out: bio segments mapped (0 with IOVX_PT_F_KERNEL_MAP) */
};

/* The page IOVX_PT_IDENTIFY returns (truncated to the buffer's length). */
struct iovx_pt_identify {
	__u8 magic[8];		/* "IOVXDISK" */
	__u64 capacity_sectors;
	__u32 logical_block_size;
	__u32 max_hw_sectors;
	__u32 max_segments;
	__u32 dma_alignment;	/* mask */
	__u64 virt_boundary;	/* mask, 0 if none */
};

#define IOVX_IOC_PT	_IOWR('X', 0x40, struct iovx_pt_cmd)

/*
 * The same command through io_uring, on /dev/iovx_ngN (one per disk): IORING_OP_URING_CMD with
 * cmd_op IOVX_URING_CMD_PT, a ring made with IORING_SETUP_SQE128 and the struct iovx_pt_cmd in
 * the first 40 bytes of the entry's command area. The command runs without waiting; its
 * completion's res is the command's result (the status, or the bytes of IOVX_PT_IDENTIFY) or a
 * negative errno. With IORING_SETUP_CQE32, big_cqe[0] holds what the ioctl writes back: the
 * command's result (the status, also on an error) in bits 0-31, the mapping (IOVX_PT_MAP_*) in
 * bits 32-39 and the segments in bits 40-63; the structure in the entry is not written.
 */
#define IOVX_URING_CMD_PT	_IOWR('X', 0x41, struct iovx_pt_cmd)

/*
 * Direct-I/O devices on block devices, attached and detached through /dev/iovx_dioctl.
 *
 * The argument points to a buffer of IOVX_DIO_PATH_MAX bytes holding a NUL-terminated path.
 * IOVX_DIO_ATTACH opens the block device at the path exclusively for reading and writing and
 * makes /dev/iovx_dio_<last component of the path> (EBUSY if it is mounted or held, EEXIST if
 * that name is taken, EINVAL for a name other than letters, digits, '.', '_', '-').
 * IOVX_DIO_DETACH removes the device of that name and releases the block device (ENOENT if
 * there is none, EBUSY while a file of it is open, which includes its I/O in flight).
 */
#define IOVX_DIO_PATH_MAX	256
#define IOVX_DIO_ATTACH	_IOW('X', 0x50, char[IOVX_DIO_PATH_MAX])
#define IOVX_DIO_DETACH	_IOW('X', 0x51, char[IOVX_DIO_PATH_MAX])

#endif /* _UAPI_LINUX_IOVX_H */
