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
