/* What the parts of the compiled connection tracker (reassembly/_fasttrack*.c) share.
 *
 * The tracker is a port of reassembly/connections.py, tcp_stream.py and http_*.py, the
 * reference it is tested against (tests/reassembly/test_compiled_tracker.py): same events,
 * same order, same field values, same stats. Comments here say how the C differs in form;
 * the why of each rule is in the Python module it comes from.
 */

#ifndef REASSEMBLY_FASTTRACK_H
#define REASSEMBLY_FASTTRACK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#ifdef Py_T_OBJECT_EX
#define SLOT_MEMBER_TYPE Py_T_OBJECT_EX
#else
#define SLOT_MEMBER_TYPE T_OBJECT_EX
#endif

/* ---- growable byte buffer, consumed from the front ------------------------------ */

typedef struct {
    unsigned char *data;
    Py_ssize_t start; /* first live byte */
    Py_ssize_t len;   /* live bytes */
    Py_ssize_t cap;
} ByteBuf;

extern unsigned char bb_empty[1];
/* Never NULL (memchr and memcmp want a pointer even for no bytes). */
static inline unsigned char *bb_ptr(const ByteBuf *b) { return b->data != NULL ? b->data + b->start : bb_empty; }
int bb_append(ByteBuf *b, const unsigned char *data, Py_ssize_t len);
void bb_consume(ByteBuf *b, Py_ssize_t count);
static inline void bb_clear(ByteBuf *b) { b->start = b->len = 0; }
void bb_free(ByteBuf *b);
/* Drop the buffer's memory once it is empty and large (a finished big body). */
void bb_shrink_if_idle(ByteBuf *b);

/* ---- the project's dataclasses, built by filling their slots ---------------------- */

enum { FLOW_CLIENT, FLOW_CLIENT_PORT, FLOW_SERVER, FLOW_SERVER_PORT, FLOW_TUNNEL, FLOW_FIELDS };
/* HttpRequest and HttpResponse share the first MSG_COMMON slots. */
enum {
    MSG_TS,
    MSG_FLOW,
    MSG_VERSION,
    MSG_HEADERS,
    MSG_BODY,
    MSG_BODY_LENGTH,
    MSG_COMPLETE,
    MSG_ANOMALIES,
    MSG_DECODED_BODY,
    MSG_INDEX,
    MSG_COMMON,
    REQ_METHOD = MSG_COMMON,
    REQ_TARGET,
    REQ_FIELDS,
    RESP_STATUS = MSG_COMMON,
    RESP_REASON,
    RESP_REQUEST,
    RESP_FIELDS,
};
enum { ANOM_TS, ANOM_FLOW, ANOM_NAME, ANOM_DETAIL, ANOM_FIELDS };
enum { SW_TS, SW_FLOW, SW_PROTOCOL, SW_TARGET, SW_CONFIRMED, SW_FIELDS };
enum {
    SEG_TS,
    SEG_SRC,
    SEG_DST,
    SEG_SPORT,
    SEG_DPORT,
    SEG_SEQ,
    SEG_ACK,
    SEG_FLAGS,
    SEG_PAYLOAD,
    SEG_TRUNCATED,
    SEG_TUNNEL,
    SEG_FIELDS,
};

#define MAX_FIELDS 13

typedef struct {
    PyTypeObject *type;
    int count;
    Py_ssize_t offsets[MAX_FIELDS];
} Kind;

typedef struct {
    Kind flow, request, response, anomaly, protocol_switch, segment;
    PyObject *decode_body; /* reassembly.body_decoding.decode_body */
    PyObject *counter;     /* collections.Counter */
    PyObject *limits;      /* the ReassemblyLimits, for decode_body */
} Types;

int kind_init(Kind *kind, PyObject *type, const char *const *names, int count);
void types_clear(Types *types);
/* A new object of `kind` with its slots set to `values` (stolen, each non-NULL). */
PyObject *make_object(const Kind *kind, PyObject **values);
/* `object` left out of the cyclic collector's walks (NULL passes through). */
PyObject *untracked(PyObject *object);
/* A copy of `object` (dataclasses.replace with no changes). */
PyObject *copy_object(const Kind *kind, PyObject *object);

static inline PyObject *get_slot(PyObject *object, Py_ssize_t offset) {
    return *(PyObject **)((char *)object + offset);
}
/* Steals `value`, releases what the slot held. */
static inline void replace_slot(PyObject *object, Py_ssize_t offset, PyObject *value) {
    PyObject **slot = (PyObject **)((char *)object + offset);
    PyObject *old = *slot;
    *slot = value;
    Py_XDECREF(old);
}

