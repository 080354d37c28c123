/* The capture stage's compiled hot path: capture records in, TCP segments out.
 *
 * Part of `capture` (capture/decode.py, files.py and pcapng.py wire it in). This file holds
 * the module and what its parts share; the parts:
 *
 * - _fastdecode_frames.c, FrameDecoder: the common shape of a mirrored frame (Ethernet,
 *   802.1Q/802.1ad tags, IPv4 or IPv6, TCP; VXLAN and GENEVE around the same) decoded
 *   straight into the `TcpSegment` the pure-Python decoder would build. Anything else --
 *   another link type, a fragment, GRE, MPLS, a VXLAN header without its I flag, any
 *   truncation or bad length -- returns None, and capture/decode.py decodes the frame again
 *   in Python, which is the one place that names reasons and anomalies. So this code never
 *   counts, never names, and must never decode a frame differently:
 *   tests/capture/test_fastdecode.py feeds both paths the same frames and requires the
 *   same segments and counters.
 * - _fastdecode_records.c, PcapRecordReader and parse_enhanced_packets: the whole records
 *   of a classic pcap buffer, and runs of pcapng enhanced packet blocks, as `RawPacket`s.
 *   Each stops at the first record or block that is not whole or not sound, so that the
 *   Python readers keep reading and keep every error message.
 * - _fastdecode_route.c, route_packet and unpack_frames: frames packed per worker process
 *   by the flow's worker, with no segment built, and back to packets in the worker.
 * - the capsule `_C_API` (_fastdecode_api.h): the same two, record by record and without
 *   Python objects, for reassembly._fasttrack to feed its tracker straight from a buffer.
 *
 * The objects are the project's slotted dataclasses: their slots are filled directly, at
 * the offsets their member descriptors publish (what `object.__setattr__` would do), which
 * is what makes building a segment cheap.
 */

#include "_fastdecode.h"

const char *const raw_fields[RAW_FIELDS] = {"ts", "data", "linktype", "wire_length", "origin"};

int slot_offset(PyTypeObject *type, const char *name, Py_ssize_t *offset) {
    PyObject *descr = PyObject_GetAttrString((PyObject *)type, name);
    if (descr == NULL) {
        return -1;
    }
    int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type);
    if (ok) {
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        ok = member->type == SLOT_MEMBER_TYPE && !(member->flags & READONLY) && member->offset > 0 &&
             (size_t)member->offset + sizeof(PyObject *) <= (size_t)type->tp_basicsize;
        *offset = member->offset;
    }
    Py_DECREF(descr);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a plain slot", type->tp_name, name);
        return -1;
    }
    return 0;
}

/* ---- module ---------------------------------------------------------------------- */

static struct PyModuleDef fastdecode_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "capture._fastdecode",
    .m_doc = "The capture stage's compiled hot path: pcap records and the common frame shapes.",
    .m_size = -1,
    .m_methods = record_functions,
};

static FastDecodeApi api = {
    .version = FASTDECODE_API_VERSION,
    .next_record = api_next_record,
    .raw_packet = api_raw_packet,
    .decode_record = api_decode_record,
};

PyMODINIT_FUNC PyInit__fastdecode(void) {
    if (PyType_Ready(&FrameDecoderType) < 0 || PyType_Ready(&PcapRecordReaderType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&fastdecode_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&FrameDecoderType);
    if (PyModule_AddObject(module, "FrameDecoder", (PyObject *)&FrameDecoderType) < 0) {
        Py_DECREF(&FrameDecoderType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&PcapRecordReaderType);
    if (PyModule_AddObject(module, "PcapRecordReader", (PyObject *)&PcapRecordReaderType) < 0) {
        Py_DECREF(&PcapRecordReaderType);
        Py_DECREF(module);
        return NULL;
    }
    if (PyModule_AddFunctions(module, route_functions) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    PyObject *capsule = PyCapsule_New(&api, FASTDECODE_API_CAPSULE, NULL);
    if (capsule == NULL || PyModule_AddObject(module, "_C_API", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
