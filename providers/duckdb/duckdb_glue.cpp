// DuckDB's C API behind the WIT interface `duckdb:component/database`.
//
// Every export catches whatever DuckDB (or the allocator) throws and
// returns it as a WIT `failure`: no C++ exception crosses the component
// boundary. Resources hold their parent (a statement or appender its
// connection, a connection its database) by reference count, so dropping
// handles in any order is safe.
//
// Ownership follows wit-bindgen's C bindings: arguments belong to the
// callee (freed here), results are allocated with malloc and freed by the
// bindings after they are lifted.

#include <duckdb.h>
// For the text of values the C API has no accessor for (UUID, ENUM, LIST,
// STRUCT, ...): a `duckdb_vector` is a `duckdb::Vector`.
#include "duckdb/common/types/value.hpp"
#include "duckdb/common/types/vector.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <set>
#include <string>

#include "provider.h"

typedef provider_string_t str_t;
typedef exports_duckdb_component_database_value_t value_t;
typedef exports_duckdb_component_database_list_value_t values_t;
typedef exports_duckdb_component_database_list_list_value_t rows_t;
typedef exports_duckdb_component_database_failure_t error_t;

#define TAG(x) EXPORTS_DUCKDB_COMPONENT_DATABASE_VALUE_##x

struct exports_duckdb_component_database_database_t {
    duckdb_database db;
    int refs;
};

struct exports_duckdb_component_database_connection_t {
    duckdb_connection con;
    exports_duckdb_component_database_database_t *db;
    int refs;
};

struct exports_duckdb_component_database_prepared_statement_t {
    duckdb_prepared_statement stmt;
    exports_duckdb_component_database_connection_t *con;
};

struct exports_duckdb_component_database_query_result_t {
    duckdb_result res;
    idx_t chunk;      // the next chunk to read
    idx_t offset;     // rows of it already read
    idx_t chunks;
};

struct exports_duckdb_component_database_appender_t {
    duckdb_appender app;
    exports_duckdb_component_database_connection_t *con;
    bool closed;
};

namespace {

typedef exports_duckdb_component_database_database_t Db;
typedef exports_duckdb_component_database_connection_t Con;

void release(Db *db) {
    if (--db->refs == 0) {
        duckdb_close(&db->db);
        delete db;
    }
}

void release(Con *con) {
    if (--con->refs == 0) {
        duckdb_disconnect(&con->con);
        release(con->db);
        delete con;
    }
}

std::string take(str_t *s) {
    std::string out(reinterpret_cast<const char *>(s->ptr), s->len);
    provider_string_free(s);
    return out;
}

void set_str(str_t *out, const char *data, size_t len) {
    provider_string_dup_n(out, data, len);
}

// DuckDB's messages start with "<Type> Error: "; the type is the kind.
// A message without that start (the appender's) gets `fallback`'s.
void fail(error_t *err, const std::string &message, const char *kind = nullptr, const char *fallback = "Unknown") {
    std::string k, m = message;
    if (kind) {
        k = kind;
    } else {
        size_t at = message.find(" Error: ");
        size_t nl = message.find('\n');
        if (at != std::string::npos && (nl == std::string::npos || at < nl)) {
            k = message.substr(0, at);
        } else {
            k = fallback;
            m = k + " Error: " + message;
        }
    }
    set_str(&err->kind, k.data(), k.size());
    set_str(&err->message, m.data(), m.size());
}

void fail_exception(error_t *err) {
    try {
        throw;
    } catch (const std::bad_alloc &) {
        fail(err, "Out of Memory Error: the provider ran out of memory", "Out of Memory");
    } catch (const std::exception &e) {
        fail(err, e.what());
    } catch (...) {
        fail(err, "INTERNAL Error: an unknown exception reached the provider's boundary", "INTERNAL");
    }
}

std::string digits_u128(unsigned __int128 v) {
    char buf[48];
    int i = sizeof buf;
    buf[--i] = 0;
    do {
        buf[--i] = char('0' + int(v % 10));
        v /= 10;
    } while (v);
    return std::string(buf + i);
}

std::string digits_i128(__int128 v) {
    if (v < 0) {
        return "-" + digits_u128((unsigned __int128)(-(v + 1)) + 1);
    }
    return digits_u128((unsigned __int128)v);
}

bool parse_i128(const str_t &s, __int128 *out) {
    size_t i = 0;
    bool neg = false;
    if (s.len && (s.ptr[0] == '-' || s.ptr[0] == '+')) {
        neg = s.ptr[0] == '-';
        i = 1;
    }
    if (i == s.len || s.len - i > 39) {
        return false;
    }
    unsigned __int128 v = 0;
    for (; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9') {
            return false;
        }
        v = v * 10 + (s.ptr[i] - '0');
    }
    const unsigned __int128 max = ((unsigned __int128)1 << 127) - 1;
    if (v > max + (neg ? 1 : 0)) {
        return false;
    }
    *out = neg ? -(__int128)(v - 1) - 1 : (__int128)v;
    return true;
}

