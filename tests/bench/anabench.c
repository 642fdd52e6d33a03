/*
 * The analysts' workbench's data calls on a database histbench made (the
 * history-10M one in make bench): on a connection opened with store_open
 * as a worker opens it, the time of
 *   - a household's summary and its item lines (store_analyst_household,
 *     store_analyst_lines: the route draws the stores and the visit rhythm
 *     from the lines), households drawn at random, each asked once;
 *   - a cohort: its households, the population of its filter, the rule and
 *     what else it bought (store_analyst_days_cohort, _population, _also,
 *     analyst_cohort_rule) on the folded tables, for a GTIN of the
 *     database and a range of days (1 to 90) drawn at random; what else
 *     it bought is timed even when the rule withholds the cohort, so the
 *     p99 is that of the dearest call;
 *   - the offers' funnel.
 * First the baskets not folded yet are folded (store_analyst_fold, timed:
 * a database histbench made is folded whole on its first run), then the
 * database is read through, as histbench does.
 *
 * usage: anabench DB [QUERIES]
 */
#include <fcntl.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "analyst.h"
#include "benchutil.h"
#include "deident.h"
#include "gtin.h"
#include "store.h"
#include "store_analyst.h"

#define AB_MAX_QUERIES 10000
#define AB_GTINS 256

static uint64_t ab_rng = 0x9E3779B97F4A7C15ULL;

static uint64_t ab_rand(void)
{
	ab_rng ^= ab_rng >> 12;
	ab_rng ^= ab_rng << 25;
	ab_rng ^= ab_rng >> 27;
	return ab_rng * 0x2545F4914F6CDD1DULL;
}

static void ab_warm(const char *path)
{
	static char buf[1 << 20];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while (read(fd, buf, sizeof buf) > 0)
		;
	close(fd);
}

/* Column 0 of every row of sql, as text, up to max rows. */
static long ab_column(const char *path, const char *sql, char (*out)[40], long max)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long n = 0;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK)
		while (n < max && sqlite3_step(st) == SQLITE_ROW) {
			const unsigned char *t = sqlite3_column_text(st, 0);

			snprintf(out[n++], 40, "%s", t ? (const char *)t : "");
		}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static int64_t ab_month_ms(int y, int m)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = 1 };

	return (int64_t)timegm(&tm) * 1000;
}

static int ab_count_row(const struct store_analyst_other *o, void *arg)
{
	(void)o;
	(*(long *)arg)++;
	return 0;
}

static int ab_count_line(const struct store_analyst_line *l, void *arg)
{
	(void)l;
	(*(long *)arg)++;
	return 0;
}

static int ab_count_offer(const struct store_analyst_funnel *f, void *arg)
{
	(void)f;
	(*(long *)arg)++;
	return 0;
}

