/* The card kernel: every card feature of a row in one pass over its candidate events.
 *
 * Called through cffi by features/card_kernel.py, which documents the arguments and
 * builds the operation table from the feature definitions. The declarations live in
 * card_kernel.h, included here so the compiler checks every definition against the
 * binding's view of it. Plain C, no Python API; built (features/card_kernel_build.py)
 * with -O2 -ffp-contract=off (no fused multiply-add, no fast-math), so every operation
 * rounds as IEEE double and the results equal the reference in
 * tests/unit/card_reference.py bit for bit. Sums run strictly left to right over a row's
 * events, so a row's features depend on nothing but its own events.
 */
#include "card_kernel.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

enum {
    COUNT, SUM, MEAN, MEDIAN, STD, ZSCORE, COUNT_ABOVE_MEDIAN, SECONDS_SINCE_LAST,
    DISTINCT_TERMINALS, IS_EMPTY, TERMINAL_NOT_SEEN
};

#define MAX_WINDOWS 16
#define US 1000000.0

/* k-th smallest of a[0..n) (Wirth's selection); on return a[0..k) <= a[k] <= a(k..n). */
static double select_kth(double *a, int64_t n, int64_t k) {
    int64_t l = 0, r = n - 1;
    while (l < r) {
        double x = a[k];
        int64_t i = l, j = r;
        do {
            while (a[i] < x) i++;
            while (x < a[j]) j--;
            if (i <= j) {
                double t = a[i]; a[i] = a[j]; a[j] = t;
                i++; j--;
            }
        } while (i <= j);
        if (j < k) l = i;
        if (k < i) r = j;
    }
    return a[k];
}

static double median_of(const double *amounts, const int64_t *window_of, int64_t m, int64_t w,
                        double *buf) {
    int64_t c = 0;
    for (int64_t j = 0; j < m; j++)
        if (window_of[j] <= w) buf[c++] = amounts[j];
    if (c == 0) return 0.0;
    double hi = select_kth(buf, c, c / 2);
    double lo = hi;
    if (c % 2 == 0) { /* the largest of the lower half, left of c/2 after the selection */
        lo = buf[0];
        for (int64_t j = 1; j < c / 2; j++)
            if (buf[j] > lo) lo = buf[j];
    }
    return (lo + hi) / 2.0;
}

static double std_of(const double *amounts, const int64_t *window_of, int64_t m, int64_t w,
                     int64_t count, double total) {
    if (count == 0) return 0.0;
    double mean = total / (double)count, acc = 0.0;
    for (int64_t j = 0; j < m; j++)
        if (window_of[j] <= w) {
            double d = amounts[j] - mean;
            acc += d * d;
        }
    return sqrt(acc / (double)count);
}

static double distinct_of(const int64_t *terms, const int64_t *window_of, int64_t m, int64_t w,
                          int64_t *buf) {
    int64_t c = 0, d = 0;
    for (int64_t j = 0; j < m; j++) {
        if (window_of[j] > w) continue;
        int64_t seen = 0;
        for (int64_t q = 0; q < c; q++)
            if (buf[q] == terms[j]) { seen = 1; break; }
        if (!seen) { buf[c++] = terms[j]; d++; }
    }
    return (double)d;
}

