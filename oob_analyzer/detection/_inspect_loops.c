/* The engine's per-point and per-header-field loops: cache look-ups, the inspector's verdict,
 * and a call back into Python only for the points in which a detector may find something.
 *
 * Where it sits: DetectionEngine.analyze (engine.py) hands the path and the query to
 * `judge_part`, the points of the body to `judge_points`, and the request's header fields to
 * `judge_headers`, instead of its Python loops (`_judge_part`, `_cached`, `_judge_header`),
 * when the inspector is built. They do what those
 * loops do, in the same order, over the same VerdictCache objects: the young generation is
 * the VerdictCache dict itself, the old one its `_old` dict; `recall` and `put` are repeated
 * here (the move of an old verdict back to the young generation, the roll-over when the young
 * one is full), and a cache stays a valid VerdictCache for the Python code at every step.
 * tests/detection/test_compiled_loops.py holds the hits and the cache contents to the Python
 * loops'.
 *
 * A hit needs only the dict's own look-up: the cache's size and old generation are read from
 * the Python object on the first miss of a call, and again after any call back into the engine
 * (`inspect_suspects`, `header_points`).
 */
#include "_inspect.h"

/* engine._CACHED_VALUE_CHARS: longer values are judged every time, never kept. */
#define CACHED_VALUE_CHARS 512

static PyObject *size_name;            /* "size" */
static PyObject *generation_size_name; /* "_generation_size" */
static PyObject *old_name;             /* "_old" */

/* A VerdictCache as its `recall` and `put` see it. */
typedef struct {
    PyObject *young; /* borrowed (the caller's argument): the VerdictCache, a dict subclass */
    PyObject *old;   /* owned once loaded: its `_old` dict */
    Py_ssize_t size;
    Py_ssize_t generation_size;
    int loaded;
    /* Python may change a cache whenever it runs: what was read is good while this count,
     * the calls into Python of this judging, is what it was when read. */
    const Py_ssize_t *python_calls;
    Py_ssize_t loaded_at;
} Generations;

static void generations_start(Generations *cache, PyObject *young, const Py_ssize_t *python_calls)
{
    cache->young = young;
    cache->python_calls = python_calls;
    cache->loaded_at = 0;
    cache->old = NULL;
    cache->size = 0;
    cache->generation_size = 1;
    cache->loaded = 0;
}

static void generations_end(Generations *cache)
{
    Py_CLEAR(cache->old);
}

/* `getattr(cache, name)` as a new reference. A VerdictCache's attributes are instance
 * attributes: when the type has instance dicts, does not override attribute look-up and has
 * nothing of that name (which could be a descriptor), getattr returns the instance dict's entry, read here
 * directly. That is three dict look-ups per re-read instead of three full getattr calls; the
 * re-read follows every call back into Python, once per header field seen for the first time. */
static PyObject *cache_attribute(PyObject *cache, PyObject *name)
{
    PyTypeObject *type = Py_TYPE(cache);
    if (type->tp_getattro != PyObject_GenericGetAttr || type->tp_dictoffset == 0 || _PyType_Lookup(type, name) != NULL)
        return PyObject_GetAttr(cache, name);
    PyObject *dict = PyObject_GenericGetDict(cache, NULL);
    if (dict == NULL)
        return NULL;
    PyObject *value = PyDict_Check(dict) ? PyDict_GetItemWithError(dict, name) : NULL;
    Py_XINCREF(value);
    Py_DECREF(dict);
    if (value == NULL && !PyErr_Occurred())
        return PyObject_GetAttr(cache, name); /* not there: getattr's own error (or __getattr__) */
    return value;
}

static int read_size(PyObject *cache, PyObject *name, Py_ssize_t *size)
{
    PyObject *number = cache_attribute(cache, name);
    if (number == NULL)
        return -1;
    *size = PyLong_AsSsize_t(number);
    Py_DECREF(number);
    return *size == -1 && PyErr_Occurred() ? -1 : 0;
}

