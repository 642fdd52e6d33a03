#ifndef POS_BENCHUTIL_H
#define POS_BENCHUTIL_H
/*
 * Small helpers shared by the benchmark programs (each tests/bench/X.c is its
 * own executable, so these are static inline). Every program prints what it
 * measured for people, then one line "RESULT {json}" that tests/bench/run.sh
 * collects into build/bench/results.json.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of this thread, so a loop's cost excludes other threads. */
static inline uint64_t bench_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* utime + stime of a process from /proc/PID/stat, in seconds; -1 when it
 * cannot be read (the process is gone). */
static inline double bench_proc_cpu_s(long pid)
{
	char path[64], buf[2048];
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;
	char *p;

	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces: fields count from the last ')'. */
	if (!(p = strrchr(buf, ')')))
		return -1;
	/* After ')': state(3) ... utime is field 14, stime 15. */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds of every live thread of a process, summed from
 * /proc/PID/task/TID/schedstat (nanoseconds; /proc/PID/stat counts in
 * 10 ms ticks, too coarse for a thousand handshakes). Falls back to stat. */
static inline double bench_proc_cpu_precise_s(long pid)
{
	char path[96];
	struct dirent *d;
	unsigned long long ns, sum = 0;
	int found = 0;
	DIR *dir;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%ld/task", pid);
	if (!(dir = opendir(path)))
		return -1;
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%ld/task/%.20s/schedstat", pid, d->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (fscanf(f, "%llu", &ns) == 1) {
			sum += ns;
			found = 1;
		}
		fclose(f);
	}
	closedir(dir);
	return found ? (double)sum / 1e9 : bench_proc_cpu_s(pid);
}

/* CPU seconds of pid's child processes (pos-central serve's keys process),
 * summed like bench_proc_cpu_precise_s; 0 when it has none. */
static inline double bench_children_cpu_s(long pid)
{
	char path[64], buf[512];
	struct dirent *d;
	double sum = 0, c;
	DIR *dir;
	FILE *f;
	size_t n;
	char *p;
	long ppid;

	if (!(dir = opendir("/proc")))
		return 0;
	while ((d = readdir(dir))) {
		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%.20s/stat", d->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = '\0';
		if (!(p = strrchr(buf, ')')) || sscanf(p + 2, "%*c %ld", &ppid) != 1 || ppid != pid)
			continue;
		if ((c = bench_proc_cpu_precise_s(strtol(d->d_name, NULL, 10))) > 0)
			sum += c;
	}
	closedir(dir);
	return sum;
}

/* CPU seconds every process on the machine spent (from the first line of
 * /proc/stat: everything but idle and iowait). Minus what the measured
 * processes used, it shows how much other work shared the machine. */
static inline double bench_system_busy_s(void)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (!f)
		return -1;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return -1;
	/* user nice system idle iowait irq softirq steal */
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

static inline int bench_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of n sorted values; 0 when n is 0. */
static inline uint32_t bench_quantile(const uint32_t *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

/* A positive number from the environment, or def. */
static inline double bench_env_num(const char *name, double def)
{
	const char *s = getenv(name);
	char *end;
	double v;

	if (!s || !*s)
		return def;
	v = strtod(s, &end);
	return (*end == '\0' && v > 0) ? v : def;
}

#endif
