/*
 * Scanned item codes to GTIN-14. Facts from ../shared/reference/gs1.md and
 * scanners.md. Item codes are not secret, but a mis-routed loyalty card could
 * land here, so messages name the problem and never echo the code.
 */
#include "gtin.h"

#include <string.h>
#include <strings.h>

#define GTIN_GS 0x1d /* FNC1 separator inside a GS1 element string */

static bool gtin_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int gtin_check_digit(const char *digits, size_t n)
{
	unsigned sum = 0;

	if (!digits && n)
		return -1;
	/* Weights start at the right, so left zero padding never changes it. */
	for (size_t i = 0; i < n; i++) {
		char c = digits[n - 1 - i];

		if (!gtin_is_digit(c))
			return -1;
		sum = (sum + (unsigned)(c - '0') * (i % 2 == 0 ? 3u : 1u)) % 10;
	}
	return (int)((10 - sum) % 10);
}

bool gtin14_valid(const char *s)
{
	int c;

	if (!s || strnlen(s, GTIN_LEN + 1) != GTIN_LEN)
		return false;
	c = gtin_check_digit(s, GTIN_LEN - 1);
	return c >= 0 && s[GTIN_LEN - 1] == '0' + c;
}

/* Pattern letters: 'S' number system, '1'..'6' the UPC-E digits d1..d6,
 * 'z' a literal zero. One row per case of the reference's table. */
static void gtin_upce_fill(char *a, const char *pattern, const char upce[8])
{
	for (size_t i = 0; i < 11; i++) {
		char p = pattern[i];

		if (p == 'S')
			a[i] = upce[0];
		else if (p == 'z')
			a[i] = '0';
		else
			a[i] = upce[p - '0'];
	}
}

int gtin_upce_to_upca(const char upce[8], char upca[13], pos_err *e)
{
	int c;

	if (!upce || !upca)
		return err_set(e, POS_EINVAL, "UPC-E conversion: no buffer given");
	upca[0] = '\0';
	for (size_t i = 0; i < 8; i++)
		if (!gtin_is_digit(upce[i]))
			return err_set(e, POS_EINVAL, "UPC-E code contains a non-digit character");
	if (upce[0] != '0' && upce[0] != '1')
		return err_set(e, POS_EINVAL, "UPC-E number system must be 0 or 1");
	switch (upce[6]) {
	case '0':
	case '1':
	case '2':
		gtin_upce_fill(upca, "S126zzzz345", upce);
		break;
	case '3':
		gtin_upce_fill(upca, "S123zzzzz45", upce);
		break;
	case '4':
		gtin_upce_fill(upca, "S1234zzzzz5", upce);
		break;
	default:
		gtin_upce_fill(upca, "S12345zzzz6", upce);
		break;
	}
	c = gtin_check_digit(upca, 11);
	if (upce[7] != '0' + c) {
		upca[0] = '\0';
		return err_set(e, POS_EINVAL, "UPC-E check digit does not match");
	}
	upca[11] = upce[7];
	upca[12] = '\0';
	return 0;
}

void gtin_aim_split(const char *code, size_t len, char aim[4], const char **data,
		    size_t *data_len)
{
	const char *d = code;
	size_t n = len;

	if (code && len >= 3 && code[0] == ']') {
		memcpy(aim, code, 3);
		aim[3] = '\0';
		d = code + 3;
		n = len - 3;
	} else {
		aim[0] = '\0';
	}
	if (data)
		*data = d;
	if (data_len)
		*data_len = n;
}

int gtin_vm_layout_parse(const char *s, enum gtin_vm_layout *out)
{
	static const struct {
		const char *name;
		enum gtin_vm_layout vm;
	} names[] = {
		{ "none", GTIN_VM_NONE },
		{ "us", GTIN_VM_US },
		{ "uk", GTIN_VM_UK },
		{ "se", GTIN_VM_SE },
	};

	if (!s || !out)
		return POS_EINVAL;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*out = names[i].vm;
			return 0;
		}
	}
	return POS_EINVAL;
}

/* Per-digit weightings of GenSpecs 7.9.3, indexed by the digit. */
static const unsigned char gtin_w2m[10] = { 0, 2, 4, 6, 8, 9, 1, 3, 5, 7 };
static const unsigned char gtin_w3[10] = { 0, 3, 6, 9, 2, 5, 8, 1, 4, 7 };
static const unsigned char gtin_w5p[10] = { 0, 5, 1, 6, 2, 7, 3, 8, 4, 9 };
static const unsigned char gtin_w5m[10] = { 0, 5, 9, 4, 8, 3, 7, 2, 6, 1 };

