/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-opus-decoder.c: libFuzzer target for the Opus plugin's decoder element
 * (codecs/opus/opus-decoder.c), which gets every Opus payload a peer sends. The input is
 * a run of records, each a length byte and that many bytes of packet; a length of 0 is a
 * lost packet (the gap the jitter buffer announces). Fed through a GstHarness as a call
 * feeds it: no crash, every packet's audio out at once (20 ms or what the packet says,
 * concealed when libopus refuses it), and a gap's audio out by the next packet at the
 * latest. */
#include <gst/check/gstharness.h>
#include <stdlib.h>

#include "fuzz-common.h"
#include "opus-decoder.h"

#define FRAME_NS (20 * GST_MSECOND)

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  gst_init(argc, argv);
  if (!hark_opus_decoder_register())
    abort();
  return 0;
}

/* The buffers waiting at the harness's sink, pulled and dropped. */
static guint
drain_output(GstHarness *h)
{
  guint n = 0;
  GstBuffer *b;
  while ((b = gst_harness_try_pull(h)) != NULL) {
    gst_buffer_unref(b);
    n++;
  }
  return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > 8192)
    return 0;
  GstHarness *h = gst_harness_new(HARK_OPUS_DECODER_NAME);
  gst_harness_set_src_caps_str(h, "audio/x-opus, channel-mapping-family=(int)0, channels=(int)1, "
                                  "rate=(int)48000");
  gst_harness_set_sink_caps_str(h, "audio/x-raw, format=(string)S16LE, layout=(string)interleaved, "
                                   "rate=(int)48000, channels=(int)1");
  guint64 frame = 0;
  gboolean gap_pending = FALSE;
  for (size_t at = 0; at < size; frame++) {
    size_t length = data[at++];
    if (length > size - at)
      length = size - at;
    GstClockTime pts = frame * FRAME_NS;
    if (length == 0) {
      gst_harness_push_event(h, gst_event_new_gap(pts, FRAME_NS));
      if (gap_pending) /* the one before had no packet after it: concealed now */
        drain_output(h);
      gap_pending = TRUE;
      continue;
    }
    GstBuffer *b = gst_buffer_new_memdup(data + at, length);
    at += length;
    GST_BUFFER_PTS(b) = pts;
    GST_BUFFER_DURATION(b) = FRAME_NS;
    if (gst_harness_push(h, b) != GST_FLOW_OK)
      abort();
    /* The packet's own audio, and a held gap's before it. */
    if (drain_output(h) < (gap_pending ? 2u : 1u))
      abort();
    gap_pending = FALSE;
  }
  gst_harness_teardown(h);
  fuzz_say("decoded", NULL);
  return 0;
}