/* Returns 0, or -1 when the windows exceed MAX_WINDOWS or memory runs out. */
int card_rows(int64_t n, const int64_t *t_us, const double *amount, const int64_t *term,
              const int64_t *table_t, const double *table_amount, const int64_t *table_term,
              const int64_t *starts, const int64_t *lengths, const int64_t *lower_us,
              int64_t horizon_us, int64_t nw, const int64_t *windows_us, int64_t nf,
              const int64_t *ops, const int64_t *op_window, const double *op_param,
              const double *op_default, int64_t median_window, double *out) {
    if (nw > MAX_WINDOWS) return -1;
    int64_t width = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t m = lengths[2 * i] + lengths[2 * i + 1];
        if (m > width) width = m;
    }
    int64_t cap = width > 0 ? width : 1;
    int64_t *ev_t = malloc(sizeof(int64_t) * cap), *terms = malloc(sizeof(int64_t) * cap);
    int64_t *window_of = malloc(sizeof(int64_t) * cap), *term_buf = malloc(sizeof(int64_t) * cap);
    double *amounts = malloc(sizeof(double) * cap), *amount_buf = malloc(sizeof(double) * cap);
    int rc = 0;
    if (!ev_t || !terms || !window_of || !term_buf || !amounts || !amount_buf) { rc = -1; goto done; }

    for (int64_t i = 0; i < n; i++) {
        int64_t t = t_us[i];
        int64_t lower = lower_us[i] > t - horizon_us ? lower_us[i] : t - horizon_us;
        int64_t counts[MAX_WINDOWS] = {0}, latest[MAX_WINDOWS];
        double sums[MAX_WINDOWS] = {0}, medians[MAX_WINDOWS], stds[MAX_WINDOWS];
        char median_done[MAX_WINDOWS] = {0}, std_done[MAX_WINDOWS] = {0};
        for (int64_t k = 0; k < nw; k++) latest[k] = INT64_MIN;
        int64_t m = 0;
        for (int p = 0; p < 2; p++) {
            int64_t s = starts[2 * i + p], len = lengths[2 * i + p];
            memcpy(ev_t + m, table_t + s, sizeof(int64_t) * len);
            memcpy(amounts + m, table_amount + s, sizeof(double) * len);
            memcpy(terms + m, table_term + s, sizeof(int64_t) * len);
            m += len;
        }
        for (int64_t j = 0; j < m; j++) {
            int64_t e = ev_t[j], age = t - e, k = nw;
            if (age > 0 && e >= lower) {
                k = 0;
                while (k < nw && age > windows_us[k]) k++;
            }
            window_of[j] = k;
            for (int64_t q = k; q < nw; q++) {
                counts[q] += 1;
                sums[q] += amounts[j];
                if (e > latest[q]) latest[q] = e;
            }
        }
        for (int64_t f = 0; f < nf; f++) {
            int64_t op = ops[f], w = op_window[f], c = counts[w];
            double v;
            if (op == COUNT) {
                v = (double)c;
            } else if (op == SUM) {
                v = sums[w];
            } else if (op == MEAN) {
                v = c > 0 ? sums[w] / (double)c : 0.0;
            } else if (op == MEDIAN || op == COUNT_ABOVE_MEDIAN) {
                int64_t mw = op == MEDIAN ? w : median_window;
                if (!median_done[mw]) {
                    medians[mw] = median_of(amounts, window_of, m, mw, amount_buf);
                    median_done[mw] = 1;
                }
                if (op == MEDIAN) {
                    v = medians[mw];
                } else {
                    double ref = medians[mw] * op_param[f];
                    int64_t above = 0;
                    for (int64_t j = 0; j < m; j++)
                        if (window_of[j] <= w && amounts[j] > ref) above++;
                    v = (double)above;
                }
            } else if (op == STD || op == ZSCORE) {
                if (!std_done[w]) {
                    stds[w] = std_of(amounts, window_of, m, w, c, sums[w]);
                    std_done[w] = 1;
                }
                double s = stds[w];
                v = op == STD ? s : (s > 0 ? (amount[i] - sums[w] / (double)c) / s : 0.0);
            } else if (op == SECONDS_SINCE_LAST) {
                v = c > 0 ? (double)(t - latest[w]) / US : op_default[f];
            } else if (op == DISTINCT_TERMINALS) {
                v = distinct_of(terms, window_of, m, w, term_buf);
            } else if (op == IS_EMPTY) {
                v = c == 0 ? 1.0 : 0.0;
            } else if (op == TERMINAL_NOT_SEEN) {
                v = 1.0;
                for (int64_t j = 0; j < m; j++)
                    if (window_of[j] <= w && terms[j] == term[i]) { v = 0.0; break; }
            } else {
                rc = -1;
                goto done;
            }
            out[f * n + i] = v;
        }
    }
