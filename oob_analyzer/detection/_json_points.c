/* add_json_points in C: the points of a JSON document, same points as the Python reference.
 *
 * oob_analyzer/detection/body_points.py keeps `python_add_json_points` as the reference, and
 * tests/detection/test_compiled_json_points.py holds the two to the same points on the corpus,
 * generated traffic and hypothesis-built documents. The Python walk pays a push, a pop, an
 * f-string and a tuple per node (a small order body cost 5 us, a token's claims 2 us); this
 * is the same walk over the objects json.loads made.
 *
 * What it does, as the reference does: a depth-first walk with an explicit stack, at most
 * MAX_NODES nodes taken from it. A dict appends a `json_key` point per key (last key first, as
 * the stack is filled) and pushes its values; a list pushes its items; a str is a point (its
 * head and tail when longer than MAX_POINT_CHARS); any other value but None and bool is a
 * point of its str(). Dicts and lists are read through their storage, as json.loads makes
 * them (a subclass's own items() or __getitem__ is not called).
 */
#include "_points.h"

#define MAX_NODES 2000         /* body_points._MAX_JSON_NODES */

typedef struct {
    PyObject *path; /* owned */
    PyObject *node; /* owned: a __str__ run on the way must not free what is still to walk */
} Pending;

typedef struct {
    Pending *items;
    Py_ssize_t size;
    Py_ssize_t capacity;
} Stack;

static void stack_clear(Stack *stack)
{
    for (Py_ssize_t i = 0; i < stack->size; i++) {
        Py_DECREF(stack->items[i].path);
        Py_DECREF(stack->items[i].node);
    }
    PyMem_Free(stack->items);
    stack->items = NULL;
    stack->size = stack->capacity = 0;
}

/* Push (path, node), taking the reference to `path` (even on failure) and a new one to `node`. */
static int stack_push(Stack *stack, PyObject *path, PyObject *node)
{
    if (stack->size == stack->capacity) {
        Py_ssize_t capacity = stack->capacity ? stack->capacity * 2 : 64;
        Pending *items = PyMem_Realloc(stack->items, (size_t)capacity * sizeof(Pending));
        if (items == NULL) {
            Py_DECREF(path);
            PyErr_NoMemory();
            return -1;
        }
        stack->items = items;
        stack->capacity = capacity;
    }
    stack->items[stack->size].path = path;
    stack->items[stack->size].node = Py_NewRef(node);
    stack->size++;
    return 0;
}

/* f"{path}.{suffix}" for a str suffix, in one allocation. */
static PyObject *child_path(PyObject *path, PyObject *suffix)
{
    Py_ssize_t path_length = PyUnicode_GET_LENGTH(path);
    Py_ssize_t suffix_length = PyUnicode_GET_LENGTH(suffix);
    Py_UCS4 widest = PyUnicode_MAX_CHAR_VALUE(path);
    if (PyUnicode_MAX_CHAR_VALUE(suffix) > widest)
        widest = PyUnicode_MAX_CHAR_VALUE(suffix);
    if (path_length > PY_SSIZE_T_MAX - 1 - suffix_length) {
        PyErr_NoMemory();
        return NULL;
    }
    PyObject *joined = PyUnicode_New(path_length + 1 + suffix_length, widest);
    if (joined == NULL)
        return NULL;
    if (PyUnicode_CopyCharacters(joined, 0, path, 0, path_length) < 0 ||
        PyUnicode_WriteChar(joined, path_length, '.') < 0 ||
        PyUnicode_CopyCharacters(joined, path_length + 1, suffix, 0, suffix_length) < 0) {
        Py_DECREF(joined);
        return NULL;
    }
    return joined;
}