static int generations_load(Generations *cache)
{
    if (cache->loaded && cache->loaded_at == *cache->python_calls)
        return 0;
    /* The sizes are fixed when a VerdictCache is made: read once per judging. Only `_old`
     * is replaced (by `put`), so only it is read again after a call into Python. */
    if (!cache->loaded && (read_size(cache->young, size_name, &cache->size) < 0 ||
                           read_size(cache->young, generation_size_name, &cache->generation_size) < 0))
        return -1;
    PyObject *old = cache_attribute(cache->young, old_name);
    if (old == NULL)
        return -1;
    if (!PyDict_Check(old)) {
        Py_DECREF(old);
        PyErr_SetString(PyExc_TypeError, "a VerdictCache's old generation is a dict");
        return -1;
    }
    Py_XSETREF(cache->old, old);
    cache->loaded = 1;
    cache->loaded_at = *cache->python_calls;
    return 0;
}

/* VerdictCache.put: at a full young generation, it becomes the old one. */
static int generations_put(Generations *cache, PyObject *key, PyObject *verdict)
{
    if (generations_load(cache) < 0)
        return -1;
    if (cache->size == 0)
        return 0;
    if (PyDict_GET_SIZE(cache->young) >= cache->generation_size) {
        PyObject *old = PyDict_Copy(cache->young); /* `dict(self)`: a plain dict, in order */
        if (old == NULL)
            return -1;
        if (PyObject_SetAttr(cache->young, old_name, old) < 0) {
            Py_DECREF(old);
            return -1;
        }
        Py_XSETREF(cache->old, old);
        PyDict_Clear(cache->young);
    }
    return PyDict_SetItem(cache->young, key, verdict);
}

/* VerdictCache.recall: 1 and a new reference in *verdict when the old generation had it (now
 * moved to the young one), 0 when not, -1 on error. */
static int generations_recall(Generations *cache, PyObject *key, PyObject **verdict)
{
    if (generations_load(cache) < 0)
        return -1;
    if (PyDict_GET_SIZE(cache->old) == 0)
        return 0;
    PyObject *found = PyDict_GetItemWithError(cache->old, key);
    if (found == NULL)
        return PyErr_Occurred() ? -1 : 0;
    Py_INCREF(found);
    if (PyDict_DelItem(cache->old, key) < 0) {
        Py_DECREF(found);
        return -1;
    }
    if (found == Py_None) { /* `pop(key, None)` is None: dropped, not moved */
        Py_DECREF(found);
        return 0;
    }
    if (generations_put(cache, key, found) < 0) {
        Py_DECREF(found);
        return -1;
    }
    *verdict = found;
    return 1;
}

/* The dict's own `get`: a new reference, or NULL (with an error set, or a miss). */
static PyObject *young_verdict(Generations *cache, PyObject *key)
{
    PyObject *verdict = PyDict_GetItemWithError(cache->young, key);
    if (verdict == Py_None)
        return NULL; /* the engine's `is None`: a miss */
    return Py_XNewRef(verdict);
}

/* --- one point ------------------------------------------------------------------------------ */

typedef struct {
    PointInspector *inspector;
    PyObject *inspect_suspects; /* engine._inspect_suspects(point, variants) -> list of findings */
    Generations points;         /* the engine's point cache */
    Py_ssize_t python_calls;    /* calls into Python so far (Generations.python_calls) */
} Judging;

/* `point` as a RequestPoint's (name, value, kind), all borrowed; -1 with TypeError if not. */
static int unpack_point(PyObject *point, PyObject **name, PyObject **value, PyObject **kind)
{
    if (!PyTuple_Check(point) || PyTuple_GET_SIZE(point) != 3)
        goto wrong;
    *name = PyTuple_GET_ITEM(point, 0);
    *value = PyTuple_GET_ITEM(point, 1);
    *kind = PyTuple_GET_ITEM(point, 2);
    if (PyUnicode_Check(*name) && PyUnicode_Check(*value) && PyUnicode_Check(*kind))
        return 0;
wrong:
    PyErr_SetString(PyExc_TypeError, "a RequestPoint (name: str, value: str, kind: str)");
    return -1;
}