int gtin_price_verifier(const char *digits, size_t n)
{
	unsigned d[5], sum;

	if (!digits || (n != 4 && n != 5))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!gtin_is_digit(digits[i]))
			return -1;
		d[i] = (unsigned)(digits[i] - '0');
	}
	if (n == 4) {
		sum = gtin_w2m[d[0]] + gtin_w2m[d[1]] + gtin_w3[d[2]] + gtin_w5m[d[3]];
		return (int)((3 * sum) % 10);
	}
	sum = gtin_w5p[d[0]] + gtin_w2m[d[1]] + gtin_w5m[d[2]] + gtin_w5p[d[3]] + gtin_w2m[d[4]];
	unsigned r = (10 - sum % 10) % 10;
	/* The verifier is the digit whose "5-" image is r. */
	for (int v = 0; v < 10; v++)
		if (gtin_w5m[v] == r)
			return v;
	return -1;
}

/* Rejects anything but digits, naming a stray line terminator on its own:
 * the caller was supposed to strip it, and saying so saves a debugging session. */
static int gtin_require_digits(const char *d, size_t n, pos_err *e)
{
	for (size_t i = 0; i < n; i++) {
		if (d[i] == '\r' || d[i] == '\n')
			return err_set(e, POS_EINVAL,
				       "item code contains a CR or LF; the line terminator must be "
				       "stripped before parsing");
		if (!gtin_is_digit(d[i]))
			return err_set(e, POS_EINVAL,
				       "item code contains a non-digit character at position %zu",
				       i + 1);
	}
	return 0;
}

/* Left-pads n digits to 14 and verifies the check digit. */
static int gtin_pad14(const char *d, size_t n, char g[GTIN_LEN + 1], const char *what,
		      pos_err *e)
{
	size_t pad = GTIN_LEN - n;

	memset(g, '0', pad);
	memcpy(g + pad, d, n);
	g[GTIN_LEN] = '\0';
	if (!gtin14_valid(g)) {
		g[0] = '\0';
		return err_set(e, POS_EINVAL, "%s check digit does not match", what);
	}
	return 0;
}

static bool gtin_upce_check_ok(const char *d)
{
	char a[13];

	return gtin_upce_to_upca(d, a, NULL) == 0;
}

/*
 * Eight digits without a symbology identifier are either UPC-E (number
 * system 0 or 1) or EAN-8, and some codes satisfy both check digits
 * (01234565). UPC-E wins then: it is the common short code in a grocery
 * lane, while EAN-8 codes starting 0 are in-company numbers. Scanners that
 * send AIM ids (]E4 for EAN-8) remove the doubt.
 */
static int gtin_from_eight(const char *d, bool upce_allowed, char g[GTIN_LEN + 1],
			   enum gtin_source *src, pos_err *e)
{
	char upca[13];

	if (upce_allowed && (d[0] == '0' || d[0] == '1') && gtin_upce_check_ok(d)) {
		gtin_upce_to_upca(d, upca, NULL);
		*src = GTIN_SRC_UPCE;
		return gtin_pad14(upca, 12, g, "UPC-E", e);
	}
	*src = GTIN_SRC_EAN8;
	if (gtin_pad14(d, 8, g, "EAN-8", NULL) == 0)
		return 0;
	if (upce_allowed && (d[0] == '0' || d[0] == '1'))
		return err_set(e, POS_EINVAL,
			       "8-digit item code fails both the UPC-E and the EAN-8 check digit");
	return err_set(e, POS_EINVAL, "EAN-8 check digit does not match");
}

/* Bare digits, in the shapes scanners send without AIM ids (scanners.md §3). */
static int gtin_from_digits(const char *d, size_t n, char g[GTIN_LEN + 1],
			    enum gtin_source *src, pos_err *e)
{
	int rc = gtin_require_digits(d, n, e);

	if (rc < 0)
		return rc;
	switch (n) {
	case 6:
	case 7:
		return err_set(e, POS_EINVAL,
			       "UPC-E without number system/check digit; configure the scanner "
			       "to transmit them");
	case 8:
		return gtin_from_eight(d, true, g, src, e);
	case 11:
		return err_set(e, POS_EINVAL,
			       "UPC-A without number system or check digit; configure the "
			       "scanner to transmit them");
	case 12:
		*src = GTIN_SRC_UPCA;
		return gtin_pad14(d, 12, g, "UPC-A", e);
	case 13:
		/* An EAN-13 starting 0 is a UPC-A: the bars are the same. */
		*src = d[0] == '0' ? GTIN_SRC_UPCA : GTIN_SRC_EAN13;
		return gtin_pad14(d, 13, g, d[0] == '0' ? "UPC-A" : "EAN-13", e);
	case 14:
		*src = GTIN_SRC_GTIN14;
		return gtin_pad14(d, 14, g, "GTIN-14", e);
	default:
		return err_set(e, POS_EINVAL, "item code has %zu digits; expected 8, 12, 13 or 14",
			       n);
	}
}