done:
    free(ev_t); free(terms); free(window_of); free(term_buf); free(amounts); free(amount_buf);
    return rc;
}

/* The planning loops of features/realtime/cards.py that numpy could only do with a
 * [rows, events] gather or a sort.
 *
 * stored_replays: row i repeats a stored record when one of its card's records,
 * records[seg[c] .. seg[c] + counts[c]) with c = card_index[i], carries its transaction
 * hash; found_seq[i] is then the first such record's seq, else -1. Records are
 * record_size bytes, the hash a little-endian u64 at offset 0, seq a u32 at seq_offset.
 * Returns how many rows were found. */
int64_t stored_replays(int64_t n, const int64_t *card_index, const uint64_t *txh,
                       const int64_t *seg, const int64_t *counts, const unsigned char *records,
                       int64_t record_size, int64_t seq_offset, int64_t *found_seq) {
    int64_t found = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t c = card_index[i];
        found_seq[i] = -1;
        for (int64_t r = seg[c]; r < seg[c] + counts[c]; r++) {
            uint64_t h;
            memcpy(&h, records + r * record_size, sizeof h);
            if (h == txh[i]) {
                uint32_t s;
                memcpy(&s, records + r * record_size + seq_offset, sizeof s);
                found_seq[i] = (int64_t)s;
                found++;
                break;
            }
        }
    }
    return found;
}

/* arrival_max: the max event time of row i's card when it arrives, the card's stored max
 * and the times of its earlier fresh rows in batch order. running: nc doubles of scratch. */
void arrival_max(int64_t n, int64_t nc, const int64_t *card_index, const double *t,
                 const unsigned char *fresh, const double *card_max, double *running,
                 double *out) {
    memcpy(running, card_max, sizeof(double) * nc);
    for (int64_t i = 0; i < n; i++) {
        int64_t c = card_index[i];
        out[i] = running[c];
        if (fresh[i] && t[i] > running[c]) running[c] = t[i];
    }
}

/* card_writes: what one batch writes per card (features/realtime/cards.py documents the
 * rules). new_records (n_new x 32 bytes, the batch's applied rows sorted by card, gs[i] the
 * card of each) are appended to the card's value with a new trailer, or, for a new card or
 * when at least trim_chunk old records can go, the value is rewritten without them.
 * Records: txh u64 @0, t f64 @8, amount f64 @16, term u32 @24, seq u32 @28; trailer:
 * next_seq u32 @0, max_time f64 @4. Per written card k (in card order) it fills the out
 * arrays; payload receives the bodies back to back. Returns the payload's length and sets
 * *n_written. */
#define REC 32
#define TRAILER 12
static double rec_t(const unsigned char *r) { double v; memcpy(&v, r + 8, 8); return v; }
static uint32_t rec_seq(const unsigned char *r) { uint32_t v; memcpy(&v, r + 28, 4); return v; }

