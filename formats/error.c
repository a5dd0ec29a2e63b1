/* error.c — error codes to text, and the one way library code reports. */
#include "qlm_format.h"

#include <stdarg.h>
#include <stdio.h>

const char *qlm_strerror(enum qlm_err code)
{
    switch (code) {
    case QLM_OK: return "success";
    case QLM_E_IO: return "input/output error";
    case QLM_E_NOMEM: return "out of memory";
    case QLM_E_FORMAT: return "malformed input";
    case QLM_E_VERSION: return "unsupported format version";
    case QLM_E_CHECKSUM: return "checksum mismatch";
    case QLM_E_RANGE: return "value out of range";
    case QLM_E_NOTFOUND: return "not found";
    case QLM_E_INVALID: return "invalid argument";
    case QLM_E_NONFINITE: return "non-finite value";
    }
    return "unknown error";
}

enum qlm_err qlm_error_set(struct qlm_error *err, enum qlm_err code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        /* one line: no embedded newlines from file names or JSON text */
        for (char *p = err->msg; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
    }
    return code;
}
