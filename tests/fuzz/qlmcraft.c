/*
 * qlmcraft.c — byte surgery for the malformed-input tests (tests/malformed.sh):
 *
 *   qlmcraft hdr FILE.qlm             header fields as shell assignments
 *   qlmcraft rehash FILE.qlm          recompute the section and header XXH3s in
 *                                     place (so a crafted defect gets past them)
 *   qlmcraft get FILE OFF WIDTH       print the little-endian uint at OFF
 *   qlmcraft put FILE OFF WIDTH VAL   write VAL (decimal, or -N) at OFF
 *   qlmcraft flip FILE OFF            xor the byte at OFF with 0x01
 *   qlmcraft grow FILE SECTION K      append K bytes 0x5a to SECTION (meta, tok
 *                                     or dir), moving the sections after it
 *                                     into the padding before data_offset
 *   qlmcraft st OUT JSON DATALEN [DECLARED]
 *                                     write a safetensors file: u64 header
 *                                     length (DECLARED, default the JSON's),
 *                                     the JSON, DATALEN bytes 0x3f
 *   qlmcraft st-off FILE NAME         "OFFSET DTYPE" of tensor NAME's data in a
 *                                     (well-formed, compact) safetensors file
 *   qlmcraft gguf-off FILE WHAT       in a well-formed GGUF file, the offset of
 *                                     key:NAME's value (a string's: its u64
 *                                     length), tensor:NAME's info after its
 *                                     name (n_dims, ne..., type, offset), or
 *                                     tdata:NAME's data
 *   qlmcraft imat-rehash FILE.imat    recompute the trailing XXH3 in place
 *   qlmcraft imat-off FILE.imat NAME  offset of entry NAME (its u16 name_len)
 *
 * Exits 2 with a message on misuse; touches nothing but the named file.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static int die(const char *msg, const char *arg)
{
    fprintf(stderr, "qlmcraft: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    exit(2);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(strerror(errno), path);
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            uint8_t *nb = realloc(b, cap *= 2);
            if (!nb)
                free(b);
            b = nb;
        }
    }
    if (!b || ferror(f))
        die("cannot read", path);
    fclose(f);
    *len = n;
    return b;
}

static void spill(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0)
        die("cannot write", path);
}

static uint64_t rd(const uint8_t *p, int w)
{
    uint64_t v = 0;
    for (int i = w - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void wr(uint8_t *p, int w, uint64_t v)
{
    for (int i = 0; i < w; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t num(const char *s)
{
    char *end;
    errno = 0;
    uint64_t v = s[0] == '-' ? (uint64_t)strtoll(s, &end, 0) : strtoull(s, &end, 0);
    if (errno || end == s || *end)
        die("not a number", s);
    return v;
}

static int width(const char *s)
{
    uint64_t w = num(s);
    if (w != 1 && w != 2 && w != 4 && w != 8)
        die("width must be 1, 2, 4 or 8", s);
    return (int)w;
}

/* Bytes of a GGUF value of type t at p (trusted input); arrays of arrays
 * are not walked. */
