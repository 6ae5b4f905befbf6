/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* opus-loss: what libopus alone makes of speech at given settings and random packet loss,
 * with no network, jitter buffer or sound card in the way. It encodes raw 48 kHz mono
 * S16LE speech, drops packets at random (a seeded generator, so two settings lose the same
 * packets), decodes the rest as a receiver would (concealment, or the next packet's
 * in-band FEC when it has it) and writes the result, same length and timing, for
 * bench/speech_quality.py to score. It is how the codec's response to random loss was
 * chosen (docs/benchmarks.md): the bench over shaped links measures calls, this measures
 * the codec's share of them.
 *
 *   opus-loss IN.raw OUT.raw [key=value ...]
 *     bitrate=20000 complexity=5 frame_ms=20 fec=0|1 loss_hint=PERCENT drop=PERCENT
 *     seed=1 bandwidth=wb|swb|fb vbr=cbr|cvbr|vbr dtx=0|1 decode_fec=0|1
 *
 * It prints one line: packets sent, lost, decoded from the next packet (its FEC if it had
 * any, libopus's concealment if not: 1.3 cannot tell which), the payload bytes/s, and the
 * encoder's CPU time as a share of one core while the speech plays (what the complexity
 * costs a sending end). */
#include <opus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RATE 48000
#define MAX_PACKET 1500

typedef struct {
  int bitrate, complexity, frame_ms, fec, loss_hint, seed, bandwidth, vbr, cvbr, dtx, decode_fec;
  double drop;
} Settings;

static int
bandwidth_of(const char *name)
{
  if (strcmp(name, "nb") == 0)
    return OPUS_BANDWIDTH_NARROWBAND;
  if (strcmp(name, "swb") == 0)
    return OPUS_BANDWIDTH_SUPERWIDEBAND;
  if (strcmp(name, "fb") == 0)
    return OPUS_BANDWIDTH_FULLBAND;
  return OPUS_BANDWIDTH_WIDEBAND;
}

static int
parse_setting(Settings *s, const char *arg)
{
  const char *eq = strchr(arg, '=');
  if (eq == NULL)
    return 0;
  size_t n = (size_t)(eq - arg);
  const char *v = eq + 1;
#define IS(key) (n == strlen(key) && strncmp(arg, key, n) == 0)
  if (IS("bitrate"))
    s->bitrate = atoi(v);
  else if (IS("complexity"))
    s->complexity = atoi(v);
  else if (IS("frame_ms"))
    s->frame_ms = atoi(v);
  else if (IS("fec"))
    s->fec = atoi(v);
  else if (IS("loss_hint"))
    s->loss_hint = atoi(v);
  else if (IS("drop"))
    s->drop = atof(v);
  else if (IS("seed"))
    s->seed = atoi(v);
  else if (IS("bandwidth"))
    s->bandwidth = bandwidth_of(v);
  else if (IS("vbr")) {
    s->vbr = strcmp(v, "cbr") != 0;
    s->cvbr = strcmp(v, "cvbr") == 0;
  } else if (IS("dtx"))
    s->dtx = atoi(v);
  else if (IS("decode_fec"))
    s->decode_fec = atoi(v);
  else
    return 0;
#undef IS
  return 1;
}

static short *
read_all(const char *path, size_t *samples)
{
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  fseek(f, 0, SEEK_END);
  long bytes = ftell(f);
  fseek(f, 0, SEEK_SET);
  short *pcm = calloc((size_t)bytes / 2 + 1, sizeof *pcm);
  *samples = fread(pcm, sizeof *pcm, (size_t)bytes / 2, f);
  fclose(f);
  return pcm;
}

static OpusEncoder *
encoder_new(const Settings *s)
{
  int err;
  OpusEncoder *enc = opus_encoder_create(RATE, 1, OPUS_APPLICATION_VOIP, &err);
  if (enc == NULL)
    return NULL;
  opus_encoder_ctl(enc, OPUS_SET_BITRATE(s->bitrate));
  opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(s->complexity));
  opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(s->fec));
  opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(s->loss_hint));
  opus_encoder_ctl(enc, OPUS_SET_MAX_BANDWIDTH(s->bandwidth));
  opus_encoder_ctl(enc, OPUS_SET_VBR(s->vbr));
  opus_encoder_ctl(enc, OPUS_SET_VBR_CONSTRAINT(s->cvbr));
  opus_encoder_ctl(enc, OPUS_SET_DTX(s->dtx));
  opus_encoder_ctl(enc, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
  return enc;
}

