/* One pass over a raw payload that answers "certainly clean" for the common case, so the
 * intake's exact checks (streams/serde.py: nesting depth, card numbers, duplicate fields)
 * run only on the rest.
 *
 * Clean (1) means all of: the bytes are one JSON object, syntactically valid, whose values
 * are strings, numbers, true, false or null (no nested object or array); the text is ASCII
 * with no backslash (so every string reads as its bytes); no key appears twice; no key is
 * a card-number field name (streams/pan.py's list, any case); and no key or string value
 * holds 13 or more digits in a run with at most one separator (space, dash, dot) between
 * two digits - the necessary condition for a card number (pan.py's _CANDIDATE).
 * Anything else is 0, "not sure": never an error, the exact checks decide.
 */
#include "payload_guard.h"

#include <string.h>

#define MAX_KEYS 48
#define PAN_RUN 13

enum { LAST_OTHER, LAST_DIGIT, LAST_SEP };

/* The names of streams/pan.py's _FIELD_NAMES, every optional underscore spelled out. */
static const char *const PAN_NAMES[] = {
    "pan",
    "cardnumber",
    "card_number",
    "primaryaccountnumber",
    "primary_accountnumber",
    "primaryaccount_number",
    "primary_account_number",
    "ccn",
    "ccnumber",
    "cc_number",
};

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static size_t skip_ws(const unsigned char *p, size_t n, size_t i) {
    while (i < n && is_ws(p[i])) i++;
    return i;
}

/* The string starting after the quote at i; returns the index after its closing quote, or
 * 0 when it is not a plain string (escape, control or non-ASCII byte, unterminated, or a
 * candidate digit run). */
static size_t plain_string(const unsigned char *p, size_t n, size_t i) {
    int run = 0, last = LAST_OTHER;
    for (; i < n; i++) {
        unsigned char c = p[i];
        if (c == '"') return i + 1;
        if (c == '\\' || c < 0x20 || c >= 0x80) return 0;
        if (is_digit(c)) {
            run = (last == LAST_DIGIT || (last == LAST_SEP && run > 0)) ? run + 1 : 1;
            if (run >= PAN_RUN) return 0;
            last = LAST_DIGIT;
        } else if ((c == ' ' || c == '-' || c == '.') && last == LAST_DIGIT) {
            last = LAST_SEP;
        } else {
            run = 0;
            last = LAST_OTHER;
        }
    }
    return 0;
}

/* The JSON number starting at i (RFC 8259 grammar); the index after it, or 0. */
static size_t number(const unsigned char *p, size_t n, size_t i) {
    if (i < n && p[i] == '-') i++;
    if (i >= n) return 0;
    if (p[i] == '0') {
        i++;
    } else if (is_digit(p[i])) {
        while (i < n && is_digit(p[i])) i++;
    } else {
        return 0;
    }
    if (i < n && p[i] == '.') {
        size_t start = ++i;
        while (i < n && is_digit(p[i])) i++;
        if (i == start) return 0;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-')) i++;
        size_t start = i;
        while (i < n && is_digit(p[i])) i++;
        if (i == start) return 0;
    }
    return i;
}

static size_t literal(const unsigned char *p, size_t n, size_t i, const char *word) {
    size_t len = strlen(word);
    return (n - i >= len && memcmp(p + i, word, len) == 0) ? i + len : 0;
}

static int pan_named(const unsigned char *key, size_t len) {
    char lower[32];
    if (len >= sizeof lower) return 0;
    for (size_t k = 0; k < len; k++) {
        unsigned char c = key[k];
        lower[k] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    for (size_t k = 0; k < sizeof PAN_NAMES / sizeof PAN_NAMES[0]; k++) {
        if (strlen(PAN_NAMES[k]) == len && memcmp(PAN_NAMES[k], lower, len) == 0) return 1;
    }
    return 0;
}

int payload_guard_clean(const unsigned char *p, size_t n) {
    size_t key_at[MAX_KEYS], key_len[MAX_KEYS];
    size_t keys = 0;
    size_t i = skip_ws(p, n, 0);
    if (i >= n || p[i] != '{') return 0;
    i = skip_ws(p, n, i + 1);
    if (i < n && p[i] == '}') return skip_ws(p, n, i + 1) == n;
    for (;;) {
        if (i >= n || p[i] != '"' || keys == MAX_KEYS) return 0;
        size_t end = plain_string(p, n, i + 1);
        if (end == 0) return 0;
        size_t at = i + 1, len = end - 1 - at;
        if (pan_named(p + at, len)) return 0;
        for (size_t k = 0; k < keys; k++) {
            if (key_len[k] == len && memcmp(p + key_at[k], p + at, len) == 0) return 0;
        }
        key_at[keys] = at;
        key_len[keys] = len;
        keys++;
        i = skip_ws(p, n, end);
        if (i >= n || p[i] != ':') return 0;
        i = skip_ws(p, n, i + 1);
        if (i >= n) return 0;
        unsigned char c = p[i];
        if (c == '"') {
            end = plain_string(p, n, i + 1);
        } else if (c == '-' || is_digit(c)) {
            end = number(p, n, i);
        } else if (c == 't') {
            end = literal(p, n, i, "true");
        } else if (c == 'f') {
            end = literal(p, n, i, "false");
        } else if (c == 'n') {
            end = literal(p, n, i, "null");
        } else {
            return 0; /* an object, an array, or not JSON */
        }
        if (end == 0) return 0;
        i = skip_ws(p, n, end);
        if (i >= n) return 0;
        if (p[i] == '}') return skip_ws(p, n, i + 1) == n;
        if (p[i] != ',') return 0;
        i = skip_ws(p, n, i + 1);
    }
}