duckdb_hugeint to_hugeint(__int128 v) {
    duckdb_hugeint h;
    h.lower = (uint64_t)(unsigned __int128)v;
    h.upper = (int64_t)(v >> 64);
    return h;
}

// A WIT value as a DuckDB value (for binding and appending); nullptr with
// `err` set when it cannot be one.
duckdb_value to_duckdb(const value_t &v, error_t *err) {
    switch (v.tag) {
    case TAG(NULL):
        return duckdb_create_null_value();
    case TAG(BOOLEAN):
        return duckdb_create_bool(v.val.boolean);
    case TAG(BIGINT):
        return duckdb_create_int64(v.val.bigint);
    case TAG(HUGE): {
        __int128 h;
        if (!parse_i128(v.val.huge, &h)) {
            // Beyond HUGEINT: an unsigned 128-bit value.
            unsigned __int128 u = 0;
            const str_t &s = v.val.huge;
            bool ok = s.len > 0 && s.len <= 39;
            for (size_t i = 0; ok && i < s.len; i++) {
                ok = s.ptr[i] >= '0' && s.ptr[i] <= '9';
                unsigned __int128 next = u * 10 + (s.ptr[i] - '0');
                ok = ok && next / 10 == u;
                u = next;
            }
            if (!ok) {
                fail(err, "Invalid Input Error: integer out of range for HUGEINT and UHUGEINT", "Invalid Input");
                return nullptr;
            }
            duckdb_uhugeint uh;
            uh.lower = (uint64_t)u;
            uh.upper = (uint64_t)(u >> 64);
            return duckdb_create_uhugeint(uh);
        }
        return duckdb_create_hugeint(to_hugeint(h));
    }
    case TAG(DOUBLE):
        return duckdb_create_double(v.val.double_);
    case TAG(TEXT):
        return duckdb_create_varchar_length(reinterpret_cast<const char *>(v.val.text.ptr), v.val.text.len);
    case TAG(OTHER):
        return duckdb_create_varchar_length(reinterpret_cast<const char *>(v.val.other.ptr), v.val.other.len);
    case TAG(BLOB):
        return duckdb_create_blob(v.val.blob.ptr, v.val.blob.len);
    case TAG(DECIMAL): {
        __int128 h;
        const auto &d = v.val.decimal;
        if (!parse_i128(d.unscaled, &h) || d.width < 1 || d.width > 38 || d.scale > d.width) {
            fail(err, "Invalid Input Error: not a DECIMAL(width, scale) value: width must be 1 to 38 and scale at most width", "Invalid Input");
            return nullptr;
        }
        duckdb_decimal dec;
        dec.width = d.width;
        dec.scale = d.scale;
        dec.value = to_hugeint(h);
        return duckdb_create_decimal(dec);
    }
    case TAG(DATE): {
        duckdb_date d;
        d.days = v.val.date;
        return duckdb_create_date(d);
    }
    case TAG(TIMESTAMP): {
        duckdb_timestamp t;
        t.micros = v.val.timestamp;
        return duckdb_create_timestamp(t);
    }
    case TAG(TIME): {
        duckdb_time t;
        t.micros = v.val.time;
        return duckdb_create_time(t);
    }
    case TAG(INTERVAL): {
        duckdb_interval i;
        i.months = v.val.interval.months;
        i.days = v.val.interval.days;
        i.micros = v.val.interval.micros;
        return duckdb_create_interval(i);
    }
    }
    fail(err, "Invalid Input Error: unknown value kind", "Invalid Input");
    return nullptr;
}

