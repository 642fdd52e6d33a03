/*
 * Customer identifiers to their one normal form (design section 2). Every
 * message here is written without a single digit, so no part of a TID can
 * slip into one; digit copies on the stack are wiped before returning.
 */
#include "tid.h"

#include <string.h>
#include <strings.h>

#include "wipe.h"

#define TID_CARD_MIN 12
#define TID_CARD_MAX 19
#define TID_LOYALTY_MIN 4
#define TID_LOYALTY_MAX 32
#define TID_PHONE_MIN 8
#define TID_PHONE_MAX 15
#define TID_DIGITS_MAX 32 /* the largest of the three maxima */
/* Longest typed input accepted, prefix and separators included. */
#define TID_INPUT_MAX 128

static bool tid_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

bool tid_luhn_valid(const char *digits, size_t n)
{
	unsigned sum = 0;

	if (!digits || n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = digits[n - 1 - i];
		unsigned v;

		if (!tid_is_digit(c))
			return false;
		v = (unsigned)(c - '0');
		if (i % 2 == 1) {
			v *= 2;
			if (v > 9)
				v -= 9;
		}
		sum = (sum + v) % 10;
	}
	return sum == 0;
}

static const char *tid_what(enum tid_kind k)
{
	switch (k) {
	case TID_CARD: return "card number";
	case TID_LOYALTY: return "loyalty number";
	case TID_PHONE: return "phone number";
	default: return "identifier";
	}
}

/* Checks the digit string of kind k and writes "<kind>:<digits>" to out. */
static int tid_build(enum tid_kind k, const char *dig, size_t nd, char out[TID_MAX], pos_err *e)
{
	const char *prefix;
	size_t min, max, plen;

	switch (k) {
	case TID_CARD:
		prefix = "card:";
		min = TID_CARD_MIN;
		max = TID_CARD_MAX;
		break;
	case TID_LOYALTY:
		prefix = "loyalty:";
		min = TID_LOYALTY_MIN;
		max = TID_LOYALTY_MAX;
		break;
	case TID_PHONE:
		prefix = "phone:+";
		min = TID_PHONE_MIN;
		max = TID_PHONE_MAX;
		break;
	default:
		return err_set(e, POS_EINVAL, "unknown identifier kind");
	}
	if (nd < min)
		return err_set(e, POS_EINVAL, "%s is too short", tid_what(k));
	if (nd > max)
		return err_set(e, POS_EINVAL, "%s is too long", tid_what(k));
	if (k == TID_CARD && !tid_luhn_valid(dig, nd))
		return err_set(e, POS_EINVAL, "card number fails the Luhn check");
	if (k == TID_PHONE && dig[0] == '0')
		return err_set(e, POS_EINVAL, "phone number country code cannot start with zero");
	plen = strlen(prefix);
	memcpy(out, prefix, plen);
	memcpy(out + plen, dig, nd);
	out[plen + nd] = '\0';
	return 0;
}

/*
 * Collects the digits of v (n bytes, already trimmed) into dig, dropping
 * spaces, dashes, dots and, for phones, one level of parentheses. The
 * value must start with a digit (or '(' for a phone) and end with a digit,
 * so separators only ever sit between digits.
 */
