/* parse.c — strict parsing of option values; see cli.h. */
#include "config.h"

#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *qlm_cli_shown(const char *s, char *buf, size_t cap)
{
    size_t i = 0;
    for (; s[i] && i + 4 < cap && i < 24; i++)
        buf[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
    if (s[i] && i + 4 < cap) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

enum qlm_err qlm_cli_parse_long(const char *opt, const char *s, long min, long max, long *out,
                                struct qlm_error *err)
{
    char b[32];
    if (!s || !*s || isspace((unsigned char)*s))
        return qlm_error_set(err, QLM_E_INVALID, "%s '%s': not an integer", opt,
                             s ? qlm_cli_shown(s, b, sizeof b) : "");
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end != '\0')
        return qlm_error_set(err, QLM_E_INVALID, "%s '%s': not an integer", opt,
                             qlm_cli_shown(s, b, sizeof b));
    if (errno == ERANGE || v < min || v > max)
        return qlm_error_set(err, QLM_E_RANGE, "%s %s: must be between %ld and %ld", opt,
                             qlm_cli_shown(s, b, sizeof b), min, max);
    *out = v;
    return QLM_OK;
}

enum qlm_err qlm_cli_parse_int(const char *opt, const char *s, int min, int max, int *out,
                               struct qlm_error *err)
{
    long v;
    QLM_TRY(qlm_cli_parse_long(opt, s, min, max, &v, err));
    *out = (int)v;
    return QLM_OK;
}

enum qlm_err qlm_cli_parse_u64(const char *opt, const char *s, uint64_t *out,
                               struct qlm_error *err)
{
    char b[32];
    if (!s || !*s || !isdigit((unsigned char)*s))
        return qlm_error_set(err, QLM_E_INVALID, "%s '%s': not a non-negative integer", opt,
                             s ? qlm_cli_shown(s, b, sizeof b) : "");
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (*end != '\0')
        return qlm_error_set(err, QLM_E_INVALID, "%s '%s': not a non-negative integer", opt,
                             qlm_cli_shown(s, b, sizeof b));
    if (errno == ERANGE)
        return qlm_error_set(err, QLM_E_RANGE, "%s %s: larger than 2^64-1", opt,
                             qlm_cli_shown(s, b, sizeof b));
    *out = (uint64_t)v;
    return QLM_OK;
}

enum qlm_err qlm_cli_parse_double(const char *opt, const char *s, double min, double max,
                                  double *out, struct qlm_error *err)
{
    char b[32];
    if (!s || !*s || isspace((unsigned char)*s))
        return qlm_error_set(err, QLM_E_INVALID, "%s '%s': not a number", opt,
                             s ? qlm_cli_shown(s, b, sizeof b) : "");
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end != '\0' || isnan(v))
        return qlm_error_set(err, QLM_E_INVALID, "%s '%s': not a number", opt,
                             qlm_cli_shown(s, b, sizeof b));
    if (!isfinite(v) || v < min || v > max)
        return qlm_error_set(err, QLM_E_RANGE, "%s %s: must be between %g and %g", opt,
                             qlm_cli_shown(s, b, sizeof b), min, max);
    *out = v;
    return QLM_OK;
}

enum qlm_err qlm_cli_parse_kv_type(const char *opt, const char *s, int *out,
                                   struct qlm_error *err)
{
    int t = qlm_dtype_from_name(s);
    if (t != QLM_F32 && t != QLM_F16)
        return qlm_error_set(err, QLM_E_INVALID, "%s '%s': expected f16 or f32", opt, s);
    *out = t;
    return QLM_OK;
}