bool bind_all(duckdb_prepared_statement stmt, values_t *params, error_t *err) {
    // DuckDB's own messages for a count mismatch (as its C++ API and the
    // PyPI package report them).
    idx_t want = duckdb_nparams(stmt);
    if (want == 0 && params->len > 0) {
        fail(err, "Binder Error: Parameter/argument count mismatch for prepared statement. Expected 0, got " + std::to_string(params->len), "Binder");
        return false;
    }
    if (params->len > want) {
        std::set<std::string> excess;
        for (idx_t i = want + 1; i <= params->len; i++) {
            excess.insert(std::to_string(i));
        }
        std::string list;
        for (const auto &e : excess) {
            list += (list.empty() ? "" : ", ") + e;
        }
        fail(err, "Invalid Input Error: Parameter argument/count mismatch, identifiers of the excess parameters: " + list, "Invalid Input");
        return false;
    }
    if (params->len < want) {
        std::string list;
        for (idx_t i = params->len + 1; i <= want; i++) {
            list += (list.empty() ? "" : ", ") + std::to_string(i);
        }
        fail(err, "Invalid Input Error: Values were not provided for the following parameters: " + list, "Invalid Input");
        return false;
    }
    for (size_t i = 0; i < params->len; i++) {
        duckdb_value dv = to_duckdb(params->ptr[i], err);
        if (!dv) {
            return false;
        }
        duckdb_state st = duckdb_bind_value(stmt, i + 1, dv);
        duckdb_destroy_value(&dv);
        if (st != DuckDBSuccess) {
            const char *e = duckdb_prepare_error(stmt);
            fail(err, e ? e : "Invalid Input Error: cannot bind parameter " + std::to_string(i + 1), e ? nullptr : "Invalid Input");
            return false;
        }
    }
    return true;
}

bool finish_query(duckdb_state st, duckdb_result *res, exports_duckdb_component_database_own_query_result_t *ret, error_t *err) {
    if (st != DuckDBSuccess) {
        const char *e = duckdb_result_error(res);
        fail(err, e ? e : "Unknown Error: the query failed");
        duckdb_destroy_result(res);
        return false;
    }
    auto *q = new exports_duckdb_component_database_query_result_t();
    q->res = *res;
    q->chunks = duckdb_result_chunk_count(q->res);
    *ret = exports_duckdb_component_database_query_result_new(q);
    return true;
}

template <class T> int64_t int_at(void *data, idx_t i) {
    return (int64_t) static_cast<T *>(data)[i];
}

void set_text(str_t *out, value_t *v, uint8_t tag, const std::string &s) {
    v->tag = tag;
    set_str(out, s.data(), s.size());
}

