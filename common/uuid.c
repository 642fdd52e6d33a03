#include "uuid.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

/*
 * Layout (RFC 9562 5.7): unix_ts_ms (48) | ver 7 (4) | rand_a (12) |
 * var 0b10 (2) | rand_b (62). rand_a||rand_b is treated as one 74-bit
 * counter (method 2 of RFC 9562 6.2): a new random value each new
 * millisecond, plus one within the same millisecond (or when the clock went
 * back), so ids made by one process sort strictly in creation order.
 *
 * This is the one piece of process-wide mutable state in the module, and it
 * is guarded by a mutex so every thread of a daemon draws from one sequence.
 */
static pthread_mutex_t uuid_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t uuid_last_ms;
static uint16_t uuid_last_a; /* 12 bits */
static uint64_t uuid_last_b; /* 62 bits */
static int uuid_have_last;

#define UUID_B_MASK ((UINT64_C(1) << 62) - 1)
#define UUID_MS_MASK ((UINT64_C(1) << 48) - 1)

static uint64_t uuid_now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return 0;
	return ((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u) & UUID_MS_MASK;
}

int uuid_v7(char out[UUID_STR_LEN + 1], pos_err *e)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char rnd[10], b[16];
	uint64_t ms, ra, rb;
	char *o = out;
	int i;

	if (!out)
		return err_set(e, POS_EINVAL, "uuid: missing output buffer");
	/* Drawn outside the lock: RAND_bytes may block briefly on first use. */
	if (RAND_bytes(rnd, sizeof rnd) != 1)
		return err_set(e, POS_ECRYPTO, "uuid: random generator failed");
	ms = uuid_now_ms();

	pthread_mutex_lock(&uuid_lock);
	if (uuid_have_last && ms <= uuid_last_ms) {
		ms = uuid_last_ms;
		ra = uuid_last_a;
		rb = (uuid_last_b + 1) & UUID_B_MASK;
		if (rb == 0) {
			ra = (ra + 1) & 0xfff;
			if (ra == 0)
				ms = (ms + 1) & UUID_MS_MASK; /* counter exhausted: borrow the next ms */
		}
	} else {
		ra = ((uint64_t)(rnd[0] & 0x0f) << 8) | rnd[1];
		rb = 0;
		for (i = 2; i < 10; i++)
			rb = (rb << 8) | rnd[i];
		/* Top bit clear leaves headroom so the in-millisecond counter
		 * rarely has to carry into rand_a. */
		rb &= UUID_B_MASK >> 1;
	}
	uuid_last_ms = ms;
	uuid_last_a = (uint16_t)ra;
	uuid_last_b = rb;
	uuid_have_last = 1;
	pthread_mutex_unlock(&uuid_lock);

	for (i = 0; i < 6; i++)
		b[i] = (unsigned char)(ms >> (40 - 8 * i));
	b[6] = (unsigned char)(0x70 | ((ra >> 8) & 0x0f));
	b[7] = (unsigned char)ra;
	b[8] = (unsigned char)(0x80 | ((rb >> 56) & 0x3f));
	for (i = 9; i < 16; i++)
		b[i] = (unsigned char)(rb >> (8 * (15 - i)));

	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = digits[b[i] >> 4];
		*o++ = digits[b[i] & 15];
	}
	*o = '\0';
	return 0;
}

bool uuid_valid(const char *s)
{
	size_t i;

	if (!s || strnlen(s, UUID_STR_LEN + 1) != UUID_STR_LEN)
		return false;
	for (i = 0; i < UUID_STR_LEN; i++) {
		unsigned char c = (unsigned char)s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return true;
}

bool uuid_v7_valid(const char *s)
{
	return uuid_valid(s) && s[14] == '7' && strchr("89abAB", s[19]) != NULL;
}

int uuid_v7_check(const char *s, const char *field, pos_err *e)
{
	if (!uuid_valid(s))
		return err_set(e, POS_EINVAL, "%s must be a UUID", field);
	if (strspn(s, "0-") == UUID_STR_LEN)
		return err_set(e, POS_EINVAL, "%s must not be the nil UUID", field);
	if (!uuid_v7_valid(s))
		return err_set(e, POS_EINVAL, "%s must be a UUIDv7 (RFC 9562 version 7)", field);
	return 0;
}
