#include "classify.h"

#include <string.h>

#include "wipe.h"

static const char *const classify_rule_names[CLASSIFY_RULE_N] = {
	[CLASSIFY_RULE_TOTAL] = "total",     [CLASSIFY_RULE_VOID] = "void",
	[CLASSIFY_RULE_CANCEL] = "cancel",   [CLASSIFY_RULE_LOYALTY] = "loyalty",
	[CLASSIFY_RULE_OFFER] = "offer",
};

void classify_rules_init(struct classify_rules *r)
{
	if (!r)
		return;
	memset(r, 0, sizeof *r);
	r->vm = GTIN_VM_NONE;
}

int classify_rules_set(struct classify_rules *r, enum classify_rule which, const char *pattern,
		       pos_err *e)
{
	regex_t re;
	int rc;

	if (!r || (int)which < 0 || which >= CLASSIFY_RULE_N || !pattern)
		return err_set(e, POS_EINVAL, "classify: bad rule arguments");
	if (r->set[which]) {
		regfree(&r->re[which]);
		r->set[which] = false;
	}
	if (!*pattern)
		return 0;
	rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		char why[128];

		regerror(rc, &re, why, sizeof why);
		return err_set(e, POS_EINVAL, "bad regular expression for '%s': %s",
			       classify_rule_names[which], why);
	}
	r->re[which] = re;
	r->set[which] = true;
	return 0;
}

void classify_rules_free(struct classify_rules *r)
{
	if (!r)
		return;
	for (int i = 0; i < CLASSIFY_RULE_N; i++) {
		if (r->set[i])
			regfree(&r->re[i]);
		r->set[i] = false;
	}
}

const char *classify_rule_name(enum classify_rule which)
{
	return (int)which >= 0 && which < CLASSIFY_RULE_N ? classify_rule_names[which] : "?";
}

const char *classify_kind_name(enum classify_kind k)
{
	switch (k) {
	case CLASSIFY_ITEM: return "item";
	case CLASSIFY_LOYALTY: return "loyalty";
	case CLASSIFY_OFFER: return "offer";
	case CLASSIFY_TOTAL: return "total";
	case CLASSIFY_VOID: return "void";
	case CLASSIFY_CANCEL: return "cancel";
	}
	return "?";
}

static bool classify_match(const struct classify_rules *r, enum classify_rule which,
			   const char *s)
{
	return r->set[which] && regexec(&r->re[which], s, 0, NULL, 0) == 0;
}

int classify_code(const struct classify_rules *r, const char *code, size_t len,
		  struct classify_result *out, pos_err *e)
{
	/* Rules are tried in this order: a command barcode must never be
	 * mistaken for anything else, and a loyalty number never for an offer. */
	static const struct {
		enum classify_rule rule;
		enum classify_kind kind;
	} order[] = {
		{ CLASSIFY_RULE_TOTAL, CLASSIFY_TOTAL },
		{ CLASSIFY_RULE_VOID, CLASSIFY_VOID },
		{ CLASSIFY_RULE_CANCEL, CLASSIFY_CANCEL },
		{ CLASSIFY_RULE_LOYALTY, CLASSIFY_LOYALTY },
		{ CLASSIFY_RULE_OFFER, CLASSIFY_OFFER },
	};
	char aim[4];
	const char *data;
	size_t dlen;
	char buf[CLASSIFY_MAX_CODE + 1];
	pos_err ge;
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "classify: no output");
	memset(out, 0, sizeof *out);
	if (!r || !code)
		return err_set(e, POS_EINVAL, "classify: no rules or no code");
	if (len == 0)
		return err_set(e, POS_EINVAL, "empty code");
	if (len > CLASSIFY_MAX_CODE)
		return err_set(e, POS_EINVAL, "code longer than %d characters", CLASSIFY_MAX_CODE);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)code[i];
		/* GS1-128 carries FNC1 as GS (0x1d) between fields. */
		if ((ch < 0x20 && ch != 0x1d) || ch >= 0x7f)
			return err_set(e, POS_EINVAL, "code holds a non-printable byte");
	}
	gtin_aim_split(code, len, aim, &data, &dlen);
	if (dlen == 0)
		return err_set(e, POS_EINVAL, "code is only a symbology identifier");
	memcpy(buf, data, dlen);
	buf[dlen] = '\0';

	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
		if (!classify_match(r, order[i].rule, buf))
			continue;
		out->kind = order[i].kind;
		if (out->kind == CLASSIFY_LOYALTY || out->kind == CLASSIFY_OFFER)
			memcpy(out->code, buf, dlen + 1);
		rc = 0;
		goto out;
	}
	rc = gtin_parse(code, len, r->vm, &out->item, &ge);
	if (rc < 0) {
		/* gtin's message may quote the code; this one never does. */
		rc = err_set(e, POS_EINVAL, "not an item, loyalty, offer or command code (%zu characters)",
			     dlen);
		memset(out, 0, sizeof *out);
		goto out;
	}
	out->kind = CLASSIFY_ITEM;
out:
	wipe(buf, sizeof buf);
	wipe(&ge, sizeof ge);
	return rc;
}

void classify_result_wipe(struct classify_result *res)
{
	if (res)
		wipe(res, sizeof *res);
}

int classify_offer_check(const char *code, pos_err *e)
{
	size_t n;
	int cd;

	if (!code)
		return err_set(e, POS_EINVAL, "no offer code");
	n = strnlen(code, CLASSIFY_MAX_CODE + 1);
	if (n < 2 || n > CLASSIFY_MAX_CODE || strspn(code, "0123456789") != n)
		return err_set(e, POS_EINVAL, "offer code must be digits with a GS1 check digit");
	cd = gtin_check_digit(code, n - 1);
	if (cd < 0 || code[n - 1] != (char)('0' + cd))
		return err_set(e, POS_EINVAL, "offer code with a wrong check digit");
	return 0;
}