/* `text == ascii` for a str: PyUnicode_CompareWithASCIIString without its generality (a
 * str of a wider kind holds a character past U+00FF, so it is no ASCII text). */
static inline bool str_equals_ascii(PyObject *text, const char *ascii) {
    size_t n = strlen(ascii);
    return PyUnicode_KIND(text) == PyUnicode_1BYTE_KIND && (size_t)PyUnicode_GET_LENGTH(text) == n &&
           memcmp(PyUnicode_1BYTE_DATA(text), ascii, n) == 0;
}

/* Interned names: anomaly and event names, built once. */
typedef enum {
    S_TCP_GAP,
    S_MESSAGE_INCOMPLETE,
    S_BARE_LF,
    S_OBS_FOLD,
    S_HEADER_WITHOUT_COLON,
    S_WHITESPACE_BEFORE_COLON,
    S_CONTENT_LENGTH_AND_CHUNKED,
    S_UNKNOWN_TRANSFER_ENCODING,
    S_MULTIPLE_CONTENT_LENGTH,
    S_INVALID_CONTENT_LENGTH,
    S_INVALID_CHUNK_SIZE,
    S_CHUNK_MISSING_CRLF,
    S_HEADER_TOO_LONG,
    S_INVALID_HTTP_VERSION,
    S_HTTP09_REQUEST_LINE,
    S_MISSING_TARGET,
    S_SPACE_IN_TARGET,
    S_RESPONSE_TO_UNSEEN_REQUEST,
    S_RESPONSE_WITHOUT_REQUEST,
    S_GARBAGE_BEFORE_REQUEST,
    S_GARBAGE_BEFORE_RESPONSE,
    S_OVERLAP_CONFLICT,
    S_RST_OUT_OF_WINDOW,
    S_HTTP09,
    S_UNKNOWN,
    S_EMPTY,
    S_CONNECT,
    S_HEAD,
    S_SWITCH_PROTOCOL,
    S_COUNT
} StringId;
extern PyObject *strings[S_COUNT];
int strings_init(void);

/* ---- one direction's ordering (tcp_stream.py) ------------------------------------ */

typedef struct {
    uint32_t seq;
    unsigned char *data;
    Py_ssize_t len;
    double ts;
    bool has_ack;
    uint32_t ack;
} Pending;

/* Bytes that became contiguous, with when they arrived and the acknowledgement they carried.
 * `owned` (if not NULL) is freed by parts_release. */
typedef struct {
    const unsigned char *data;
    Py_ssize_t len;
    double ts;
    bool has_ack;
    uint32_t ack;
    unsigned char *owned;
} Part;

typedef struct {
    Part *items;
    Py_ssize_t count, cap;
} Parts;

int parts_push(Parts *parts, Part part);
void parts_release(Parts *parts);

typedef struct {
    bool has_next;
    uint32_t next_seq;
    bool has_initial;
    uint32_t initial_seq;
    long long pending_bytes;
    long long overlap_conflicts;
    Py_ssize_t keep; /* overlap_check_bytes */
    Pending *pending;
    Py_ssize_t npending, cap_pending;
    ByteBuf recent; /* the last `keep` delivered bytes are its last bytes */
} Stream;

void stream_init(Stream *s, Py_ssize_t keep);
void stream_free(Stream *s);
void stream_start(Stream *s, uint32_t isn);
int stream_add_parts(Stream *s, uint32_t seq, const unsigned char *payload, Py_ssize_t len, double ts, bool has_ack,
                     uint32_t ack, Parts *out);
/* Returns -1 on error; *lost gets the hole's size (0 when nothing waits). */
int stream_skip_hole(Stream *s, long long *lost, Parts *out);

static inline int32_t seq_distance(uint32_t seq, uint32_t base) { return (int32_t)(seq - base); }

/* ---- HTTP/1.x message parsing (http_message.py, http_request.py, http_response.py) - */

typedef enum { ST_HEAD, ST_BODY, ST_CHUNK_SIZE, ST_CHUNK_DATA, ST_CHUNK_DATA_END, ST_TRAILERS, ST_UNTIL_CLOSE, ST_TUNNEL } State;

typedef struct {
    PyObject *request;
    double completed_at;
    bool has_end_seq;
    uint32_t end_seq;
} Unanswered;

typedef struct {
    PyObject **items;
    Py_ssize_t head, count, cap;
} EventQueue;

