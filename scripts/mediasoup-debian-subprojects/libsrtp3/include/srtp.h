/* The libsrtp 3 API as mediasoup-worker uses it, on top of Debian's libsrtp 2.5:
 * 3.x takes separate in/out buffers with size_t lengths, 2.x works in place. */
#ifndef CALLVAULT_SRTP3_ON_SRTP2_H
#define CALLVAULT_SRTP3_ON_SRTP2_H
#include <srtp2/srtp.h>
#include <limits.h>
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

#define srtp_protect cv_srtp3_protect
#define srtp_protect_rtcp cv_srtp3_protect_rtcp
#define srtp_unprotect cv_srtp3_unprotect
#define srtp_unprotect_rtcp cv_srtp3_unprotect_rtcp
#define srtp_stream_remove srtp_remove_stream

#endif
