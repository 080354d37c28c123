/* Bodies of HTTP/1.x messages (http_message.py `_start_body` to `_read_trailers`): a known
 * length, chunks and trailers, or until the connection closes (RFC 9112 section 6), kept up
 * to the inspection depth and counted whole. Part of the state machine in _fasttrack_http.c. */

#include "_fasttrack_http.h"

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
long long take_body(Parser *p, long long count) {
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

int count_lost_body(Parser *p, long long size) {
    p->body_length += size;
    p->body_kept_whole = false;
    return has_tcp_gap(p) ? 0 : append_anomaly(p, S_TCP_GAP);
}

Step read_body(Parser *p, PyObject **out) {
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

Step read_chunk_size(Parser *p, PyObject **out) {
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

Step read_chunk_data(Parser *p) {
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

Step read_chunk_data_end(Parser *p, PyObject **out) {
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

Step read_trailers(Parser *p, PyObject **out) {
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
