#ifndef POS_VISITOR_H
#define POS_VISITOR_H
/*
 * Visitor links and inbound SMS (design section 13): the rules without
 * the network or the database, so they can be tested alone.
 *
 * A visitor is a user-level identifier "vi_" + 26 base32 characters: 10
 * random bytes and the first 6 bytes of HMAC-SHA256(visitor key,
 * "pos-visitor-uid/1|" + random), so a uid typed into a text message can
 * be checked without a lookup and a made-up one is refused. Its sig is
 * base64url(HMAC-SHA256(visitor key, "pos-visitor/1|" + uid)), carried in
 * the chat link so a page cannot open another visitor's conversation.
 *
 * The visitor key (visitor.key in central's home, 0600) may live in the
 * network-facing workers: it links nothing to a customer. Knowing it
 * forges uids and chat links, never a TID, tid index or household.
 *
 * Inbound SMS signature: base64 HMAC-SHA256([sms] secret, the full URL
 * followed by each parameter's name and value, sorted by name): the
 * gateway's scheme with SHA-256.
 */
#include <stdbool.h>
#include <stddef.h>

#include "envelope.h"
#include "err.h"
#include "keys.h"

#define VISITOR_UID_LEN 29 /* "vi_" + 26 */
#define VISITOR_SIG_LEN 43 /* base64url of 32 bytes, no padding */
#define SMS_SIG_LEN 44     /* base64 of 32 bytes, padded */
#define SMS_PARAMS_MAX 64  /* form fields in one inbound message */
#define SMS_SID_MAX 64     /* characters of a MessageSid */

/* Loads the visitor key at path; when create and there is no file yet,
 * makes one first (0600). */
int visitor_key_load(const char *path, bool create, unsigned char key[KEYS_HMAC_LEN],
		     pos_err *e);
/* A new uid and its sig. */
int visitor_new(const unsigned char key[KEYS_HMAC_LEN], char uid[VISITOR_UID_LEN + 1],
		char sig[VISITOR_SIG_LEN + 1], pos_err *e);
/* True when uid has the shape and its embedded check holds. */
bool visitor_uid_ok(const unsigned char key[KEYS_HMAC_LEN], const char *uid);
/* True when uid is valid and sig is its sig (constant time). */
bool visitor_sig_ok(const unsigned char key[KEYS_HMAC_LEN], const char *uid, const char *sig);
/* The uid of the first "ref vi_..." ("ref" in any case, an optional ':')
 * in a text into uid:
 * POS_ENOTFOUND when there is none, POS_EINVAL when it is not a valid uid. */
int visitor_ref(const unsigned char key[KEYS_HMAC_LEN], const char *text,
		char uid[VISITOR_UID_LEN + 1], pos_err *e);

/* The HPKE info an SMS sender's number is sealed under for uid:
 * "pos-sms/1|" + uid, never the EncTID info of a lane, so the keys
 * process's phone opening cannot open a lane's EncTID. */
int visitor_seal_info(char out[ENVELOPE_INFO_MAX], const char *uid, pos_err *e);

/* One decoded form field; name and value point into the caller's buffer. */
struct sms_param {
	const char *name;
	const char *value;
};

/* Decodes an application/x-www-form-urlencoded body (percent escapes,
 * '+' for space) into buf (at least len + 1 bytes) and p[0..*n-1]
 * (SMS_PARAMS_MAX at most), sorted by name. A field without '=', a bad
 * escape, a NUL, a name twice or too many fields: POS_EINVAL. */
int sms_form_parse(const char *body, size_t len, char *buf, struct sms_param *p, size_t *n,
		   pos_err *e);
/* The value of name in p (sorted), or NULL. */
const char *sms_form_get(const struct sms_param *p, size_t n, const char *name);
/* The signature of url and the sorted params under secret. */
int sms_signature(const char *secret, const char *url, const struct sms_param *p, size_t n,
		  char out[SMS_SIG_LEN + 1], pos_err *e);
/* True when sent (as received, trimmed) is the signature (constant time). */
bool sms_signature_ok(const char *secret, const char *url, const struct sms_param *p, size_t n,
		      const char *sent);

#endif
