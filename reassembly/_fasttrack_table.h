/* Connections by (tunnel, both endpoints), least recently active first: the compiled
 * tracker's OrderedDicts (connections.py `_connections` and `_recently_closed`). */

#ifndef REASSEMBLY_FASTTRACK_TABLE_H
#define REASSEMBLY_FASTTRACK_TABLE_H

#include "_fasttrack.h"

/* connections._connection_id: the endpoints in order, so both directions share a key. */
typedef struct {
    PyObject *tunnel, *addr_a, *addr_b; /* borrowed while looking up, owned once in a table */
    long port_a, port_b;
    Py_hash_t hash;
} Key;

typedef struct Entry {
    Key key;
    struct Entry *chain;       /* next in the bucket */
    struct Entry *older, *newer; /* the order of activity */
} Entry;

typedef struct {
    Entry **buckets;
    size_t mask;
    Py_ssize_t count;
    Entry *oldest, *newest;
} Table;

/* The key of a segment from `src`:`sport` to `dst`:`dport`; -1 on error. */
int key_of(Key *key, PyObject *tunnel, PyObject *src, long sport, PyObject *dst, long dport);
/* The entry under `key` (NULL if none; *failed set on error). */
Entry *table_find(Table *table, const Key *key, bool *failed);
/* Adds `entry` (its key copied and owned) as the most recently active; -1 on error. */
int table_insert(Table *table, Entry *entry, const Key *key);
/* Takes `entry` out (its key released); the caller frees it. */
void table_remove(Table *table, Entry *entry);
void table_touch(Table *table, Entry *entry);
void table_free(Table *table);

#endif
