/* utf8.c — strict UTF-8 (RFC 3629: no overlongs, no surrogates, nothing past
 * U+10FFFF), for metadata keys and names read from files and for text the
 * runtime tokenizes. */
#include "qlm_format.h"

bool qlm_utf8_lead(uint8_t c, int *need, uint8_t *lo, uint8_t *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        *need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        *need = 2;
        if (c == 0xE0)
            *lo = 0xA0;             /* no overlongs */
        else if (c == 0xED)
            *hi = 0x9F;             /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        *need = 3;
        if (c == 0xF0)
            *lo = 0x90;
        else if (c == 0xF4)
            *hi = 0x8F;             /* <= U+10FFFF */
    } else
        return false;
    return true;
}

size_t qlm_utf8_valid_prefix(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int need;
        uint8_t lo, hi;
        if (!qlm_utf8_lead(s[i], &need, &lo, &hi) || len - i <= (size_t)need)
            return i;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (int j = 2; j <= need; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return i;
        i += (size_t)need + 1;
    }
    return len;
}
