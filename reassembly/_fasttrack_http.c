/* The HTTP/1.x state machine of one direction (reassembly/http_message.py and the hooks of
 * http_request.py and http_response.py): bytes and gaps in, messages, anomalies and protocol
 * switches out, in the reference's order. Heads are read by _fasttrack_head.c. */

#include "_fasttrack_http.h"

#define UNANSWERED_LIMIT 1000 /* http_response._UNANSWERED_LIMIT */

/* ---- the queue of events ready to hand out ------------------------------------------- */

static int queue_push(EventQueue *q, PyObject *event) {
    if (q->count == q->cap) {
        Py_ssize_t cap = q->cap ? q->cap * 2 : 4;
        PyObject **grown = PyMem_Malloc((size_t)cap * sizeof(PyObject *));
        if (grown == NULL) {
            Py_DECREF(event);
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < q->count; i++) {
            grown[i] = q->items[(q->head + i) % q->cap];
        }
        PyMem_Free(q->items);
        q->items = grown;
        q->head = 0;
        q->cap = cap;
    }
    q->items[(q->head + q->count) % q->cap] = event;
    q->count++;
    return 0;
}

static PyObject *queue_pop(EventQueue *q) {
    PyObject *event = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    return event;
}

static void queue_free(EventQueue *q) {
    while (q->count) {
        Py_DECREF(queue_pop(q));
    }
    PyMem_Free(q->items);
    q->items = NULL;
    q->cap = q->head = 0;
}

/* ---- set-up --------------------------------------------------------------------------- */

int parser_init(Parser *p, const Types *types, PyObject *flow, bool is_response, bool midstream,
                long long max_head_bytes, long long body_inspection_bytes) {
    memset(p, 0, sizeof(*p));
    p->types = types;
    p->max_head_bytes = max_head_bytes;
    p->body_inspection_bytes = body_inspection_bytes;
    p->is_response = is_response;
    p->flow = Py_NewRef(flow);
    p->resyncing = midstream;
    p->state = ST_HEAD;
    p->body_kept_whole = true;
    p->anomalies = PyList_New(0);
    return p->anomalies == NULL ? -1 : 0;
}

void parser_free(Parser *p) {
    Py_CLEAR(p->flow);
    Py_CLEAR(p->head);
    Py_CLEAR(p->anomalies);
    Py_CLEAR(p->switch_asked);
    bb_free(&p->buffer);
    bb_free(&p->body);
    queue_free(&p->ready);
    while (p->un_count) {
        unanswered_pop(p);
    }
    PyMem_Free(p->unanswered);
    p->unanswered = NULL;
}

int parser_expect(Parser *p, PyObject *request, double completed_at, bool has_end_seq, uint32_t end_seq) {
    if (p->un_count >= UNANSWERED_LIMIT) {
        unanswered_pop(p);
        p->forgotten_requests++;
    }
    if (p->un_count == p->un_cap) {
        Py_ssize_t cap = p->un_cap ? p->un_cap * 2 : 4;
        Unanswered *grown = PyMem_Malloc((size_t)cap * sizeof(Unanswered));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < p->un_count; i++) {
            grown[i] = p->unanswered[(p->un_head + i) % p->un_cap];
        }
        PyMem_Free(p->unanswered);
        p->unanswered = grown;
        p->un_head = 0;
        p->un_cap = cap;
    }
    p->unanswered[(p->un_head + p->un_count) % p->un_cap] =
        (Unanswered){Py_NewRef(request), completed_at, has_end_seq, end_seq};
    p->un_count++;
    return 0;
}

/* ---- public face ------------------------------------------------------------------------ */

static bool all_ascii_space(const ByteBuf *b) {
    const unsigned char *data = bb_ptr(b);
    for (Py_ssize_t i = 0; i < b->len; i++) {
        if (!is_ascii_space(data[i])) {
            return false;
        }
    }
    return true;
}

int parser_receive_data(Parser *p, const unsigned char *data, Py_ssize_t len, double ts, bool has_ack, uint32_t ack) {
    if (p->is_response && has_ack) {
        p->has_ack = true;
        p->ack = ack;
    }
    p->received += len;
    if (p->state == ST_TUNNEL) {
        p->tunnel_bytes += len;
        return 0;
    }
    if (p->state == ST_HEAD && all_ascii_space(&p->buffer)) {
        p->message_ts = ts;
    }
    p->last_ts = ts;
    return bb_append(&p->buffer, data, len);
}

