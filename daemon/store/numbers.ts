/**
 * A phone number in the form the index searches by: visual separators
 * dropped, the international prefix `00` written as `+` (E.164), `tel:` and
 * `sip:` URIs reduced to their user part. Anything else (extensions,
 * national numbers without a known country) is kept as given, so a search
 * for exactly what the PBX sent always works.
 */
export function normalizeNumber(input: string): string {
  let n = input.trim();
  const uri = /^(?:tel|sips?):([^@;]+)/i.exec(n);
  if (uri) n = uri[1] as string;
  const compact = n.replace(/[\s().\-/]/g, '');
  if (/^\+[0-9]{2,15}$/.test(compact)) return compact;
  if (/^00[1-9][0-9]{1,14}$/.test(compact)) return `+${compact.slice(2)}`;
  return compact || n;
}
