/** The Redis channel on which a site's changes are announced. */
export const siteChannel = (id: string) => `berth:site:${id}`;

/** A site's URL from its published port. */
export function siteUrl(publishAddress: string, hostPort: number | null): string | null {
  if (!hostPort) return null;
  const host = publishAddress === '0.0.0.0' ? '127.0.0.1' : publishAddress;
  return `http://${host}:${hostPort}/`;
}
