/** An RFC 4733 telephone-event payload. */
export interface TelephoneEvent {
  readonly event: number;
  readonly end: boolean;
  readonly volume: number;
  /** In RTP clock units (samples at 8 kHz). */
  readonly duration: number;
}

export function parseTelephoneEvent(payload: Uint8Array): TelephoneEvent | undefined {
  if (payload.length < 4) return undefined;
  return {
    event: payload[0] as number,
    end: ((payload[1] as number) & 0x80) !== 0,
    volume: (payload[1] as number) & 0x3f,
    duration: ((payload[2] as number) << 8) | (payload[3] as number),
  };
}
