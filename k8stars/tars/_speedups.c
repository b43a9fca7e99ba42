/*
 * k8stars.tars._speedups: the hot paths of k8stars.tars.codec in C.
 *
 * Same type model as the pure-Python codec (which stays the reference): TarsType objects describe IDL types, a struct
 * class carries a tuple of Field in __tars_fields__. This module compiles both, once, into C tables:
 *
 *   TypeDesc   one IDL type (kind, ranges, element/key/value types, the struct or enum class);
 *   FieldDesc  one Field (tag, name, type, skip-defaults policy, how to make its default);
 *   Plan       a Python object (GC-aware) holding the FieldDescs of a struct class (stored on the class as
 *              __tars_ctable__), of a parameter list (cached by identity of the tuple) or of a single value type.
 *
 * Every rule of the Python writer and reader is mirrored, including its error messages, so that both backends give
 * the same bytes, the same values and the same errors. k8stars.tars.codec calls configure() once with what this module needs
 * from Python (error classes, Struct, Field, MAX_DEPTH, ...).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#if PY_VERSION_HEX < 0x030B0000
#error "k8stars.tars._speedups needs Python 3.11 or later"
#endif

#ifdef Py_T_OBJECT_EX
#define K_T_OBJECT_EX Py_T_OBJECT_EX
#else
#define K_T_OBJECT_EX T_OBJECT_EX
#endif
#ifdef Py_READONLY
#define K_READONLY Py_READONLY
#else
#define K_READONLY READONLY
#endif

/* IDL kinds (codec.Kind) */
enum {
    K_BOOL, K_BYTE, K_SHORT, K_INT, K_LONG, K_UBYTE, K_USHORT, K_UINT,
    K_FLOAT, K_DOUBLE, K_STRING, K_BYTES, K_VECTOR, K_MAP, K_STRUCT, K_ENUM, K_COUNT
};

/* wire types */
enum {
    W_INT1, W_INT2, W_INT4, W_INT8, W_FLOAT, W_DOUBLE, W_STRING1, W_STRING4,
    W_MAP, W_LIST, W_SBEGIN, W_SEND, W_ZERO, W_SLIST
};

static const char *const WIRE_NAMES[14] = {
    "int1", "int2", "int4", "int8", "float", "double", "string1", "string4",
    "map", "list", "struct-begin", "struct-end", "zero", "simple-list",
};

#define STACK_N 32          /* fields handled without a heap allocation */
#define CACHE_MAX 1024      /* entries of each identity cache before it is emptied */

/* ------------------------------------------------------------------------------------------------------------ */
/* Configuration and interned names */

static PyObject *DecodeError, *EncodeError, *StructBase, *MappingABC, *FieldType, *PlainInit;
static int max_depth = 100;
static PyObject *fields_cache, *type_cache;
static PyObject *s_tars_fields, *s_ctable, *s_kind, *s_elem, *s_key, *s_value, *s_cls, *s_tag, *s_name, *s_type,
    *s_required, *s_default, *s_default_value, *s_idl_name, *s_v2m, *s_value_name;
static PyObject *empty_str, *empty_bytes, *zero_float, *zero_int, *int_15, *int_ff;

static int
configured(void)
{
    if (DecodeError == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "k8stars.tars._speedups is not configured (import k8stars.tars.codec)");
        return 0;
    }
    return 1;
}

/* The value of an int (PyLong_Check passed): single-digit ints inline, others through the C API.
   Returns -1 with an exception set on error; *overflow as PyLong_AsLongLongAndOverflow. */
