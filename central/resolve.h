#ifndef POS_RESOLVE_H
#define POS_RESOLVE_H
/*
 * POST /v1/resolve, and the same resolution for a basket that carries an
 * EncTID: parse the request (pure), have the keys open the EncTID into its
 * tid index and DeIdentTID (keys_open: in serve, the keys process does it
 * and the TID never enters this process), then find or enrol the household.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "deident.h"
#include "envelope.h"
#include "err.h"
#include "keys.h"
#include "keysproc.h"
#include "store.h"
#include "uuid.h"

#define RESOLVE_MAX_BODY 4096

struct resolve_req {
	char txn[UUID_STR_LEN + 1]; /* as sent: the EncTID info binds this text */
	char kid[KEYS_KID_LEN + 1];
	char enc[ENVELOPE_B64_MAX];
};

struct resolve_result {
	char hhid[DEIDENT_ID_LEN + 1];
	char deident_tid[DEIDENT_ID_LEN + 1];
	bool new_household;
};

/* The EncTID object {"kid":16 hex,"enc":base64url}, shape only. */
int resolve_enctid_from_json(json_t *tid, char kid[KEYS_KID_LEN + 1],
			     char enc[ENVELOPE_B64_MAX], pos_err *e);
/* {"txn":UUID,"tid":EncTID}, nothing else; at most RESOLVE_MAX_BODY bytes.
 * The usual shape is read without a jansson tree; anything else goes
 * through jsonx_parse and resolve_from_json, which word the error. */
int resolve_parse(const char *body, size_t len, struct resolve_req *out, pos_err *e);
/* The same checks on a parsed tree (the slow path; the tests compare). */
int resolve_from_json(json_t *root, struct resolve_req *out, pos_err *e);

/* The household of an opened EncTID: store_resolve with its tid index
 * (enrolling a new household when auto_enrol is set; else POS_ENOTFOUND
 * for an unknown TID). out->deident_tid is dtid. */
int resolve_store(struct store *s, bool auto_enrol, const unsigned char idx[DEIDENT_INDEX_LEN],
		  const char *dtid, struct resolve_result *out, pos_err *e);
/* keys_open, then resolve_store. */
int resolve_run(struct store *s, struct keys_chan *kc, bool auto_enrol, const char *store,
		const char *terminal, const char *txn, const char *kid, const char *enc,
		struct resolve_result *out, pos_err *e);

#endif
