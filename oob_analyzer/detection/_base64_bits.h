/* What the compiled base64 decoders share (_base64_text.c: tokens in any value; _request_points.c:
 * a JWT's claims segment): the characters' 6-bit values packed into bytes. Each keeps its own
 * alphabet (`sextet`) and its own rules on what a token is and what its bytes must be. */

#ifndef OOB_DETECTION_BASE64_BITS_H
#define OOB_DETECTION_BASE64_BITS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The bytes of data[start:end), every character one `sextet` takes, written to `raw` (room for
 * (end - start) * 6 / 8 bytes): how many. Bits left over that make no whole byte are dropped,
 * whatever their value, as binascii.a2b_base64 drops them. */
static inline Py_ssize_t sextets_to_bytes(int kind, const void *data, Py_ssize_t start, Py_ssize_t end,
                                          int (*sextet)(Py_UCS4), unsigned char *raw)
{
    Py_ssize_t written = 0;
    unsigned int bits = 0;
    int held = 0;
    for (Py_ssize_t at = start; at < end; at++) {
        bits = (bits << 6) | (unsigned int)sextet(PyUnicode_READ(kind, data, at));
        held += 6;
        if (held >= 8) {
            held -= 8;
            raw[written++] = (unsigned char)((bits >> held) & 0xFF);
        }
    }
    return written;
}

#endif
