/* fuzz-common.h: what every fuzz target of tests/fuzz shares (fuzz-common.c): GLib
 * criticals and warnings abort the run, and FUZZ_VERBOSE=1 in the environment makes
 * fuzz_say tell what became of each input (for seed writers); and the command the
 * command-line targets (`command`, `ctlline`) feed their arguments to. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <hark/command.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Call first in LLVMFuzzerInitialize. */
void fuzz_init(void);
/* "OUTCOME: WHY" on stderr under FUZZ_VERBOSE (why may be NULL). */
void fuzz_say(const char *outcome, const char *why);

/* "status" takes no parameters; any other name is "call", which takes a string "name"
 * (required), an integer "seconds", a boolean "video" and a secret string "password". */
const HarkCommand *fuzz_command_named(const char *name);

/* The body of a signal target (call and conference signals, `a{sv}` bodies): the input
 * as a vardict is parsed; a refusal must say why; an accepted signal is checked against
 * its limits (CHECK), built again in normal form, and parses back to an equal signal. */
#define FUZZ_SIGNAL_ROUND_TRIP(Type, parse, build, equal, type_name, CHECK, data, size)         \
  do {                                                                                         \
    g_autoptr(GBytes) fuzz_bytes_ = g_bytes_new((data), (size));                               \
    g_autoptr(GVariant) fuzz_body_ = g_variant_ref_sink(                                       \
      g_variant_new_from_bytes(G_VARIANT_TYPE_VARDICT, fuzz_bytes_, FALSE));                   \
    g_autoptr(GError) fuzz_error_ = NULL;                                                      \
    g_autoptr(Type) fuzz_signal_ = parse(fuzz_body_, &fuzz_error_);                            \
    if ((fuzz_signal_ == NULL) == (fuzz_error_ == NULL))                                       \
      abort();                                                                                 \
    if (fuzz_signal_ == NULL) {                                                                \
      fuzz_say("refused", fuzz_error_->message);                                               \
      break;                                                                                   \
    }                                                                                          \
    fuzz_say(type_name(fuzz_signal_->type), NULL);                                             \
    CHECK(fuzz_signal_);                                                                       \
    g_autoptr(GVariant) fuzz_again_ = g_variant_ref_sink(build(fuzz_signal_));                 \
    if (!g_variant_is_normal_form(fuzz_again_))                                                \
      abort();                                                                                 \
    g_autoptr(Type) fuzz_reparsed_ = parse(fuzz_again_, &fuzz_error_);                         \
    if (fuzz_reparsed_ == NULL || !equal(fuzz_signal_, fuzz_reparsed_))                        \
      abort();                                                                                 \
  } while (0)