static uint64_t gguf_value_len(const uint8_t *p, uint32_t t)
{
    static const uint8_t size[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (t == 8)
        return 8 + rd(p, 8);
    if (t != 9)
        return t < 13 ? size[t] : 0;
    uint32_t e = (uint32_t)rd(p, 4);
    uint64_t cnt = rd(p + 4, 8), len = 12;
    for (uint64_t i = 0; i < cnt; i++)
        len += gguf_value_len(p + len, e);
    return len;
}

static uint64_t gguf_off(const uint8_t *b, size_t n, const char *what)
{
    const char *colon = strchr(what, ':');
    if (n < 24 || memcmp(b, "GGUF", 4) != 0 || !colon)
        die("not a GGUF file, or WHAT is not key:, tensor: or tdata:", what);
    const char *name = colon + 1;
    size_t nl = strlen(name), kind = (size_t)(colon - what);
    uint64_t nt = rd(b + 8, 8), nkv = rd(b + 16, 8), p = 24, align = 32;
    for (uint64_t i = 0; i < nkv; i++) {
        uint64_t kl = rd(b + p, 8);
        const uint8_t *k = b + p + 8;
        uint32_t t = (uint32_t)rd(k + kl, 4);
        uint64_t v = p + 8 + kl + 4;
        if (kl == 17 && !memcmp(k, "general.alignment", 17))
            align = rd(b + v, 4);
        if (kind == 3 && !strncmp(what, "key", 3) && kl == nl && !memcmp(k, name, nl))
            return v;
        p = v + gguf_value_len(b + v, t);
    }
    uint64_t found = 0, toff = 0;
    for (uint64_t i = 0; i < nt; i++) {
        uint64_t l = rd(b + p, 8), q = p + 8 + l, nd = rd(b + q, 4);
        if (l == nl && !memcmp(b + p + 8, name, nl)) {
            found = q;
            toff = rd(b + q + 4 + 8 * nd + 4, 8);
        }
        p = q + 4 + 8 * nd + 4 + 8;
    }
    if (!found)
        die("not found", what);
    if (!strncmp(what, "tensor", kind))
        return found;
    return (p + align - 1) / align * align + toff;
}

static const char *const FIELDS[] = {"file_size",  "meta_offset", "meta_size",   "tok_offset",
                                     "tok_size",   "tok_raw_size", "dir_offset", "dir_size"};

int main(int argc, char **argv)
{
    if (argc < 3)
        die("usage: qlmcraft hdr|rehash|get|put|flip|grow|st|st-off|meta-off|imat-rehash|"
            "imat-off|gguf-off FILE ...", NULL);
    const char *cmd = argv[1], *path = argv[2];
    size_t n;
    if (!strcmp(cmd, "st")) {
        if (argc < 5)
            die("usage: qlmcraft st OUT JSON DATALEN [DECLARED]", NULL);
        size_t jl = strlen(argv[3]);
        uint64_t dl = num(argv[4]), declared = argc > 5 ? num(argv[5]) : jl;
        if (dl > (1u << 26))
            die("DATALEN too large", argv[4]);
        uint8_t *b = malloc(8 + jl + dl);
        if (!b)
            die("out of memory", NULL);
        wr(b, 8, declared);
        memcpy(b + 8, argv[3], jl);
        memset(b + 8 + jl, 0x3f, dl);
        spill(path, b, 8 + jl + dl);
        free(b);
        return 0;
    }
    uint8_t *b = slurp(path, &n);
    if (!strcmp(cmd, "hdr")) {
        if (n < 256)
            die("shorter than a .qlm header", path);
        for (int i = 0; i < 8; i++)
            printf("%s=%llu\n", FIELDS[i], (unsigned long long)rd(b + 16 + 8 * i, 8));
        printf("n_tensors=%llu\n", (unsigned long long)rd(b + 80, 4));
        printf("data_alignment=%llu\n", (unsigned long long)rd(b + 84, 4));
        printf("data_offset=%llu\n", (unsigned long long)rd(b + 88, 8));
        printf("data_size=%llu\n", (unsigned long long)rd(b + 96, 8));
    } else if (!strcmp(cmd, "rehash")) {
        if (n < 256)
            die("shorter than a .qlm header", path);
        static const int sec[3][3] = {{24, 32, 104}, {40, 48, 112}, {64, 72, 120}};
        for (int i = 0; i < 3; i++) {
            uint64_t o = rd(b + sec[i][0], 8), s = rd(b + sec[i][1], 8);
            if (o <= n && s <= n - o) /* sections out of bounds keep their hash */
                wr(b + sec[i][2], 8, XXH3_64bits(b + o, (size_t)s));
        }
        wr(b + 248, 8, XXH3_64bits(b, 248));
        spill(path, b, n);
    } else if (!strcmp(cmd, "get") || !strcmp(cmd, "put") || !strcmp(cmd, "flip")) {
        int flip = !strcmp(cmd, "flip"), put = !strcmp(cmd, "put");
        if (argc != (flip ? 4 : put ? 6 : 5))
            die("wrong number of arguments for", cmd);
        uint64_t off = num(argv[3]);
        int w = flip ? 1 : width(argv[4]);
        if (off > n || (uint64_t)w > n - off)
            die("offset past the end of", path);
        if (flip)
            b[off] ^= 1;
        else if (put)
            wr(b + off, w, num(argv[5]));
        else
            printf("%llu\n", (unsigned long long)rd(b + off, w));
        if (flip || put)
            spill(path, b, n);
    } else if (!strcmp(cmd, "grow")) {
        static const char *const names[3] = {"meta", "tok", "dir"};
        static const int at[3] = {24, 40, 64}; /* offset fields; sizes follow them */
        int k = 0;
        while (k < 3 && (argc != 5 || strcmp(argv[3], names[k])))
            k++;
        if (k == 3 || n < 256)
            die("usage: qlmcraft grow FILE meta|tok|dir K", NULL);
        uint64_t add = num(argv[4]), end = rd(b + at[k], 8) + rd(b + at[k] + 8, 8);
        uint64_t last = rd(b + 64, 8) + rd(b + 72, 8);
        if (end > last || last + add > rd(b + 88, 8) || rd(b + 88, 8) > n)
            die("no room before data_offset in", path);
        memmove(b + end + add, b + end, (size_t)(last - end));
        memset(b + end, 0x5a, (size_t)add);
        wr(b + at[k] + 8, 8, rd(b + at[k] + 8, 8) + add);
        for (int j = k + 1; j < 3; j++)
            wr(b + at[j], 8, rd(b + at[j], 8) + add);
        spill(path, b, n);
    } else if (!strcmp(cmd, "st-off")) {
        if (argc != 4 || n < 8)
            die("usage: qlmcraft st-off FILE NAME", NULL);
        uint64_t hl = rd(b, 8);
        if (hl > n - 8)
            die("header length past the end of", path);
        char *h = malloc(hl + 1), key[512];
        if (!h)
            die("out of memory", NULL);
        memcpy(h, b + 8, hl);
        h[hl] = 0;
        snprintf(key, sizeof key, "\"%s\"", argv[3]);
        char *p = strstr(h, key), *dt, *of;
        if (!p || !(dt = strstr(p, "\"dtype\"")) || !(of = strstr(p, "\"data_offsets\"")))
            die("tensor not found", argv[3]);
        char dtype[16] = "";
        unsigned long long a = 0;
        if (sscanf(dt, "\"dtype\" : \"%15[A-Z0-9]\"", dtype) != 1 ||
            sscanf(of, "\"data_offsets\" : [ %llu", &a) != 1)
            die("cannot parse the entry of", argv[3]);
        printf("%llu %s\n", (unsigned long long)(8 + hl + a), dtype);
        free(h);
    } else if (!strcmp(cmd, "gguf-off")) {
        if (argc != 4)
            die("usage: qlmcraft gguf-off FILE key:NAME|tensor:NAME|tdata:NAME", NULL);
        printf("%llu\n", (unsigned long long)gguf_off(b, n, argv[3]));
    } else if (!strcmp(cmd, "meta-off")) {
        /* the offset of a metadata key's value (a string's: its u32 length) */
        if (argc != 4 || n < 256)
            die("usage: qlmcraft meta-off FILE KEY", NULL);
        uint64_t o = rd(b + 24, 8), end = o + rd(b + 32, 8);
        if (end > n || o + 4 > end)
            die("metadata section past the end of", path);
        uint64_t count = rd(b + o, 4), p = o + 4;
        for (uint64_t i = 0; i < count && p + 2 <= end; i++) {
            uint64_t kl = rd(b + p, 2), v = p + 2 + kl + 1;
            if (v > end)
                break;
            int type = b[v - 1];
            if (kl == strlen(argv[3]) && !memcmp(b + p + 2, argv[3], kl)) {
                printf("%llu\n", (unsigned long long)v);
                free(b);
                return 0;
            }
            p = v + (type == 4 ? 4 + rd(b + v, 4) : 8);
        }
        die("metadata key not found", argv[3]);
    } else if (!strcmp(cmd, "imat-rehash")) {
        if (n < 8)
            die("shorter than a checksum", path);
        wr(b + n - 8, 8, XXH3_64bits(b, n - 8));
        spill(path, b, n);
    } else if (!strcmp(cmd, "imat-off")) {
        /* entries from byte 96: u16 name_len, name, u32 cols, u64 count, f32[cols] */
        if (argc != 4 || n < 104)
            die("usage: qlmcraft imat-off FILE.imat NAME", NULL);
        for (uint64_t p = 96, i = 0; i < rd(b + 68, 4) && p + 2 <= n - 8; i++) {
            uint64_t nl = rd(b + p, 2);
            if (p + 2 + nl + 12 > n - 8)
                break;
            if (nl == strlen(argv[3]) && !memcmp(b + p + 2, argv[3], nl)) {
                printf("%llu\n", (unsigned long long)p);
                free(b);
                return 0;
            }
            p += 2 + nl + 12 + 4 * rd(b + p + 2 + nl, 4);
        }
        die("entry not found", argv[3]);
    } else {
        die("unknown command", cmd);
    }
    free(b);
    return 0;
}
