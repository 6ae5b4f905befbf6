/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* export.h: HARK_API, the mark of a function libhark exports.
 *
 * libhark and its layer libraries are compiled with -fvisibility=hidden, so a function
 * is visible to plugins and programs only when its declaration in core/include/hark/
 * carries HARK_API; everything else in the core stays private to it (GStreamer's
 * GST_API in gstconfig.h is the model). The core's own build defines HARK_COMPILATION;
 * for everyone else the mark is a plain extern. scripts/check-exports.py fails when
 * libhark exports a symbol no public header declares. */
#pragma once

#if defined(HARK_COMPILATION) && defined(__GNUC__)
#define HARK_API __attribute__((visibility("default"))) extern
#else
#define HARK_API extern
#endif