/* `tuple(engine._inspect_point(point))`, uncached: a new tuple, NULL on error. */
static PyObject *point_verdict(Judging *judging, PyObject *point, PyObject *name, PyObject *value, PyObject *kind)
{
    PyObject *suspects = point_suspects(judging->inspector, name, value, kind);
    if (suspects == NULL)
        return NULL;
    if (suspects == Py_None) {
        Py_DECREF(suspects);
        return PyTuple_New(0);
    }
    PyObject *arguments[] = {point, suspects};
    PyObject *findings = PyObject_Vectorcall(judging->inspect_suspects, arguments, 2, NULL);
    Py_DECREF(suspects);
    judging->python_calls++;
    if (findings == NULL)
        return NULL;
    PyObject *verdict = PySequence_Tuple(findings);
    Py_DECREF(findings);
    return verdict;
}

/* engine._cached(point): a new tuple, NULL on error. */
static PyObject *cached_verdict(Judging *judging, PyObject *point)
{
    PyObject *name, *value, *kind;
    if (unpack_point(point, &name, &value, &kind) < 0)
        return NULL;
    if (PyUnicode_GET_LENGTH(value) > CACHED_VALUE_CHARS)
        return point_verdict(judging, point, name, value, kind);
    Generations *cache = &judging->points;
    PyObject *verdict = young_verdict(cache, point);
    if (verdict != NULL || PyErr_Occurred())
        return verdict;
    if (generations_load(cache) < 0)
        return NULL;
    if (cache->size == 0) /* `cache_size == 0`: nothing is kept, nothing is looked up */
        return point_verdict(judging, point, name, value, kind);
    int recalled = generations_recall(cache, point, &verdict);
    if (recalled != 0)
        return recalled > 0 ? verdict : NULL;
    verdict = point_verdict(judging, point, name, value, kind);
    if (verdict == NULL)
        return NULL;
    if (generations_put(cache, point, verdict) < 0) {
        Py_DECREF(verdict);
        return NULL;
    }
    return verdict;
}

/* Appends the findings of `verdict` (a tuple) to *findings, made on first need; steals verdict. */
static int add_findings(PyObject **findings, PyObject *verdict)
{
    if (verdict == NULL)
        return -1;
    int failed = 0;
    if (PyTuple_GET_SIZE(verdict) > 0) {
        if (*findings == NULL)
            *findings = PyList_New(0);
        failed = *findings == NULL || PyList_SetSlice(*findings, PyList_GET_SIZE(*findings),
                                                      PyList_GET_SIZE(*findings), verdict) < 0;
    }
    Py_DECREF(verdict);
    return failed ? -1 : 0;
}

static PyObject *as_verdict(PyObject *findings)
{
    if (findings == NULL)
        return PyTuple_New(0);
    PyObject *verdict = PyList_AsTuple(findings);
    Py_DECREF(findings);
    return verdict;
}

/* --- the loops ------------------------------------------------------------------------------ */

static int start_judging(Judging *judging, PointInspector *inspector, PyObject *cache, PyObject *inspect_suspects)
{
    if (!PyDict_Check(cache)) {
        PyErr_SetString(PyExc_TypeError, "the point cache is a VerdictCache");
        return -1;
    }
    if (!PyCallable_Check(inspect_suspects)) {
        PyErr_SetString(PyExc_TypeError, "inspect_suspects is callable");
        return -1;
    }
    judging->inspector = inspector;
    judging->inspect_suspects = inspect_suspects;
    judging->python_calls = 0;
    generations_start(&judging->points, cache, &judging->python_calls);
    return 0;
}