PyObject *parser_in_progress(Parser *p) {
    p->head_handed_out = p->head != NULL;
    return p->head;
}

bool parser_switch_protocol(Parser *p) {
    Py_CLEAR(p->switch_asked);
    if (p->state == ST_TUNNEL) {
        return false;
    }
    p->state = ST_TUNNEL;
    p->tunnel_bytes += p->buffer.len;
    bb_clear(&p->buffer);
    bb_shrink_if_idle(&p->buffer);
    return true;
}

static int append_anomaly(Parser *p, StringId name) { return PyList_Append(p->anomalies, strings[name]); }

static bool has_tcp_gap(Parser *p) {
    Py_ssize_t n = PyList_GET_SIZE(p->anomalies);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyList_GET_ITEM(p->anomalies, i) == strings[S_TCP_GAP]) {
            return true;
        }
    }
    return false;
}

/* ---- finishing a message ------------------------------------------------------------------ */

static PyObject *switch_event(Parser *p, double ts, PyObject *asked, bool confirmed) {
    PyObject *values[SW_FIELDS] = {NULL};
    values[SW_TS] = PyFloat_FromDouble(ts);
    values[SW_FLOW] = Py_NewRef(p->flow);
    if (asked == NULL) {
        values[SW_PROTOCOL] = Py_NewRef(strings[S_UNKNOWN]);
        values[SW_TARGET] = Py_NewRef(strings[S_EMPTY]);
    } else {
        values[SW_PROTOCOL] = PyObject_GetAttr(asked, strings[S_SWITCH_PROTOCOL]);
        values[SW_TARGET] = Py_NewRef(get_slot(asked, p->types->request.offsets[REQ_TARGET]));
    }
    values[SW_CONFIRMED] = Py_NewRef(confirmed ? Py_True : Py_False);
    if (values[SW_TS] == NULL || values[SW_PROTOCOL] == NULL) {
        for (int i = 0; i < SW_FIELDS; i++) {
            Py_XDECREF(values[i]);
        }
        return NULL;
    }
    return make_object(&p->types->protocol_switch, values);
}

static int after_request(Parser *p, PyObject *message) {
    const Types *types = p->types;
    PyObject *headers = get_slot(message, types->request.offsets[MSG_HEADERS]);
    PyObject *version = get_slot(message, types->request.offsets[MSG_VERSION]);
    if (request_method_is(message, types, "CONNECT") || header_value(headers, "upgrade", 7) != NULL ||
        PyUnicode_CompareWithASCIIString(version, "HTTP/2.0") == 0) {
        Py_XSETREF(p->switch_asked, Py_NewRef(message));
    }
    return 0;
}

static int after_response(Parser *p, PyObject *message) {
    const Types *types = p->types;
    PyObject *request = get_slot(message, types->response.offsets[RESP_REQUEST]);
    long status = PyLong_AsLong(get_slot(message, types->response.offsets[RESP_STATUS]));
    if (request != Py_None && request_method_is(request, types, "CONNECT") && status >= 200 && status < 300) {
        /* Plain HTTP through the tunnel is still parsed (a proxy's clients do this); TLS is not. */
        Py_XSETREF(p->switch_asked, Py_NewRef(request));
        p->switch_confirmed = true;
    }
    if (p->state == ST_TUNNEL) {
        double ts = PyFloat_AsDouble(get_slot(message, types->response.offsets[MSG_TS]));
        PyObject *event = switch_event(p, ts, request == Py_None ? NULL : request, true);
        if (event == NULL || queue_push(&p->ready, event) < 0) {
            return -1;
        }
    }
    return 0;
}

/* `_filled`: the head with its body's fields, in place while the parser is its only
 * holder, else a copy. Steals every value. */
static PyObject *filled(Parser *p, PyObject *head, PyObject **values, const int *fields, int count) {
    const Kind *kind = p->is_response ? &p->types->response : &p->types->request;
    PyObject *message = p->head_handed_out ? copy_object(kind, head) : Py_NewRef(head);
    if (message == NULL) {
        for (int i = 0; i < count; i++) {
            Py_DECREF(values[i]);
        }
        return NULL;
    }
    for (int i = 0; i < count; i++) {
        replace_slot(message, kind->offsets[fields[i]], values[i]);
    }
    return message;
}

