import { spawn } from 'node:child_process';
import type { G711Law } from '../../daemon/media/g711.js';

export interface FfmpegTone {
  readonly port: number;
  readonly freq: number;
  readonly seconds: number;
  readonly law?: G711Law;
  /** Where its RTCP goes (not the leg's port: comedia must not lock onto it). */
  readonly rtcpPort: number;
  /** SDES-SRTP with this key (AES_CM_128_HMAC_SHA1_80), else plain RTP. */
  readonly srtpKeyBase64?: string;
}

/** Debian's ffmpeg as an RTP (or SRTP) sender of a tone to 127.0.0.1:`port`, in real time; resolves when it has sent it all. */
export function ffmpegTone(t: FfmpegTone): Promise<void> {
  const codec = (t.law ?? 'PCMU') === 'PCMU' ? 'pcm_mulaw' : 'pcm_alaw';
  const srtp = t.srtpKeyBase64 ? ['-srtp_out_suite', 'AES_CM_128_HMAC_SHA1_80', '-srtp_out_params', t.srtpKeyBase64] : [];
  const url = `${t.srtpKeyBase64 ? 'srtp' : 'rtp'}://127.0.0.1:${t.port}?rtcpport=${t.rtcpPort}`;
  const input = `sine=frequency=${t.freq}:sample_rate=8000:duration=${t.seconds}`;
  const args = [
    '-nostdin',
    '-hide_banner',
    '-loglevel',
    'error',
    '-re',
    '-f',
    'lavfi',
    '-i',
    input,
    '-ac',
    '1',
    '-c:a',
    codec,
    '-f',
    'rtp',
    ...srtp,
    url,
  ];
  return new Promise<void>((resolve, reject) => {
    const p = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'inherit'] });
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}`))));
  });
}