static inline int
long_value(PyObject *v, long long *out, int *overflow)
{
#if PY_VERSION_HEX >= 0x030C0000
    if (PyUnstable_Long_IsCompact((PyLongObject *)v)) {
        *overflow = 0;
        *out = (long long)PyUnstable_Long_CompactValue((PyLongObject *)v);
        return 0;
    }
#else
    Py_ssize_t size = Py_SIZE(v);
    if (size >= -1 && size <= 1) {
        *overflow = 0;
        *out = size * (long long)((PyLongObject *)v)->ob_digit[0];
        return 0;
    }
#endif
    *out = PyLong_AsLongLongAndOverflow(v, overflow);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Compiled types */

typedef struct Plan Plan;
typedef struct TypeDesc TypeDesc;

struct TypeDesc {
    int kind;
    int max_wire;           /* integer kinds: widest wire code accepted on read */
    long long lo, hi;       /* integer kinds: range accepted on write */
    PyObject *ttype;        /* the TarsType (for idl_name() in messages) */
    PyObject *cls;          /* struct/enum class or None */
    PyObject *enum_map;     /* enum: cls._value2member_map_ when it is a dict */
    int cls_is_struct;      /* struct: issubclass(cls, Struct) */
    Plan *plan;             /* struct: the plan of cls, resolved at first use */
    TypeDesc *elem, *key, *val;
};

enum { SKIP_NEVER, SKIP_EMPTY, SKIP_EQ };
enum { DEF_CONST, DEF_LIST, DEF_DICT, DEF_COPYLIST, DEF_COPYDICT, DEF_CALL };

typedef struct {
    int tag;                /* 0..255, or -1 when tagobj is not a valid tag */
    int required;
    int skip;               /* skip-defaults policy of codec._is_default */
    int defmode;            /* how Field.default_value() is made */
    Py_ssize_t offset;      /* slot offset in instances of the plan's class, or -1 */
    PyObject *field, *name, *tagobj;
    PyObject *cmp;          /* SKIP_EQ: the value equal to which the field is left out */
    int cmp_is_int;         /* cmp is an exact int that fits in cmp_int */
    int kind, max_wire;     /* the type's, at hand for the one-pass writer and reader */
    long long lo, hi;
    long long cmp_int;
    PyObject *defobj;       /* DEF_CONST / DEF_COPY*: the default */
    TypeDesc *type;
} FieldDesc;

struct Plan {
    PyObject_HEAD
    PyObject *cls;          /* the struct class, or NULL */
    PyObject *fields;       /* the tuple of Field (or, for a value plan, the TarsType) */
    Py_ssize_t n;
    FieldDesc *f;
    TypeDesc *vtype;        /* value plans */
    int valid, fast_get, fast_init;
    int gc_new;             /* fast_init, and its instances hold exactly the slots of its fields */
    int simple;             /* every field a number, a string, bytes or a map: see w_simple_fused */
    int16_t by_tag[256];
};

static PyTypeObject PlanType;

static void
type_free(TypeDesc *d)
{
    if (d == NULL)
        return;
    type_free(d->elem);
    type_free(d->key);
    type_free(d->val);
    Py_XDECREF(d->ttype);
    Py_XDECREF(d->cls);
    Py_XDECREF(d->enum_map);
    Py_XDECREF((PyObject *)d->plan);
    PyMem_Free(d);
}

static int
type_traverse(TypeDesc *d, visitproc visit, void *arg)
{
    while (d != NULL) {
        Py_VISIT(d->ttype);
        Py_VISIT(d->cls);
        Py_VISIT(d->enum_map);
        Py_VISIT((PyObject *)d->plan);
        if (d->key != NULL) {
            int r = type_traverse(d->key, visit, arg);
            if (r)
                return r;
        }
        if (d->val != NULL) {
            int r = type_traverse(d->val, visit, arg);
            if (r)
                return r;
        }
        d = d->elem;
    }
    return 0;
}

static TypeDesc *
type_compile(PyObject *t)
{
    TypeDesc *d = NULL;
    PyObject *o = NULL;
    long kind;

    if (Py_EnterRecursiveCall(" while compiling a TARS type"))
        return NULL;
    d = PyMem_Calloc(1, sizeof(TypeDesc));
    if (d == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    d->ttype = Py_NewRef(t);
    o = PyObject_GetAttr(t, s_kind);
    if (o == NULL)
        goto fail;
    kind = PyLong_AsLong(o);
    Py_CLEAR(o);
    if (kind == -1 && PyErr_Occurred())
        goto fail;
    if (kind < 0 || kind >= K_COUNT) {
        PyErr_Format(PyExc_ValueError, "unknown TARS kind %ld", kind);
        goto fail;
    }
    d->kind = (int)kind;
    switch (d->kind) {
    case K_BOOL: d->lo = 0; d->hi = 1; d->max_wire = W_INT1; break;
    case K_BYTE: d->lo = -128; d->hi = 127; d->max_wire = W_INT1; break;
    case K_SHORT: d->lo = -32768; d->hi = 32767; d->max_wire = W_INT2; break;
    case K_INT: case K_ENUM: d->lo = INT32_MIN; d->hi = INT32_MAX; d->max_wire = W_INT4; break;
    case K_LONG: d->lo = INT64_MIN; d->hi = INT64_MAX; d->max_wire = W_INT8; break;
    case K_UBYTE: d->lo = 0; d->hi = 255; d->max_wire = W_INT2; break;
    case K_USHORT: d->lo = 0; d->hi = 65535; d->max_wire = W_INT4; break;
    case K_UINT: d->lo = 0; d->hi = 4294967295LL; d->max_wire = W_INT8; break;
    default: break;
    }
    if (d->kind == K_VECTOR) {
        o = PyObject_GetAttr(t, s_elem);
        if (o == NULL)
            goto fail;
        if (o == Py_None) {
            PyErr_SetString(PyExc_TypeError, "vector type without an element type");
            goto fail;
        }
        d->elem = type_compile(o);
        Py_CLEAR(o);
        if (d->elem == NULL)
            goto fail;
    }
    else if (d->kind == K_MAP) {
        o = PyObject_GetAttr(t, s_key);
        if (o == NULL)
            goto fail;
        if (o == Py_None) {
            PyErr_SetString(PyExc_TypeError, "map type without a key type");
            goto fail;
        }
        d->key = type_compile(o);
        Py_CLEAR(o);
        if (d->key == NULL)
            goto fail;
        o = PyObject_GetAttr(t, s_value);
        if (o == NULL)
            goto fail;
        if (o == Py_None) {
            PyErr_SetString(PyExc_TypeError, "map type without a value type");
            goto fail;
        }
        d->val = type_compile(o);
        Py_CLEAR(o);
        if (d->val == NULL)
            goto fail;
    }
    else if (d->kind == K_STRUCT || d->kind == K_ENUM) {
        d->cls = PyObject_GetAttr(t, s_cls);
        if (d->cls == NULL)
            goto fail;
        if (d->kind == K_STRUCT && PyType_Check(d->cls)) {
            int r = PyObject_IsSubclass(d->cls, StructBase);
            if (r < 0)
                goto fail;
            d->cls_is_struct = r;
        }
        if (d->kind == K_ENUM && d->cls != Py_None) {
            o = PyObject_GetAttr(d->cls, s_v2m);
            if (o == NULL)
                PyErr_Clear();
            else if (PyDict_CheckExact(o))
                d->enum_map = o;
            else
                Py_DECREF(o);
            o = NULL;
        }
    }
    Py_LeaveRecursiveCall();
    return d;
fail:
    Py_XDECREF(o);
    type_free(d);
    Py_LeaveRecursiveCall();
    return NULL;
}

static PyObject *
idl_name(TypeDesc *d)
{
    return PyObject_CallMethodNoArgs(d->ttype, s_idl_name);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Errors */

static void
raise_fmt_(PyObject *cls, const char *fmt, ...)
{
    va_list va;
    PyObject *msg;
    va_start(va, fmt);
    msg = PyUnicode_FromFormatV(fmt, va);
    va_end(va);
    if (msg != NULL) {
        PyErr_SetObject(cls, msg);
        Py_DECREF(msg);
    }
}

/* raise cls(fmt % ...); evaluates to -1 */
#define raise_fmt(...) (raise_fmt_(__VA_ARGS__), -1)

/* `except cls as e: raise cls(prefix + str(e)) from None`, for the exception being raised, if it is a `cls`. */
static void
wrap_error(PyObject *cls, const char *fmt, ...)
{
    PyObject *type, *val, *tb, *prefix, *msg, *exc;
    va_list va;

    if (!PyErr_ExceptionMatches(cls))
        return;
    PyErr_Fetch(&type, &val, &tb);
    PyErr_NormalizeException(&type, &val, &tb);
    va_start(va, fmt);
    prefix = PyUnicode_FromFormatV(fmt, va);
    va_end(va);
    msg = prefix == NULL ? NULL : PyUnicode_FromFormat("%U%S", prefix, val);
    exc = msg == NULL ? NULL : PyObject_CallOneArg(cls, msg);
    Py_XDECREF(prefix);
    Py_XDECREF(msg);
    if (exc != NULL) {
        PyException_SetContext(exc, val); /* steals */
        val = NULL;
        PyException_SetCause(exc, NULL); /* `from None` */
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    Py_XDECREF(type);
    Py_XDECREF(val);
    Py_XDECREF(tb);
}

static PyObject *
type_name(PyObject *v)
{
    return PyType_GetName(Py_TYPE(v));
}

/* EncodeError(f"{before}{t.idl_name()}, got {type(v).__name__}") */
static int
expected_error(const char *before, TypeDesc *d, PyObject *v)
{
    PyObject *n = d ? idl_name(d) : NULL, *tn;
    if (d && n == NULL)
        return -1;
    tn = type_name(v);
    if (tn != NULL) {
        if (n)
            raise_fmt_(EncodeError, "%s%S, got %S", before, n, tn);
        else
            raise_fmt_(EncodeError, "%s, got %S", before, tn);
    }
    Py_XDECREF(n);
    Py_XDECREF(tn);
    return -1;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Plans */

/* The last plan get_plan found in a class's __dict__, and the class's version tag then: CPython gives a class a new
   tag whenever it or a base changes, so while the tag holds, the two dict lookups would find the same (issue 19:
   they were an eighth of an encode of a small packet). Borrowed: a plan released forgets it, so dead classes and
   their plans are still collected; tags are never reused, so a new class at a dead one's address never matches. */
static Plan *hot_plan;
static unsigned int hot_tag;

static void
plan_release(Plan *p)
{
    FieldDesc *f = p->f;
    Py_ssize_t i, n = p->n;
    if (hot_plan == p)
        hot_plan = NULL;
    p->valid = 0;
    p->f = NULL;
    p->n = 0;
    if (f != NULL) {
        for (i = 0; i < n; i++) {
            Py_XDECREF(f[i].field);
            Py_XDECREF(f[i].name);
            Py_XDECREF(f[i].tagobj);
            Py_XDECREF(f[i].cmp);
            Py_XDECREF(f[i].defobj);
            type_free(f[i].type);
        }
        PyMem_Free(f);
    }
    type_free(p->vtype);
    p->vtype = NULL;
    Py_CLEAR(p->cls);
    Py_CLEAR(p->fields);
}

static int
plan_traverse(Plan *p, visitproc visit, void *arg)
{
    Py_ssize_t i;
    Py_VISIT(p->cls);
    Py_VISIT(p->fields);
    for (i = 0; i < p->n; i++) {
        FieldDesc *f = &p->f[i];
        int r;
        Py_VISIT(f->field);
        Py_VISIT(f->name);
        Py_VISIT(f->tagobj);
        Py_VISIT(f->cmp);
        Py_VISIT(f->defobj);
        r = type_traverse(f->type, visit, arg);
        if (r)
            return r;
    }
    return type_traverse(p->vtype, visit, arg);
}

static int
plan_clear(Plan *p)
{
    plan_release(p);
    return 0;
}

static void
plan_dealloc(Plan *p)
{
    PyObject_GC_UnTrack(p);
    plan_release(p);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

static PyObject *
plan_repr(Plan *p)
{
    if (p->cls != NULL)
        return PyUnicode_FromFormat("<tars plan of %R: %zd fields%s%s%s>", p->cls, p->n,
                                    p->fast_get ? ", slot get" : "", p->fast_init ? ", slot init" : "",
                                    p->simple && p->fast_get ? ", one pass" : "");
    if (p->vtype != NULL)
        return PyUnicode_FromFormat("<tars plan of %R>", p->fields);
    return PyUnicode_FromFormat("<tars plan of %zd fields>", p->n);
}

static PyTypeObject PlanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "k8stars.tars._speedups.Plan",
    .tp_doc = "Compiled (de)serialisation table of a struct class, a field list or a type.",
    .tp_basicsize = sizeof(Plan),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)plan_dealloc,
    .tp_free = PyObject_GC_Del,
    .tp_traverse = (traverseproc)plan_traverse,
    .tp_clear = (inquiry)plan_clear,
    .tp_repr = (reprfunc)plan_repr,
};

static Plan *
plan_alloc(void)
{
    Plan *p = PyObject_GC_New(Plan, &PlanType);
    if (p == NULL)
        return NULL;
    p->cls = NULL;
    p->fields = NULL;
    p->n = 0;
    p->f = NULL;
    p->vtype = NULL;
    p->valid = 0;
    p->fast_get = 0;
    p->fast_init = 0;
    p->gc_new = 0;
    p->simple = 0;
    memset(p->by_tag, 0xFF, sizeof(p->by_tag)); /* -1: unknown tag */
    PyObject_GC_Track(p);
    return p;
}

static int
field_compile(FieldDesc *fd, PyObject *fo)
{
    PyObject *t, *req, *def = NULL;
    int r, kind;

    fd->offset = -1;
    fd->tag = -1;
    fd->field = Py_NewRef(fo);
    fd->tagobj = PyObject_GetAttr(fo, s_tag);
    if (fd->tagobj == NULL)
        return -1;
    fd->name = PyObject_GetAttr(fo, s_name);
    if (fd->name == NULL)
        return -1;
    t = PyObject_GetAttr(fo, s_type);
    if (t == NULL)
        return -1;
    fd->type = type_compile(t);
    Py_DECREF(t);
    if (fd->type == NULL)
        return -1;
    fd->kind = fd->type->kind;
    fd->max_wire = fd->type->max_wire;
    fd->lo = fd->type->lo;
    fd->hi = fd->type->hi;
    req = PyObject_GetAttr(fo, s_required);
    if (req == NULL)
        return -1;
    r = PyObject_IsTrue(req);
    Py_DECREF(req);
    if (r < 0)
        return -1;
    fd->required = r;
    if (PyLong_Check(fd->tagobj)) {
        int overflow;
        long long tag = PyLong_AsLongLongAndOverflow(fd->tagobj, &overflow);
        if (tag == -1 && PyErr_Occurred())
            return -1;
        if (!overflow && tag >= 0 && tag <= 255)
            fd->tag = (int)tag;
    }
    def = PyObject_GetAttr(fo, s_default);
    if (def == NULL)
        return -1;
    kind = fd->type->kind;

    /* skip-defaults policy (codec._is_default) */
    if (kind == K_BOOL || kind == K_STRUCT)
        fd->skip = SKIP_NEVER;
    else if (kind == K_VECTOR || kind == K_MAP || kind == K_BYTES)
        fd->skip = SKIP_EMPTY;
    else {
        fd->skip = SKIP_EQ;
        fd->cmp = def != Py_None ? Py_NewRef(def) : PyObject_CallMethod(fd->type->ttype, "default", NULL);
        if (fd->cmp == NULL)
            goto fail;
        if (PyLong_CheckExact(fd->cmp)) {
            int overflow;
            if (long_value(fd->cmp, &fd->cmp_int, &overflow) < 0)
                goto fail;
            fd->cmp_is_int = !overflow;
        }
    }

    /* Field.default_value() */
    if (!Py_IS_TYPE(fo, (PyTypeObject *)FieldType))
        fd->defmode = DEF_CALL;
    else if (def == Py_None) {
        switch (kind) {
        case K_BOOL: fd->defmode = DEF_CONST; fd->defobj = Py_NewRef(Py_False); break;
        case K_FLOAT: case K_DOUBLE: fd->defmode = DEF_CONST; fd->defobj = Py_NewRef(zero_float); break;
        case K_STRING: fd->defmode = DEF_CONST; fd->defobj = Py_NewRef(empty_str); break;
        case K_BYTES: fd->defmode = DEF_CONST; fd->defobj = Py_NewRef(empty_bytes); break;
        case K_VECTOR: fd->defmode = DEF_LIST; break;
        case K_MAP: fd->defmode = DEF_DICT; break;
        case K_STRUCT: fd->defmode = DEF_CALL; break;
        case K_ENUM:
            fd->defmode = DEF_CONST;
            fd->defobj = PyObject_CallMethod(fd->type->ttype, "default", NULL);
            if (fd->defobj == NULL)
                goto fail;
            break;
        default: fd->defmode = DEF_CONST; fd->defobj = Py_NewRef(zero_int); break;
        }
    }
    else if (PyList_CheckExact(def)) {
        fd->defmode = DEF_COPYLIST;
        fd->defobj = Py_NewRef(def);
    }
    else if (PyDict_CheckExact(def)) {
        fd->defmode = DEF_COPYDICT;
        fd->defobj = Py_NewRef(def);
    }
    else if (PyList_Check(def) || PyDict_Check(def))
        fd->defmode = DEF_CALL;
    else {
        fd->defmode = DEF_CONST;
        fd->defobj = Py_NewRef(def);
    }
    Py_DECREF(def);
    return 0;
fail:
    Py_XDECREF(def);
    return -1;
}

/* Whether an instance of p's class is its header and the slots of its fields, each once, nothing else: an
   allocation that fills every slot before the object is tracked leaves nothing uninitialised. */
static int
only_field_slots(Plan *p)
{
    PyTypeObject *tp = (PyTypeObject *)p->cls;
    uint64_t seen = 0;
    Py_ssize_t i;
    if (p->n > 64 || tp->tp_alloc != PyType_GenericAlloc || !PyType_IS_GC(tp) || tp->tp_itemsize != 0 ||
        tp->tp_dictoffset != 0 || tp->tp_weaklistoffset != 0 ||
        tp->tp_basicsize != (Py_ssize_t)(sizeof(PyObject) + (size_t)p->n * sizeof(PyObject *)))
        return 0;
#ifdef Py_TPFLAGS_MANAGED_DICT
    if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT)
        return 0;
#endif
#ifdef Py_TPFLAGS_MANAGED_WEAKREF
    if (tp->tp_flags & Py_TPFLAGS_MANAGED_WEAKREF)
        return 0;
#endif
    for (i = 0; i < p->n; i++) {
        Py_ssize_t k = (p->f[i].offset - (Py_ssize_t)sizeof(PyObject)) / (Py_ssize_t)sizeof(PyObject *);
        if (p->f[i].offset < (Py_ssize_t)sizeof(PyObject) || k >= p->n || (seen >> k) & 1)
            return 0;
        seen |= (uint64_t)1 << k;
    }
    return 1;
}

/* Slot offsets of a class whose instances are read and built without getattr / __init__ where that is exact. */
static int
plan_layout(Plan *p)
{
    PyTypeObject *tp = (PyTypeObject *)p->cls;
    Py_ssize_t i;
    int writable = 1;

    p->fast_get = PyType_Check(p->cls) && tp->tp_getattro == PyObject_GenericGetAttr;
    for (i = 0; i < p->n && p->fast_get; i++) {
        FieldDesc *f = &p->f[i];
        PyObject *d;
        if (!PyUnicode_Check(f->name)) {
            p->fast_get = 0;
            break;
        }
        d = PyObject_GetAttr(p->cls, f->name);
        if (d == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError))
                return -1;
            PyErr_Clear();
            p->fast_get = 0;
            break;
        }
        if (Py_IS_TYPE(d, &PyMemberDescr_Type) &&
            ((PyMemberDescrObject *)d)->d_member->type == K_T_OBJECT_EX &&
            PyType_IsSubtype(tp, PyDescr_TYPE(d))) {
            f->offset = ((PyMemberDescrObject *)d)->d_member->offset;
            if (((PyMemberDescrObject *)d)->d_member->flags & K_READONLY)
                writable = 0;
        }
        else
            p->fast_get = 0;
        Py_DECREF(d);
    }
    if (!p->fast_get) {
        for (i = 0; i < p->n; i++)
            p->f[i].offset = -1;
        return 0;
    }
    if (writable && PlainInit != NULL && Py_IS_TYPE(p->cls, &PyType_Type) &&
        tp->tp_new == PyBaseObject_Type.tp_new) {
        PyObject *r = PyObject_CallOneArg(PlainInit, p->cls);
        int ok;
        if (r == NULL)
            return -1;
        ok = PyObject_IsTrue(r);
        Py_DECREF(r);
        if (ok < 0)
            return -1;
        p->fast_init = ok;
    }
    p->gc_new = p->fast_init && only_field_slots(p);
    return 0;
}

/* A plan for `fields` (a tuple of Field); `cls` is the struct class they belong to, or NULL. */
static Plan *
plan_compile(PyObject *cls, PyObject *fields)
{
    Plan *p = plan_alloc();
    Py_ssize_t i, n = PyTuple_GET_SIZE(fields);

    if (p == NULL)
        return NULL;
    p->cls = Py_XNewRef(cls);
    p->fields = Py_NewRef(fields);
    p->f = PyMem_Calloc(n ? (size_t)n : 1, sizeof(FieldDesc));
    if (p->f == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (i = 0; i < n; i++)
        p->f[i].offset = -1;
    p->n = n;
    for (i = 0; i < n; i++) {
        if (field_compile(&p->f[i], PyTuple_GET_ITEM(fields, i)) < 0)
            goto fail;
        if (p->f[i].tag >= 0)
            p->by_tag[p->f[i].tag] = (int16_t)i; /* a later field with the same tag wins, as in a dict */
    }
    if (cls != NULL && plan_layout(p) < 0)
        goto fail;
    p->simple = p->n <= STACK_N;
    for (i = 0; i < p->n; i++) {
        int k = p->f[i].type->kind;
        if (!((k >= K_BYTE && k <= K_UINT) || k == K_FLOAT || k == K_DOUBLE || k == K_STRING || k == K_BYTES ||
              k == K_MAP))
            p->simple = 0;
    }
    p->valid = 1;
    return p;
fail:
    Py_DECREF(p);
    return NULL;
}

static int
tag_valid(PyTypeObject *tp)
{
#ifdef Py_TPFLAGS_VALID_VERSION_TAG
    if (!PyType_HasFeature(tp, Py_TPFLAGS_VALID_VERSION_TAG))
        return 0;
#endif
    return tp->tp_version_tag != 0;
}

/* The plan of a struct class (new reference), cached in the class's own __dict__. */
static Plan *
get_plan(PyObject *cls)
{
    PyObject *fields, *tup;
    Plan *p;
    int heap = PyType_Check(cls) && (((PyTypeObject *)cls)->tp_flags & Py_TPFLAGS_HEAPTYPE) &&
               ((PyTypeObject *)cls)->tp_dict != NULL;

    if (hot_plan != NULL && hot_plan->cls == cls && hot_plan->valid && tag_valid((PyTypeObject *)cls) &&
        ((PyTypeObject *)cls)->tp_version_tag == hot_tag)
        return (Plan *)Py_NewRef(hot_plan);
    if (heap) {
        PyObject *dict = ((PyTypeObject *)cls)->tp_dict;
        PyObject *cached = PyDict_GetItemWithError(dict, s_ctable);
        if (cached != NULL && Py_IS_TYPE(cached, &PlanType) && ((Plan *)cached)->valid &&
            ((Plan *)cached)->cls == cls) {
            PyObject *own = PyDict_GetItemWithError(dict, s_tars_fields);
            if (own == ((Plan *)cached)->fields) {
                (void)_PyType_Lookup((PyTypeObject *)cls, s_tars_fields); /* gives the class a tag if it has none */
                if (tag_valid((PyTypeObject *)cls)) {
                    hot_plan = (Plan *)cached;
                    hot_tag = ((PyTypeObject *)cls)->tp_version_tag;
                }
                return (Plan *)Py_NewRef(cached);
            }
            if (own == NULL && PyErr_Occurred())
                return NULL;
            if (own == NULL) { /* inherited __tars_fields__ */
                fields = PyObject_GetAttr(cls, s_tars_fields);
                if (fields == NULL)
                    return NULL;
                if (fields == ((Plan *)cached)->fields) {
                    Py_DECREF(fields);
                    return (Plan *)Py_NewRef(cached);
                }
                Py_DECREF(fields);
            }
        }
        else if (cached == NULL && PyErr_Occurred())
            return NULL;
    }
    fields = PyObject_GetAttr(cls, s_tars_fields);
    if (fields == NULL)
        return NULL;
    tup = PyTuple_Check(fields) ? Py_NewRef(fields) : PySequence_Tuple(fields);
    if (tup == NULL) {
        Py_DECREF(fields);
        return NULL;
    }
    p = plan_compile(cls, tup);
    Py_DECREF(tup);
    if (p != NULL && heap && PyTuple_Check(fields)) {
        if (PyObject_SetAttr(cls, s_ctable, (PyObject *)p) < 0)
            PyErr_Clear(); /* not cacheable: still correct, only slower */
    }
    Py_DECREF(fields);
    return p;
}

/* The plan of a struct type, resolved once. Borrowed (the TypeDesc holds it). */
static Plan *
type_plan(TypeDesc *d)
{
    if (d->plan == NULL || !d->plan->valid) {
        Plan *p = get_plan(d->cls);
        if (p == NULL)
            return NULL;
        Py_XSETREF(d->plan, p);
    }
    return d->plan;
}

/* An identity cache of plans: fields tuples (field lists) or TarsType objects (values). New reference. */
static Plan *
cached_plan(PyObject *cache, PyObject *obj, int value)
{
    PyObject *key = PyLong_FromVoidPtr(obj), *hit;
    Plan *p;

    if (key == NULL)
        return NULL;
    hit = PyDict_GetItemWithError(cache, key);
    if (hit != NULL && ((Plan *)hit)->fields == obj && ((Plan *)hit)->valid) {
        Py_DECREF(key);
        return (Plan *)Py_NewRef(hit);
    }
    if (hit == NULL && PyErr_Occurred()) {
        Py_DECREF(key);
        return NULL;
    }
    if (value) {
        p = plan_alloc();
        if (p != NULL) {
            p->fields = Py_NewRef(obj);
            p->vtype = type_compile(obj);
            if (p->vtype == NULL)
                Py_CLEAR(p);
            else
                p->valid = 1;
        }
    }
    else
        p = plan_compile(NULL, obj);
    if (p == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    if (PyDict_GET_SIZE(cache) >= CACHE_MAX)
        PyDict_Clear(cache);
    if (PyDict_SetItem(cache, key, (PyObject *)p) < 0) {
        Py_DECREF(key);
        Py_DECREF(p);
        return NULL;
    }
    Py_DECREF(key);
    return p;
}

static Plan *
fields_plan(PyObject *fields)
{
    PyObject *tup;
    Plan *p;
    if (PyTuple_CheckExact(fields))
        return cached_plan(fields_cache, fields, 0);
    tup = PySequence_Tuple(fields);
    if (tup == NULL)
        return NULL;
    p = plan_compile(NULL, tup);
    Py_DECREF(tup);
    return p;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Writing */

typedef struct {
    char *p;
    Py_ssize_t len, cap;
    int skip;               /* skip_defaults */
    PyObject *bad_tag;      /* the tag object of the field being written when its tag is -1 */
    char stack[4096]; /* most packets (a 100-endpoint lookup answer too) need no heap buffer */
} Enc;

static void
enc_init(Enc *e, int skip)
{
    e->p = e->stack;
    e->len = 0;
    e->cap = (Py_ssize_t)sizeof(e->stack);
    e->skip = skip;
    e->bad_tag = NULL;
}

static void
enc_free(Enc *e)
{
    if (e->p != e->stack)
        PyMem_Free(e->p);
}

static int
enc_grow(Enc *e, Py_ssize_t extra)
{
    Py_ssize_t need, cap;
    char *np;
    if (extra > PY_SSIZE_T_MAX / 2 - e->len) {
        PyErr_NoMemory();
        return -1;
    }
    need = e->len + extra;
    cap = e->cap * 2;
    if (cap < need)
        cap = need;
    if (e->p == e->stack) {
        np = PyMem_Malloc((size_t)cap);
        if (np != NULL)
            memcpy(np, e->p, (size_t)e->len);
    }
    else
        np = PyMem_Realloc(e->p, (size_t)cap);
    if (np == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    e->p = np;
    e->cap = cap;
    return 0;
}

#define NEED(e, n)                                                              \
    do {                                                                        \
        if ((e)->cap - (e)->len < (Py_ssize_t)(n) && enc_grow((e), (n)) < 0)    \
            return -1;                                                          \
    } while (0)

#define NEED_OR(e, n, failure)                                                  \
    do {                                                                        \
        if ((e)->cap - (e)->len < (Py_ssize_t)(n) && enc_grow((e), (n)) < 0)    \
            failure;                                                            \
    } while (0)

static int
bad_tag_error(Enc *e)
{
    PyObject *tag = e->bad_tag ? e->bad_tag : Py_None;
    if (PyLong_Check(tag)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(tag, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (overflow < 0 || (!overflow && v < 0)) {
            PyErr_SetString(PyExc_ValueError, "byte must be in range(0, 256)");
            return -1;
        }
        return raise_fmt(EncodeError, "tag %S is out of range 0..255", tag);
    }
    /* what `tag < 15` does with a non-integer */
    {
        PyObject *r = PyObject_RichCompare(tag, int_15, Py_LT);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    return raise_fmt(PyExc_TypeError, "a tag must be an integer, got %R", tag);
}

static inline int
put_head(Enc *e, int tag, int wire)
{
    if (tag < 0)
        return bad_tag_error(e);
    NEED(e, 2);
    if (tag < 15)
        e->p[e->len++] = (char)(tag << 4 | wire);
    else {
        e->p[e->len++] = (char)(0xF0 | wire);
        e->p[e->len++] = (char)tag;
    }
    return 0;
}

static inline void
be16(char *p, uint16_t v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
}

static inline void
be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static inline void
be64(char *p, uint64_t v)
{
    be32(p, (uint32_t)(v >> 32));
    be32(p + 4, (uint32_t)v);
}

static inline int
put_int(Enc *e, int tag, long long v)
{
    if (v == 0)
        return put_head(e, tag, W_ZERO);
    if (v >= -128 && v <= 127) {
        if (put_head(e, tag, W_INT1) < 0)
            return -1;
        NEED(e, 1);
        e->p[e->len++] = (char)v;
    }
    else if (v >= -32768 && v <= 32767) {
        if (put_head(e, tag, W_INT2) < 0)
            return -1;
        NEED(e, 2);
        be16(e->p + e->len, (uint16_t)v);
        e->len += 2;
    }
    else if (v >= INT32_MIN && v <= INT32_MAX) {
        if (put_head(e, tag, W_INT4) < 0)
            return -1;
        NEED(e, 4);
        be32(e->p + e->len, (uint32_t)v);
        e->len += 4;
    }
    else {
        if (put_head(e, tag, W_INT8) < 0)
            return -1;
        NEED(e, 8);
        be64(e->p + e->len, (uint64_t)v);
        e->len += 8;
    }
    return 0;
}

static inline int
put_raw(Enc *e, const char *data, Py_ssize_t n)
{
    NEED(e, n);
    if (n > 0)
        memcpy(e->p + e->len, data, (size_t)n);
    e->len += n;
    return 0;
}

static int w_value(Enc *e, TypeDesc *d, int tag, PyObject *v);
static int w_struct_body(Enc *e, Plan *p, PyObject *obj);
static int w_simple_fused(Enc *e, Plan *p, PyObject *obj);

static int
w_int(Enc *e, TypeDesc *d, int tag, PyObject *v)
{
    int overflow;
    long long x;
    if (!PyLong_Check(v))
        return expected_error("expected an integer for ", d, v);
    if (long_value(v, &x, &overflow) < 0)
        return -1;
    if (overflow || x < d->lo || x > d->hi) {
        PyObject *n = idl_name(d), *s;
        if (n == NULL)
            return -1;
        s = PyObject_Format(v, NULL);
        if (s != NULL)
            raise_fmt_(EncodeError, "%U is out of range for %S (%lld..%lld)", s, n, d->lo, d->hi);
        Py_DECREF(n);
        Py_XDECREF(s);
        return -1;
    }
    return put_int(e, tag, x);
}

static int
w_real(Enc *e, TypeDesc *d, int tag, PyObject *v)
{
    double x;
    if (!PyLong_Check(v) && !PyFloat_Check(v)) {
        PyObject *tn = type_name(v);
        if (tn != NULL) {
            raise_fmt_(EncodeError, "expected a number for %s, got %S", d->kind == K_FLOAT ? "float" : "double", tn);
            Py_DECREF(tn);
        }
        return -1;
    }
    x = PyFloat_AsDouble(v);
    if (x == -1.0 && PyErr_Occurred())
        return -1;
    if (d->kind == K_FLOAT) {
        if (put_head(e, tag, W_FLOAT) < 0)
            return -1;
        NEED(e, 4);
        if (PyFloat_Pack4(x, e->p + e->len, 0) < 0) {
            if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
                PyObject *f;
                PyErr_Clear();
                f = PyFloat_FromDouble(x);
                if (f != NULL) {
                    raise_fmt_(EncodeError, "%R does not fit a 32-bit float", f);
                    Py_DECREF(f);
                }
            }
            return -1;
        }
        e->len += 4;
        return 0;
    }
    if (put_head(e, tag, W_DOUBLE) < 0)
        return -1;
    NEED(e, 8);
    if (PyFloat_Pack8(x, e->p + e->len, 0) < 0)
        return -1;
    e->len += 8;
    return 0;
}

static int
w_string(Enc *e, TypeDesc *d, int tag, PyObject *v)
{
    const char *data;
    Py_ssize_t n;
    PyObject *tmp = NULL;
    int rc = -1;

    if (PyUnicode_Check(v)) {
        if (PyUnicode_IS_ASCII(v)) {
            data = (const char *)PyUnicode_DATA(v);
            n = PyUnicode_GET_LENGTH(v);
        }
        else {
            tmp = PyUnicode_AsEncodedString(v, "utf-8", "surrogateescape");
            if (tmp == NULL)
                return -1;
            data = PyBytes_AS_STRING(tmp);
            n = PyBytes_GET_SIZE(tmp);
        }
    }
    else if (PyBytes_Check(v)) {
        data = PyBytes_AS_STRING(v);
        n = PyBytes_GET_SIZE(v);
    }
    else if (PyByteArray_Check(v)) {
        data = PyByteArray_AS_STRING(v);
        n = PyByteArray_GET_SIZE(v);
    }
    else {
        PyObject *tn = type_name(v);
        if (tn != NULL) {
            raise_fmt_(EncodeError, "expected a string, got %S", tn);
            Py_DECREF(tn);
        }
        return -1;
    }
    if (n <= 255) {
        if (put_head(e, tag, W_STRING1) < 0)
            goto done;
        NEED(e, 1 + n);
        e->p[e->len++] = (char)n;
    }
    else {
        if ((unsigned long long)n > 0xFFFFFFFFULL) {
            raise_fmt_(EncodeError, "string of %zd bytes is too long", n);
            goto done;
        }
        if (put_head(e, tag, W_STRING4) < 0)
            goto done;
        NEED(e, 4 + n);
        be32(e->p + e->len, (uint32_t)n);
        e->len += 4;
    }
    memcpy(e->p + e->len, data, (size_t)n);
    e->len += n;
    rc = 0;
done:
    Py_XDECREF(tmp);
    return rc;
}

/* bytes(b & 0xFF for b in v) for a list, EncodeError on a TypeError */
static PyObject *
list_to_bytes(PyObject *v)
{
    Py_ssize_t i, n = PyList_GET_SIZE(v);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    unsigned char *p;
    if (out == NULL)
        return NULL;
    p = (unsigned char *)PyBytes_AS_STRING(out);
    for (i = 0; i < n && i < PyList_GET_SIZE(v); i++) {
        PyObject *b = PyList_GET_ITEM(v, i);
        if (PyLong_Check(b)) {
            unsigned long long m = PyLong_AsUnsignedLongLongMask(b);
            if (m == (unsigned long long)-1 && PyErr_Occurred())
                goto fail;
            p[i] = (unsigned char)(m & 0xFF);
        }
        else {
            PyObject *r;
            long x;
            Py_INCREF(b);
            r = PyNumber_And(b, int_ff);
            Py_DECREF(b);
            if (r == NULL)
                goto type_error;
            if (!PyLong_Check(r)) {
                Py_DECREF(r);
                PyErr_SetString(PyExc_TypeError, "not an integer");
                goto type_error;
            }
            x = PyLong_AsLong(r);
            Py_DECREF(r);
            if (x == -1 && PyErr_Occurred())
                goto fail;
            if (x < 0 || x > 255) {
                PyErr_SetString(PyExc_ValueError, "bytes must be in range(0, 256)");
                goto fail;
            }
            p[i] = (unsigned char)x;
        }
    }
    if (i < n && _PyBytes_Resize(&out, i) < 0)
        return NULL;
    return out;
type_error:
    if (PyErr_ExceptionMatches(PyExc_TypeError)) {
        PyErr_Clear();
        PyErr_SetString(EncodeError, "expected bytes or a list of small integers for vector<byte>");
    }
fail:
    Py_DECREF(out);
    return NULL;
}

static int
w_bytes(Enc *e, TypeDesc *d, int tag, PyObject *v)
{
    Py_buffer view;
    Py_ssize_t n;
    PyObject *tmp = NULL;
    int rc = -1;

    if (PyList_Check(v)) {
        tmp = list_to_bytes(v);
        if (tmp == NULL)
            return -1;
        v = tmp;
    }
    if (PyBytes_Check(v)) {
        if (put_head(e, tag, W_SLIST) < 0 || put_raw(e, "", 1) < 0 || put_int(e, 0, PyBytes_GET_SIZE(v)) < 0 ||
            put_raw(e, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v)) < 0)
            goto done;
        rc = 0;
        goto done;
    }
    if (!PyByteArray_Check(v) && !PyMemoryView_Check(v)) {
        PyObject *tn = type_name(v);
        if (tn != NULL) {
            raise_fmt_(EncodeError, "expected bytes for vector<byte>, got %S", tn);
            Py_DECREF(tn);
        }
        goto done;
    }
    n = PyObject_Size(v);
    if (n < 0)
        goto done;
    if (put_head(e, tag, W_SLIST) < 0 || put_raw(e, "", 1) < 0 || put_int(e, 0, n) < 0)
        goto done;
    if (PyObject_GetBuffer(v, &view, PyBUF_SIMPLE) < 0)
        goto done;
    rc = put_raw(e, (const char *)view.buf, view.len);
    PyBuffer_Release(&view);
done:
    Py_XDECREF(tmp);
    return rc;
}

static int
w_vector(Enc *e, TypeDesc *d, int tag, PyObject *v)
{
    Py_ssize_t i;
    TypeDesc *elem = d->elem;
    int is_list = PyList_Check(v);
    if (!is_list && !PyTuple_Check(v))
        return expected_error("expected a list for ", d, v);
    if (put_head(e, tag, W_LIST) < 0 || put_int(e, 0, Py_SIZE(v)) < 0)
        return -1;
    if (Py_EnterRecursiveCall(" while encoding a TARS value"))
        return -1;
    for (i = 0; i < Py_SIZE(v); i++) {
        PyObject *item = is_list ? PyList_GET_ITEM(v, i) : PyTuple_GET_ITEM(v, i);
        int r;
        if (elem->kind == K_STRUCT && Py_TYPE(item) == (PyTypeObject *)elem->cls && elem->cls_is_struct) {
            /* a list of simple structs (a lookup answer's EndpointFs): each written in one pass, borrowed, as no
               Python code runs meanwhile; any other element goes the general way */
            Plan *p = type_plan(elem);
            if (p == NULL) {
                Py_LeaveRecursiveCall();
                return -1;
            }
            if (p->simple && p->fast_get) {
                Py_ssize_t start = e->len;
                NEED_OR(e, 1, goto fail);
                e->p[e->len++] = (char)W_SBEGIN; /* tag 0 */
                r = w_simple_fused(e, p, item);
                if (r < 0)
                    goto fail;
                if (r == 0) {
                    NEED_OR(e, 1, goto fail);
                    e->p[e->len++] = (char)W_SEND;
                    continue;
                }
                e->len = start;
            }
        }
        Py_INCREF(item);
        r = w_value(e, elem, 0, item);
        Py_DECREF(item);
        if (r < 0) {
            wrap_error(EncodeError, "[%zd]: ", i);
            Py_LeaveRecursiveCall();
            return -1;
        }
    }
    Py_LeaveRecursiveCall();
    return 0;
fail:
    Py_LeaveRecursiveCall();
    return -1;
}

static int
w_entry(Enc *e, TypeDesc *d, PyObject *k, PyObject *val)
{
    if (w_value(e, d->key, 0, k) < 0 || w_value(e, d->val, 1, val) < 0) {
        wrap_error(EncodeError, "[%R]: ", k);
        return -1;
    }
    return 0;
}

static int
w_map(Enc *e, TypeDesc *d, int tag, PyObject *v)
{
    Py_ssize_t n;
    int rc = -1;
    if (!PyDict_Check(v)) {
        int r = PyObject_IsInstance(v, MappingABC);
        if (r < 0)
            return -1;
        if (!r)
            return expected_error("expected a dict for ", d, v);
    }
    if (PyDict_CheckExact(v) && PyDict_GET_SIZE(v) == 0) /* context and status of most packets */
        return put_head(e, tag, W_MAP) < 0 ? -1 : put_head(e, 0, W_ZERO);
    if (put_head(e, tag, W_MAP) < 0)
        return -1;
    n = PyObject_Size(v);
    if (n < 0 || put_int(e, 0, n) < 0)
        return -1;
    if (Py_EnterRecursiveCall(" while encoding a TARS value"))
        return -1;
    if (PyDict_CheckExact(v)) {
        Py_ssize_t pos = 0;
        PyObject *k, *val;
        while (PyDict_Next(v, &pos, &k, &val)) {
            int r;
            Py_INCREF(k);
            Py_INCREF(val);
            r = w_entry(e, d, k, val);
            Py_DECREF(k);
            Py_DECREF(val);
            if (r < 0)
                goto done;
            if (PyDict_GET_SIZE(v) != n) {
                PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
                goto done;
            }
        }
    }
    else {
        PyObject *items = PyMapping_Items(v), *it = NULL, *pair;
        if (items == NULL)
            goto done;
        it = PyObject_GetIter(items);
        Py_DECREF(items);
        if (it == NULL)
            goto done;
        while ((pair = PyIter_Next(it)) != NULL) {
            int r;
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
                Py_DECREF(pair);
                PyErr_SetString(PyExc_TypeError, "items() must give (key, value) pairs");
                Py_DECREF(it);
                goto done;
            }
            r = w_entry(e, d, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1));
            Py_DECREF(pair);
            if (r < 0) {
                Py_DECREF(it);
                goto done;
            }
        }
        Py_DECREF(it);
        if (PyErr_Occurred())
            goto done;
    }
    rc = 0;
done:
    Py_LeaveRecursiveCall();
    return rc;
}

static int
w_struct(Enc *e, TypeDesc *d, int tag, PyObject *v)
{
    Plan *p;
    int rc;
    if (Py_TYPE(v) == (PyTypeObject *)d->cls && d->cls_is_struct) {
        p = type_plan(d);
        if (p == NULL)
            return -1;
        Py_INCREF(p);
    }
    else {
        int ok = PyObject_IsInstance(v, d->cls == Py_None ? StructBase : d->cls);
        if (ok > 0)
            ok = PyObject_IsInstance(v, StructBase);
        if (ok < 0)
            return -1;
        if (!ok)
            return expected_error("expected ", d, v);
        p = get_plan((PyObject *)Py_TYPE(v));
        if (p == NULL)
            return -1;
    }
    rc = -1;
    if (put_head(e, tag, W_SBEGIN) < 0)
        goto done;
    if (Py_EnterRecursiveCall(" while encoding a TARS struct"))
        goto done;
    rc = w_struct_body(e, p, v);
    Py_LeaveRecursiveCall();
    if (rc == 0)
        rc = put_raw(e, "\x0b", 1); /* struct end */
done:
    Py_DECREF(p);
    return rc;
}

static int
w_value(Enc *e, TypeDesc *d, int tag, PyObject *v)
{
    switch (d->kind) {
    case K_BOOL: case K_BYTE: case K_SHORT: case K_INT: case K_LONG:
    case K_UBYTE: case K_USHORT: case K_UINT: case K_ENUM:
        return w_int(e, d, tag, v);
    case K_FLOAT: case K_DOUBLE:
        return w_real(e, d, tag, v);
    case K_STRING:
        return w_string(e, d, tag, v);
    case K_BYTES:
        return w_bytes(e, d, tag, v);
    case K_VECTOR:
        return w_vector(e, d, tag, v);
    case K_MAP:
        return w_map(e, d, tag, v);
    case K_STRUCT:
        return w_struct(e, d, tag, v);
    }
    PyErr_SetString(PyExc_SystemError, "bad TARS kind");
    return -1;
}

/* codec._is_default: 1 if an optional field holding `v` is left out by a skip-defaults writer */
static int
is_default(FieldDesc *f, PyObject *v)
{
    PyObject *r;
    int t;
    switch (f->skip) {
    case SKIP_EMPTY:
        if (PyList_CheckExact(v) || PyTuple_CheckExact(v) || PyBytes_CheckExact(v))
            return Py_SIZE(v) == 0;
        if (PyDict_CheckExact(v))
            return PyDict_GET_SIZE(v) == 0;
        return PyObject_Not(v);
    case SKIP_EQ:
        if (PyLong_CheckExact(v) && f->cmp_is_int) {
            int overflow;
            long long a;
            if (long_value(v, &a, &overflow) < 0)
                return -1;
            return !overflow && a == f->cmp_int;
        }
        if (PyUnicode_CheckExact(v) && PyUnicode_CheckExact(f->cmp)) {
            Py_ssize_t len = PyUnicode_GET_LENGTH(v);
            if (len != PyUnicode_GET_LENGTH(f->cmp) || PyUnicode_KIND(v) != PyUnicode_KIND(f->cmp))
                return 0;
            return len == 0 ||
                   memcmp(PyUnicode_DATA(v), PyUnicode_DATA(f->cmp), (size_t)len * PyUnicode_KIND(v)) == 0;
        }
        r = PyObject_RichCompare(v, f->cmp, Py_EQ);
        if (r == NULL)
            return -1;
        t = PyObject_IsTrue(r);
        Py_DECREF(r);
        return t;
    default:
        return 0;
    }
}

/* TarsWriter.write_fields: values[i] is the value of field i; zip(strict=True) semantics for unequal lengths. */
static int
w_fields(Enc *e, Plan *p, PyObject *const *values, Py_ssize_t nvalues)
{
    Py_ssize_t i, n = p->n < nvalues ? p->n : nvalues;
    for (i = 0; i < n; i++) {
        FieldDesc *f = &p->f[i];
        PyObject *v = values[i];
        if (e->skip && !f->required) {
            int r = is_default(f, v);
            if (r < 0)
                return -1;
            if (r)
                continue;
        }
        e->bad_tag = f->tagobj;
        if (w_value(e, f->type, f->tag, v) < 0) {
            wrap_error(EncodeError, "%S: ", f->name);
            return -1;
        }
    }
    if (p->n != nvalues) {
        PyErr_Format(PyExc_ValueError, "zip() argument 2 is %s than argument 1",
                     nvalues < p->n ? "shorter" : "longer");
        return -1;
    }
    return 0;
}

/* A struct of numbers, strings and bytes in slots (EndpointF, RequestPacket with empty maps): when every slot holds
   an exact int, float, str, bytes or empty dict, writing them runs no Python code and allocates nothing the garbage
   collector tracks (so no finalizer runs either), and nothing can change the slots meanwhile: they are written
   borrowed, without the reference count traffic that was most of the time of a 100-endpoint answer (issue 19).
   1: not such a struct, the caller writes it. */
static int
w_simple_body(Enc *e, Plan *p, PyObject *obj)
{
    PyObject *v[STACK_N];
    Py_ssize_t i, n = p->n;
    for (i = 0; i < n; i++) {
        PyObject *x = *(PyObject **)((char *)obj + p->f[i].offset);
        int k = p->f[i].type->kind;
        if (x == NULL)
            return 1;
        switch (k) {
        case K_STRING: if (!PyUnicode_CheckExact(x)) return 1; break;
        case K_BYTES: if (!PyBytes_CheckExact(x)) return 1; break;
        case K_MAP: if (!PyDict_CheckExact(x) || PyDict_GET_SIZE(x) != 0) return 1; break;
        case K_FLOAT: case K_DOUBLE: if (!PyLong_CheckExact(x) && !PyFloat_CheckExact(x)) return 1; break;
        default: if (!PyLong_CheckExact(x)) return 1;
        }
        v[i] = x;
    }
    return w_fields(e, p, v, n);
}

static inline void
put_head_unchecked(Enc *e, int tag, int wire)
{
    if (tag < 15)
        e->p[e->len++] = (char)(tag << 4 | wire);
    else {
        e->p[e->len++] = (char)(0xF0 | wire);
        e->p[e->len++] = (char)tag;
    }
}

/* put_int's bytes with room for them made by the caller (at most 10) */
static inline void
put_int_unchecked(Enc *e, int tag, long long v)
{
    if (v == 0)
        put_head_unchecked(e, tag, W_ZERO);
    else if (v >= -128 && v <= 127) {
        put_head_unchecked(e, tag, W_INT1);
        e->p[e->len++] = (char)v;
    }
    else if (v >= -32768 && v <= 32767) {
        put_head_unchecked(e, tag, W_INT2);
        be16(e->p + e->len, (uint16_t)v);
        e->len += 2;
    }
    else if (v >= INT32_MIN && v <= INT32_MAX) {
        put_head_unchecked(e, tag, W_INT4);
        be32(e->p + e->len, (uint32_t)v);
        e->len += 4;
    }
    else {
        put_head_unchecked(e, tag, W_INT8);
        be64(e->p + e->len, (uint64_t)v);
        e->len += 8;
    }
}

/* The same struct written in one pass without a call per field (issue 19: the calls and checks of the general writer
   were half of an encode of a RequestPacket): only the common case, every value an exact int in range, ASCII str,
   bytes, float or empty dict, each default-skip decided without calling Python. Anything else (an error, a big int,
   a non-ASCII string, a default that is not an int or a str) returns 1 with what it wrote undone, and the general
   writer writes the struct, so bytes and errors are the general writer's. */
static int
w_simple_fused(Enc *e, Plan *p, PyObject *obj)
{
    Py_ssize_t i, n = p->n, start = e->len;
    for (i = 0; i < n; i++) {
        FieldDesc *f = &p->f[i];
        PyObject *x = *(PyObject **)((char *)obj + f->offset);
        int tag = f->tag, kind = f->kind, skip = e->skip && !f->required;
        Py_ssize_t len;
        if (x == NULL || tag < 0)
            goto punt;
        switch (kind) {
        case K_STRING:
            if (!PyUnicode_CheckExact(x) || !PyUnicode_IS_COMPACT_ASCII(x))
                goto punt;
            len = PyUnicode_GET_LENGTH(x);
            if (skip) {
                if (f->skip != SKIP_EQ || !PyUnicode_CheckExact(f->cmp))
                    goto punt;
                if (len == PyUnicode_GET_LENGTH(f->cmp) && PyUnicode_IS_COMPACT_ASCII(f->cmp) &&
                    (len == 0 || memcmp(PyUnicode_DATA(x), PyUnicode_DATA(f->cmp), (size_t)len) == 0))
                    continue;
            }
            NEED(e, 6 + len);
            if (len <= 255) {
                put_head_unchecked(e, tag, W_STRING1);
                e->p[e->len++] = (char)len;
            }
            else {
                if ((unsigned long long)len > 0xFFFFFFFFULL)
                    goto punt;
                put_head_unchecked(e, tag, W_STRING4);
                be32(e->p + e->len, (uint32_t)len);
                e->len += 4;
            }
            memcpy(e->p + e->len, PyUnicode_DATA(x), (size_t)len);
            e->len += len;
            break;
        case K_BYTES:
            if (!PyBytes_CheckExact(x))
                goto punt;
            len = PyBytes_GET_SIZE(x);
            if (skip && len == 0)
                continue;
            NEED(e, 13 + len);
            put_head_unchecked(e, tag, W_SLIST);
            e->p[e->len++] = 0;
            put_int_unchecked(e, 0, len);
            memcpy(e->p + e->len, PyBytes_AS_STRING(x), (size_t)len);
            e->len += len;
            break;
        case K_MAP:
            if (!PyDict_CheckExact(x) || PyDict_GET_SIZE(x) != 0)
                goto punt;
            if (skip)
                continue;
            NEED(e, 3);
            put_head_unchecked(e, tag, W_MAP);
            e->p[e->len++] = (char)(W_ZERO); /* the size 0 at tag 0 */
            break;
        case K_FLOAT: case K_DOUBLE: {
            double d;
            if (!PyFloat_CheckExact(x))
                goto punt;
            d = PyFloat_AS_DOUBLE(x);
            if (skip) {
                if (f->skip != SKIP_EQ || !PyFloat_CheckExact(f->cmp))
                    goto punt;
                if (d == PyFloat_AS_DOUBLE(f->cmp))
                    continue;
            }
            NEED(e, 10);
            if (kind == K_FLOAT) {
                if (!(d >= -3.4028234663852886e38 && d <= 3.4028234663852886e38))
                    goto punt; /* inf, nan or out of range: PyFloat_Pack4 decides */
                put_head_unchecked(e, tag, W_FLOAT);
                if (PyFloat_Pack4(d, e->p + e->len, 0) < 0)
                    return -1;
                e->len += 4;
            }
            else {
                put_head_unchecked(e, tag, W_DOUBLE);
                if (PyFloat_Pack8(d, e->p + e->len, 0) < 0)
                    return -1;
                e->len += 8;
            }
            break;
        }
        default: { /* the integer kinds of a simple plan */
            long long v;
            int overflow;
            if (!PyLong_CheckExact(x) || long_value(x, &v, &overflow) < 0 || overflow)
                goto punt; /* an exact int raises nothing: only overflow gets here */
            if (v < f->lo || v > f->hi)
                goto punt;
            if (skip) {
                if (f->skip != SKIP_EQ || !f->cmp_is_int)
                    goto punt;
                if (v == f->cmp_int)
                    continue;
            }
            NEED(e, 10);
            put_int_unchecked(e, tag, v);
        }
        }
    }
    return 0;
punt:
    e->len = start;
    return 1;
}

/* TarsWriter.write_struct_body: every attribute is read first, then the fields are written. */
static int
w_struct_body(Enc *e, Plan *p, PyObject *obj)
{
    PyObject *stackv[STACK_N], **v;
    Py_ssize_t i, n = p->n;
    int slots = p->fast_get && Py_TYPE(obj) == (PyTypeObject *)p->cls, rc;

    if (slots && p->simple && ((rc = w_simple_fused(e, p, obj)) <= 0 || (rc = w_simple_body(e, p, obj)) <= 0))
        return rc;

    stackv[0] = NULL;
    v = n <= STACK_N ? stackv : PyMem_Malloc((size_t)n * sizeof(PyObject *));
    if (v == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i < n; i++) {
        PyObject *x = NULL;
        if (slots) {
            x = *(PyObject **)((char *)obj + p->f[i].offset);
            Py_XINCREF(x);
        }
        if (x == NULL)
            x = PyObject_GetAttr(obj, p->f[i].name);
        if (x == NULL) {
            while (i-- > 0)
                Py_DECREF(v[i]);
            if (v != stackv)
                PyMem_Free(v);
            return -1;
        }
        v[i] = x;
    }
    rc = w_fields(e, p, v, n);
    for (i = 0; i < n; i++)
        Py_DECREF(v[i]);
    if (v != stackv)
        PyMem_Free(v);
    return rc;
}

static PyObject *
enc_finish(Enc *e, int rc)
{
    PyObject *out = rc < 0 ? NULL : PyBytes_FromStringAndSize(e->p, e->len);
    enc_free(e);
    return out;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Reading */

typedef struct {
    const unsigned char *data;
    Py_ssize_t pos, end;
    int depth;
} Rd;

static int
need(Rd *r, long long n, const char *what)
{
    if (n < 0 || n > r->end - r->pos) {
        raise_fmt_(DecodeError, "truncated input: %s needs %lld bytes at offset %zd, %zd left", what, n, r->pos,
                  r->end - r->pos);
        return -1;
    }
    return 0;
}

static inline int
rd_head(Rd *r, int *tag, int *wire)
{
    unsigned char b;
    *tag = *wire = 0;
    if (r->pos >= r->end)
        return raise_fmt(DecodeError, "truncated input: expected a field head at offset %zd", r->pos);
    b = r->data[r->pos++];
    *wire = b & 0x0F;
    *tag = b >> 4;
    if (*tag == 15) {
        if (r->pos >= r->end)
            return raise_fmt(DecodeError, "truncated input: expected a tag byte at offset %zd", r->pos);
        *tag = r->data[r->pos++];
    }
    if (*wire > W_SLIST)
        return raise_fmt(DecodeError, "invalid wire type %d at offset %zd", *wire, r->pos - 1);
    return 0;
}

static inline uint16_t
ld16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t
ld32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t
ld64(const unsigned char *p)
{
    return ((uint64_t)ld32(p) << 32) | ld32(p + 4);
}

static inline int
rd_int(Rd *r, int wire, long long *out)
{
    const unsigned char *p = r->data + r->pos;
    switch (wire) {
    case W_ZERO:
        *out = 0;
        return 0;
    case W_INT1:
        if (need(r, 1, "int1") < 0)
            return -1;
        *out = (int8_t)p[0];
        r->pos += 1;
        return 0;
    case W_INT2:
        if (need(r, 2, "int2") < 0)
            return -1;
        *out = (int16_t)ld16(p);
        r->pos += 2;
        return 0;
    case W_INT4:
        if (need(r, 4, "int4") < 0)
            return -1;
        *out = (int32_t)ld32(p);
        r->pos += 4;
        return 0;
    case W_INT8:
        if (need(r, 8, "int8") < 0)
            return -1;
        *out = (long long)(int64_t)ld64(p);
        r->pos += 8;
        return 0;
    }
    return raise_fmt(DecodeError, "type mismatch: expected an integer, got %s at offset %zd", WIRE_NAMES[wire],
                     r->pos);
}

static int
rd_size(Rd *r, const char *what, int min_each, Py_ssize_t *out)
{
    int tag, wire;
    long long n;
    Py_ssize_t left;
    if (rd_head(r, &tag, &wire) < 0 || rd_int(r, wire, &n) < 0)
        return -1;
    if (n < 0)
        return raise_fmt(DecodeError, "negative %s size %lld at offset %zd", what, n, r->pos);
    left = r->end - r->pos;
    if (n > left / min_each)
        return raise_fmt(DecodeError, "%s size %lld exceeds the %zd bytes left at offset %zd", what, n, left,
                         r->pos);
    *out = (Py_ssize_t)n;
    return 0;
}

static int
rd_string(Rd *r, int wire, const char **s, Py_ssize_t *n)
{
    long long len;
    if (wire == W_STRING1) {
        if (need(r, 1, "string length") < 0)
            return -1;
        len = r->data[r->pos];
        r->pos += 1;
    }
    else if (wire == W_STRING4) {
        if (need(r, 4, "string length") < 0)
            return -1;
        len = ld32(r->data + r->pos);
        r->pos += 4;
    }
    else
        return raise_fmt(DecodeError, "type mismatch: expected a string, got %s at offset %zd", WIRE_NAMES[wire],
                         r->pos);
    if (need(r, len, "string") < 0)
        return -1;
    *s = (const char *)r->data + r->pos;
    *n = (Py_ssize_t)len;
    r->pos += (Py_ssize_t)len;
    return 0;
}

static int
rd_simple_list(Rd *r, const char **s, Py_ssize_t *n)
{
    if (need(r, 1, "simple list") < 0)
        return -1;
    if (r->data[r->pos] != 0)
        return raise_fmt(DecodeError, "simple list inner head must be 0x00, got 0x%02x", (int)r->data[r->pos]);
    r->pos += 1;
    if (rd_size(r, "simple list", 1, n) < 0)
        return -1;
    *s = (const char *)r->data + r->pos;
    r->pos += *n;
    return 0;
}

static inline int
enter(Rd *r)
{
    if (++r->depth > max_depth)
        return raise_fmt(DecodeError, "nesting deeper than %d at offset %zd", max_depth, r->pos);
    return 0;
}

static int skip_to_struct_end(Rd *r);

static int
skip_field(Rd *r, int wire)
{
    static const int fixed[6] = {1, 2, 4, 8, 4, 8};
    const char *s;
    Py_ssize_t n, i;
    int tag, w;

    if (wire <= W_DOUBLE) {
        if (need(r, fixed[wire], WIRE_NAMES[wire]) < 0)
            return -1;
        r->pos += fixed[wire];
        return 0;
    }
    switch (wire) {
    case W_STRING1:
    case W_STRING4:
        return rd_string(r, wire, &s, &n);
    case W_MAP:
    case W_LIST:
        if (enter(r) < 0 || rd_size(r, wire == W_MAP ? "map" : "list", wire == W_MAP ? 2 : 1, &n) < 0)
            return -1;
        if (wire == W_MAP)
            n *= 2;
        for (i = 0; i < n; i++) {
            if (rd_head(r, &tag, &w) < 0 || skip_field(r, w) < 0)
                return -1;
        }
        r->depth--;
        return 0;
    case W_SBEGIN:
        if (enter(r) < 0 || skip_to_struct_end(r) < 0)
            return -1;
        r->depth--;
        return 0;
    case W_SLIST:
        return rd_simple_list(r, &s, &n);
    }
    return 0; /* struct-end and zero carry no payload */
}

static int
skip_to_struct_end(Rd *r)
{
    int tag, wire;
    for (;;) {
        if (rd_head(r, &tag, &wire) < 0)
            return -1;
        if (wire == W_SEND)
            return 0;
        if (skip_field(r, wire) < 0)
            return -1;
    }
}

static int
mismatch(TypeDesc *d, int wire)
{
    PyObject *n = idl_name(d);
    if (n == NULL)
        return -1;
    raise_fmt_(DecodeError, "type mismatch: %S cannot be read from %s", n, WIRE_NAMES[wire]);
    Py_DECREF(n);
    return -1;
}

static PyObject *r_value(Rd *r, TypeDesc *d, int wire);

/* Short ASCII strings decoded lately, by a hash of their bytes: hosts, servant and function names repeat from packet
   to packet and from endpoint to endpoint, and a str is immutable, so the same one serves again (issue 19: making
   and freeing them was a fifth of decoding a 100-endpoint answer). */
#define STR_CACHE 256 /* a power of 2, at most 256 */
#define STR_CACHE_MAX 32
static PyObject *str_cache[STR_CACHE];

static inline uint64_t
ld64le(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint32_t
ld32le(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* a[0:n] == b[0:n] for 0 < n <= STR_CACHE_MAX, in word compares (memcmp's call was most of a cache hit) */
static inline int
short_eq(const void *a, const void *b, Py_ssize_t n)
{
    const char *x = a, *y = b;
    Py_ssize_t i;
    if (n >= 8) {
        for (i = 0; i + 8 < n; i += 8) {
            if (ld64le(x + i) != ld64le(y + i))
                return 0;
        }
        return ld64le(x + n - 8) == ld64le(y + n - 8);
    }
    if (n >= 4)
        return ld32le(x) == ld32le(y) && ld32le(x + n - 4) == ld32le(y + n - 4);
    for (i = 0; i < n; i++) {
        if (x[i] != y[i])
            return 0;
    }
    return 1;
}

/* The slot of s[0:n] (0 < n <= STR_CACHE_MAX): a few word loads and multiplies, not a loop over the bytes. */
static inline unsigned int
str_slot(const char *s, Py_ssize_t n)
{
    uint64_t a, b;
    if (n >= 8) {
        a = ld64le(s);
        b = ld64le(s + n - 8) ^ (n > 16 ? ld64le(s + 8) : 0) ^ (n > 24 ? ld64le(s + 16) : 0);
    }
    else if (n >= 4) {
        a = ld32le(s);
        b = ld32le(s + n - 4);
    }
    else {
        a = (unsigned char)s[0] | (uint64_t)(unsigned char)s[n / 2] << 8;
        b = (unsigned char)s[n - 1];
    }
    a = (a * 0x9E3779B97F4A7C15ULL) ^ (b * 0xC2B2AE3D27D4EB4FULL) ^ (uint64_t)n;
    return (unsigned int)(a >> 56) & (STR_CACHE - 1);
}

/* The cached str equal to s[0:n], borrowed, or NULL (no error set) */
static inline PyObject *
cached_str(const char *s, Py_ssize_t n)
{
    PyObject *u;
    if (n == 0 || n > STR_CACHE_MAX)
        return NULL;
    u = str_cache[str_slot(s, n)];
    if (u != NULL && PyUnicode_GET_LENGTH(u) == n && short_eq(PyUnicode_DATA(u), s, n))
        return u;
    return NULL;
}

/* A new str of s[0:n] (UTF-8, surrogateescape), remembered when it is short ASCII */
static PyObject *
new_str(const char *s, Py_ssize_t n)
{
    PyObject *u = PyUnicode_DecodeUTF8(s, n, "surrogateescape");
    if (u != NULL && n > 0 && n <= STR_CACHE_MAX && PyUnicode_IS_COMPACT_ASCII(u))
        Py_XSETREF(str_cache[str_slot(s, n)], Py_NewRef(u));
    return u;
}

static PyObject *
decode_str(const char *s, Py_ssize_t n)
{
    PyObject *u = cached_str(s, n);
    return u != NULL ? Py_NewRef(u) : new_str(s, n);
}
static PyObject *r_struct(Rd *r, Plan *p, int nested);
static int r_simple_fused(Rd *r, Plan *p, int nested, PyObject **out);
static inline int fusable(Plan *p);

static PyObject *
r_enum(TypeDesc *d, long long v)
{
    PyObject *iv = PyLong_FromLongLong(v), *m;
    if (iv == NULL)
        return NULL;
    if (d->enum_map != NULL) {
        m = PyDict_GetItemWithError(d->enum_map, iv);
        if (m != NULL) {
            Py_DECREF(iv);
            return Py_NewRef(m);
        }
        if (PyErr_Occurred()) {
            Py_DECREF(iv);
            return NULL;
        }
    }
    m = PyObject_CallOneArg(d->cls, iv);
    if (m == NULL) {
        if (PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
            return iv; /* unknown enumerators stay plain ints */
        }
        Py_DECREF(iv);
        return NULL;
    }
    Py_DECREF(iv);
    return m;
}

static PyObject *
r_bytes(Rd *r, int wire)
{
    const char *s;
    Py_ssize_t n, i;
    if (wire == W_SLIST) {
        if (rd_simple_list(r, &s, &n) < 0)
            return NULL;
        return PyBytes_FromStringAndSize(s, n);
    }
    if (wire == W_LIST) {
        PyObject *out;
        char *p;
        if (rd_size(r, "list", 1, &n) < 0)
            return NULL;
        out = PyBytes_FromStringAndSize(NULL, n);
        if (out == NULL)
            return NULL;
        p = PyBytes_AS_STRING(out);
        for (i = 0; i < n; i++) {
            int tag, w;
            long long x;
            if (rd_head(r, &tag, &w) < 0)
                goto fail;
            if (w != W_ZERO && w != W_INT1) {
                raise_fmt_(DecodeError, "type mismatch: byte cannot be read from %s", WIRE_NAMES[w]);
                goto fail;
            }
            if (rd_int(r, w, &x) < 0)
                goto fail;
            p[i] = (char)(x & 0xFF);
        }
        return out;
    fail:
        Py_DECREF(out);
        return NULL;
    }
    raise_fmt_(DecodeError, "type mismatch: vector<byte> cannot be read from %s", WIRE_NAMES[wire]);
    return NULL;
}

static PyObject *
r_vector(Rd *r, TypeDesc *d, int wire)
{
    PyObject *stackv[STACK_N], **items = stackv, *out = NULL;
    Py_ssize_t n, i, got = 0, cap = STACK_N;

    if (wire != W_LIST) {
        mismatch(d, wire);
        return NULL;
    }
    if (enter(r) < 0 || rd_size(r, "list", 1, &n) < 0)
        return NULL;
    for (i = 0; i < n; i++) {
        int tag, w;
        PyObject *x;
        if (rd_head(r, &tag, &w) < 0)
            goto done;
        x = NULL;
        if (w == W_SBEGIN && d->elem->kind == K_STRUCT && r->depth < max_depth) {
            /* a list of simple structs (a lookup answer's EndpointFs): each read in one pass where it can be */
            Plan *p = type_plan(d->elem);
            if (p == NULL)
                goto done;
            if (fusable(p)) {
                int rc;
                r->depth++;
                rc = r_simple_fused(r, p, 1, &x);
                r->depth--;
                if (rc < 0)
                    goto done;
            }
        }
        if (x == NULL)
            x = r_value(r, d->elem, w);
        if (x == NULL) {
            wrap_error(DecodeError, "[%zd]: ", i);
            goto done;
        }
        if (got == cap) { /* grow with what was actually read, never with what a hostile size claims */
            Py_ssize_t ncap = cap * 2 < n ? cap * 2 : n;
            PyObject **nitems = items == stackv ? PyMem_Malloc((size_t)ncap * sizeof(PyObject *))
                                                : PyMem_Realloc(items, (size_t)ncap * sizeof(PyObject *));
            if (nitems == NULL) {
                Py_DECREF(x);
                PyErr_NoMemory();
                goto done;
            }
            if (items == stackv)
                memcpy(nitems, stackv, sizeof(stackv));
            items = nitems;
            cap = ncap;
        }
        items[got++] = x;
    }
    out = PyList_New(n);
    if (out == NULL)
        goto done;
    for (i = 0; i < n; i++)
        PyList_SET_ITEM(out, i, items[i]);
    got = 0;
    r->depth--;
done:
    for (i = 0; i < got; i++)
        Py_DECREF(items[i]);
    if (items != stackv)
        PyMem_Free(items);
    return out;
}

static int
map_entry_error(TypeDesc *d, PyObject *key)
{
    if (PyErr_ExceptionMatches(DecodeError))
        wrap_error(DecodeError, "[%R]: ", key);
    else if (PyErr_ExceptionMatches(PyExc_TypeError)) {
        PyObject *n;
        PyErr_Clear();
        n = idl_name(d->key);
        if (n != NULL) {
            raise_fmt_(DecodeError, "map key of type %S is not hashable", n);
            Py_DECREF(n);
        }
    }
    return -1;
}

static PyObject *
r_map(Rd *r, TypeDesc *d, int wire)
{
    PyObject *out;
    Py_ssize_t n, i;
    if (wire != W_MAP) {
        mismatch(d, wire);
        return NULL;
    }
    if (enter(r) < 0 || rd_size(r, "map", 2, &n) < 0)
        return NULL;
    out = PyDict_New();
    if (out == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        int tag, w, rc;
        PyObject *k, *v;
        if (rd_head(r, &tag, &w) < 0)
            goto fail;
        k = r_value(r, d->key, w);
        if (k == NULL)
            goto fail;
        if (rd_head(r, &tag, &w) < 0) {
            Py_DECREF(k);
            goto fail;
        }
        v = r_value(r, d->val, w);
        if (v == NULL) {
            map_entry_error(d, k);
            Py_DECREF(k);
            goto fail;
        }
        rc = PyDict_SetItem(out, k, v);
        Py_DECREF(v);
        if (rc < 0) {
            map_entry_error(d, k);
            Py_DECREF(k);
            goto fail;
        }
        Py_DECREF(k);
    }
    r->depth--;
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyObject *
r_value(Rd *r, TypeDesc *d, int wire)
{
    long long v;
    const char *s;
    Py_ssize_t n;

    switch (d->kind) {
    case K_BOOL: case K_BYTE: case K_SHORT: case K_INT: case K_LONG:
    case K_UBYTE: case K_USHORT: case K_UINT: case K_ENUM:
        if (wire != W_ZERO && wire > d->max_wire) {
            mismatch(d, wire);
            return NULL;
        }
        if (rd_int(r, wire, &v) < 0)
            return NULL;
        if (d->kind == K_BOOL)
            return PyBool_FromLong(v != 0);
        if (d->kind == K_ENUM)
            return r_enum(d, v);
        return PyLong_FromLongLong(v);
    case K_FLOAT: case K_DOUBLE:
        if (wire == W_ZERO)
            return PyFloat_FromDouble(0.0);
        if (wire == W_FLOAT) {
            double x;
            if (need(r, 4, "float") < 0)
                return NULL;
            x = PyFloat_Unpack4((const char *)r->data + r->pos, 0);
            if (x == -1.0 && PyErr_Occurred())
                return NULL;
            r->pos += 4;
            return PyFloat_FromDouble(x);
        }
        if (wire == W_DOUBLE && d->kind == K_DOUBLE) {
            double x;
            if (need(r, 8, "double") < 0)
                return NULL;
            x = PyFloat_Unpack8((const char *)r->data + r->pos, 0);
            if (x == -1.0 && PyErr_Occurred())
                return NULL;
            r->pos += 8;
            return PyFloat_FromDouble(x);
        }
        mismatch(d, wire);
        return NULL;
    case K_STRING:
        if (rd_string(r, wire, &s, &n) < 0)
            return NULL;
        return decode_str(s, n);
    case K_BYTES:
        return r_bytes(r, wire);
    case K_VECTOR:
        return r_vector(r, d, wire);
    case K_MAP:
        return r_map(r, d, wire);
    case K_STRUCT: {
        Plan *p;
        PyObject *obj;
        if (wire != W_SBEGIN) {
            mismatch(d, wire);
            return NULL;
        }
        if (enter(r) < 0)
            return NULL;
        p = type_plan(d);
        if (p == NULL)
            return NULL;
        Py_INCREF(p);
        obj = r_struct(r, p, 1);
        Py_DECREF(p);
        if (obj != NULL)
            r->depth--;
        return obj;
    }
    }
    PyErr_SetString(PyExc_SystemError, "bad TARS kind");
    return NULL;
}

static PyObject *
make_default(FieldDesc *f)
{
    switch (f->defmode) {
    case DEF_CONST: return Py_NewRef(f->defobj);
    case DEF_LIST: return PyList_New(0);
    case DEF_DICT: return PyDict_New();
    case DEF_COPYLIST: return PyList_GetSlice(f->defobj, 0, PY_SSIZE_T_MAX);
    case DEF_COPYDICT: return PyDict_Copy(f->defobj);
    default: return PyObject_CallMethodNoArgs(f->field, s_default_value);
    }
}

/* TarsReader.read_fields: fills vals[0..n) (NULL on entry) with new references. */
static int
read_fields(Rd *r, FieldDesc *fs, Py_ssize_t n, const int16_t *by_tag, int nested, PyObject **vals)
{
    Py_ssize_t i;
    for (;;) {
        int tag, wire, slot;
        PyObject *x;
        if (r->pos >= r->end) {
            if (nested) {
                PyErr_SetString(DecodeError, "truncated input: struct has no end");
                goto fail;
            }
            break;
        }
        if (nested && r->data[r->pos] == W_SEND) {
            r->pos++;
            break;
        }
        if (rd_head(r, &tag, &wire) < 0)
            goto fail;
        if (wire == W_SEND) {
            if (nested)
                break;
            raise_fmt_(DecodeError, "unexpected struct end at offset %zd", r->pos - 1);
            goto fail;
        }
        slot = by_tag[tag];
        if (slot < 0) {
            if (skip_field(r, wire) < 0)
                goto fail;
            continue;
        }
        x = r_value(r, fs[slot].type, wire);
        if (x == NULL) {
            wrap_error(DecodeError, "%S (tag %S): ", fs[slot].name, fs[slot].tagobj);
            goto fail;
        }
        Py_XSETREF(vals[slot], x);
    }
    for (i = 0; i < n; i++) {
        if (vals[i] == NULL) {
            FieldDesc *f = &fs[i];
            if (f->required) {
                raise_fmt_(DecodeError, "required field %S (tag %S) is missing", f->name, f->tagobj);
                goto fail;
            }
            vals[i] = make_default(f);
            if (vals[i] == NULL)
                goto fail;
        }
    }
    return 0;
fail:
    for (i = 0; i < n; i++)
        Py_CLEAR(vals[i]);
    return -1;
}

/* cls(*values), or, for a plain slotted dataclass, the same object built without calling __init__ */
static PyObject *
construct(Plan *p, PyObject **vals)
{
    Py_ssize_t i, n = p->n;
    PyObject *obj;
    if (p->fast_init) {
        PyTypeObject *tp = (PyTypeObject *)p->cls;
        obj = tp->tp_alloc(tp, 0);
        if (obj != NULL) {
            for (i = 0; i < n; i++) {
                PyObject **slot = (PyObject **)((char *)obj + p->f[i].offset);
                Py_XSETREF(*slot, vals[i]);
            }
            return obj;
        }
    }
    else
        obj = PyObject_Vectorcall(p->cls, vals, (size_t)n, NULL);
    for (i = 0; i < n; i++)
        Py_DECREF(vals[i]);
    return obj;
}

/* References to objects many fields share (0, 1, "", a host name, a default): on 3.11, where every increment is a
   store, incrementing one object's count hundreds of times in a row waits on itself (issue 19: a tenth of decoding a
   100-endpoint answer), so they are counted here and added at once. 3.12+ keeps such objects immortal: no store.
   Only objects something else holds (the caches, the plan, the module) are counted so, and the counts are added
   before anything that could drop that other reference: a new cached value, an allocation the garbage collector
   tracks (it may run finalizers), giving up a value. */
#define SHARED_N 8
typedef struct {
    PyObject *o[SHARED_N];
    Py_ssize_t c[SHARED_N];
    int n;
} Shared;

static inline PyObject *
shared_ref(Shared *sh, PyObject *o)
{
#if PY_VERSION_HEX < 0x030C0000
    int i;
    for (i = 0; i < sh->n; i++) {
        if (sh->o[i] == o) {
            sh->c[i]++;
            return o;
        }
    }
    if (sh->n < SHARED_N) {
        sh->o[sh->n] = o;
        sh->c[sh->n++] = 1;
        return o;
    }
#else
    (void)sh;
#endif
    return Py_NewRef(o);
}

/* before any of the references counted is given up */
static inline void
shared_flush(Shared *sh)
{
#if PY_VERSION_HEX < 0x030C0000
    int i;
    for (i = 0; i < sh->n; i++)
        Py_SET_REFCNT(sh->o[i], Py_REFCNT(sh->o[i]) + sh->c[i]);
#endif
    sh->n = 0;
}

static PyObject *small_ints[256]; /* 0..255, CPython's own (they are cached) */

/* Ints decoded lately, by a hash of their value: ports, timeouts and ids repeat from endpoint to endpoint and from
   answer to answer, and an int is immutable, so the same one serves again (issue 19: making and freeing the port
   and timeout of each endpoint was a tenth of decoding a 100-endpoint answer). Borrowed, or NULL. */
#define INT_CACHE 256
static PyObject *int_cache[INT_CACHE];

static inline unsigned int
int_slot(long long v)
{
    return (unsigned int)(((uint64_t)v * 0x9E3779B97F4A7C15ULL) >> 56) & (INT_CACHE - 1);
}

static inline PyObject *
cached_int(long long v)
{
    PyObject *x = int_cache[int_slot(v)];
    long long w;
    int overflow;
    if (x != NULL && long_value(x, &w, &overflow) == 0 && !overflow && w == v)
        return x;
    return NULL;
}

static PyObject *
new_int(long long v)
{
    PyObject *x = PyLong_FromLongLong(v);
    if (x != NULL)
        Py_XSETREF(int_cache[int_slot(v)], Py_NewRef(x));
    return x;
}

/* A struct of numbers, strings, bytes and maps built without __init__ (EndpointF, RequestPacket) read in one pass
   (issue 19): the happy case only, as in w_simple_fused. Anything the general reader would treat otherwise (an error,
   a missing required field, a struct end with a tag) returns 1, with nothing read, no error set and nothing kept,
   and the general reader reads the struct, so values and errors are the general reader's. -1: an error (memory). */
static int
r_simple_fused(Rd *r, Plan *p, int nested, PyObject **out)
{
    PyObject *vals[STACK_N], *obj;
    Py_ssize_t i, n = p->n, pos = r->pos, end = r->end, start = r->pos;
    const unsigned char *d = r->data;
    int depth = r->depth;
    Shared sh;
    PyTypeObject *tp = (PyTypeObject *)p->cls;

    sh.n = 0;
    for (i = 0; i < n; i++)
        vals[i] = NULL;
    for (;;) {
        int tag, wire, slot;
        PyObject *x;
        FieldDesc *f;
        if (pos >= end) {
            if (nested)
                goto punt;
            break;
        }
        tag = d[pos] >> 4;
        wire = d[pos++] & 0x0F;
        if (tag == 15) {
            if (pos >= end)
                goto punt;
            tag = d[pos++];
        }
        if (wire == W_SEND) {
            if (nested)
                break;
            goto punt;
        }
        if (wire > W_SLIST)
            goto punt;
        slot = p->by_tag[tag];
        if (slot < 0) {
            r->pos = pos;
            if (skip_field(r, wire) < 0) {
                PyErr_Clear();
                goto punt;
            }
            pos = r->pos;
            continue;
        }
        f = &p->f[slot];
        switch (f->kind) {
        case K_STRING: {
            Py_ssize_t len;
            if (wire == W_STRING1) {
                if (pos >= end)
                    goto punt;
                len = d[pos++];
            }
            else if (wire == W_STRING4) {
                if (end - pos < 4)
                    goto punt;
                len = (Py_ssize_t)ld32(d + pos);
                pos += 4;
            }
            else
                goto punt;
            if (len > end - pos)
                goto punt;
            x = cached_str((const char *)d + pos, len);
            if (x != NULL || len == 0)
                x = shared_ref(&sh, x != NULL ? x : empty_str);
            else {
                shared_flush(&sh); /* the new string may replace a cached one counted only in sh */
                if ((x = new_str((const char *)d + pos, len)) == NULL)
                    goto fail;
            }
            pos += len;
            break;
        }
        case K_BYTES:
            if (wire == W_SLIST && end - pos >= 2 && d[pos] == 0 && (d[pos + 1] & 0xF0) == 0) {
                /* the usual vector<byte> (a packet's sBuffer): 0x00, its size at tag 0, the bytes */
                Py_ssize_t len;
                const unsigned char *q = d + pos + 2;
                switch (d[pos + 1]) {
                case W_ZERO: len = 0; break;
                case W_INT1: len = end - pos >= 3 ? (int8_t)q[0] : -1; q += 1; break;
                case W_INT2: len = end - pos >= 4 ? (int16_t)ld16(q) : -1; q += 2; break;
                case W_INT4: len = end - pos >= 6 ? (int32_t)ld32(q) : -1; q += 4; break;
                default: len = -1;
                }
                if (len < 0 || len > end - (q - d))
                    goto punt;
                if ((x = PyBytes_FromStringAndSize((const char *)q, len)) == NULL)
                    goto fail;
                pos = (q - d) + len;
                break;
            }
            /* fall through */
        case K_FLOAT: case K_DOUBLE: case K_MAP:
            if (f->kind == K_MAP && wire == W_MAP && pos < end && d[pos] == W_ZERO && r->depth < max_depth) {
                /* an empty map (a packet's context and status): 0x0C, its size 0 at tag 0 */
                shared_flush(&sh); /* a tracked allocation may start the garbage collector */
                if ((x = PyDict_New()) == NULL)
                    goto fail;
                pos += 1;
                break;
            }
            shared_flush(&sh); /* it may replace cached strings, or start the garbage collector */
            r->pos = pos;
            x = r_value(r, f->type, wire);
            if (x == NULL) {
                if (!PyErr_ExceptionMatches(DecodeError))
                    goto fail;
                PyErr_Clear();
                goto punt;
            }
            pos = r->pos;
            break;
        default: { /* the integer kinds */
            long long v;
            const unsigned char *q = d + pos;
            switch (wire) {
            case W_ZERO: v = 0; break;
            case W_INT1: if (pos >= end) goto punt; v = (int8_t)q[0]; pos += 1; break;
            case W_INT2: if (end - pos < 2) goto punt; v = (int16_t)ld16(q); pos += 2; break;
            case W_INT4: if (end - pos < 4) goto punt; v = (int32_t)ld32(q); pos += 4; break;
            case W_INT8: if (end - pos < 8) goto punt; v = (long long)(int64_t)ld64(q); pos += 8; break;
            default: goto punt;
            }
            if (wire != W_ZERO && wire > f->max_wire)
                goto punt;
            if (v >= 0 && v < 256)
                x = shared_ref(&sh, small_ints[v]);
            else if ((x = cached_int(v)) != NULL)
                x = shared_ref(&sh, x);
            else {
                shared_flush(&sh); /* the new int may replace a cached one counted only in sh */
                if ((x = new_int(v)) == NULL)
                    goto fail;
            }
        }
        }
        if (vals[slot] != NULL) { /* a tag seen twice: the last wins */
            shared_flush(&sh);
            Py_DECREF(vals[slot]);
        }
        vals[slot] = x;
    }
    for (i = 0; i < n; i++) {
        FieldDesc *f = &p->f[i];
        if (vals[i] != NULL)
            continue;
        if (f->required)
            goto punt;
        if (f->defmode == DEF_CONST)
            vals[i] = shared_ref(&sh, f->defobj);
        else {
            shared_flush(&sh);
            if ((vals[i] = make_default(f)) == NULL)
                goto fail;
        }
    }
    shared_flush(&sh);
    if (p->gc_new) {
        /* what tp_alloc does, less zeroing the slots about to be filled: tracked once they are */
        obj = PyObject_GC_New(PyObject, tp);
        if (obj == NULL)
            goto fail;
        for (i = 0; i < n; i++)
            *(PyObject **)((char *)obj + p->f[i].offset) = vals[i];
        PyObject_GC_Track(obj);
    }
    else {
        obj = tp->tp_alloc(tp, 0);
        if (obj == NULL)
            goto fail;
        for (i = 0; i < n; i++)
            *(PyObject **)((char *)obj + p->f[i].offset) = vals[i];
    }
    r->pos = pos;
    *out = obj;
    return 0;
punt:
    shared_flush(&sh);
    for (i = 0; i < n; i++)
        Py_XDECREF(vals[i]);
    r->pos = start; /* what a nested reader moved, undone */
    r->depth = depth;
    return 1;
fail:
    shared_flush(&sh);
    for (i = 0; i < n; i++)
        Py_XDECREF(vals[i]);
    return -1;
}

/* whether r_simple_fused may read structs of p */
static inline int
fusable(Plan *p)
{
    return p->simple && p->fast_init && p->valid;
}

static PyObject *
r_struct(Rd *r, Plan *p, int nested)
{
    PyObject *stackv[STACK_N], **vals, *obj;
    Py_ssize_t n = p->n;
    if (fusable(p)) {
        int rc = r_simple_fused(r, p, nested, &obj);
        if (rc <= 0)
            return rc < 0 ? NULL : obj;
    }
    vals = n <= STACK_N ? stackv : PyMem_Malloc((size_t)n * sizeof(PyObject *));
    if (vals == NULL)
        return PyErr_NoMemory();
    memset(vals, 0, (size_t)n * sizeof(PyObject *));
    if (read_fields(r, p->f, n, p->by_tag, nested, vals) < 0)
        obj = NULL;
    else
        obj = construct(p, vals);
    if (vals != stackv)
        PyMem_Free(vals);
    return obj;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Module functions */

typedef struct {
    const char *fname;
    int npos, nreq, ntotal;
    const char *names[4];
    PyObject *interned[4]; /* filled at import: keyword names usually arrive interned, compared by identity */
} Sig;

static int
parse_args(const Sig *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **out)
{
    Py_ssize_t i, k;
    if (kwnames == NULL && nargs >= s->nreq && nargs <= s->npos) { /* the usual call: positional only */
        for (i = 0; i < nargs; i++)
            out[i] = args[i];
        for (; i < s->ntotal; i++)
            out[i] = NULL;
        return 0;
    }
    for (i = 0; i < s->ntotal; i++)
        out[i] = NULL;
    if (nargs > s->npos) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d positional arguments (%zd given)", s->fname, s->npos,
                     nargs);
        return -1;
    }
    for (i = 0; i < nargs; i++)
        out[i] = args[i];
    if (kwnames != NULL) {
        for (k = 0; k < PyTuple_GET_SIZE(kwnames); k++) {
            PyObject *key = PyTuple_GET_ITEM(kwnames, k);
            int j;
            for (j = 0; j < s->ntotal; j++) {
                if (key == s->interned[j])
                    break;
            }
            if (j == s->ntotal) {
                for (j = 0; j < s->ntotal; j++) {
                    if (PyUnicode_CompareWithASCIIString(key, s->names[j]) == 0)
                        break;
                }
            }
            if (j == s->ntotal) {
                PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%S'", s->fname, key);
                return -1;
            }
            if (out[j] != NULL) {
                PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", s->fname, s->names[j]);
                return -1;
            }
            out[j] = args[nargs + k];
        }
    }
    for (i = 0; i < s->nreq; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", s->fname, s->names[i]);
            return -1;
        }
    }
    return 0;
}

static int
flag(PyObject *o, int dflt)
{
    return o == NULL ? dflt : PyObject_IsTrue(o);
}

/* bytes(data) unless it already is bytes (the reader must own an immutable buffer: decoding runs Python code). */
static PyObject *
as_bytes(PyObject *data)
{
    if (PyBytes_Check(data))
        return Py_NewRef(data);
    return PyObject_CallOneArg((PyObject *)&PyBytes_Type, data);
}

static PyObject *
encode_struct(PyObject *obj, int skip, int framed)
{
    Enc e;
    Plan *p;
    int rc;
    p = get_plan((PyObject *)Py_TYPE(obj));
    if (p == NULL)
        return NULL;
    enc_init(&e, skip);
    if (framed)
        e.len = 4;
    rc = w_struct_body(&e, p, obj);
    Py_DECREF(p);
    if (rc == 0 && framed) {
        if ((unsigned long long)e.len > 0xFFFFFFFFULL)
            rc = raise_fmt(EncodeError, "frame of %zd bytes is too long", e.len);
        else
            be32(e.p, (uint32_t)e.len);
    }
    return enc_finish(&e, rc);
}

static Sig SIG_ENCODE = {"encode", 1, 1, 2, {"obj", "skip_defaults"}};

static PyObject *
m_encode(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2];
    int skip;
    if (!configured() || parse_args(&SIG_ENCODE, args, nargs, kwnames, a) < 0)
        return NULL;
    if ((skip = flag(a[1], 1)) < 0)
        return NULL;
    return encode_struct(a[0], skip, 0);
}

static Sig SIG_ENCODE_FRAMED = {"encode_framed", 1, 1, 2, {"obj", "skip_defaults"}};

static PyObject *
m_encode_framed(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2];
    int skip;
    if (!configured() || parse_args(&SIG_ENCODE_FRAMED, args, nargs, kwnames, a) < 0)
        return NULL;
    if ((skip = flag(a[1], 1)) < 0)
        return NULL;
    return encode_struct(a[0], skip, 1);
}

static Sig SIG_DECODE = {"decode", 2, 2, 2, {"cls", "data"}};

static PyObject *
m_decode(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2], *data, *obj;
    Plan *p;
    Rd r;
    if (!configured() || parse_args(&SIG_DECODE, args, nargs, kwnames, a) < 0)
        return NULL;
    data = as_bytes(a[1]);
    if (data == NULL)
        return NULL;
    p = get_plan(a[0]);
    if (p == NULL) {
        Py_DECREF(data);
        return NULL;
    }
    r.data = (const unsigned char *)PyBytes_AS_STRING(data);
    r.pos = 0;
    r.end = PyBytes_GET_SIZE(data);
    r.depth = 0;
    obj = r_struct(&r, p, 0);
    Py_DECREF(p);
    Py_DECREF(data);
    return obj;
}

static Sig SIG_ENCODE_FIELDS = {"encode_fields", 2, 2, 3, {"fields", "values", "skip_defaults"}};

static PyObject *
m_encode_fields(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[3], *seq;
    Plan *p;
    Enc e;
    int skip, rc;
    if (!configured() || parse_args(&SIG_ENCODE_FIELDS, args, nargs, kwnames, a) < 0)
        return NULL;
    if ((skip = flag(a[2], 1)) < 0)
        return NULL;
    p = fields_plan(a[0]);
    if (p == NULL)
        return NULL;
    /* a tuple snapshot of the values: they stay alive whatever the writers' Python code does */
    seq = PyTuple_CheckExact(a[1]) ? Py_NewRef(a[1]) : PySequence_Tuple(a[1]);
    if (seq == NULL) {
        Py_DECREF(p);
        return NULL;
    }
    enc_init(&e, skip);
    rc = w_fields(&e, p, ((PyTupleObject *)seq)->ob_item, PyTuple_GET_SIZE(seq));
    Py_DECREF(seq);
    Py_DECREF(p);
    return enc_finish(&e, rc);
}

static Sig SIG_DECODE_FIELDS = {"decode_fields", 2, 2, 2, {"fields", "data"}};

static PyObject *
m_decode_fields(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2], *data, *stackv[STACK_N], **vals, *out = NULL;
    Plan *p;
    Py_ssize_t i, n;
    Rd r;
    if (!configured() || parse_args(&SIG_DECODE_FIELDS, args, nargs, kwnames, a) < 0)
        return NULL;
    data = as_bytes(a[1]);
    if (data == NULL)
        return NULL;
    p = fields_plan(a[0]);
    if (p == NULL) {
        Py_DECREF(data);
        return NULL;
    }
    n = p->n;
    vals = n <= STACK_N ? stackv : PyMem_Malloc((size_t)n * sizeof(PyObject *));
    if (vals == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memset(vals, 0, (size_t)n * sizeof(PyObject *));
    r.data = (const unsigned char *)PyBytes_AS_STRING(data);
    r.pos = 0;
    r.end = PyBytes_GET_SIZE(data);
    r.depth = 0;
    if (read_fields(&r, p->f, n, p->by_tag, 0, vals) == 0) {
        out = PyList_New(n);
        if (out == NULL) {
            for (i = 0; i < n; i++)
                Py_DECREF(vals[i]);
        }
        else {
            for (i = 0; i < n; i++)
                PyList_SET_ITEM(out, i, vals[i]);
        }
    }
    if (vals != stackv)
        PyMem_Free(vals);
done:
    Py_DECREF(p);
    Py_DECREF(data);
    return out;
}

/* A tag argument: 0..255, or -1 (the head writer then raises what the Python writer raises for it). */
static int
tag_arg(PyObject *o, int *tag)
{
    *tag = -1;
    if (o == NULL) {
        *tag = 0;
        return 0;
    }
    if (PyLong_Check(o)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (!overflow && v >= 0 && v <= 255)
            *tag = (int)v;
    }
    return 0;
}

static Sig SIG_ENCODE_VALUE = {"encode_value", 3, 2, 4, {"t", "value", "tag", "skip_defaults"}};

static PyObject *
m_encode_value(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[4];
    Plan *p;
    Enc e;
    int skip, tag, rc;
    if (!configured() || parse_args(&SIG_ENCODE_VALUE, args, nargs, kwnames, a) < 0)
        return NULL;
    if ((skip = flag(a[3], 1)) < 0 || tag_arg(a[2], &tag) < 0)
        return NULL;
    p = cached_plan(type_cache, a[0], 1);
    if (p == NULL)
        return NULL;
    enc_init(&e, skip);
    e.bad_tag = a[2];
    rc = w_value(&e, p->vtype, tag, a[1]);
    Py_DECREF(p);
    return enc_finish(&e, rc);
}

static Sig SIG_DECODE_VALUE = {"decode_value", 3, 2, 3, {"t", "data", "tag"}};

static PyObject *
m_decode_value(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[3], *data, *val = NULL;
    Plan *p;
    FieldDesc f;
    int16_t by_tag[256];
    int tag;
    Rd r;
    if (!configured() || parse_args(&SIG_DECODE_VALUE, args, nargs, kwnames, a) < 0)
        return NULL;
    if (tag_arg(a[2], &tag) < 0)
        return NULL;
    data = as_bytes(a[1]);
    if (data == NULL)
        return NULL;
    p = cached_plan(type_cache, a[0], 1);
    if (p == NULL) {
        Py_DECREF(data);
        return NULL;
    }
    memset(&f, 0, sizeof(f));
    f.tag = tag;
    f.required = 1;
    f.name = s_value_name;
    f.tagobj = a[2] != NULL ? a[2] : zero_int;
    f.type = p->vtype;
    memset(by_tag, 0xFF, sizeof(by_tag));
    if (tag >= 0)
        by_tag[tag] = 0;
    r.data = (const unsigned char *)PyBytes_AS_STRING(data);
    r.pos = 0;
    r.end = PyBytes_GET_SIZE(data);
    r.depth = 0;
    if (read_fields(&r, &f, 1, by_tag, 0, &val) < 0)
        val = NULL;
    Py_DECREF(p);
    Py_DECREF(data);
    return val;
}

static PyObject *
m_configure(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *names[] = {"decode_error", "encode_error", "struct", "mapping", "field", "plain_init", "max_depth",
                            NULL};
    PyObject *de, *ee, *st, *mp, *fl, *pi;
    int md;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOi:configure", names, &de, &ee, &st, &mp, &fl, &pi, &md))
        return NULL;
    if (!PyType_Check(fl)) {
        PyErr_SetString(PyExc_TypeError, "field must be a class");
        return NULL;
    }
    Py_XSETREF(DecodeError, Py_NewRef(de));
    Py_XSETREF(EncodeError, Py_NewRef(ee));
    Py_XSETREF(StructBase, Py_NewRef(st));
    Py_XSETREF(MappingABC, Py_NewRef(mp));
    Py_XSETREF(FieldType, Py_NewRef(fl));
    Py_XSETREF(PlainInit, pi == Py_None ? NULL : Py_NewRef(pi));
    max_depth = md;
    PyDict_Clear(fields_cache);
    PyDict_Clear(type_cache);
    Py_RETURN_NONE;
}

static PyObject *
m_clear_caches(PyObject *m, PyObject *unused)
{
    PyDict_Clear(fields_cache);
    PyDict_Clear(type_cache);
    Py_RETURN_NONE;
}

static PyObject *
m_cache_sizes(PyObject *m, PyObject *unused)
{
    return Py_BuildValue("(nn)", PyDict_GET_SIZE(fields_cache), PyDict_GET_SIZE(type_cache));
}

static PyMethodDef methods[] = {
    {"encode", (PyCFunction)(void (*)(void))m_encode, METH_FASTCALL | METH_KEYWORDS,
     "encode($module, obj, *, skip_defaults=True)\n--\n\nA struct as a bare field sequence."},
    {"encode_framed", (PyCFunction)(void (*)(void))m_encode_framed, METH_FASTCALL | METH_KEYWORDS,
     "encode_framed($module, obj, *, skip_defaults=True)\n--\n\n"
     "A struct as a bare field sequence behind a 4-byte big-endian length that counts itself."},
    {"decode", (PyCFunction)(void (*)(void))m_decode, METH_FASTCALL | METH_KEYWORDS,
     "decode($module, cls, data)\n--\n\nA struct from a bare field sequence; raises DecodeError on malformed input."},
    {"encode_fields", (PyCFunction)(void (*)(void))m_encode_fields, METH_FASTCALL | METH_KEYWORDS,
     "encode_fields($module, fields, values, *, skip_defaults=True)\n--\n\n"
     "A bare field sequence from values in the order of fields."},
    {"decode_fields", (PyCFunction)(void (*)(void))m_decode_fields, METH_FASTCALL | METH_KEYWORDS,
     "decode_fields($module, fields, data)\n--\n\nValues of fields (in their order) from a bare field sequence."},
    {"encode_value", (PyCFunction)(void (*)(void))m_encode_value, METH_FASTCALL | METH_KEYWORDS,
     "encode_value($module, t, value, tag=0, *, skip_defaults=True)\n--\n\nOne value as a single field."},
    {"decode_value", (PyCFunction)(void (*)(void))m_decode_value, METH_FASTCALL | METH_KEYWORDS,
     "decode_value($module, t, data, tag=0)\n--\n\nThe field with tag from data as type t."},
    {"configure", (PyCFunction)(void (*)(void))m_configure, METH_VARARGS | METH_KEYWORDS,
     "configure($module, /, decode_error, encode_error, struct, mapping, field, plain_init, max_depth)\n--\n\n"
     "Hand the module what it needs from k8stars.tars.codec (called once by codec)."},
    {"clear_caches", m_clear_caches, METH_NOARGS,
     "clear_caches($module, /)\n--\n\nForget the compiled field lists and types (struct classes keep theirs)."},
    {"cache_sizes", m_cache_sizes, METH_NOARGS,
     "cache_sizes($module, /)\n--\n\n(field lists, types) compiled and cached, each at most CACHE_MAX."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT,
    "k8stars.tars._speedups",
    "C accelerator of k8stars.tars.codec (the pure-Python codec is the reference).",
    -1,
    methods,
};

static PyObject *
intern(const char *s)
{
    return PyUnicode_InternFromString(s);
}

static int
intern_sig(Sig *s)
{
    int i;
    for (i = 0; i < s->ntotal; i++) {
        if ((s->interned[i] = intern(s->names[i])) == NULL)
            return -1;
    }
    return 0;
}

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *m;
    if (PyType_Ready(&PlanType) < 0)
        return NULL;
    if (!(s_tars_fields = intern("__tars_fields__")) || !(s_ctable = intern("__tars_ctable__")) ||
        !(s_kind = intern("kind")) || !(s_elem = intern("elem")) || !(s_key = intern("key")) ||
        !(s_value = intern("value")) || !(s_cls = intern("cls")) || !(s_tag = intern("tag")) ||
        !(s_name = intern("name")) || !(s_type = intern("type")) || !(s_required = intern("required")) ||
        !(s_default = intern("default")) || !(s_default_value = intern("default_value")) ||
        !(s_idl_name = intern("idl_name")) || !(s_v2m = intern("_value2member_map_")) ||
        !(s_value_name = intern("value")))
        return NULL;
    if (!(empty_str = PyUnicode_FromStringAndSize(NULL, 0)) || !(empty_bytes = PyBytes_FromStringAndSize(NULL, 0)) ||
        !(zero_float = PyFloat_FromDouble(0.0)) || !(zero_int = PyLong_FromLong(0)) ||
        !(int_15 = PyLong_FromLong(15)) || !(int_ff = PyLong_FromLong(0xFF)))
        return NULL;
    if (!(fields_cache = PyDict_New()) || !(type_cache = PyDict_New()))
        return NULL;
    for (int i = 0; i < 256; i++) {
        if (!(small_ints[i] = PyLong_FromLong(i)))
            return NULL;
    }
    if (intern_sig(&SIG_ENCODE) < 0 || intern_sig(&SIG_ENCODE_FRAMED) < 0 || intern_sig(&SIG_DECODE) < 0 ||
        intern_sig(&SIG_ENCODE_FIELDS) < 0 || intern_sig(&SIG_DECODE_FIELDS) < 0 ||
        intern_sig(&SIG_ENCODE_VALUE) < 0 || intern_sig(&SIG_DECODE_VALUE) < 0)
        return NULL;
    m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Plan", (PyObject *)&PlanType) < 0 ||
        PyModule_AddIntConstant(m, "CACHE_MAX", CACHE_MAX) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
