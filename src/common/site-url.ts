/** Where a site's published port is reached from this host: its publish address, or loopback for 0.0.0.0. */
export function publishedHost(publishAddress: string): string {
  return publishAddress === '0.0.0.0' ? '127.0.0.1' : publishAddress;
}

/** A site's URL from its published port (without the edge: for diagnosis, and where there is no edge). */
export function siteUrl(publishAddress: string, hostPort: number | null): string | null {
  if (!hostPort) return null;
  return `http://${publishedHost(publishAddress)}:${hostPort}/`;
}
