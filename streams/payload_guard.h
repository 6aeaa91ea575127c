/* The intake's one-pass check of a raw payload (streams/payload_guard.c). */
#ifndef PAYLOAD_GUARD_H
#define PAYLOAD_GUARD_H

#include <stddef.h>

int payload_guard_clean(const unsigned char *p, size_t n);

#endif
