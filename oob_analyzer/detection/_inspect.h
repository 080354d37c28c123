/* What the four files of the PointInspector share (_inspect.c has the whole story):
 * _inspect_decode.c decodes a value into its variants as decoders.decoded_variants does,
 * _inspect_judge.c says whether any default detector may find something in one variant,
 * _inspect.c is the type and the point-level early returns, _inspect_loops.c the engine's
 * per-point and per-header-field loops with their cache look-ups. */
#ifndef OOB_INSPECT_H
#define OOB_INSPECT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef int (*sqli_function)(const char *text, size_t length, char fingerprint[]);
typedef int (*xss_function)(const char *text, size_t length);

#define DECODER_COUNT 8
#define FINGERPRINT_BYTES 8
#define INERT_MAX_CHARS 12
#define KIND_SLOTS 8

/* A bit per decoder of `decoders._DECODERS`, in its order: set when the decoder's trigger is in
 * a text. A decoder whose bit is clear returns the text unchanged (its own early return). */
enum {
    GATE_PERCENT = 1 << 0,         /* percent_decode: '%' or '+' */
    GATE_PERCENT_UNICODE = 1 << 1, /* decode_percent_unicode: "%u" or "%U" */
    GATE_JS = 1 << 2,              /* decode_js_escapes: '\\' */
    GATE_HTML = 1 << 3,            /* decode_html_entities: '&' */
    GATE_OVERLONG = 1 << 4,        /* decode_overlong_utf8: U+00C0 or U+00C1 */
    GATE_BASE64 = 1 << 5,          /* decode_base64: 8+ characters with A-Z and a-z in them */
    GATE_COMMENTS = 1 << 6,        /* strip_comments: "/ *" "--" '#' '$' '\'' '"' '\\' */
    GATE_TAGS = 1 << 7,            /* strip_interleaved_tags: '<' */
};
enum { DECODE_JS_ESCAPES = 2, STRIP_COMMENTS = 6 }; /* the indexes of the decoders done in C */

/* What a point's kind decides: worked out once per kind object (a handful exist, the same
 * interned strings point after point). */
typedef struct {
    int anomaly;       /* ProtocolAnomalyDetector's kind: every variant goes to Python */
    int header;        /* in _ALWAYS_INSPECTED: never inert */
    int tokenizers;    /* SQLi and XSS judge this kind (not name, json_key, anomaly, xml) */
    int redirect_kind; /* OpenRedirectDetector.kinds holds this kind */
} KindFacts;

typedef struct {
    PyObject_HEAD
    PyObject *decoders;      /* tuple of the DECODER_COUNT Python decoders, in order */
    PyObject *normalize;     /* decoders.normalize_for_matching, for non-ASCII text */
    PyObject *scan;          /* the signature database's `scan`, or None */
    PyObject *matching_rules; /* SignatureDetector._matching_rules (no hyperscan), or None */
    PyObject *rule_kinds;    /* per rule: (kinds or None, skip_kinds) */
    PyObject *collect;       /* the C match handler given to `scan`, bound to `matched` */
    PyObject *matched;       /* the rule ids of one scan: emptied after each */
    /* The kinds seen last, and what each decides: a request's points take turns among a
     * handful of kinds (path, query, header, cookie, jwt, json_key...), so one slot missed. */
    struct {
        PyObject *kind;
        KindFacts facts;
    } known_kinds[KIND_SLOTS];
    int next_kind_slot;
    void *library;           /* dlopen handle of libinjection's shared object */
    sqli_function sqli;
    xss_function xss;
    int max_depth;
    Py_ssize_t max_variants;
} PointInspector;

/* What a point's kind and name decide, once per point. */
typedef struct {
    PyObject *kind;
    KindFacts of_kind;
    int sqli; /* SQLi judges this point (a tokenizer kind, not a media-type header) */
} PointFacts;

/* _inspect.c */
PyObject *point_suspects(PointInspector *self, PyObject *name, PyObject *value, PyObject *kind);

/* _inspect_loops.c */
int loops_init(void);
PyObject *judge_points(PointInspector *self, PyObject *const *arguments, Py_ssize_t count);
PyObject *judge_part(PointInspector *self, PyObject *const *arguments, Py_ssize_t count);
PyObject *judge_headers(PointInspector *self, PyObject *const *arguments, Py_ssize_t count);

/* _inspect_decode.c */
void decode_init(void); /* fills the gate table, once at import */
unsigned int decoder_gates(PyObject *text);
PyObject *decoded_variants(PointInspector *self, PyObject *value);

/* _inspect_judge.c */
int judge_init(void); /* the one-byte lower-case table, from str.lower, once at import */
const KindFacts *kind_facts(PointInspector *self, PyObject *kind);
void point_facts(PyObject *kind, const KindFacts *of_kind, PyObject *name, PointFacts *facts);
int variant_is_clean(PointInspector *self, PyObject *variant, const PointFacts *facts);

#endif
