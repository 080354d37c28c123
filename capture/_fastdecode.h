/* What the parts of the compiled hot path (capture/_fastdecode*.c) share: big- and
 * little-endian reads, and the slots of the project's slotted dataclasses. */

#ifndef CAPTURE_FASTDECODE_H
#define CAPTURE_FASTDECODE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <stdint.h>
#include <string.h>

#include "_fastdecode_api.h"

#ifdef Py_T_OBJECT_EX
#define SLOT_MEMBER_TYPE Py_T_OBJECT_EX
#else
#define SLOT_MEMBER_TYPE T_OBJECT_EX
#endif

static inline uint32_t be16(const unsigned char *p) { return ((uint32_t)p[0] << 8) | p[1]; }
static inline uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint32_t le32(const unsigned char *p) {
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

/* The slots of capture.packets.RawPacket, in this order. */
enum { RAW_TS, RAW_DATA, RAW_LINKTYPE, RAW_WIRE_LENGTH, RAW_ORIGIN, RAW_FIELDS };
extern const char *const raw_fields[RAW_FIELDS];

/* The offset of `name`'s slot in instances of `type`, from its member descriptor. */
int slot_offset(PyTypeObject *type, const char *name, Py_ssize_t *offset);

static inline PyObject *get_slot(PyObject *object, Py_ssize_t offset) {
    return *(PyObject **)((char *)object + offset);
}

/* Steals `value`. Only for a new object whose slot is still empty. */
static inline void set_slot(PyObject *object, Py_ssize_t offset, PyObject *value) {
    *(PyObject **)((char *)object + offset) = value;
}

extern PyTypeObject FrameDecoderType;     /* _fastdecode_frames.c */
extern PyTypeObject PcapRecordReaderType; /* _fastdecode_records.c */
extern PyMethodDef record_functions[];    /* _fastdecode_records.c */

/* The capsule's functions (_fastdecode_api.h). */
int api_next_record(PyObject *reader, const unsigned char *buffer, Py_ssize_t size, Py_ssize_t *position,
                    PcapRecord *record, Py_ssize_t *needed);
PyObject *api_raw_packet(PyObject *reader, const PcapRecord *record);
int api_decode_record(PyObject *decoder, const PcapRecord *record, FastSegment *segment);

/* _fastdecode_records.c, for _fastdecode_route.c: a reader's record's wire length (>= captured). */
int64_t record_wire_length(PyObject *reader, const PcapRecord *record);

/* _fastdecode_frames.c, for _fastdecode_route.c. */
int decode_packet_raw(PyObject *decoder, PyObject *packet, PcapRecord *record, int64_t *wire_length,
                      FastSegment *segment);
extern PyMethodDef route_functions[]; /* _fastdecode_route.c */

#endif