/* The findings of every point of `points`, in order, each judged through the cache. */
static PyObject *points_verdict(Judging *judging, PyObject *points)
{
    PyObject *sequence = PySequence_Fast(points, "points: a sequence of RequestPoint");
    if (sequence == NULL)
        return NULL;
    PyObject *findings = NULL;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(sequence); i++) {
        /* Held: the Python called back could take it out of the list. */
        PyObject *point = Py_NewRef(PySequence_Fast_GET_ITEM(sequence, i));
        int failed = add_findings(&findings, cached_verdict(judging, point));
        Py_DECREF(point);
        if (failed) {
            Py_XDECREF(findings);
            Py_DECREF(sequence);
            return NULL;
        }
    }
    Py_DECREF(sequence);
    return as_verdict(findings);
}

PyObject *judge_points(PointInspector *self, PyObject *const *arguments, Py_ssize_t count)
{
    if (count != 3) {
        PyErr_SetString(PyExc_TypeError, "judge_points(points, cache, inspect_suspects)");
        return NULL;
    }
    Judging judging;
    if (start_judging(&judging, self, arguments[1], arguments[2]) < 0)
        return NULL;
    PyObject *verdict = points_verdict(&judging, arguments[0]);
    generations_end(&judging.points);
    return verdict;
}

/* engine._judge_part(part, text, points_of): the verdict on the whole path or query, kept
 * under (part, text) when the text is short enough, its points judged on a miss. */
PyObject *judge_part(PointInspector *self, PyObject *const *arguments, Py_ssize_t count)
{
    if (count != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "judge_part(part, text, points_of, part_cache, point_cache, inspect_suspects)");
        return NULL;
    }
    PyObject *part = arguments[0], *text = arguments[1], *points_of = arguments[2], *part_cache = arguments[3];
    if (!PyUnicode_Check(part) || !PyUnicode_Check(text) || !PyCallable_Check(points_of) ||
        !PyDict_Check(part_cache)) {
        PyErr_SetString(PyExc_TypeError, "part and text are str, points_of callable, part_cache a VerdictCache");
        return NULL;
    }
    Judging judging;
    if (start_judging(&judging, self, arguments[4], arguments[5]) < 0)
        return NULL;
    Generations parts;
    generations_start(&parts, part_cache, &judging.python_calls);
    PyObject *points = NULL, *verdict = NULL;
    PyObject *key = PyTuple_Pack(2, part, text);
    if (key == NULL)
        goto done;
    verdict = young_verdict(&parts, key);
    if (verdict != NULL || PyErr_Occurred())
        goto done;
    if (generations_recall(&parts, key, &verdict) != 0)
        goto done; /* recalled, or an error (verdict left NULL) */
    points = PyObject_CallOneArg(points_of, text);
    judging.python_calls++;
    if (points == NULL)
        goto done;
    verdict = points_verdict(&judging, points);
    if (verdict != NULL && PyUnicode_GET_LENGTH(text) <= CACHED_VALUE_CHARS &&
        generations_put(&parts, key, verdict) < 0)
        Py_CLEAR(verdict);
done:
    Py_XDECREF(points);
    Py_XDECREF(key);
    generations_end(&parts);
    generations_end(&judging.points);
    return verdict;
}