/* Total length (AI included) of the element strings whose length GS1
 * predefines by their first two digits (GenSpecs figure 7.8.5-2); 0 for
 * the rest, which end at a GS or at the end of the data. */
static size_t gtin_ai_fixed_len(char a, char b)
{
	int ai = (a - '0') * 10 + (b - '0');

	switch (ai) {
	case 0: return 20;
	case 1: case 2: case 3: return 16;
	case 4: return 18;
	case 11: case 12: case 13: case 14: case 15: case 16: case 17: case 18: case 19: return 8;
	case 20: return 4;
	case 31: case 32: case 33: case 34: case 35: case 36: return 10;
	case 41: return 16;
	default: return 0;
	}
}

/* Finds AI (01) in a GS1 element string (]C1, ]e0, ]d2, ]Q3, ...). */
static int gtin_from_element_string(const char *d, size_t n, char g[GTIN_LEN + 1],
				    enum gtin_source *src, pos_err *e)
{
	size_t i = 0;

	while (i < n) {
		size_t fixed;

		if (d[i] == GTIN_GS) {
			i++;
			continue;
		}
		if (n - i < 2 || !gtin_is_digit(d[i]) || !gtin_is_digit(d[i + 1]))
			return err_set(e, POS_EINVAL,
				       "GS1 element string has a malformed application identifier");
		if (d[i] == '0' && d[i + 1] == '1') {
			if (n - i < 16)
				return err_set(e, POS_EINVAL,
					       "GS1 element string: AI (01) needs 14 digits");
			for (size_t k = i + 2; k < i + 16; k++)
				if (!gtin_is_digit(d[k]))
					return err_set(e, POS_EINVAL,
						       "GS1 element string: AI (01) has a non-digit");
			*src = GTIN_SRC_GTIN14;
			return gtin_pad14(d + i + 2, 14, g, "GTIN-14 (AI 01)", e);
		}
		fixed = gtin_ai_fixed_len(d[i], d[i + 1]);
		if (fixed) {
			if (n - i < fixed)
				break;
			i += fixed;
		} else {
			const char *gs = memchr(d + i, GTIN_GS, n - i);

			if (!gs)
				break;
			i = (size_t)(gs - d);
		}
	}
	return err_set(e, POS_EINVAL, "GS1 element string carries no GTIN (AI 01)");
}

static bool gtin_aim_valid(const char aim[4])
{
	char c = aim[1], m = aim[2];
	bool c_ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
	bool m_ok = gtin_is_digit(m) || (m >= 'A' && m <= 'Z') || (m >= 'a' && m <= 'z');

	return c_ok && m_ok;
}

static int gtin_from_aim(const char aim[4], const char *d, size_t n, char g[GTIN_LEN + 1],
			 enum gtin_source *src, pos_err *e)
{
	static const char *const gs1_strings[] = { "]C1", "]e0", "]e1", "]e2", "]d2", "]Q3", "]J1" };
	int rc;

