/**
 * The key manager's credentials, one per role: `recorder` (the daemon's
 * host: fetch the public KEK), `unwrap` (the export and playback side:
 * unwrap data keys) and `admin` (rotate).
 */
export const LKM_ROLES = ['recorder', 'unwrap', 'admin'] as const;
export type LkmRole = (typeof LKM_ROLES)[number];