/* engine._judge_header(field), after a miss of `field` in the header cache. */
static PyObject *field_verdict(Judging *judging, Generations *fields, PyObject *header_points, PyObject *field)
{
    if (!PyTuple_Check(field) || PyTuple_GET_SIZE(field) != 2 || !PyUnicode_Check(PyTuple_GET_ITEM(field, 0)) ||
        !PyUnicode_Check(PyTuple_GET_ITEM(field, 1))) {
        PyErr_SetString(PyExc_TypeError, "a header field is a (name: str, value: str) tuple");
        return NULL;
    }
    PyObject *value = PyTuple_GET_ITEM(field, 1);
    PyObject *name_and_value[] = {PyTuple_GET_ITEM(field, 0), value};
    PyObject *points = PyObject_Vectorcall(header_points, name_and_value, 2, NULL);
    judging->python_calls++;
    if (points == NULL)
        return NULL;
    PyObject *sequence = PySequence_Fast(points, "header_points: a sequence of RequestPoint");
    Py_DECREF(points);
    if (sequence == NULL)
        return NULL;
    PyObject *findings = NULL;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(sequence); i++) {
        PyObject *point = Py_NewRef(PySequence_Fast_GET_ITEM(sequence, i)); /* held, as above */
        PyObject *name, *point_value, *kind;
        PyObject *verdict = NULL;
        /* The field's own value was just missed in the header cache: judged as it is. Its
         * cookies and token claims often repeat inside fields seen once: through the cache. */
        if (unpack_point(point, &name, &point_value, &kind) == 0) {
            if (kind_facts(judging->inspector, kind)->header)
                verdict = point_verdict(judging, point, name, point_value, kind);
            else
                verdict = cached_verdict(judging, point);
        }
        Py_DECREF(point);
        if (add_findings(&findings, verdict) < 0) {
            Py_XDECREF(findings);
            Py_DECREF(sequence);
            return NULL;
        }
    }
    Py_DECREF(sequence);
    PyObject *verdict = as_verdict(findings);
    if (verdict != NULL && PyUnicode_GET_LENGTH(value) <= CACHED_VALUE_CHARS &&
        generations_put(fields, field, verdict) < 0)
        Py_CLEAR(verdict);
    return verdict;
}

/* The verdict on one header field: the header cache's, else judged and kept. */
static PyObject *header_verdict(Judging *judging, Generations *fields, PyObject *header_points, PyObject *field)
{
    PyObject *verdict = young_verdict(fields, field);
    if (verdict != NULL || PyErr_Occurred())
        return verdict;
    int recalled = generations_recall(fields, field, &verdict);
    if (recalled != 0)
        return recalled > 0 ? verdict : NULL;
    return field_verdict(judging, fields, header_points, field);
}

PyObject *judge_headers(PointInspector *self, PyObject *const *arguments, Py_ssize_t count)
{
    if (count != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "judge_headers(headers, header_cache, point_cache, header_points, inspect_suspects)");
        return NULL;
    }
    PyObject *header_cache = arguments[1], *header_points = arguments[3];
    if (!PyDict_Check(header_cache) || !PyCallable_Check(header_points)) {
        PyErr_SetString(PyExc_TypeError, "header_cache is a VerdictCache, header_points callable");
        return NULL;
    }
    Judging judging;
    if (start_judging(&judging, self, arguments[2], arguments[4]) < 0)
        return NULL;
    Generations fields;
    generations_start(&fields, header_cache, &judging.python_calls);
    PyObject *findings = NULL;
    PyObject *sequence = PySequence_Fast(arguments[0], "headers: a sequence of (name, value)");
    if (sequence == NULL)
        goto failed;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(sequence); i++) {
        PyObject *field = Py_NewRef(PySequence_Fast_GET_ITEM(sequence, i)); /* held, as above */
        int error = add_findings(&findings, header_verdict(&judging, &fields, header_points, field));
        Py_DECREF(field);
        if (error)
            goto failed;
    }
    Py_DECREF(sequence);
    generations_end(&fields);
    generations_end(&judging.points);
    return as_verdict(findings);
failed:
    Py_XDECREF(findings);
    Py_XDECREF(sequence);
    generations_end(&fields);
    generations_end(&judging.points);
    return NULL;
}

int loops_init(void)
{
    size_name = PyUnicode_InternFromString("size");
    generation_size_name = PyUnicode_InternFromString("_generation_size");
    old_name = PyUnicode_InternFromString("_old");
    return size_name == NULL || generation_size_name == NULL || old_name == NULL ? -1 : 0;
}
