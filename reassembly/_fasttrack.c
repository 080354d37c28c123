/* Reassembly's compiled hot path: TCP segments in, HTTP events out, for every connection.
 *
 * Part of `reassembly` (reassembly/tracker.py wires it in). An exact port of the pure-Python
 * tracker (connections.py, tcp_stream.py, http_message.py, http_request.py,
 * http_response.py), which stays the reference: tests/reassembly/test_compiled_tracker.py
 * feeds both the same segments and requires the same events, in the same order, with the
 * same field values, and the same stats and capture-loss counts. The parts:
 *
 * - _fasttrack_stream.c: one direction's ordering (TcpStream);
 * - _fasttrack_lines.c, _fasttrack_head.c, _fasttrack_body.c, _fasttrack_http.c: HTTP/1.x
 *   parsing of one direction (start lines, heads, bodies, gaps, protocol switches, response
 *   pairing);
 * - _fasttrack_table.c: connections by their endpoints, least recently active first;
 * - _fasttrack_tracker.c: the ConnectionTracker type;
 * - _fasttrack_feed.c: capture records straight in, through capture._fastdecode's C API.
 *
 * Events are the project's slotted dataclasses, built by filling their slots at the offsets
 * their member descriptors publish (as capture/_fastdecode.c builds segments). This file
 * holds the module and what its parts share.
 */

#include "_fasttrack.h"

PyObject *strings[S_COUNT];

static const char *const string_values[S_COUNT] = {
    [S_TCP_GAP] = "tcp_gap",
    [S_MESSAGE_INCOMPLETE] = "message_incomplete",
    [S_BARE_LF] = "bare_lf",
    [S_OBS_FOLD] = "obs_fold",
    [S_HEADER_WITHOUT_COLON] = "header_without_colon",
    [S_WHITESPACE_BEFORE_COLON] = "whitespace_before_colon",
    [S_CONTENT_LENGTH_AND_CHUNKED] = "content_length_and_chunked",
    [S_UNKNOWN_TRANSFER_ENCODING] = "unknown_transfer_encoding",
    [S_MULTIPLE_CONTENT_LENGTH] = "multiple_content_length",
    [S_INVALID_CONTENT_LENGTH] = "invalid_content_length",
    [S_INVALID_CHUNK_SIZE] = "invalid_chunk_size",
    [S_CHUNK_MISSING_CRLF] = "chunk_missing_crlf",
    [S_HEADER_TOO_LONG] = "header_too_long",
    [S_INVALID_HTTP_VERSION] = "invalid_http_version",
    [S_HTTP09_REQUEST_LINE] = "http09_request_line",
    [S_MISSING_TARGET] = "missing_target",
    [S_SPACE_IN_TARGET] = "space_in_target",
    [S_RESPONSE_TO_UNSEEN_REQUEST] = "response_to_unseen_request",
    [S_RESPONSE_WITHOUT_REQUEST] = "response_without_request",
    [S_GARBAGE_BEFORE_REQUEST] = "garbage_before_request",
    [S_GARBAGE_BEFORE_RESPONSE] = "garbage_before_response",
    [S_OVERLAP_CONFLICT] = "overlap_conflict",
    [S_RST_OUT_OF_WINDOW] = "rst_out_of_window",
    [S_HTTP09] = "HTTP/0.9",
    [S_UNKNOWN] = "unknown",
    [S_EMPTY] = "",
    [S_CONNECT] = "CONNECT",
    [S_HEAD] = "HEAD",
    [S_SWITCH_PROTOCOL] = "switch_protocol",
};

int strings_init(void) {
    for (int i = 0; i < S_COUNT; i++) {
        if (strings[i] == NULL && (strings[i] = PyUnicode_InternFromString(string_values[i])) == NULL) {
            return -1;
        }
    }
    return 0;
}

int kind_init(Kind *kind, PyObject *type, const char *const *names, int count) {
    if (!PyType_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "expected a type");
        return -1;
    }
    PyTypeObject *cls = (PyTypeObject *)type;
    for (int i = 0; i < count; i++) {
        PyObject *descr = PyObject_GetAttrString(type, names[i]);
        if (descr == NULL) {
            return -1;
        }
        int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type);
        if (ok) {
            PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
            ok = member->type == SLOT_MEMBER_TYPE && !(member->flags & READONLY) && member->offset > 0 &&
                 (size_t)member->offset + sizeof(PyObject *) <= (size_t)cls->tp_basicsize;
            kind->offsets[i] = member->offset;
        }
        Py_DECREF(descr);
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "%s.%s is not a plain slot", cls->tp_name, names[i]);
            return -1;
        }
    }
    Py_INCREF(type);
    Py_XSETREF(kind->type, cls);
    kind->count = count;
    return 0;
}

void types_clear(Types *types) {
    Kind *kinds[] = {&types->flow, &types->request, &types->response, &types->anomaly, &types->protocol_switch,
                     &types->segment};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(*kinds); i++) {
        Py_CLEAR(kinds[i]->type);
    }
    Py_CLEAR(types->decode_body);
    Py_CLEAR(types->counter);
    Py_CLEAR(types->limits);
}

PyObject *make_object(const Kind *kind, PyObject **values) {
    PyObject *made = kind->type->tp_alloc(kind->type, 0);
    if (made == NULL) {
        for (int i = 0; i < kind->count; i++) {
            Py_DECREF(values[i]);
        }
        return NULL;
    }
    for (int i = 0; i < kind->count; i++) {
        *(PyObject **)((char *)made + kind->offsets[i]) = values[i];
    }
    return untracked(made);
}

PyObject *untracked(PyObject *object) {
    /* Events, flows and their header tuples are frozen and hold only strings, numbers, bytes
     * and other such objects: they can be in no reference cycle, so the cyclic collector need
     * not visit them (CPython leaves tuples of atoms out the same way). Untracked, the many
     * messages alive at once no longer make every collection longer. */
    if (object != NULL && PyObject_IS_GC(object)) {
        PyObject_GC_UnTrack(object); /* which asks whether it is tracked itself */
    }
    return object;
}

PyObject *copy_object(const Kind *kind, PyObject *object) {
    PyObject *values[MAX_FIELDS];
    for (int i = 0; i < kind->count; i++) {
        values[i] = Py_NewRef(get_slot(object, kind->offsets[i]));
    }
    return make_object(kind, values);
}

extern PyTypeObject CompiledTrackerType; /* _fasttrack_tracker.c */

static struct PyModuleDef fasttrack_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "reassembly._fasttrack",
    .m_doc = "Reassembly's compiled hot path: the connection tracker, TCP ordering and HTTP/1.x parsing in C.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__fasttrack(void) {
    if (strings_init() < 0 || PyType_Ready(&CompiledTrackerType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&fasttrack_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&CompiledTrackerType);
    if (PyModule_AddObject(module, "ConnectionTracker", (PyObject *)&CompiledTrackerType) < 0) {
        Py_DECREF(&CompiledTrackerType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
