/* json_scan.h: a small, bounded JSON scanner for pvdd's replies (no allocation, no I/O).
 *
 * It finds values, never decodes them: a value is a byte range [start, end) of the input,
 * copied verbatim by its callers.  Strings (with every escape), numbers, true/false/null,
 * objects and arrays are checked against RFC 8259's grammar; nesting deeper than
 * SHIM_JSON_DEPTH_MAX is refused, so the scan's recursion is bounded. */
#ifndef PVD_JSON_SCAN_H
#define PVD_JSON_SCAN_H

#include <stddef.h>
#include <sys/types.h>

#include "pvd.h"

#define SHIM_JSON_DEPTH_MAX 32

/* Skip whitespace from pos, then scan one value.  0 and [*start, *end), or -1 (malformed,
 * too deep, or nothing there). */
int shim_json_value(const char *s, size_t len, size_t pos, size_t *start, size_t *end);

/* The value of member `key` (compared after unescaping the member's name) of the object
 * s[obj_start, obj_end).  1 and [*vstart, *vend); 0 when the object has no such member;
 * -1 when s[obj_start, obj_end) is not one well-formed object. */
int shim_json_member(const char *s, size_t obj_start, size_t obj_end, const char *key, size_t *vstart,
                     size_t *vend);

/* From one pvdd reply line to op "get" (reply[0, len), without its newline), for the PvD
 * `handle`: with key NULL, writes {"attributes":A,"additional_info":B} (A, B verbatim from the
 * reply's "pvd"; {} and null when absent); with a key, the value of that member of
 * "additional_info", else of "attributes".  Returns the length written (out NUL-terminated),
 * or -1 with errno: EPROTO (malformed reply), ENOENT (pvdd knows no such PvD, or its handle
 * is another), ENODATA (no such key), ERANGE (outlen too small: out is "" when outlen > 0). */
ssize_t shim_attributes_from_reply(const char *reply, size_t len, pvd_handle_t handle, const char *key, char *out,
                                   size_t outlen);

#endif