static PyObject *decoded_body(Parser *p, PyObject *body, bool complete) {
    if (!complete || !p->body_kept_whole || PyBytes_GET_SIZE(body) == 0) {
        return Py_NewRef(Py_None);
    }
    PyObject *headers = get_slot(p->head, p->types->request.offsets[MSG_HEADERS]);
    PyObject *coding = header_value(headers, "content-encoding", 16);
    if (coding == NULL) {
        return Py_NewRef(Py_None);
    }
    return PyObject_CallFunctionObjArgs(p->types->decode_body, coding, body, p->types->limits, p->anomalies, NULL);
}

/* http_message._finish: a new reference, or NULL on error. */
static PyObject *finish(Parser *p, bool complete) {
    static const int fields[] = {MSG_BODY,      MSG_BODY_LENGTH,  MSG_COMPLETE,
                                 MSG_ANOMALIES, MSG_DECODED_BODY, MSG_INDEX};
    PyObject *values[6];
    values[0] = PyBytes_FromStringAndSize((const char *)bb_ptr(&p->body), p->body.len);
    if (values[0] == NULL) {
        return NULL;
    }
    values[4] = decoded_body(p, values[0], complete);
    values[1] = PyLong_FromLongLong(p->body_length);
    values[2] = Py_NewRef(complete ? Py_True : Py_False);
    values[3] = untracked(PyList_AsTuple(p->anomalies));
    values[5] = PyLong_FromLongLong(p->count);
    if (values[1] == NULL || values[3] == NULL || values[4] == NULL || values[5] == NULL) {
        for (int i = 0; i < 6; i++) {
            Py_XDECREF(values[i]);
        }
        return NULL;
    }
    PyObject *message = filled(p, p->head, values, fields, 6);
    if (message == NULL) {
        return NULL;
    }
    p->count++;
    p->last_end_offset = p->received - p->buffer.len;
    Py_CLEAR(p->head);
    bb_clear(&p->body);
    bb_shrink_if_idle(&p->body);
    if (p->state != ST_TUNNEL) {
        p->state = ST_HEAD;
    }
    p->message_ts = p->last_ts; /* what is left in the buffer came with the last data */
    int failed = p->is_response ? after_response(p, message) : after_request(p, message);
    if (failed) {
        Py_DECREF(message);
        return NULL;
    }
    return message;
}

static Step finished(Parser *p, bool complete, PyObject **out) {
    *out = finish(p, complete);
    return *out == NULL ? STEP_ERROR : STEP_EVENT;
}

/* finish(False) after naming why, and resynchronise after it. */
static Step cut_short(Parser *p, StringId anomaly, PyObject **out) {
    if (append_anomaly(p, anomaly) < 0) {
        return STEP_ERROR;
    }
    p->resyncing = true;
    return finished(p, false, out);
}

/* ---- bodies --------------------------------------------------------------------------------- */

Step start_body(Parser *p, PyObject *message, PyObject **out) {
    Py_XSETREF(p->head, message);
    p->head_handed_out = false;
    bb_clear(&p->body);
    p->body_length = 0;
    p->body_kept_whole = true;
    long long framing = body_framing(p, message);
    if (framing == -2) {
        return STEP_ERROR;
    }
    if (framing == FRAMING_CHUNKED) {
        p->state = ST_CHUNK_SIZE;
        return STEP_NONE;
    }
    if (framing == FRAMING_UNTIL_CLOSE) {
        p->state = ST_UNTIL_CLOSE;
        return STEP_NONE;
    }
    if (framing == FRAMING_TUNNEL) {
        p->state = ST_TUNNEL;
        return finished(p, true, out);
    }
    if (framing == 0) {
        return finished(p, true, out);
    }
    p->remaining = framing;
    p->state = ST_BODY;
    return STEP_NONE;
}

/* Move up to `count` buffered bytes into the body; how many moved, or -1 on error. */
static long long take_body(Parser *p, long long count) {
    long long taken = count < p->buffer.len ? count : p->buffer.len;
    long long room = p->body_inspection_bytes - p->body.len;
    if (p->body_kept_whole && room > 0 &&
        bb_append(&p->body, bb_ptr(&p->buffer), (Py_ssize_t)(taken < room ? taken : room)) < 0) {
        return -1;
    }
    if (taken > room) {
        p->body_kept_whole = false;
    }
    bb_consume(&p->buffer, (Py_ssize_t)taken);
    p->body_length += taken;
    return taken;
}

static int count_lost_body(Parser *p, long long size) {
    p->body_length += size;
    p->body_kept_whole = false;
    return has_tcp_gap(p) ? 0 : append_anomaly(p, S_TCP_GAP);
}