/* Decodes (or conceals, data NULL) one frame into at; a decoding error ends the run. */
static void
decode_frame(OpusDecoder *dec, const unsigned char *data, int length, short *at, int frame,
             int fec)
{
  int n = opus_decode(dec, data, length, at, frame, fec);
  if (n != frame) {
    fprintf(stderr, "opus-loss: decoding failed: %s\n", n < 0 ? opus_strerror(n) : "short frame");
    exit(1);
  }
}

int
main(int argc, char **argv)
{
  Settings s = {.bitrate = 20000, .complexity = 5, .frame_ms = 20, .seed = 1, .vbr = 1,
                .cvbr = 1, .bandwidth = OPUS_BANDWIDTH_WIDEBAND, .decode_fec = 1};
  if (argc < 3) {
    fprintf(stderr, "usage: opus-loss IN.raw OUT.raw [key=value ...]\n");
    return 2;
  }
  for (int i = 3; i < argc; i++)
    if (!parse_setting(&s, argv[i])) {
      fprintf(stderr, "opus-loss: unknown setting %s\n", argv[i]);
      return 2;
    }
  size_t samples;
  short *in = read_all(argv[1], &samples);
  if (in == NULL) {
    perror(argv[1]);
    return 1;
  }
  int frame = RATE / 1000 * s.frame_ms;
  size_t frames = samples / (size_t)frame;
  unsigned char(*packets)[MAX_PACKET] = calloc(frames, MAX_PACKET);
  int *lengths = calloc(frames, sizeof *lengths);
  OpusEncoder *enc = encoder_new(&s);
  int err;
  OpusDecoder *dec = opus_decoder_create(RATE, 1, &err);
  if (enc == NULL || dec == NULL || packets == NULL || lengths == NULL)
    return 1;
  srand((unsigned)s.seed);
  long bytes = 0;
  double encode_s = 0;
  for (size_t f = 0; f < frames; f++) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    lengths[f] = opus_encode(enc, in + f * (size_t)frame, frame, packets[f], MAX_PACKET);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    encode_s += (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    bytes += lengths[f] > 2 ? lengths[f] : 0; /* a DTX frame is not sent */
    if ((double)rand() / RAND_MAX * 100.0 < s.drop)
      lengths[f] = -1; /* lost on the way */
  }
  short *out = calloc(samples, sizeof *out);
  int lost = 0, fec_decoded = 0;
  for (size_t f = 0; f < frames; f++) {
    short *at = out + f * (size_t)frame;
    if (lengths[f] >= 0) {
      decode_frame(dec, lengths[f] > 2 ? packets[f] : NULL, lengths[f] > 2 ? lengths[f] : 0, at,
                   frame, 0);
      continue;
    }
    lost++;
    /* The next packet, if it came, may carry this frame's FEC (a receiver that waits one
     * packet for it); otherwise libopus conceals. */
    if (s.decode_fec && f + 1 < frames && lengths[f + 1] > 2) {
      decode_frame(dec, packets[f + 1], lengths[f + 1], at, frame, 1);
      fec_decoded++;
    } else
      decode_frame(dec, NULL, 0, at, frame, 0);
  }
  FILE *o = fopen(argv[2], "wb");
  if (o == NULL || fwrite(out, sizeof *out, samples, o) != samples) {
    perror(argv[2]);
    return 1;
  }
  fclose(o);
  double seconds = (double)frames * s.frame_ms / 1000.0;
  printf("packets %zu lost %d fec_decoded %d payload_bytes_per_s %.0f encode_cpu_percent %.2f\n",
         frames, lost, fec_decoded, bytes / seconds, 100.0 * encode_s / seconds);
  return 0;
}
