/* The compiled tracker's connections (what connections.py calls _Connection and _Direction),
 * shared by the tracker type (_fasttrack_tracker.c) and its per-connection logic
 * (_fasttrack_conn.c). */

#ifndef REASSEMBLY_FASTTRACK_CONN_H
#define REASSEMBLY_FASTTRACK_CONN_H

#include "_fasttrack_table.h"

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

/* One TCP segment as the tracker reads it (capture.packets.TcpSegment). */
typedef struct {
    double ts;
    PyObject *src, *dst, *tunnel; /* borrowed */
    long sport, dport;
    uint32_t seq, ack;
    int flags;
    const unsigned char *payload;
    Py_ssize_t len;
    bool truncated;
} Segment;

typedef struct {
    Stream stream;
    Parser parser;
    bool has_fin;
    uint32_t fin_seq;
    bool gap_after_truncated;
    long long conflicts_reported;
    bool seen, delivered;
    bool has_acked;
    uint32_t acked;
} Direction;

typedef struct {
    Entry entry; /* first: a Connection is its table entry */
    PyObject *flow, *client_addr;
    long client_port;
    Direction client, server;
    double last_ts;
    bool from_handshake;
    long long early_expected;
    long long pending_bytes;
    Segment *held; /* server segments ahead of the client's bytes; payloads owned */
    Py_ssize_t held_count, held_cap;
    long long held_bytes;
} Connection;

typedef struct {
    Entry entry;
    double closed_at;
} Closed;

#define STATS(X)                                    \
    X(connections)                                  \
    X(connections_picked_up_midstream)              \
    X(segment_before_connection_known)              \
    X(segments_after_close)                         \
    X(connections_reused)                           \
    X(connections_closed)                           \
    X(connections_open_at_end)                      \
    X(connections_evicted_table_full)               \
    X(connections_evicted_idle)                     \
    X(resets_out_of_window)                         \
    X(gaps_at_close)                                \
    X(bytes_not_parsed_after_protocol_switch)       \
    X(requests_forgotten_unanswered_limit)          \
    X(requests_whose_response_was_lost)             \
    X(overlap_conflicts)                            \
    X(connections_not_http)                         \
    X(responses_released_before_their_request)     \
    X(gaps_forced_by_flow_buffer_limit)             \
    X(gaps_forced_by_total_buffer_limit)            \
    X(gaps_after_truncated_segment)                 \
    X(bytes_lost_in_gaps)                           \
    X(responses_without_request)                    \
    X(protocol_switches_confirmed)                  \
    X(protocol_switches_inferred)

#define STAT_ENUM(name) STAT_##name,
typedef enum { STATS(STAT_ENUM) STAT_COUNT } StatId;
#undef STAT_ENUM

typedef struct {
    PyObject_HEAD
    Types types;
    long long max_flows;
    double idle_timeout;
    long long max_pending_per_direction, max_pending_total, overlap_check_bytes, max_head_bytes,
        body_inspection_bytes;
    Table connections, closed;
    long long pending_total;
    double next_idle_check;
    long long ack_events, ack_bytes, gap_events, gap_bytes;
    long long stats[STAT_COUNT];
    /* Counter keys appear in the order they were first counted, as in the reference. */
    int stat_order[STAT_COUNT];
    int stats_touched;
    bool touched[STAT_COUNT];
    PyObject *out; /* the events of the call in progress */
} Tracker;

static inline void count_stat(Tracker *t, StatId id, long long n) {
    if (!t->touched[id]) {
        t->touched[id] = true;
        t->stat_order[t->stats_touched++] = id;
    }
    t->stats[id] += n;
}

Connection *connection_open(Tracker *t, const Segment *seg);
void connection_free(Connection *c);
int connection_receive(Tracker *t, Connection *c, Direction *d, const Segment *seg);
int connection_release_held(Tracker *t, Connection *c, bool force);
bool answers_unseen_bytes(const Connection *c, const Segment *seg);
int connection_hold(Tracker *t, Connection *c, const Segment *seg);
void note_ack(Tracker *t, Direction *acked, uint32_t ack);
int connection_close(Tracker *t, Connection *c, StatId reason);
int emit_anomaly(Tracker *t, Connection *c, double ts, PyObject *name, uint32_t seq);

/* _fasttrack_tracker.c: a TcpSegment read; one segment tracked (its events appended to t->out). */
int read_segment(Tracker *t, PyObject *object, Segment *seg);
int tracker_receive(Tracker *t, const Segment *seg);
/* _fasttrack_feed.c */
extern const char feed_records_doc[];
PyObject *tracker_feed_records(Tracker *t, PyObject *const *args, Py_ssize_t nargs);
extern const char feed_frames_doc[];
PyObject *tracker_feed_frames(Tracker *t, PyObject *const *args, Py_ssize_t nargs);

#endif
