// SPDX-License-Identifier: GPL-2.0
/* The same shim, built once more for iov_extract_kunit.ko, with the KUnit helpers. */
#define IOVX_KUNIT
#include "shim.c"