int64_t card_writes(int64_t n_new, const int64_t *gs, const unsigned char *new_records,
                    const unsigned char *stored, const int64_t *seg, const int64_t *counts,
                    const double *expect_max, const unsigned char *exists,
                    double retention_us, int64_t capacity, int64_t trim_chunk,
                    double refresh_us, int64_t *n_written, int64_t *cards, int64_t *first,
                    int64_t *added, int64_t *drops, int64_t *next_seq, double *max_time,
                    unsigned char *refreshed, unsigned char *append_out, int64_t *offset,
                    int64_t *start, int64_t *length, unsigned char *payload) {
    int64_t k = 0, at = 0, i = 0;
    while (i < n_new) {
        int64_t c = gs[i], f = i;
        double mx = rec_t(new_records + i * REC);
        while (i < n_new && gs[i] == c) {
            double t = rec_t(new_records + i * REC);
            if (t > mx) mx = t;
            i++;
        }
        int64_t m = i - f, old = counts[c], s0 = seg[c];
        if (exists[c] && expect_max[c] > mx) mx = expect_max[c];
        uint32_t nseq = rec_seq(new_records + (i - 1) * REC) + 1;
        int64_t drop = old + m - capacity > 0 ? old + m - capacity : 0;
        if (drop < old) { /* retention: skip the old records before max - retention */
            double limit = mx - retention_us;
            int64_t r = s0 + drop;
            while (r < s0 + old && !(rec_t(stored + r * REC) >= limit)) r++;
            if (r - s0 > drop) drop = r - s0;
        }
        int append = exists[c] && drop < trim_chunk && drop <= old;
        /* the TTL is set again when the card's newest event moves to a later period */
        int refresh = append && (refresh_us <= 0 ||
                                 floor(mx / refresh_us) > floor(expect_max[c] / refresh_us));
        unsigned char *out = payload + at;
        int64_t len;
        if (append) {
            memcpy(out, new_records + f * REC, (size_t)(m * REC));
            len = m * REC;
        } else {
            int64_t from_old = drop < old ? old - drop : 0, skip_new = drop > old ? drop - old : 0;
            memcpy(out, stored + (s0 + old - from_old) * REC, (size_t)(from_old * REC));
            memcpy(out + from_old * REC, new_records + (f + skip_new) * REC,
                   (size_t)((m - skip_new) * REC));
            len = (from_old + m - skip_new) * REC;
        }
        memcpy(out + len, &nseq, 4);
        memcpy(out + len + 4, &mx, 8);
        len += TRAILER;
        cards[k] = c; first[k] = f; added[k] = m;
        drops[k] = append ? 0 : drop;
        next_seq[k] = nseq; max_time[k] = mx;
        refreshed[k] = (unsigned char)(refresh || !append);
        append_out[k] = (unsigned char)append;
        offset[k] = append ? old * REC : 0;
        start[k] = at; length[k] = len;
        at += len;
        k++;
    }
    *n_written = k;
    return at;
}

/* terminal_day_counts: counts[i * n_days + k] = the transactions counted for row i's
 * terminal on day ref_day[i] - 1 - k (features/realtime/layout.py documents the rule):
 * the stored bucket (words: per terminal words_per_term i32, max_time in the first two,
 * then slots x (day, count); a bucket counts only when its day is the one asked for) plus
 * the batch's applied rows (status 0) of the same terminal on that day, except, for a
 * too-late row ((status & 3) == 2), those after it in the batch. head (n_terms) and next
 * (n) are scratch: each terminal's applied rows as a list. */
void terminal_day_counts(int64_t n, int64_t n_terms, const int32_t *words,
                         int64_t words_per_term, int64_t slots, const int64_t *term_index,
                         const int64_t *ref_day, const int64_t *day, const int64_t *status,
                         int64_t n_days, int64_t *head, int64_t *next, int64_t *counts) {
    for (int64_t g = 0; g < n_terms; g++) head[g] = -1;
    for (int64_t j = n - 1; j >= 0; j--)
        if (status[j] == 0) { next[j] = head[term_index[j]]; head[term_index[j]] = j; }
    for (int64_t i = 0; i < n; i++) {
        const int32_t *w = words + term_index[i] * words_per_term;
        int64_t *row = counts + i * n_days, top = ref_day[i] - 1;
        for (int64_t k = 0; k < n_days; k++) {
            int64_t wanted = top - k, slot = wanted % slots;
            if (slot < 0) slot += slots;
            row[k] = (int64_t)w[2 + 2 * slot] == wanted ? (int64_t)w[3 + 2 * slot] : 0;
        }
        int too_late = (status[i] & 3) == 2;
        for (int64_t j = head[term_index[i]]; j >= 0; j = next[j]) {
            int64_t k = top - day[j];
            if (k >= 0 && k < n_days && !(too_late && j > i)) row[k] += 1;
        }
    }
}