typedef struct {
    const Types *types;
    long long max_head_bytes;
    long long body_inspection_bytes;
    bool is_response;
    PyObject *flow; /* owned */
    bool resyncing;
    ByteBuf buffer;
    EventQueue ready;
    State state;
    double last_ts, message_ts;
    PyObject *head;      /* the message being read, or NULL; owned */
    long long head_index;
    PyObject *anomalies; /* list of str, or NULL before the first message */
    ByteBuf body;
    long long body_length;
    bool body_kept_whole;
    long long remaining;
    long long count;
    long long received;
    long long last_end_offset;
    long long tunnel_bytes;
    PyObject *switch_asked; /* a request, or NULL; owned */
    bool switch_confirmed;
    bool head_handed_out;
    /* responses only */
    Unanswered *unanswered; /* a ring */
    Py_ssize_t un_head, un_count, un_cap;
    bool has_ack;
    uint32_t ack;
    bool after_gap;
    long long forgotten_requests;
    long long requests_unanswered_after_gap;
} Parser;

/* What a step of the parser gave: nothing yet (go on), need more data, an event, an error. */
typedef enum { STEP_ERROR = -1, STEP_NONE = 0, STEP_NEED_DATA = 1, STEP_EVENT = 2 } Step;

int parser_init(Parser *p, const Types *types, PyObject *flow, bool is_response, bool midstream,
                long long max_head_bytes, long long body_inspection_bytes);
void parser_free(Parser *p);
int parser_receive_data(Parser *p, const unsigned char *data, Py_ssize_t len, double ts, bool has_ack, uint32_t ack);
int parser_receive_gap(Parser *p, long long size, double ts);
/* STEP_NEED_DATA or STEP_EVENT (a new reference in *event), or STEP_ERROR. */
Step parser_next_event(Parser *p, PyObject **event);
/* The unfinished message (new reference) or NULL in *message; -1 on error. */
int parser_close(Parser *p, PyObject **message);
/* An event queued and not handed out (new reference), without parsing further; NULL when none. */
PyObject *parser_take_queued(Parser *p);
/* `in_progress`: a borrowed reference (or NULL); the head is the caller's from now on. */
PyObject *parser_in_progress(Parser *p);
bool parser_switch_protocol(Parser *p);
int parser_expect(Parser *p, PyObject *request, double completed_at, bool has_end_seq, uint32_t end_seq);

/* Start-line and header-field helpers (_fasttrack_lines.c). */
typedef struct {
    const unsigned char *method, *target, *version; /* version NULL for HTTP/0.9 */
    Py_ssize_t method_len, target_len, version_len;
    bool invalid_version, http09, missing_target, space_in_target;
} RequestLine;

bool split_request_line(const unsigned char *line, Py_ssize_t len, RequestLine *out);
typedef struct {
    const unsigned char *version, *reason;
    Py_ssize_t reason_len;
    int status;
} StatusLine;
bool match_status_line(const unsigned char *line, Py_ssize_t len, StatusLine *out);
/* Where the head ends (\r?\n\r?\n): start and end of the terminator, or false; and whether
 * the head has a line ending in a bare LF (the terminator's own included). */
bool find_head_end(const unsigned char *buf, Py_ssize_t len, Py_ssize_t *start, Py_ssize_t *end, bool *bare_lf);
/* The first resync point at or after 1, or -1. */
Py_ssize_t find_request_resync(const unsigned char *buf, Py_ssize_t len);
Py_ssize_t find_response_resync(const unsigned char *buf, Py_ssize_t len);
bool looks_like_request(const unsigned char *buf, Py_ssize_t len);  /* connections._LOOKS_LIKE_REQUEST */
bool looks_like_response(const unsigned char *buf, Py_ssize_t len); /* connections._LOOKS_LIKE_RESPONSE */
/* `bytes.decode("latin-1")`, short texts shared from a cache. */
PyObject *latin1(const unsigned char *p, Py_ssize_t len);
bool is_tchar(unsigned char c);
bool is_ascii_space(unsigned char c); /* bytes.strip() */
bool is_str_space(unsigned char c);   /* str.strip() on a Latin-1 string */
/* `headers` (a tuple of (str, str)): the value of the first field named `name` (ASCII,
 * lower case), borrowed, or NULL. */
PyObject *header_value(PyObject *headers, const char *name, Py_ssize_t name_len);
/* The header fields of `lines` (a head without its start line), anomalies appended. */
PyObject *parse_header_lines(const unsigned char *lines, Py_ssize_t len, bool stop_before_last, PyObject *anomalies);

#endif