static int tid_collect(const char *v, size_t n, enum tid_kind k, char dig[TID_DIGITS_MAX + 1],
		       size_t *nd, pos_err *e)
{
	const char *what = tid_what(k);
	bool phone = k == TID_PHONE;
	int depth = 0;
	size_t cnt = 0;

	*nd = 0;
	if (n == 0)
		return err_set(e, POS_EINVAL, "%s is empty", what);
	if (!(tid_is_digit(v[0]) || (phone && v[0] == '(')) || !tid_is_digit(v[n - 1]))
		return err_set(e, POS_EINVAL, "%s must start and end with a digit", what);
	for (size_t i = 0; i < n; i++) {
		char c = v[i];

		if (tid_is_digit(c)) {
			if (cnt == TID_DIGITS_MAX)
				return err_set(e, POS_EINVAL, "%s is too long", what);
			dig[cnt++] = c;
		} else if (c == ' ' || c == '-' || c == '.') {
			continue;
		} else if (phone && c == '(') {
			if (depth++ > 0)
				return err_set(e, POS_EINVAL, "phone number has nested parentheses");
		} else if (phone && c == ')') {
			if (depth-- == 0)
				return err_set(e, POS_EINVAL, "phone number has unbalanced parentheses");
		} else {
			return err_set(e, POS_EINVAL,
				       "%s may only hold digits, spaces, dashes and dots%s", what,
				       phone ? " (and parentheses)" : "");
		}
	}
	if (depth != 0)
		return err_set(e, POS_EINVAL, "phone number has unbalanced parentheses");
	dig[cnt] = '\0';
	*nd = cnt;
	return 0;
}

static bool tid_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static void tid_trim(const char **s, size_t *n)
{
	while (*n && tid_is_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && tid_is_blank((*s)[*n - 1]))
		(*n)--;
}

int tid_normalize(const char *in, char out[TID_MAX], enum tid_kind *kind, pos_err *e)
{
	static const struct {
		const char *prefix;
		enum tid_kind kind;
	} kinds[] = {
		{ "card:", TID_CARD },
		{ "loyalty:", TID_LOYALTY },
		{ "phone:", TID_PHONE },
	};
	char dig[TID_DIGITS_MAX + 1];
	const char *v;
	size_t n, nd = 0;
	enum tid_kind k = 0;
	int rc;

	if (!in || !out)
		return err_set(e, POS_EINVAL, "no identifier given");
	out[0] = '\0';
	n = strnlen(in, TID_INPUT_MAX + 1);
	if (n > TID_INPUT_MAX)
		return err_set(e, POS_ETOOBIG, "identifier input is too long");
	v = in;
	tid_trim(&v, &n);
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		size_t pl = strlen(kinds[i].prefix);

		if (n >= pl && strncasecmp(v, kinds[i].prefix, pl) == 0) {
			k = kinds[i].kind;
			v += pl;
			n -= pl;
			break;
		}
	}
	tid_trim(&v, &n);
	/* A bare "+..." can only be a phone number; bare digits could be a
	 * card or a loyalty number, so those need their prefix. */
	if (!k && n && v[0] == '+')
		k = TID_PHONE;
	if (!k)
		return err_set(e, POS_EINVAL,
			       "identifier must start with card:, loyalty: or phone:");
	if (k == TID_PHONE) {
		if (n == 0 || v[0] != '+')
			return err_set(e, POS_EINVAL,
				       "phone number must start with '+' and the country code");
		v++;
		n--;
	}
	rc = tid_collect(v, n, k, dig, &nd, e);
	if (rc == 0)
		rc = tid_build(k, dig, nd, out, e);
	wipe(dig, sizeof dig);
	if (rc == 0 && kind)
		*kind = k;
	return rc;
}

/* Bare digits only: what a magstripe track or a barcode delivers. */
static int tid_from_bare(enum tid_kind k, const char *s, size_t max, char out[TID_MAX],
			 pos_err *e)
{
	size_t n;

	if (!s || !out)
		return err_set(e, POS_EINVAL, "no %s given", tid_what(k));
	out[0] = '\0';
	n = strnlen(s, max + 1);
	for (size_t i = 0; i < n; i++)
		if (!tid_is_digit(s[i]))
			return err_set(e, POS_EINVAL, "%s may only hold digits", tid_what(k));
	/* n == max + 1 means longer than max: tid_build names it. */
	return tid_build(k, s, n, out, e);
}

int tid_from_pan(const char *pan, char out[TID_MAX], pos_err *e)
{
	return tid_from_bare(TID_CARD, pan, TID_CARD_MAX, out, e);
}

int tid_from_loyalty(const char *digits, char out[TID_MAX], pos_err *e)
{
	return tid_from_bare(TID_LOYALTY, digits, TID_LOYALTY_MAX, out, e);
}
