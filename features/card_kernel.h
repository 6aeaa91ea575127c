/* The card kernel's functions: the one declaration of each, shared by the C compiler and
 * the Python binding. card_kernel.c includes this file, so a definition that differs from
 * its declaration fails to compile; features/card_kernel_build.py hands the same text to
 * cffi, so Python calls are converted and checked against it (a wrong argument is a
 * TypeError, never a crash). Plain declarations only: cffi's parser reads them as well.
 */
#ifndef FRAUD_CARD_KERNEL_H
#define FRAUD_CARD_KERNEL_H
#include <stdint.h>

int card_rows(int64_t n, const int64_t *t_us, const double *amount, const int64_t *term,
              const int64_t *table_t, const double *table_amount, const int64_t *table_term,
              const int64_t *starts, const int64_t *lengths, const int64_t *lower_us,
              int64_t horizon_us, int64_t nw, const int64_t *windows_us, int64_t nf,
              const int64_t *ops, const int64_t *op_window, const double *op_param,
              const double *op_default, int64_t median_window, double *out);

int64_t stored_replays(int64_t n, const int64_t *card_index, const uint64_t *txh,
                       const int64_t *seg, const int64_t *counts, const unsigned char *records,
                       int64_t record_size, int64_t seq_offset, int64_t *found_seq);

void arrival_max(int64_t n, int64_t nc, const int64_t *card_index, const double *t,
                 const unsigned char *fresh, const double *card_max, double *running,
                 double *out);

int64_t card_writes(int64_t n_new, const int64_t *gs, const unsigned char *new_records,
                    const unsigned char *stored, const int64_t *seg, const int64_t *counts,
                    const double *expect_max, const unsigned char *exists,
                    double retention_us, int64_t capacity, int64_t trim_chunk,
                    double refresh_us, int64_t *n_written, int64_t *cards, int64_t *first,
                    int64_t *added, int64_t *drops, int64_t *next_seq, double *max_time,
                    unsigned char *refreshed, unsigned char *append_out, int64_t *offset,
                    int64_t *start, int64_t *length, unsigned char *payload);

void terminal_day_counts(int64_t n, int64_t n_terms, const int32_t *words,
                         int64_t words_per_term, int64_t slots, const int64_t *term_index,
                         const int64_t *ref_day, const int64_t *day, const int64_t *status,
                         int64_t n_days, int64_t *head, int64_t *next, int64_t *counts);

#endif
