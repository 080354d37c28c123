/* A chained hash table with an activity list through it (see _fasttrack_table.h). */

#include "_fasttrack_table.h"

/* str order of two one-byte-kind strings (what the decoder's addresses are): their bytes,
 * then their lengths, as unicode_compare orders them; PyUnicode_Compare's checks cost more. */
static int latin1_order(PyObject *a, PyObject *b) {
    Py_ssize_t a_len = PyUnicode_GET_LENGTH(a), b_len = PyUnicode_GET_LENGTH(b);
    int order = memcmp(PyUnicode_1BYTE_DATA(a), PyUnicode_1BYTE_DATA(b), (size_t)(a_len < b_len ? a_len : b_len));
    return order != 0 ? order : (a_len > b_len) - (a_len < b_len);
}

/* Python's tuple order on (address, port): the address decides unless equal. */
static int endpoint_less(PyObject *a, long a_port, PyObject *b, long b_port) {
    if (PyUnicode_CheckExact(a) && PyUnicode_CheckExact(b)) { /* one comparison where two would do */
        int order = a == b                                                     ? 0
                    : PyUnicode_KIND(a) == PyUnicode_1BYTE_KIND && PyUnicode_KIND(b) == PyUnicode_1BYTE_KIND
                        ? latin1_order(a, b)
                        : PyUnicode_Compare(a, b);
        return order == 0 ? a_port < b_port : order < 0;
    }
    int equal = PyObject_RichCompareBool(a, b, Py_EQ);
    if (equal < 0) {
        return -1;
    }
    if (equal) {
        return a_port < b_port;
    }
    return PyObject_RichCompareBool(a, b, Py_LT);
}

/* PyObject_Hash, the hash a str keeps read directly (an address is hashed per packet). */
static inline Py_hash_t text_hash(PyObject *text) {
    Py_hash_t hash = PyUnicode_CheckExact(text) ? ((PyASCIIObject *)text)->hash : -1;
    return hash != -1 ? hash : PyObject_Hash(text);
}

int key_of(Key *key, PyObject *tunnel, PyObject *src, long sport, PyObject *dst, long dport) {
    int less = endpoint_less(src, sport, dst, dport);
    if (less < 0) {
        return -1;
    }
    key->tunnel = tunnel;
    if (less) {
        key->addr_a = src, key->port_a = sport, key->addr_b = dst, key->port_b = dport;
    } else {
        key->addr_a = dst, key->port_a = dport, key->addr_b = src, key->port_b = sport;
    }
    /* Most traffic comes through no tunnel: the empty tuple, whose hash is not cached. */
    static Py_hash_t no_tunnel_hash = -1;
    bool no_tunnel = PyTuple_CheckExact(tunnel) && PyTuple_GET_SIZE(tunnel) == 0;
    Py_hash_t tunnel_hash = no_tunnel && no_tunnel_hash != -1 ? no_tunnel_hash : PyObject_Hash(tunnel);
    if (no_tunnel) {
        no_tunnel_hash = tunnel_hash;
    }
    Py_hash_t a_hash = text_hash(key->addr_a);
    Py_hash_t b_hash = text_hash(key->addr_b);
    if (tunnel_hash == -1 || a_hash == -1 || b_hash == -1) {
        return -1;
    }
    Py_uhash_t h = (Py_uhash_t)tunnel_hash;
    h = h * 1000003u ^ (Py_uhash_t)a_hash;
    h = h * 1000003u ^ (Py_uhash_t)key->port_a;
    h = h * 1000003u ^ (Py_uhash_t)b_hash;
    h = h * 1000003u ^ (Py_uhash_t)key->port_b;
    key->hash = (Py_hash_t)(h ^ (h >> 29));
    return 0;
}

static int same_object(PyObject *a, PyObject *b) { return a == b ? 1 : PyObject_RichCompareBool(a, b, Py_EQ); }

/* 1 equal, 0 not, -1 error. */
static int key_equal(const Key *a, const Key *b) {
    if (a->hash != b->hash || a->port_a != b->port_a || a->port_b != b->port_b) {
        return 0;
    }
    int same = same_object(a->addr_a, b->addr_a);
    if (same == 1) {
        same = same_object(a->addr_b, b->addr_b);
    }
    if (same == 1) {
        same = same_object(a->tunnel, b->tunnel);
    }
    return same;
}

Entry *table_find(Table *table, const Key *key, bool *failed) {
    *failed = false;
    if (table->buckets == NULL) {
        return NULL;
    }
    for (Entry *entry = table->buckets[(size_t)key->hash & table->mask]; entry != NULL; entry = entry->chain) {
        int equal = key_equal(&entry->key, key);
        if (equal < 0) {
            *failed = true;
            return NULL;
        }
        if (equal) {
            return entry;
        }
    }
    return NULL;
}

static int grow(Table *table) {
    size_t size = table->buckets == NULL ? 64 : (table->mask + 1) * 2;
    Entry **buckets = PyMem_Calloc(size, sizeof(Entry *));
    if (buckets == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Entry *entry = table->oldest; entry != NULL; entry = entry->newer) {
        size_t slot = (size_t)entry->key.hash & (size - 1);
        entry->chain = buckets[slot];
        buckets[slot] = entry;
    }
    PyMem_Free(table->buckets);
    table->buckets = buckets;
    table->mask = size - 1;
    return 0;
}

int table_insert(Table *table, Entry *entry, const Key *key) {
    if ((table->buckets == NULL || (size_t)table->count >= table->mask + 1) && grow(table) < 0) {
        return -1;
    }
    entry->key = *key;
    Py_INCREF(key->tunnel);
    Py_INCREF(key->addr_a);
    Py_INCREF(key->addr_b);
    size_t slot = (size_t)key->hash & table->mask;
    entry->chain = table->buckets[slot];
    table->buckets[slot] = entry;
    entry->older = table->newest;
    entry->newer = NULL;
    if (table->newest != NULL) {
        table->newest->newer = entry;
    } else {
        table->oldest = entry;
    }
    table->newest = entry;
    table->count++;
    return 0;
}

static void unlink_activity(Table *table, Entry *entry) {
    if (entry->older != NULL) {
        entry->older->newer = entry->newer;
    } else {
        table->oldest = entry->newer;
    }
    if (entry->newer != NULL) {
        entry->newer->older = entry->older;
    } else {
        table->newest = entry->older;
    }
}

void table_remove(Table *table, Entry *entry) {
    Entry **link = &table->buckets[(size_t)entry->key.hash & table->mask];
    while (*link != entry) {
        link = &(*link)->chain;
    }
    *link = entry->chain;
    unlink_activity(table, entry);
    table->count--;
    Py_CLEAR(entry->key.tunnel);
    Py_CLEAR(entry->key.addr_a);
    Py_CLEAR(entry->key.addr_b);
}

void table_touch(Table *table, Entry *entry) {
    if (table->newest == entry) {
        return;
    }
    unlink_activity(table, entry);
    entry->older = table->newest;
    entry->newer = NULL;
    table->newest->newer = entry;
    table->newest = entry;
}

void table_free(Table *table) {
    PyMem_Free(table->buckets);
    table->buckets = NULL;
    table->mask = 0;
    table->count = 0;
    table->oldest = table->newest = NULL;
}