void set_value(value_t *out, duckdb_vector vec, duckdb_type type, duckdb_logical_type lt, void *data, idx_t i) {
    switch (type) {
    case DUCKDB_TYPE_BOOLEAN:
        out->tag = TAG(BOOLEAN);
        out->val.boolean = static_cast<bool *>(data)[i];
        return;
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_UTINYINT:
    case DUCKDB_TYPE_USMALLINT:
    case DUCKDB_TYPE_UINTEGER: {
        int64_t (*const at[])(void *, idx_t) = {
            int_at<int8_t>, int_at<int16_t>, int_at<int32_t>, int_at<int64_t>,
            int_at<uint8_t>, int_at<uint16_t>, int_at<uint32_t>,
        };
        out->tag = TAG(BIGINT);
        out->val.bigint = at[type - DUCKDB_TYPE_TINYINT](data, i);
        return;
    }
    case DUCKDB_TYPE_UBIGINT:
        set_text(&out->val.huge, out, TAG(HUGE), digits_u128(static_cast<uint64_t *>(data)[i]));
        return;
    case DUCKDB_TYPE_HUGEINT: {
        duckdb_hugeint h = static_cast<duckdb_hugeint *>(data)[i];
        set_text(&out->val.huge, out, TAG(HUGE), digits_i128(((__int128)h.upper << 64) | h.lower));
        return;
    }
    case DUCKDB_TYPE_UHUGEINT: {
        duckdb_uhugeint h = static_cast<duckdb_uhugeint *>(data)[i];
        set_text(&out->val.huge, out, TAG(HUGE), digits_u128(((unsigned __int128)h.upper << 64) | h.lower));
        return;
    }
    case DUCKDB_TYPE_FLOAT:
        out->tag = TAG(DOUBLE);
        out->val.double_ = static_cast<float *>(data)[i];
        return;
    case DUCKDB_TYPE_DOUBLE:
        out->tag = TAG(DOUBLE);
        out->val.double_ = static_cast<double *>(data)[i];
        return;
    case DUCKDB_TYPE_VARCHAR: {
        duckdb_string_t *s = &static_cast<duckdb_string_t *>(data)[i];
        out->tag = TAG(TEXT);
        set_str(&out->val.text, duckdb_string_t_data(s), duckdb_string_t_length(*s));
        return;
    }
    case DUCKDB_TYPE_BLOB: {
        duckdb_string_t *s = &static_cast<duckdb_string_t *>(data)[i];
        uint32_t n = duckdb_string_t_length(*s);
        out->tag = TAG(BLOB);
        out->val.blob.len = n;
        out->val.blob.ptr = static_cast<uint8_t *>(malloc(n ? n : 1));
        if (!out->val.blob.ptr) {
            throw std::bad_alloc();
        }
        memcpy(out->val.blob.ptr, duckdb_string_t_data(s), n);
        return;
    }
    case DUCKDB_TYPE_DECIMAL: {
        __int128 v;
        switch (duckdb_decimal_internal_type(lt)) {
        case DUCKDB_TYPE_SMALLINT:
            v = int_at<int16_t>(data, i);
            break;
        case DUCKDB_TYPE_INTEGER:
            v = int_at<int32_t>(data, i);
            break;
        case DUCKDB_TYPE_BIGINT:
            v = int_at<int64_t>(data, i);
            break;
        default: {
            duckdb_hugeint h = static_cast<duckdb_hugeint *>(data)[i];
            v = ((__int128)h.upper << 64) | h.lower;
        }
        }
        set_text(&out->val.decimal.unscaled, out, TAG(DECIMAL), digits_i128(v));
        out->val.decimal.width = duckdb_decimal_width(lt);
        out->val.decimal.scale = duckdb_decimal_scale(lt);
        return;
    }
    case DUCKDB_TYPE_DATE:
        out->tag = TAG(DATE);
        out->val.date = static_cast<duckdb_date *>(data)[i].days;
        return;
    case DUCKDB_TYPE_TIMESTAMP:
    case DUCKDB_TYPE_TIMESTAMP_S:
    case DUCKDB_TYPE_TIMESTAMP_MS:
    case DUCKDB_TYPE_TIMESTAMP_NS: {
        // To microseconds (nanoseconds rounded down, as Python's datetime).
        int64_t v = int_at<int64_t>(data, i);
        out->tag = TAG(TIMESTAMP);
        out->val.timestamp = type == DUCKDB_TYPE_TIMESTAMP_S    ? v * 1000000
                             : type == DUCKDB_TYPE_TIMESTAMP_MS ? v * 1000
                             : type == DUCKDB_TYPE_TIMESTAMP_NS ? v / 1000 - (v % 1000 < 0 ? 1 : 0)
                                                                : v;
        return;
    }
    case DUCKDB_TYPE_TIME:
        out->tag = TAG(TIME);
        out->val.time = static_cast<duckdb_time *>(data)[i].micros;
        return;
    case DUCKDB_TYPE_INTERVAL: {
        duckdb_interval iv = static_cast<duckdb_interval *>(data)[i];
        out->tag = TAG(INTERVAL);
        out->val.interval.months = iv.months;
        out->val.interval.days = iv.days;
        out->val.interval.micros = iv.micros;
        return;
    }
    default:
        set_text(&out->val.other, out, TAG(OTHER), reinterpret_cast<duckdb::Vector *>(vec)->GetValue(i).ToString());
        return;
    }
}

