/* The merge loop BPE and SentencePiece share: neighbouring symbols are merged best pair first
 * (lowest rank, or highest score), leftmost first among equals, until no pair merges. */
#include "engine/vocab_impl.h"

#include <stdlib.h>

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need) cap2 *= 2;
    void *q = realloc(*p, cap2 * elem);
    if (!q) return false;
    *p = q;
    *cap = cap2;
    return true;
}

bool fl_work_reserve(fl_merge_work *w, size_t n_syms, size_t n_bytes) {
    w->n_syms = 0;
    w->n_heap = 0;
    if (!grow((void **)&w->syms, &w->cap_syms, n_syms, sizeof *w->syms) ||
        !grow((void **)&w->heap, &w->cap_heap, n_syms, sizeof *w->heap) ||
        !grow((void **)&w->buf, &w->cap_buf, n_bytes + 1, 1)) {
        w->failed = true;
        return false;
    }
    return true;
}

void fl_work_free(fl_merge_work *w) {
    free(w->syms);
    free(w->heap);
    free(w->buf);
}

void fl_work_add_symbol(fl_merge_work *w, int32_t id, uint32_t start, uint32_t len) {
    int32_t i = (int32_t)w->n_syms++;
    w->syms[i] = (fl_sym){.id = id, .prev = i - 1, .next = -1, .start = start, .len = len};
    if (i > 0) w->syms[i - 1].next = i;
}

static bool before(const fl_pair *a, const fl_pair *b) {
    return a->key < b->key || (a->key == b->key && a->left < b->left);
}

static void heap_push(fl_merge_work *w, const fl_pair *p) {
    if (!grow((void **)&w->heap, &w->cap_heap, w->n_heap + 1, sizeof *w->heap)) {
        w->failed = true;
        return;
    }
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(p, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = *p;
}

static fl_pair heap_pop(fl_merge_work *w) {
    fl_pair top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n > 0) w->heap[i] = last;
    return top;
}

static void try_pair(const fluid_vocab *v, fl_merge_work *w, fl_pair_fn pair, int32_t left,
                     int32_t right) {
    fl_pair p;
    if (left < 0 || right < 0) return;
    if (pair(v, w, left, right, &p)) heap_push(w, &p);
}

void fl_merge_symbols(const fluid_vocab *v, fl_merge_work *w, fl_pair_fn pair) {
    for (size_t i = 1; i < w->n_syms; i++) try_pair(v, w, pair, (int32_t)i - 1, (int32_t)i);
    while (w->n_heap > 0) {
        fl_pair p = heap_pop(w);
        fl_sym *l = &w->syms[p.left], *r = &w->syms[p.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != p.len) continue; /* stale */
        l->len += r->len;
        l->id = p.result;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) w->syms[r->next].prev = p.left;
        try_pair(v, w, pair, l->prev, p.left);
        try_pair(v, w, pair, p.left, l->next);
    }
}