int main(int argc, char **argv)
{
	long queries = argc > 2 ? strtol(argv[2], NULL, 10) : 100, nhh, ngt, rows = 0;
	char (*hh)[40] = calloc(AB_MAX_QUERIES, 40), (*gt)[40] = calloc(AB_GTINS, 40);
	uint32_t *thh = calloc(AB_MAX_QUERIES, 4), *tco = calloc(AB_MAX_QUERIES, 4),
		 *tfu = calloc(AB_MAX_QUERIES, 4);
	struct store *s = NULL;
	pos_err e = { 0 };
	long shown = 0, fold_n = 0;
	double fold_s = 0;
	int rc = 1;

	if (argc < 2 || queries < 1 || queries > AB_MAX_QUERIES) {
		fprintf(stderr, "usage: anabench DB [QUERIES 1..%d]\n", AB_MAX_QUERIES);
		return 2;
	}
	if (!hh || !gt || !thh || !tco || !tfu)
		goto out;
	/* Opening migrates a database histbench made before items_gtin. */
	if (store_open(argv[1], &s, &e) < 0) {
		fprintf(stderr, "anabench: %s\n", e.msg);
		goto out;
	}
	{
		uint64_t a = bench_now_ns();
		long folded = 0, total = 0;
		bool more = true;

		while (more) {
			if (store_analyst_fold(s, 20000, 0, &folded, &more, &e) < 0) {
				fprintf(stderr, "anabench: fold: %s\n", e.msg);
				goto out;
			}
			total += folded;
		}
		fold_s = (double)(bench_now_ns() - a) / 1e9;
		printf("fold: %ld baskets in %.1f s\n", total, fold_s);
		fold_n = total;
	}
	ab_warm(argv[1]);
	ab_rng ^= bench_now_ns();
	nhh = ab_column(argv[1], "SELECT hhid FROM households ORDER BY random()", hh,
			AB_MAX_QUERIES);
	ngt = ab_column(argv[1], "SELECT DISTINCT gtin FROM items LIMIT 256", gt, AB_GTINS);
	if (nhh < 1 || ngt < 1) {
		fprintf(stderr, "anabench: %s has no households or items\n", argv[1]);
		goto out;
	}
	for (long q = 0; q < queries; q++) {
		uint64_t a = bench_now_ns();
		json_t *v = NULL;
		int *first = NULL, *last = NULL;
		size_t n = 0;
		long pop = 0;
		/* histbench's baskets span 2025. */
		int64_t d0 = ab_month_ms(2025, 1) / 86400000 + (int64_t)(ab_rand() % 270);
		struct store_analyst_days f = {
			.gtin = gt[ab_rand() % (uint64_t)ngt],
			.from_day = d0,
			.to_day = d0 + 1 + (int64_t)(ab_rand() % 90),
		};

		if (store_analyst_household(s, hh[q % nhh], &v, &e) < 0 ||
		    store_analyst_lines(s, hh[q % nhh], ab_count_line, &rows, &e) < 0)
			goto fail;
		json_decref(v);
		thh[q] = (uint32_t)((bench_now_ns() - a) / 1000);
		a = bench_now_ns();
		if (store_analyst_days_cohort(s, &f, &first, &last, &n, &e) < 0 ||
		    store_analyst_days_population(s, &f, &pop, &e) < 0)
			goto fail;
		if (!analyst_cohort_rule(10, first, last, n, pop, -1))
			shown++;
		if (store_analyst_days_also(s, &f, ab_count_row, &rows, &e) < 0)
			goto fail;
		free(first);
		free(last);
		tco[q] = (uint32_t)((bench_now_ns() - a) / 1000);
		a = bench_now_ns();
		if (store_analyst_funnel(s, ab_count_offer, &rows, &e) < 0)
			goto fail;
		tfu[q] = (uint32_t)((bench_now_ns() - a) / 1000);
	}
	qsort(thh, (size_t)queries, 4, bench_cmp_u32);
	qsort(tco, (size_t)queries, 4, bench_cmp_u32);
	qsort(tfu, (size_t)queries, 4, bench_cmp_u32);
	printf("workbench, %ld queries (%ld households, %ld GTINs; %ld cohorts shown):\n", queries,
	       nhh, ngt, shown);
	printf("  household: p50 %u us  p99 %u us\n", bench_quantile(thh, (size_t)queries, 0.5),
	       bench_quantile(thh, (size_t)queries, 0.99));
	printf("  cohort:    p50 %u us  p99 %u us\n", bench_quantile(tco, (size_t)queries, 0.5),
	       bench_quantile(tco, (size_t)queries, 0.99));
	printf("  funnel:    p50 %u us  p99 %u us\n", bench_quantile(tfu, (size_t)queries, 0.5),
	       bench_quantile(tfu, (size_t)queries, 0.99));
	printf("RESULT {\"analyst\":{\"fold_baskets\":%ld,\"fold_s\":%.2f,\"queries\":%ld,"
	       "\"household_p50_us\":%u,\"household_p99_us\":%u,"
	       "\"cohort_p50_us\":%u,\"cohort_p99_us\":%u,\"funnel_p99_us\":%u,\"cohorts_shown\":%ld}}\n",
	       fold_n, fold_s, queries, bench_quantile(thh, (size_t)queries, 0.5),
	       bench_quantile(thh, (size_t)queries, 0.99), bench_quantile(tco, (size_t)queries, 0.5),
	       bench_quantile(tco, (size_t)queries, 0.99), bench_quantile(tfu, (size_t)queries, 0.99),
	       shown);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "anabench: %s\n", e.msg);
out:
	store_close(s);
	free(hh);
	free(gt);
	free(thh);
	free(tco);
	free(tfu);
	return rc;
}