// A logical type as DuckDB writes it (`INTEGER`, `DECIMAL(12,2)`,
// `VARCHAR[]`, `STRUCT(a INTEGER)`, ...).
std::string type_name(duckdb_logical_type lt) {
    static const char *const names[] = {
        "INVALID", "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT",
        "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "TIMESTAMP", "DATE", "TIME", "INTERVAL",
        "HUGEINT", "VARCHAR", "BLOB", "DECIMAL", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "ENUM",
        "LIST", "STRUCT", "MAP", "UUID", "UNION", "BIT", "TIME WITH TIME ZONE", "TIMESTAMP WITH TIME ZONE",
        "UHUGEINT", "ARRAY", "ANY", "BIGNUM", "\"NULL\"", "STRING_LITERAL", "INTEGER_LITERAL", "TIME_NS",
        "GEOMETRY", "VARIANT", "TIMESTAMP_NS WITH TIME ZONE",
    };
    duckdb_type t = duckdb_get_type_id(lt);
    auto child = [](duckdb_logical_type c) {
        std::string n = type_name(c);
        duckdb_destroy_logical_type(&c);
        return n;
    };
    auto take_name = [](char *n) {
        std::string out = n ? n : "";
        duckdb_free(n);
        return out;
    };
    switch (t) {
    case DUCKDB_TYPE_DECIMAL:
        return "DECIMAL(" + std::to_string(duckdb_decimal_width(lt)) + "," + std::to_string(duckdb_decimal_scale(lt)) + ")";
    case DUCKDB_TYPE_LIST:
        return child(duckdb_list_type_child_type(lt)) + "[]";
    case DUCKDB_TYPE_ARRAY:
        return child(duckdb_array_type_child_type(lt)) + "[" + std::to_string(duckdb_array_type_array_size(lt)) + "]";
    case DUCKDB_TYPE_MAP:
        return "MAP(" + child(duckdb_map_type_key_type(lt)) + ", " + child(duckdb_map_type_value_type(lt)) + ")";
    case DUCKDB_TYPE_STRUCT:
    case DUCKDB_TYPE_UNION: {
        bool is_struct = t == DUCKDB_TYPE_STRUCT;
        idx_t n = is_struct ? duckdb_struct_type_child_count(lt) : duckdb_union_type_member_count(lt);
        std::string out = is_struct ? "STRUCT(" : "UNION(";
        for (idx_t i = 0; i < n; i++) {
            out += i ? ", " : "";
            out += take_name(is_struct ? duckdb_struct_type_child_name(lt, i) : duckdb_union_type_member_name(lt, i));
            out += " " + child(is_struct ? duckdb_struct_type_child_type(lt, i) : duckdb_union_type_member_type(lt, i));
        }
        return out + ")";
    }
    default:
        return (size_t)t < sizeof names / sizeof *names ? names[t] : "UNKNOWN";
    }
}

// Append one row; false with `err` set on failure (the row is then not
// ended, and DuckDB's appender discards it at the next row).
bool append_row(duckdb_appender app, values_t *row, error_t *err) {
    for (size_t i = 0; i < row->len; i++) {
        const value_t &v = row->ptr[i];
        duckdb_state st;
        switch (v.tag) {
        case TAG(NULL):
            st = duckdb_append_null(app);
            break;
        case TAG(BOOLEAN):
            st = duckdb_append_bool(app, v.val.boolean);
            break;
        case TAG(BIGINT):
            st = duckdb_append_int64(app, v.val.bigint);
            break;
        case TAG(DOUBLE):
            st = duckdb_append_double(app, v.val.double_);
            break;
        case TAG(TEXT):
            st = duckdb_append_varchar_length(app, reinterpret_cast<const char *>(v.val.text.ptr), v.val.text.len);
            break;
        case TAG(BLOB):
            st = duckdb_append_blob(app, v.val.blob.ptr, v.val.blob.len);
            break;
        default: {
            duckdb_value dv = to_duckdb(v, err);
            if (!dv) {
                return false;
            }
            st = duckdb_append_value(app, dv);
            duckdb_destroy_value(&dv);
        }
        }
        if (st != DuckDBSuccess) {
            const char *e = duckdb_appender_error(app);
            fail(err, e ? e : "cannot append the value", nullptr, "Invalid Input");
            return false;
        }
    }
    if (duckdb_appender_end_row(app) != DuckDBSuccess) {
        const char *e = duckdb_appender_error(app);
        fail(err, e ? e : "cannot end the row", nullptr, "Invalid Input");
        return false;
    }
    return true;
}

bool appender_usable(exports_duckdb_component_database_appender_t *a, error_t *err) {
    if (a->closed) {
        fail(err, "Invalid Input Error: the appender is closed", "Invalid Input");
        return false;
    }
    return true;
}

} // namespace

