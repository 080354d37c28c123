/* What the parts of the compiled HTTP/1.x parser share: heads (_fasttrack_head.c), bodies
 * (_fasttrack_body.c) and the state machine around them (_fasttrack_http.c). */

#ifndef REASSEMBLY_FASTTRACK_HTTP_H
#define REASSEMBLY_FASTTRACK_HTTP_H

#include "_fasttrack.h"

/* Body framings that are no length (http_message.BodyFraming, and "neither header"). */
#define FRAMING_CHUNKED (-10)
#define FRAMING_UNTIL_CLOSE (-11)
#define FRAMING_TUNNEL (-12)
#define FRAMING_NONE (-13)

/* A Content-Length past 18 digits or a chunk size past 15 hex digits is invalid: no real
 * body is that long, and the count must fit a 64-bit integer (http_message.py says the same). */
#define MAX_LENGTH_DIGITS 18
#define MAX_CHUNK_SIZE_DIGITS 15

PyObject *new_anomaly(Parser *p, PyObject *name, PyObject *detail);
bool is_start_line(Parser *p, const unsigned char *line, Py_ssize_t len);
PyObject *parse_start_line(Parser *p, const unsigned char *line, Py_ssize_t len);
Step discard(Parser *p, PyObject *name, Py_ssize_t count, PyObject *detail, PyObject **out);
Step parse_head(Parser *p, PyObject **out);
PyObject *partial_head(Parser *p);
long long content_length_framing(Parser *p, PyObject *headers);
long long body_framing(Parser *p, PyObject *message);
bool request_method_is(PyObject *request, const Types *types, const char *method);
void unanswered_pop(Parser *p);
/* _fasttrack_http.c: finishing a message */
int append_anomaly(Parser *p, StringId name);
bool has_tcp_gap(Parser *p);
/* `_filled`: the head with these fields, in place while the parser is its only holder, else a
 * copy; steals every value. */
PyObject *filled(Parser *p, PyObject *head, PyObject **values, const int *fields, int count);
/* The message finished (`complete` or not) into *out: STEP_EVENT or STEP_ERROR. */
Step finished(Parser *p, bool complete, PyObject **out);
/* finished(False) after naming why, and resynchronise after it. */
Step cut_short(Parser *p, StringId anomaly, PyObject **out);
/* _fasttrack_body.c: the body states' steps */
Step start_body(Parser *p, PyObject *message, PyObject **out);
long long take_body(Parser *p, long long count);
int count_lost_body(Parser *p, long long size);
Step read_body(Parser *p, PyObject **out);
Step read_chunk_size(Parser *p, PyObject **out);
Step read_chunk_data(Parser *p);
Step read_chunk_data_end(Parser *p, PyObject **out);
Step read_trailers(Parser *p, PyObject **out);

#endif
