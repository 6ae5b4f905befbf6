/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-test.h: `hark media-test` (core/media-test.c), part of the hark program. */
#pragma once

int hark_media_test_main(int argc, char **argv);