extern "C" {

bool exports_duckdb_component_database_static_database_open(str_t *path, bool read_only, exports_duckdb_component_database_own_database_t *ret, error_t *err) {
    try {
        std::string p = take(path);
        duckdb_config config;
        if (duckdb_create_config(&config) != DuckDBSuccess) {
            fail(err, "INTERNAL Error: cannot create a configuration", "INTERNAL");
            return false;
        }
        duckdb_set_config(config, "access_mode", read_only ? "READ_ONLY" : "AUTOMATIC");
        // No threads in wasm.
        duckdb_set_config(config, "threads", "1");
        duckdb_database db;
        char *msg = nullptr;
        duckdb_state st = duckdb_open_ext(p == ":memory:" ? nullptr : p.c_str(), &db, config, &msg);
        duckdb_destroy_config(&config);
        if (st != DuckDBSuccess) {
            fail(err, msg ? msg : "IO Error: cannot open the database");
            duckdb_free(msg);
            return false;
        }
        *ret = exports_duckdb_component_database_database_new(new Db{db, 1});
        return true;
    } catch (...) {
        fail_exception(err);
        return false;
    }
}

bool exports_duckdb_component_database_method_database_connect(exports_duckdb_component_database_borrow_database_t self, exports_duckdb_component_database_own_connection_t *ret, error_t *err) {
    try {
        duckdb_connection con;
        if (duckdb_connect(self->db, &con) != DuckDBSuccess) {
            fail(err, "Connection Error: cannot connect to the database", "Connection");
            return false;
        }
        self->refs++;
        *ret = exports_duckdb_component_database_connection_new(new Con{con, self, 1});
        return true;
    } catch (...) {
        fail_exception(err);
        return false;
    }
}

bool exports_duckdb_component_database_method_connection_execute(exports_duckdb_component_database_borrow_connection_t self, str_t *sql, values_t *params, exports_duckdb_component_database_own_query_result_t *ret, error_t *err) {
    try {
        std::string q = take(sql);
        duckdb_result res;
        bool ok;
        if (params->len == 0) {
            ok = finish_query(duckdb_query(self->con, q.c_str(), &res), &res, ret, err);
        } else {
            duckdb_prepared_statement stmt;
            if (duckdb_prepare(self->con, q.c_str(), &stmt) != DuckDBSuccess) {
                const char *e = duckdb_prepare_error(stmt);
                fail(err, e ? e : "Parser Error: cannot prepare the statement");
                duckdb_destroy_prepare(&stmt);
                exports_duckdb_component_database_list_value_free(params);
                return false;
            }
            ok = bind_all(stmt, params, err) && finish_query(duckdb_execute_prepared(stmt, &res), &res, ret, err);
            duckdb_destroy_prepare(&stmt);
        }
        exports_duckdb_component_database_list_value_free(params);
        return ok;
    } catch (...) {
        fail_exception(err);
        return false;
    }
}

bool exports_duckdb_component_database_method_connection_prepare(exports_duckdb_component_database_borrow_connection_t self, str_t *sql, exports_duckdb_component_database_own_prepared_statement_t *ret, error_t *err) {
    try {
        std::string q = take(sql);
        duckdb_prepared_statement stmt;
        if (duckdb_prepare(self->con, q.c_str(), &stmt) != DuckDBSuccess) {
            const char *e = duckdb_prepare_error(stmt);
            fail(err, e ? e : "Parser Error: cannot prepare the statement");
            duckdb_destroy_prepare(&stmt);
            return false;
        }
        self->refs++;
        *ret = exports_duckdb_component_database_prepared_statement_new(new exports_duckdb_component_database_prepared_statement_t{stmt, self});
        return true;
    } catch (...) {
        fail_exception(err);
        return false;
    }
}

bool exports_duckdb_component_database_method_connection_appender(exports_duckdb_component_database_borrow_connection_t self, str_t *maybe_schema, str_t *table, exports_duckdb_component_database_own_appender_t *ret, error_t *err) {
    try {
        std::string schema;
        bool has_schema = maybe_schema != nullptr;
        if (has_schema) {
            schema = take(maybe_schema);
        }
        std::string t = take(table);
        duckdb_appender app;
        if (duckdb_appender_create(self->con, has_schema ? schema.c_str() : nullptr, t.c_str(), &app) != DuckDBSuccess) {
            const char *e = duckdb_appender_error(app);
            fail(err, e ? e : "cannot create an appender for the table", nullptr, "Catalog");
            duckdb_appender_destroy(&app);
            return false;
        }
        self->refs++;
        *ret = exports_duckdb_component_database_appender_new(new exports_duckdb_component_database_appender_t{app, self, false});
        return true;
    } catch (...) {
        fail_exception(err);
        return false;
    }
}

uint32_t exports_duckdb_component_database_method_prepared_statement_parameter_count(exports_duckdb_component_database_borrow_prepared_statement_t self) {
    return (uint32_t)duckdb_nparams(self->stmt);
}

bool exports_duckdb_component_database_method_prepared_statement_execute(exports_duckdb_component_database_borrow_prepared_statement_t self, values_t *params, exports_duckdb_component_database_own_query_result_t *ret, error_t *err) {
    try {
        duckdb_clear_bindings(self->stmt);
        duckdb_result res;
        bool ok = bind_all(self->stmt, params, err) && finish_query(duckdb_execute_prepared(self->stmt, &res), &res, ret, err);
        exports_duckdb_component_database_list_value_free(params);
        return ok;
    } catch (...) {
        fail_exception(err);
        return false;
    }
}

void exports_duckdb_component_database_method_query_result_columns(exports_duckdb_component_database_borrow_query_result_t self, exports_duckdb_component_database_list_column_t *ret) {
    // (Allocation failure here has no error to return: abort.)
    idx_t n = duckdb_column_count(&self->res);
    ret->len = n;
    ret->ptr = static_cast<exports_duckdb_component_database_column_t *>(calloc(n ? n : 1, sizeof *ret->ptr));
    if (!ret->ptr) {
        abort();
    }
    for (idx_t c = 0; c < n; c++) {
        const char *name = duckdb_column_name(&self->res, c);
        set_str(&ret->ptr[c].name, name ? name : "", name ? strlen(name) : 0);
        duckdb_logical_type lt = duckdb_column_logical_type(&self->res, c);
        std::string type = type_name(lt);
        set_str(&ret->ptr[c].sql_type, type.data(), type.size());
        duckdb_destroy_logical_type(&lt);
    }
}

int64_t exports_duckdb_component_database_method_query_result_rows_changed(exports_duckdb_component_database_borrow_query_result_t self) {
    switch (duckdb_result_statement_type(self->res)) {
    case DUCKDB_STATEMENT_TYPE_INSERT:
    case DUCKDB_STATEMENT_TYPE_UPDATE:
    case DUCKDB_STATEMENT_TYPE_DELETE:
        return (int64_t)duckdb_rows_changed(&self->res);
    default:
        return -1;
    }
}

bool exports_duckdb_component_database_method_query_result_fetch(exports_duckdb_component_database_borrow_query_result_t self, uint32_t max_rows, rows_t *ret, error_t *err) {
    ret->ptr = nullptr;
    ret->len = 0;
    try {
        idx_t cols = duckdb_column_count(&self->res);
        size_t cap = 0;
        while (ret->len < max_rows && self->chunk < self->chunks) {
            duckdb_data_chunk chunk = duckdb_result_get_chunk(self->res, self->chunk);
            idx_t size = duckdb_data_chunk_get_size(chunk);
            if (self->offset >= size) {
                duckdb_destroy_data_chunk(&chunk);
                self->chunk++;
                self->offset = 0;
                continue;
            }
            idx_t take_rows = size - self->offset;
            if (take_rows > max_rows - ret->len) {
                take_rows = max_rows - ret->len;
            }
            if (ret->len + take_rows > cap) {
                size_t ncap = cap ? cap * 2 : 64;
                while (ncap < ret->len + take_rows) {
                    ncap *= 2;
                }
                auto *p = static_cast<values_t *>(realloc(ret->ptr, ncap * sizeof *ret->ptr));
                if (!p) {
                    duckdb_destroy_data_chunk(&chunk);
                    throw std::bad_alloc();
                }
                ret->ptr = p;
                cap = ncap;
            }
            for (idx_t r = 0; r < take_rows; r++) {
                values_t *row = &ret->ptr[ret->len + r];
                row->len = cols;
                row->ptr = static_cast<value_t *>(calloc(cols ? cols : 1, sizeof(value_t)));
                if (!row->ptr) {
                    for (idx_t k = 0; k < r; k++) {
                        exports_duckdb_component_database_list_value_free(&ret->ptr[ret->len + k]);
                    }
                    duckdb_destroy_data_chunk(&chunk);
                    throw std::bad_alloc();
                }
            }
            for (idx_t c = 0; c < cols; c++) {
                duckdb_vector vec = duckdb_data_chunk_get_vector(chunk, c);
                duckdb_logical_type lt = duckdb_vector_get_column_type(vec);
                duckdb_type type = duckdb_get_type_id(lt);
                void *data = duckdb_vector_get_data(vec);
                uint64_t *validity = duckdb_vector_get_validity(vec);
                for (idx_t r = 0; r < take_rows; r++) {
                    idx_t i = self->offset + r;
                    value_t *out = &ret->ptr[ret->len + r].ptr[c];
                    if (validity && !duckdb_validity_row_is_valid(validity, i)) {
                        out->tag = TAG(NULL);
                    } else {
                        set_value(out, vec, type, lt, data, i);
                    }
                }
                duckdb_destroy_logical_type(&lt);
            }
            duckdb_destroy_data_chunk(&chunk);
            ret->len += take_rows;
            self->offset += take_rows;
        }
        return true;
    } catch (...) {
        exports_duckdb_component_database_list_list_value_free(ret);
        ret->ptr = nullptr;
        ret->len = 0;
        fail_exception(err);
        return false;
    }
}

bool exports_duckdb_component_database_method_appender_append_row(exports_duckdb_component_database_borrow_appender_t self, values_t *row, error_t *err) {
    try {
        bool ok = appender_usable(self, err) && append_row(self->app, row, err);
        exports_duckdb_component_database_list_value_free(row);
        return ok;
    } catch (...) {
        fail_exception(err);
        return false;
    }
}

bool exports_duckdb_component_database_method_appender_append_rows(exports_duckdb_component_database_borrow_appender_t self, rows_t *rows, error_t *err) {
    try {
        bool ok = appender_usable(self, err);
        for (size_t i = 0; ok && i < rows->len; i++) {
            ok = append_row(self->app, &rows->ptr[i], err);
        }
        exports_duckdb_component_database_list_list_value_free(rows);
        return ok;
    } catch (...) {
        fail_exception(err);
        return false;
    }
}

bool exports_duckdb_component_database_method_appender_flush(exports_duckdb_component_database_borrow_appender_t self, error_t *err) {
    try {
        if (!appender_usable(self, err)) {
            return false;
        }
        if (duckdb_appender_flush(self->app) != DuckDBSuccess) {
            const char *e = duckdb_appender_error(self->app);
            fail(err, e ? e : "cannot flush the appender", nullptr, "Invalid Input");
            return false;
        }
        return true;
    } catch (...) {
        fail_exception(err);
        return false;
    }
}

bool exports_duckdb_component_database_method_appender_close(exports_duckdb_component_database_borrow_appender_t self, error_t *err) {
    try {
        if (!appender_usable(self, err)) {
            return false;
        }
        self->closed = true;
        if (duckdb_appender_close(self->app) != DuckDBSuccess) {
            const char *e = duckdb_appender_error(self->app);
            fail(err, e ? e : "cannot close the appender", nullptr, "Invalid Input");
            return false;
        }
        return true;
    } catch (...) {
        fail_exception(err);
        return false;
    }
}

void exports_duckdb_component_database_database_destructor(exports_duckdb_component_database_database_t *rep) {
    try {
        release(rep);
    } catch (...) {
    }
}

void exports_duckdb_component_database_connection_destructor(exports_duckdb_component_database_connection_t *rep) {
    try {
        release(rep);
    } catch (...) {
    }
}

void exports_duckdb_component_database_prepared_statement_destructor(exports_duckdb_component_database_prepared_statement_t *rep) {
    try {
        duckdb_destroy_prepare(&rep->stmt);
        release(rep->con);
        delete rep;
    } catch (...) {
    }
}

void exports_duckdb_component_database_query_result_destructor(exports_duckdb_component_database_query_result_t *rep) {
    try {
        duckdb_destroy_result(&rep->res);
        delete rep;
    } catch (...) {
    }
}

void exports_duckdb_component_database_appender_destructor(exports_duckdb_component_database_appender_t *rep) {
    try {
        // Destroying an appender flushes what it holds; a failure there
        // has nobody to report to (close() reports it).
        duckdb_appender_destroy(&rep->app);
        release(rep->con);
        delete rep;
    } catch (...) {
    }
}

} // extern "C"
