/* The C face of capture._fastdecode for another extension (reassembly._fasttrack): whole
 * pcap records walked and their frames decoded without building a RawPacket or a TcpSegment
 * for them. Published as the capsule `capture._fastdecode._C_API`; a user includes this
 * header and calls PyCapsule_Import. The Python objects stay the reference: a record the
 * decoder hands back (returns 0) is built as a RawPacket and decoded in Python, and
 * tests/reassembly/test_compiled_tracker.py holds both ways to the same events. */

#ifndef CAPTURE_FASTDECODE_API_H
#define CAPTURE_FASTDECODE_API_H

#include <Python.h>
#include <stdint.h>

#define FASTDECODE_API_CAPSULE "capture._fastdecode._C_API"
#define FASTDECODE_API_VERSION 1

/* What a TcpSegment would hold; the payload points into the record's bytes. */
typedef struct {
    PyObject *src, *dst, *tunnel; /* new references */
    long sport, dport;
    uint32_t seq, ack;
    int flags;
    const unsigned char *payload;
    Py_ssize_t payload_length;
    int truncated;
} FastSegment;

/* One whole classic pcap record of a buffer. */
typedef struct {
    const unsigned char *header; /* the record header; the frame follows it */
    const unsigned char *frame;
    Py_ssize_t captured;
    double ts; /* as the RawPacket's */
    int truncated; /* the wire length exceeds what was captured */
    long linktype;
} PcapRecord;

/* A frame the worker dispatcher packed (route_packet, route_records), in this machine's byte
 * order: this header, then `captured` bytes of frame. */
typedef struct {
    double ts;
    int64_t wire_length;
    int64_t linktype;
    int64_t captured;
} PackedFrame;

typedef struct {
    int version;
    /* The next whole record at *position of `buffer` (a PcapRecordReader's): 1 with *record
     * filled and *position past it; 0 when there is none, with *needed as `parse` says. */
    int (*next_record)(PyObject *reader, const unsigned char *buffer, Py_ssize_t size, Py_ssize_t *position,
                       PcapRecord *record, Py_ssize_t *needed);
    /* The record as the RawPacket `parse` builds (a new reference), or NULL on error. */
    PyObject *(*raw_packet)(PyObject *reader, const PcapRecord *record);
    /* A FrameDecoder's decode of the record's frame: 1 decoded into *segment, 0 the frame
     * must go to the Python decoder, -1 on error. */
    int (*decode_record)(PyObject *decoder, const PcapRecord *record, FastSegment *segment);
} FastDecodeApi;

#endif
