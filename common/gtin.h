#ifndef POS_GTIN_H
#define POS_GTIN_H
/*
 * Scanned item codes to GTIN-14 (../shared/reference/gs1.md, scanners.md).
 * Accepts, after an optional AIM symbology identifier ("]E0", "]E4", "]e0"
 * with AI 01, "]C1" with AI 01, ...): UPC-A (12), UPC-E (8 digits with
 * number system and check; 6 and 7 digits are refused as ambiguous), EAN-8,
 * EAN-13 and GTIN-14. Verifies the check digit after normalising.
 * Variable-measure codes (restricted circulation, price embedded) are
 * recognised by a layout chosen per store; the item number (value and
 * verifier zeroed, check digit recomputed) and the price are separated.
 */
#include <stdbool.h>
#include <stddef.h>
#include "err.h"

#define GTIN_LEN 14
#define GTIN_MAX_INPUT 64

enum gtin_source { GTIN_SRC_UPCA = 1, GTIN_SRC_UPCE, GTIN_SRC_EAN8, GTIN_SRC_EAN13, GTIN_SRC_GTIN14 };

enum gtin_vm_layout {
	GTIN_VM_NONE = 0,
	GTIN_VM_US,  /* UPC-A number system 2: 2 IIIII V PPPP C (price verifier, cents) */
	GTIN_VM_UK,  /* EAN-13 20/28: 20XXX RR V PPPP C (pence, 4-digit verifier) */
	GTIN_VM_SE,  /* EAN-13 20/21/22: PPPPPPPP VVVV C (price, 2/1/0 decimals) */
};

struct gtin_scan {
	char gtin[GTIN_LEN + 1];      /* normalised GTIN-14 of the code as scanned */
	char aim[4];                  /* "]E0" etc., "" when none */
	enum gtin_source source;
	bool variable_measure;
	char item_gtin[GTIN_LEN + 1]; /* variable measure: value zeroed; else = gtin */
	long price_cents;             /* variable measure price; -1 when none */
};

/* Parses one scanned code (len bytes, not necessarily NUL-terminated). */
int gtin_parse(const char *code, size_t len, enum gtin_vm_layout vm, struct gtin_scan *out,
	       pos_err *e);
/* Splits a leading AIM id ("]" + 2 chars) off; aim gets "" when absent. */
void gtin_aim_split(const char *code, size_t len, char aim[4], const char **data,
		    size_t *data_len);
/* GS1 mod-10 check digit of the n digits given (the check digit excluded);
 * -1 on a non-digit. */
int gtin_check_digit(const char *digits, size_t n);
/* 14 digits with a correct check digit. */
bool gtin14_valid(const char *s);
/* UPC-E (8 digits) to UPC-A (12 digits); fails on a bad check digit. */
int gtin_upce_to_upca(const char upce[8], char upca[13], pos_err *e);
/* "none", "us", "uk", "se" */
int gtin_vm_layout_parse(const char *s, enum gtin_vm_layout *out);
/* GS1 price verifier digit (GenSpecs 7.9.2-7.9.4) of a 4- or 5-digit price;
 * -1 on another length or a non-digit. */
int gtin_price_verifier(const char *digits, size_t n);

#endif
