/* The libsrtp 3 API as mediasoup-worker uses it, on top of Debian's libsrtp 2.5:
 * 3.x takes separate in/out buffers with size_t lengths, 2.x works in place;
 * 3.x (as mediasoup >= 3.2x uses it) builds policies through an opaque handle
 * and setters, 2.x fills a struct. Each 3.x call below maps onto 2.x. */
#ifndef CALLVAULT_SRTP3_ON_SRTP2_H
#define CALLVAULT_SRTP3_ON_SRTP2_H
#include <srtp2/srtp.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Error codes added in libsrtp 3 (2.5 ends at pkt_idx_adv = 27). */
#define srtp_err_status_buffer_small ((srtp_err_status_t)28)
#define srtp_err_status_cryptex_err ((srtp_err_status_t)29)

static inline srtp_err_status_t cv_srtp3_apply(
  srtp_t ctx, const uint8_t* in, size_t in_len, uint8_t* out, size_t* out_len, int rtcp, int protect)
{
	size_t need = protect ? in_len + SRTP_MAX_TRAILER_LEN + (rtcp ? 4 : 0) : in_len;
	if (in_len > (size_t)INT_MAX || *out_len < need)
		return srtp_err_status_buffer_small;
	if (out != in)
		memmove(out, in, in_len);
	int len = (int)in_len;
	srtp_err_status_t st;
	if (protect)
		st = rtcp ? srtp_protect_rtcp(ctx, out, &len) : srtp_protect(ctx, out, &len);
	else
		st = rtcp ? srtp_unprotect_rtcp(ctx, out, &len) : srtp_unprotect(ctx, out, &len);
	if (st == srtp_err_status_ok)
		*out_len = (size_t)len;
	return st;
}

/* mediasoup never uses MKI, so mki_index is ignored. */
static inline srtp_err_status_t cv_srtp3_protect(
  srtp_t c, const uint8_t* i, size_t il, uint8_t* o, size_t* ol, size_t mki_index)
{ (void)mki_index; return cv_srtp3_apply(c, i, il, o, ol, 0, 1); }
static inline srtp_err_status_t cv_srtp3_protect_rtcp(
  srtp_t c, const uint8_t* i, size_t il, uint8_t* o, size_t* ol, size_t mki_index)
{ (void)mki_index; return cv_srtp3_apply(c, i, il, o, ol, 1, 1); }
static inline srtp_err_status_t cv_srtp3_unprotect(
  srtp_t c, const uint8_t* i, size_t il, uint8_t* o, size_t* ol)
{ return cv_srtp3_apply(c, i, il, o, ol, 0, 0); }
static inline srtp_err_status_t cv_srtp3_unprotect_rtcp(
  srtp_t c, const uint8_t* i, size_t il, uint8_t* o, size_t* ol)
{ return cv_srtp3_apply(c, i, il, o, ol, 1, 0); }

/* The policy handle: libsrtp 2's struct plus room for the key || salt it points at. */
typedef struct cv_srtp3_policy {
	srtp_policy_t policy;
	unsigned char key[SRTP_MAX_KEY_LEN];
} cv_srtp3_policy;
typedef cv_srtp3_policy* cv_srtp3_policy_t;

static inline srtp_err_status_t cv_srtp3_policy_create(cv_srtp3_policy_t* out)
{
	*out = (cv_srtp3_policy_t)calloc(1, sizeof(cv_srtp3_policy));
	return *out ? srtp_err_status_ok : srtp_err_status_alloc_fail;
}
static inline void cv_srtp3_policy_destroy(cv_srtp3_policy_t p)
{
	if (!p)
		return;
	memset(p->key, 0, sizeof(p->key)); /* key material does not outlive the policy */
	free(p);
}
static inline srtp_err_status_t cv_srtp3_policy_set_ssrc(cv_srtp3_policy_t p, srtp_ssrc_t ssrc)
{ p->policy.ssrc = ssrc; return srtp_err_status_ok; }
static inline srtp_err_status_t cv_srtp3_policy_set_profile(cv_srtp3_policy_t p, srtp_profile_t profile)
{
	srtp_err_status_t st = srtp_crypto_policy_set_from_profile_for_rtp(&p->policy.rtp, profile);
	return st != srtp_err_status_ok ? st : srtp_crypto_policy_set_from_profile_for_rtcp(&p->policy.rtcp, profile);
}
/* mediasoup never uses MKI, so mki/mki_len must be empty. */
static inline srtp_err_status_t cv_srtp3_policy_add_key(
  cv_srtp3_policy_t p, const uint8_t* key, size_t key_len, const uint8_t* salt, size_t salt_len, const uint8_t* mki, size_t mki_len)
{
	if (mki_len != 0 || mki != NULL || key_len + salt_len > sizeof(p->key))
		return srtp_err_status_bad_param;
	memcpy(p->key, key, key_len);
	memcpy(p->key + key_len, salt, salt_len);
	p->policy.key = p->key;
	return srtp_err_status_ok;
}
static inline srtp_err_status_t cv_srtp3_policy_set_allow_repeat_tx(cv_srtp3_policy_t p, bool allow)
{ p->policy.allow_repeat_tx = allow ? 1 : 0; return srtp_err_status_ok; }
static inline srtp_err_status_t cv_srtp3_policy_set_window_size(cv_srtp3_policy_t p, size_t size)
{ p->policy.window_size = (unsigned long)size; return srtp_err_status_ok; }
static inline srtp_err_status_t cv_srtp3_create(srtp_t* session, cv_srtp3_policy_t p)
{ p->policy.next = NULL; return srtp_create(session, &p->policy); }

#define srtp_policy_t cv_srtp3_policy_t
#define srtp_policy_create cv_srtp3_policy_create
#define srtp_policy_destroy cv_srtp3_policy_destroy
#define srtp_policy_set_ssrc cv_srtp3_policy_set_ssrc
#define srtp_policy_set_profile cv_srtp3_policy_set_profile
#define srtp_policy_add_key cv_srtp3_policy_add_key
#define srtp_policy_set_allow_repeat_tx cv_srtp3_policy_set_allow_repeat_tx
#define srtp_policy_set_window_size cv_srtp3_policy_set_window_size
#define srtp_create cv_srtp3_create

#define srtp_protect cv_srtp3_protect
#define srtp_protect_rtcp cv_srtp3_protect_rtcp
#define srtp_unprotect cv_srtp3_unprotect
#define srtp_unprotect_rtcp cv_srtp3_unprotect_rtcp
#define srtp_stream_remove srtp_remove_stream

#endif