/* A dict's key points, last key first, and its values pushed (so the first is walked first). */
static int walk_dict(PyObject *points, PyTypeObject *point_type, Stack *stack, PyObject *path, PyObject *node,
                     PyObject *key_kind)
{
    /* The items first, in a list of their own: PyDict_Next has no reverse, and a key's
     * __str__ or __format__ (not a JSON key's) could change the dict while it is walked. */
    PyObject *items = PyDict_Items(node);
    if (items == NULL)
        return -1;
    int failed = 0;
    for (Py_ssize_t i = PyList_GET_SIZE(items) - 1; i >= 0 && !failed; i--) {
        PyObject *item = PyList_GET_ITEM(items, i);
        PyObject *key = PyTuple_GET_ITEM(item, 0);
        PyObject *child = PyTuple_GET_ITEM(item, 1);
        PyObject *name;
        PyObject *key_text;
        if (PyUnicode_CheckExact(key)) {
            name = child_path(path, key);
            key_text = bounded(key);
        } else {
            PyObject *formatted = PyObject_Format(key, NULL);
            name = formatted == NULL ? NULL : child_path(path, formatted);
            Py_XDECREF(formatted);
            PyObject *text = name == NULL ? NULL : PyObject_Str(key);
            key_text = text == NULL ? NULL : bounded(text);
            Py_XDECREF(text);
        }
        if (name == NULL || key_text == NULL) {
            Py_XDECREF(name);
            Py_XDECREF(key_text);
            failed = -1;
            break;
        }
        Py_INCREF(name); /* one reference for the point, one for the stack */
        failed = append_point(points, point_type, name, key_text, key_kind);
        if (failed)
            Py_DECREF(name);
        else
            failed = stack_push(stack, name, child);
    }
    Py_DECREF(items);
    return failed;
}

/* A list's items pushed, last first (so the first is walked first). */
static int walk_list(Stack *stack, PyObject *path, PyObject *node)
{
    /* A copy of the storage: a __str__ run later in the walk could shorten the list. */
    PyObject *items = PyList_GetSlice(node, 0, PyList_GET_SIZE(node));
    if (items == NULL)
        return -1;
    int failed = 0;
    for (Py_ssize_t i = PyList_GET_SIZE(items) - 1; i >= 0 && !failed; i--) {
        PyObject *name = PyUnicode_FromFormat("%U.%zd", path, i);
        failed = name == NULL ? -1 : stack_push(stack, name, PyList_GET_ITEM(items, i));
    }
    Py_DECREF(items);
    return failed;
}

static PyObject *add_json_points(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "add_json_points() takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *point_type = args[0], *points = args[1], *prefix = args[2], *document = args[3], *kind = args[4];
    if (!PyType_Check(point_type) || !PyType_IsSubtype((PyTypeObject *)point_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "add_json_points() takes a tuple type first");
        return NULL;
    }
    if (!PyList_Check(points) || !PyUnicode_Check(prefix)) {
        PyErr_SetString(PyExc_TypeError, "add_json_points() takes a list of points and a str prefix");
        return NULL;
    }
    PyObject *key_kind = PyUnicode_InternFromString("json_key");
    if (key_kind == NULL)
        return NULL;
    PyTypeObject *type = (PyTypeObject *)point_type;
    Stack stack = {NULL, 0, 0};
    int failed = stack_push(&stack, Py_NewRef(prefix), document);
    int nodes = 0;
    while (!failed && stack.size > 0 && nodes < MAX_NODES) {
        Pending pending = stack.items[--stack.size]; /* its two references are ours now */
        nodes++;
        PyObject *path = pending.path, *node = pending.node;
        if (PyUnicode_Check(node)) {
            failed = append_point(points, type, Py_NewRef(path), bounded(node), kind);
        } else if (PyDict_Check(node)) {
            failed = walk_dict(points, type, &stack, path, node, key_kind);
        } else if (PyList_Check(node)) {
            failed = walk_list(&stack, path, node);
        } else if (node != Py_None && !PyBool_Check(node)) {
            failed = append_point(points, type, Py_NewRef(path), PyObject_Str(node), kind);
        }
        Py_DECREF(path);
        Py_DECREF(node);
    }
    stack_clear(&stack);
    Py_DECREF(key_kind);
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"add_json_points", (PyCFunction)(void (*)(void))add_json_points, METH_FASTCALL,
     "add_json_points(point_type, points, prefix, document, kind): append the points of a JSON document."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "oob_analyzer.detection._json_points",
    "add_json_points in C (body_points.python_add_json_points is the reference).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__json_points(void)
{
    return PyModule_Create(&module);
}
