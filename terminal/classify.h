#ifndef POS_CLASSIFY_H
#define POS_CLASSIFY_H
/*
 * What a scanned code is, by the [codes] rules of terminal.conf (design
 * section 5): the rules are POSIX extended regexes matched against the code
 * after its AIM symbology id. Lane commands (total, void, cancel) are tried
 * first, then loyalty, then offer; anything else must be an item GTIN
 * (common/gtin.h, with the store's variable-measure layout). Pure: no I/O,
 * no state besides the compiled rules.
 */
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include "err.h"
#include "gtin.h"

/* Longest code accepted from a scanner or the control socket. */
#define CLASSIFY_MAX_CODE 128

enum classify_rule {
	CLASSIFY_RULE_TOTAL = 0,
	CLASSIFY_RULE_VOID,
	CLASSIFY_RULE_CANCEL,
	CLASSIFY_RULE_LOYALTY,
	CLASSIFY_RULE_OFFER,
	CLASSIFY_RULE_N
};

enum classify_kind {
	CLASSIFY_ITEM = 1,
	CLASSIFY_LOYALTY,
	CLASSIFY_OFFER,
	CLASSIFY_TOTAL,
	CLASSIFY_VOID,
	CLASSIFY_CANCEL,
};

/* Compiled rules; a rule not set never matches. Release with
 * classify_rules_free (the struct itself is the caller's). */
struct classify_rules {
	regex_t re[CLASSIFY_RULE_N];
	bool set[CLASSIFY_RULE_N];
	enum gtin_vm_layout vm;
};

struct classify_result {
	enum classify_kind kind;
	/* ITEM: the parsed code (item_gtin and price_cents are what the lane
	 * keeps). */
	struct gtin_scan item;
	/* LOYALTY: the digits (a TID: wipe with classify_result_wipe once
	 * sealed); OFFER: the offer code. "" otherwise. */
	char code[CLASSIFY_MAX_CODE + 1];
};

/* Starts with no rule set and vm = GTIN_VM_NONE. */
void classify_rules_init(struct classify_rules *r);
/* Compiles pattern (REG_EXTENDED | REG_NOSUB) as one rule, replacing any
 * earlier one; an empty pattern clears the rule. The message says what
 * regcomp objected to, never more. */
int classify_rules_set(struct classify_rules *r, enum classify_rule which, const char *pattern,
		       pos_err *e);
void classify_rules_free(struct classify_rules *r);
/* "total", "void", ... : the [codes] key of a rule. */
const char *classify_rule_name(enum classify_rule which);
const char *classify_kind_name(enum classify_kind k);

/* Classifies one code (len bytes, not necessarily NUL-terminated, AIM id
 * optional). Fails (POS_EINVAL) on an empty, over-long or non-printable code
 * and on an item code that is not a valid GTIN; the message never repeats
 * the code. */
int classify_code(const struct classify_rules *r, const char *code, size_t len,
		  struct classify_result *out, pos_err *e);
void classify_result_wipe(struct classify_result *res);
/* An offer code is printed as an EAN-13: all digits, its last the GS1
 * check digit of the others. POS_EINVAL (the message never repeats the
 * code) when not, so a misread never reaches central. */
int classify_offer_check(const char *code, pos_err *e);

#endif
