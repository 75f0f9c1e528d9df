/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A multithreaded malloc workload whose output does not depend on the
 * allocator or on scheduling, so its output under the drop-in can be
 * compared byte for byte with its output under glibc.
 *
 * Each of NTHREADS threads builds, rounds after round, a chained hash
 * table of malloc'd records (strings, arrays grown with realloc, calloc'd
 * counters), checks and sums it, frees half of it itself and hands the
 * other half to the next thread through a queue, so half of all frees are
 * remote.  Each block carries its length and a checksum of its contents;
 * the receiver verifies them before freeing.  Sums are added modulo 2^64,
 * so the order in which blocks arrive does not matter.
 *
 * usage: mt_workload [ROUNDS]   (default 6)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS 4
#define NRECORDS 20000
#define NBUCKETS 4096

struct block {
	size_t len;         /* bytes of data[] */
	uint64_t sum;       /* checksum of data[] */
	struct block *next; /* queue link */
	unsigned char data[];
};

struct record {
	struct record *chain;
	char *key;
	uint64_t *vals;
	size_t nvals;
	struct block *blob;
};

struct queue {
	pthread_mutex_t mtx;
	struct block *head;
};

static struct queue queues[NTHREADS];
static pthread_barrier_t done_barrier;
static int rounds = 6;

struct result {
	uint64_t built;    /* checksum of what this thread built */
	uint64_t received; /* checksum of what it received and freed */
	long nreceived;
	long bad; /* blocks that arrived damaged */
};

static struct result results[NTHREADS];

static uint64_t
rng(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t
fnv(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 1099511628211ULL;
	return h;
}

static struct block *
block_new(uint64_t *s)
{
	size_t len =
	    (size_t)(rng(s) % 100 == 0 ? 20000 + rng(s) % 60000 : rng(s) % 600);
	struct block *b = malloc(sizeof(*b) + len);

	if (b == NULL) {
		fprintf(stderr, "mt_workload: out of memory\n");
		exit(1);
	}
	b->len = len;
	for (size_t i = 0; i < len; i++)
		b->data[i] = (unsigned char)rng(s);
	b->sum = fnv(b->data, len);
	b->next = NULL;
	return b;
}

static long
drain(int t)
{
	struct queue *q = &queues[t];
	struct block *b, *next;
	long n = 0;

	pthread_mutex_lock(&q->mtx);
	b = q->head;
	q->head = NULL;
	pthread_mutex_unlock(&q->mtx);
	for (; b != NULL; b = next) {
		next = b->next;
		if (fnv(b->data, b->len) != b->sum)
			results[t].bad++;
		results[t].received += b->sum + b->len;
		results[t].nreceived++;
		free(b);
		n++;
	}
	return n;
}

static void
send_to(int t, struct block *b)
{
	struct queue *q = &queues[t];

	pthread_mutex_lock(&q->mtx);
	b->next = q->head;
	q->head = b;
	pthread_mutex_unlock(&q->mtx);
}

static void *
worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint64_t seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(t + 1);
	struct record **table = calloc(NBUCKETS, sizeof(*table));

	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < NRECORDS; i++) {
			struct record *rec = calloc(1, sizeof(*rec));
			size_t h;

			if (asprintf(&rec->key, "t%d-r%d-%d-%llx", t, r, i,
			        (unsigned long long)(rng(&seed) % 100000)) < 0)
				exit(1);
			rec->nvals = 1 + rng(&seed) % 8;
			rec->vals = malloc(rec->nvals * sizeof(uint64_t));
			for (size_t k = 0; k < rec->nvals; k++)
				rec->vals[k] = rng(&seed);
			if (i % 7 == 0) {
				/* grow by realloc, as a vector would */
				size_t n = rec->nvals;

				for (int g = 0; g < 6; g++) {
					n = n * 2 + 1;
					rec->vals = realloc(
					    rec->vals, n * sizeof(uint64_t));
					for (size_t k = rec->nvals; k < n; k++)
						rec->vals[k] =
						    k * 31 + (size_t)g;
					rec->nvals = n;
				}
			}
			rec->blob = block_new(&seed);
			h = fnv(rec->key, strlen(rec->key)) % NBUCKETS;
			rec->chain = table[h];
			table[h] = rec;
		}
		for (int h = 0; h < NBUCKETS; h++) {
			struct record *rec, *next;
			int k = 0;

			for (rec = table[h]; rec != NULL; rec = next, k++) {
				next = rec->chain;
				results[t].built +=
				    fnv(rec->key, strlen(rec->key)) ^
				    fnv(rec->vals,
				        rec->nvals * sizeof(uint64_t));
				results[t].built += rec->blob->sum;
				if (k % 2)
					send_to((t + 1) % NTHREADS, rec->blob);
				else
					free(rec->blob);
				free(rec->key);
				free(rec->vals);
				free(rec);
			}
			table[h] = NULL;
		}
		drain(t);
	}
	free(table);
	pthread_barrier_wait(&done_barrier);
	drain(t);
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t th[NTHREADS];
	uint64_t built = 0, received = 0;
	long n = 0, bad = 0;

	if (argc > 1)
		rounds = atoi(argv[1]);
	pthread_barrier_init(&done_barrier, NULL, NTHREADS);
	for (int t = 0; t < NTHREADS; t++)
		pthread_mutex_init(&queues[t].mtx, NULL);
	for (int t = 0; t < NTHREADS; t++)
		pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < NTHREADS; t++) {
		printf("thread %d: built %016llx\n", t,
		    (unsigned long long)results[t].built);
		built += results[t].built;
		received += results[t].received;
		n += results[t].nreceived;
		bad += results[t].bad;
	}
	printf("received %ld blocks, checksum %016llx, damaged %ld\n", n,
	    (unsigned long long)received, bad);
	printf("total %016llx\n", (unsigned long long)built);
	return bad == 0 ? 0 : 1;
}