static Step read_body(Parser *p, PyObject **out) {
    long long taken = take_body(p, p->remaining);
    if (taken < 0) {
        return STEP_ERROR;
    }
    p->remaining -= taken;
    if (p->remaining) {
        return STEP_NEED_DATA;
    }
    return finished(p, !has_tcp_gap(p), out);
}

/* `_read_line`: the line's length without its "\r", or -1 when no line end is buffered yet.
 * The line stays at the front of the buffer; `*consumed` is how much to drop after it. */
static Py_ssize_t peek_line(Parser *p, Py_ssize_t *consumed) {
    const unsigned char *buf = bb_ptr(&p->buffer);
    const unsigned char *nl = memchr(buf, '\n', (size_t)p->buffer.len);
    if (nl == NULL) {
        return -1;
    }
    Py_ssize_t len = nl - buf;
    *consumed = len + 1;
    return len > 0 && buf[len - 1] == '\r' ? len - 1 : len;
}

static bool is_hex(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* The chunk size of a chunk-size line, or -1 when it is no valid size. */
static long long chunk_size(const unsigned char *line, Py_ssize_t len) {
    const unsigned char *semicolon = memchr(line, ';', (size_t)len);
    Py_ssize_t end = semicolon == NULL ? len : semicolon - line, start = 0;
    while (start < end && (line[start] == ' ' || line[start] == '\t')) {
        start++;
    }
    while (end > start && (line[end - 1] == ' ' || line[end - 1] == '\t')) {
        end--;
    }
    if (start == end) {
        return -1;
    }
    long long size = 0;
    int significant = 0;
    for (Py_ssize_t i = start; i < end; i++) {
        if (!is_hex(line[i])) {
            return -1;
        }
        significant += significant > 0 || line[i] != '0';
        if (significant > MAX_CHUNK_SIZE_DIGITS) {
            return -1;
        }
        unsigned char c = line[i];
        size = size * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return size;
}

static Step read_chunk_size(Parser *p, PyObject **out) {
    Py_ssize_t consumed;
    Py_ssize_t len = peek_line(p, &consumed);
    if (len < 0) {
        if (p->buffer.len > p->max_head_bytes) {
            return cut_short(p, S_INVALID_CHUNK_SIZE, out);
        }
        return STEP_NEED_DATA;
    }
    long long size = chunk_size(bb_ptr(&p->buffer), len);
    bb_consume(&p->buffer, consumed);
    if (size < 0) {
        return cut_short(p, S_INVALID_CHUNK_SIZE, out);
    }
    if (size == 0) {
        p->state = ST_TRAILERS;
    } else {
        p->remaining = size;
        p->state = ST_CHUNK_DATA;
    }
    return STEP_NONE;
}

static Step read_chunk_data(Parser *p) {
    long long taken = take_body(p, p->remaining);
    if (taken < 0) {
        return STEP_ERROR;
    }
    p->remaining -= taken;
    if (p->remaining) {
        return STEP_NEED_DATA;
    }
    p->state = ST_CHUNK_DATA_END;
    return STEP_NONE;
}

/* `_line_too_long`: no line end yet; wait, unless the line is past any sane length. */
static Step line_too_long(Parser *p, StringId anomaly, PyObject **out) {
    if (p->buffer.len <= p->max_head_bytes) {
        return STEP_NEED_DATA;
    }
    return cut_short(p, anomaly, out);
}

static Step read_chunk_data_end(Parser *p, PyObject **out) {
    Py_ssize_t consumed;
    Py_ssize_t len = peek_line(p, &consumed);
    if (len < 0) {
        return line_too_long(p, S_CHUNK_MISSING_CRLF, out);
    }
    bb_consume(&p->buffer, consumed);
    if (len > 0 && append_anomaly(p, S_CHUNK_MISSING_CRLF) < 0) {
        return STEP_ERROR;
    }
    p->state = ST_CHUNK_SIZE;
    return STEP_NONE;
}

static PyObject *ascii_stripped(const unsigned char *p, Py_ssize_t len) {
    Py_ssize_t start = 0;
    while (start < len && is_ascii_space(p[start])) {
        start++;
    }
    while (len > start && is_ascii_space(p[len - 1])) {
        len--;
    }
    return PyUnicode_DecodeLatin1((const char *)p + start, len - start, NULL);
}

/* A trailer field joins the head's fields (copied if the head was handed out). */
static int add_trailer(Parser *p, const unsigned char *line, Py_ssize_t len) {
    const unsigned char *colon = memchr(line, ':', (size_t)len);
    PyObject *name = ascii_stripped(line, colon - line);
    PyObject *value = name == NULL ? NULL : ascii_stripped(colon + 1, line + len - colon - 1);
    PyObject *trailer = value == NULL ? NULL : untracked(PyTuple_Pack(2, name, value));
    Py_XDECREF(name);
    Py_XDECREF(value);
    if (trailer == NULL) {
        return -1;
    }
    const Kind *kind = p->is_response ? &p->types->response : &p->types->request;
    PyObject *headers = get_slot(p->head, kind->offsets[MSG_HEADERS]);
    Py_ssize_t n = PyTuple_GET_SIZE(headers);
    PyObject *grown = untracked(PyTuple_New(n + 1));
    if (grown == NULL) {
        Py_DECREF(trailer);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTuple_SET_ITEM(grown, i, Py_NewRef(PyTuple_GET_ITEM(headers, i)));
    }
    PyTuple_SET_ITEM(grown, n, trailer);
    static const int fields[] = {MSG_HEADERS};
    PyObject *message = filled(p, p->head, &grown, fields, 1);
    if (message == NULL) {
        return -1;
    }
    Py_SETREF(p->head, message);
    return 0;
}

static Step read_trailers(Parser *p, PyObject **out) {
    Py_ssize_t consumed, len;
    while ((len = peek_line(p, &consumed)) >= 0) {
        if (len == 0) {
            bb_consume(&p->buffer, consumed);
            return finished(p, true, out);
        }
        const unsigned char *line = bb_ptr(&p->buffer);
        if (p->head != NULL && memchr(line, ':', (size_t)len) != NULL && add_trailer(p, line, len) < 0) {
            return STEP_ERROR;
        }
        bb_consume(&p->buffer, consumed);
    }
    return line_too_long(p, S_HEADER_TOO_LONG, out);
}

/* ---- protocol switches --------------------------------------------------------------------- */

/* `_looks_like_message_start`: 1 yes, 0 no, -1 too short to tell. */
static int looks_like_message_start(Parser *p, const unsigned char *head, Py_ssize_t len) {
    if (p->is_response) {
        if (len >= 5 && memcmp(head, "HTTP/", 5) == 0) {
            return 1;
        }
        return len < 5 && memcmp(head, "HTTP/", (size_t)len) == 0 ? -1 : 0;
    }
    if (len >= 4 && memcmp(head, "PRI ", 4) == 0) {
        return 0; /* RFC 9113 section 3.4: the connection preface starts "PRI * HTTP/2.0" */
    }
    Py_ssize_t i = 0;
    while (i < len && is_tchar(head[i])) {
        i++;
    }
    if (i > 0 && i < len && head[i] == ' ') {
        return 1;
    }
    if ((i == len && len > 0) || (len < 4 && memcmp(head, "PRI ", (size_t)len) == 0)) {
        return -1;
    }
    return 0;
}

/* `_pending_event`: after CONNECT/Upgrade, another message means HTTP/1 goes on; anything
 * else is the new protocol. STEP_NONE when there is nothing to say. */
static Step pending_event(Parser *p, PyObject **out) {
    PyObject *asked = p->switch_asked;
    if (asked == NULL) {
        return STEP_NONE;
    }
    PyObject *version = get_slot(asked, p->types->request.offsets[MSG_VERSION]);
    if (PyUnicode_CompareWithASCIIString(version, "HTTP/2.0") != 0) {
        const unsigned char *head = bb_ptr(&p->buffer);
        Py_ssize_t len = p->buffer.len < 64 ? p->buffer.len : 64;
        while (len > 0 && (head[0] == '\r' || head[0] == '\n')) {
            head++;
            len--;
        }
        if (len == 0) {
            return STEP_NONE;
        }
        int verdict = looks_like_message_start(p, head, len);
        if (verdict < 0 && p->buffer.len <= p->max_head_bytes) {
            return STEP_NEED_DATA; /* undecided, but no longer than a head may be long */
        }
        if (verdict > 0) {
            Py_CLEAR(p->switch_asked);
            return STEP_NONE;
        }
    }
    bool confirmed = p->switch_confirmed;
    Py_INCREF(asked);
    parser_switch_protocol(p);
    *out = switch_event(p, p->last_ts, asked, confirmed);
    Py_DECREF(asked);
    return *out == NULL ? STEP_ERROR : STEP_EVENT;
}

/* ---- the machine ------------------------------------------------------------------------------ */

static Step step(Parser *p, PyObject **out) {
    switch (p->state) {
        case ST_HEAD: {
            Step pending = pending_event(p, out);
            return pending != STEP_NONE ? pending : parse_head(p, out);
        }
        case ST_BODY:
            return read_body(p, out);
        case ST_CHUNK_SIZE:
            return read_chunk_size(p, out);
        case ST_CHUNK_DATA:
            return read_chunk_data(p);
        case ST_CHUNK_DATA_END:
            return read_chunk_data_end(p, out);
        case ST_TRAILERS:
            return read_trailers(p, out);
        case ST_UNTIL_CLOSE:
            return take_body(p, p->buffer.len) < 0 ? STEP_ERROR : STEP_NEED_DATA;
        case ST_TUNNEL:
            break;
    }
    p->tunnel_bytes += p->buffer.len;
    bb_clear(&p->buffer);
    return STEP_NEED_DATA;
}

Step parser_next_event(Parser *p, PyObject **event) {
    if (p->ready.count) {
        *event = queue_pop(&p->ready);
        return STEP_EVENT;
    }
    if (p->buffer.len == 0 && p->state != ST_TRAILERS && p->switch_asked == NULL) {
        bb_shrink_if_idle(&p->buffer);
        return STEP_NEED_DATA; /* the common case: everything received was consumed */
    }
    while (true) {
        Step result = step(p, event);
        if (result != STEP_NONE) {
            return result;
        }
    }
}

static int drain_into_ready(Parser *p) {
    while (true) {
        PyObject *event = NULL;
        Step result = step(p, &event);
        if (result == STEP_ERROR) {
            return -1;
        }
        if (result == STEP_NEED_DATA) {
            return 0;
        }
        if (result == STEP_EVENT && queue_push(&p->ready, event) < 0) {
            return -1;
        }
    }
}

/* ---- losing bytes ------------------------------------------------------------------------------ */

/* `_gap_between_messages`: a gap with no message in progress, or inside a head. */
static int gap_between_messages(Parser *p, long long size) {
    PyObject *partial = partial_head(p);
    if (partial == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (partial != NULL) {
        Py_XSETREF(p->head, partial);
        p->body_length = 0;
        if (append_anomaly(p, S_TCP_GAP) < 0) {
            return -1;
        }
        PyObject *message = finish(p, false);
        if (message == NULL || queue_push(&p->ready, message) < 0) {
            return -1;
        }
    }
    Py_ssize_t lost = p->buffer.len;
    bb_clear(&p->buffer);
    PyObject *detail = lost ? PyUnicode_FromFormat("%lld bytes missing, %zd bytes of a message head dropped", size, lost)
                            : PyUnicode_FromFormat("%lld bytes missing", size);
    if (detail == NULL) {
        return -1;
    }
    PyObject *anomaly = new_anomaly(p, strings[S_TCP_GAP], detail);
    if (anomaly == NULL || queue_push(&p->ready, anomaly) < 0) {
        return -1;
    }
    p->resyncing = true;
    return 0;
}

int parser_receive_gap(Parser *p, long long size, double ts) {
    if (p->is_response) {
        p->after_gap = true;
        p->has_ack = false; /* what was acknowledged before the gap says nothing of what follows */
    }
    if (drain_into_ready(p) < 0) {
        return -1;
    }
    p->received += size;
    p->last_ts = ts;
    if (p->state == ST_TUNNEL) {
        p->tunnel_bytes += size;
        return 0;
    }
    if (p->head == NULL) {
        return gap_between_messages(p, size);
    }
    if (p->state == ST_BODY && size < p->remaining) {
        p->remaining -= size;
        return count_lost_body(p, size);
    }
    if (p->state == ST_UNTIL_CLOSE) {
        return count_lost_body(p, size);
    }
    p->body_length += p->state == ST_BODY ? p->remaining : size;
    if (append_anomaly(p, S_TCP_GAP) < 0) {
        return -1;
    }
    PyObject *message = finish(p, false);
    if (message == NULL || queue_push(&p->ready, message) < 0) {
        return -1;
    }
    p->resyncing = true; /* what follows the gap starts anywhere */
    return 0;
}

int parser_close(Parser *p, PyObject **message) {
    *message = NULL;
    if (p->head == NULL) {
        return 0;
    }
    if (p->state == ST_UNTIL_CLOSE) {
        *message = finish(p, !has_tcp_gap(p));
    } else {
        if (append_anomaly(p, S_MESSAGE_INCOMPLETE) < 0) {
            return -1;
        }
        *message = finish(p, false);
    }
    return *message == NULL ? -1 : 0;
}
