/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* opus-pack.h: packets longer than an Opus encoder's longest frame (60 ms). The encoder
 * makes one Opus packet per frame; before the payloader, pairs of them are joined into
 * one Opus packet of two frames (RFC 6716 §3.2.5, libopus's repacketizer), so one RTP
 * packet carries 120 ms: half the headers of 60 ms packets. The far end needs no word of it: the
 * packet's TOC byte says how many frames it holds and how long they are. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/* Watch the payloader's input (once, at configure time). */
void hark_opus_pack_attach(GstElement *payloader);

/* Opus packets per RTP packet from now on: 1, or 2 (a held frame waits for its pair). */
void hark_opus_pack_set_frames(GstElement *payloader, int frames);

G_END_DECLS