	if (!aim[0])
		return gtin_from_digits(d, n, g, src, e);
	if (!gtin_aim_valid(aim))
		return err_set(e, POS_EINVAL,
			       "item code starts with ']' but has no valid symbology identifier");
	for (size_t i = 0; i < sizeof gs1_strings / sizeof gs1_strings[0]; i++)
		if (strcmp(aim, gs1_strings[i]) == 0)
			return gtin_from_element_string(d, n, g, src, e);
	if (aim[1] == 'E') {
		switch (aim[2]) {
		case '0':
			/* Always 13 digits by the standard; some scanners keep 12 for
			 * UPC-A (scanners.md §2), so take both. */
			if (n != 12 && n != 13)
				return err_set(e, POS_EINVAL,
					       "]E0 item code must have 13 digits (or 12 for UPC-A)");
			return gtin_from_digits(d, n, g, src, e);
		case '4':
			if (n != 8)
				return err_set(e, POS_EINVAL, "]E4 item code must have 8 digits");
			if ((rc = gtin_require_digits(d, n, e)) < 0)
				return rc;
			return gtin_from_eight(d, false, g, src, e);
		case '1':
		case '2':
			return err_set(e, POS_EINVAL, "add-on code without its main code");
		case '3':
			/* EAN-13/UPC + a 2- or 5-digit add-on: the item is the first 13. */
			if (n != 15 && n != 18)
				return err_set(e, POS_EINVAL,
					       "]E3 item code must have 13 digits plus a 2- or "
					       "5-digit add-on");
			if ((rc = gtin_require_digits(d, n, e)) < 0)
				return rc;
			return gtin_from_digits(d, 13, g, src, e);
		default:
			/* Unknown EAN-family modifiers (]E5/]E6 on some models): take
			 * the digits by shape. */
			return gtin_from_digits(d, n, g, src, e);
		}
	}
	if (aim[1] == 'I' && (aim[2] == '0' || aim[2] == '1')) {
		if (n != 14)
			return err_set(e, POS_EINVAL, "ITF item code must have 14 digits");
		return gtin_from_digits(d, n, g, src, e);
	}
	return err_set(e, POS_EINVAL, "symbology %s does not carry an item GTIN", aim);
}

static long gtin_value4(const char *d)
{
	long v = 0;

	for (int i = 0; i < 4; i++)
		v = v * 10 + (d[i] - '0');
	return v;
}

/*
 * Separates item and value of a restricted-circulation code. Works on the
 * 13-digit form t = gtin + 1 (only GTIN-14s with indicator 0 qualify). In
 * the US and UK layouts the verifier sits at t[7] and the 4-digit value at
 * t[8..11]; the Swedish layout has no verifier.
 */
static int gtin_vm_apply(enum gtin_vm_layout vm, struct gtin_scan *s, pos_err *e)
{
	const char *t = s->gtin + 1;
	char *it = s->item_gtin + 1;
	size_t zero_from;
	long price = -1;

	if (s->gtin[0] != '0')
		return 0;
	switch (vm) {
	case GTIN_VM_US:
		if (t[0] != '0' || t[1] != '2')
			return 0;
		zero_from = 7;
		break;
	case GTIN_VM_UK:
		if (t[0] != '2' || (t[1] != '0' && t[1] != '8'))
			return 0;
		zero_from = 7;
		break;
	case GTIN_VM_SE:
		if (t[0] != '2' || t[1] < '0' || t[1] > '5')
			return 0;
		zero_from = 8;
		break;
	case GTIN_VM_NONE:
	default:
		return 0;
	}
	if (zero_from == 7 && gtin_price_verifier(t + 8, 4) != t[7] - '0')
		return err_set(e, POS_EINVAL,
			       "variable-measure price verifier digit does not match the embedded "
			       "price (check the store's variable-measure layout)");
	price = gtin_value4(t + 8);
	if (vm == GTIN_VM_SE) {
		/* 20/21/22: price with 2/1/0 decimals; 23/24/25: a weight, no price. */
		if (t[1] == '1')
			price *= 10;
		else if (t[1] == '2')
			price *= 100;
		else if (t[1] >= '3')
			price = -1;
	}
	memset(it + zero_from, '0', 12 - zero_from);
	it[12] = (char)('0' + gtin_check_digit(s->item_gtin, GTIN_LEN - 1));
	s->variable_measure = true;
	s->price_cents = price;
	return 0;
}

int gtin_parse(const char *code, size_t len, enum gtin_vm_layout vm, struct gtin_scan *out,
	       pos_err *e)
{
	char aim[4], g[GTIN_LEN + 1];
	const char *d;
	size_t n;
	enum gtin_source src = GTIN_SRC_GTIN14;
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "item code: no result buffer");
	memset(out, 0, sizeof *out);
	out->price_cents = -1;
	if (!code || len == 0)
		return err_set(e, POS_EINVAL, "empty item code");
	if (len > GTIN_MAX_INPUT)
		return err_set(e, POS_ETOOBIG, "item code longer than %d bytes", GTIN_MAX_INPUT);
	gtin_aim_split(code, len, aim, &d, &n);
	rc = gtin_from_aim(aim, d, n, g, &src, e);
	if (rc < 0)
		return rc;
	memcpy(out->gtin, g, sizeof out->gtin);
	memcpy(out->item_gtin, g, sizeof out->item_gtin);
	memcpy(out->aim, aim, sizeof out->aim);
	out->source = src;
	rc = gtin_vm_apply(vm, out, e);
	if (rc < 0) {
		memset(out, 0, sizeof *out);
		out->price_cents = -1;
	}
	return rc;
}
